/**
 * "Has this file changed since I read it?", answered one way for every file the exporter caches
 * (credential files, runtime configuration, Kata state files and bundles, the web config and its
 * certificates). Two stats of the same path give the same identity only if:
 *
 * - dev and ino are equal: the file was not replaced. An atomic rename over it, or the kubelet's
 *   `..data` symlink swap for projected volumes (stat follows symlinks), gives a new inode, and an
 *   inode number is only unique within one device.
 * - size is equal: catches a rewrite of another length even within one timestamp tick.
 * - mtimeNs is equal: catches a rewrite in place. In nanoseconds from a bigint stat: mtimeMs is a
 *   double, and a millisecond is coarser than the timestamps of most filesystems.
 * - ctimeNs is equal: the kernel sets it on every write and metadata change and userspace cannot
 *   set it, so it catches a writer that restores mtime (cp -p, tar, rsync, touch -d) and a chmod.
 *
 * What no stat can see: a rewrite of the same size within one timestamp tick of the last one. A
 * caller that must not miss it either compares the content (kubelet.ts) or caches only files
 * whose mtime is older than a tick (kata-sandboxes.ts).
 */
import type { BigIntStats } from 'node:fs';

declare const fileIdentityBrand: unique symbol;

/** Compare with ===; only identityOf makes one, so every cache means the same by "unchanged". */
export type FileIdentity = string & { readonly [fileIdentityBrand]: true };

/** The identity in a stat taken with `{ bigint: true }`. */
export function identityOf(stats: BigIntStats): FileIdentity {
  return `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeNs}:${stats.ctimeNs}` as FileIdentity;
}
