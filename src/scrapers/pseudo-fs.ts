/**
 * Synchronous, bounded reads of the in-memory filesystems read on every collection: the Kata
 * state and bundles on /run (tmpfs), cgroupfs and procfs. They answer from kernel memory in
 * microseconds, so a sync call costs far less than fs/promises' thread-pool round trip, promise
 * and FileHandle per file (docs/performance.md measures the difference). Every open is
 * O_NONBLOCK, so no path can block the event loop; readTextSync also refuses anything that is not
 * a regular file (a FIFO or a device planted where a state file belongs) before the first read.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/** The file holds more than the caller's bound. */
export class FileTooLarge extends Error {
  override name = 'FileTooLarge';
  constructor(
    readonly path: string,
    readonly maxBytes: number,
  ) {
    super(`${path} is larger than ${maxBytes} bytes`);
  }
}

/** The path exists but is not a regular file (FIFO, socket, device, directory). */
export class NotARegularFile extends Error {
  override name = 'NotARegularFile';
  readonly code = 'ENOTREG';
  constructor(readonly path: string) {
    super(`${path} is not a regular file`);
  }
}

/** One scratch buffer for every read: reads are synchronous, so two never overlap. */
const SCRATCH_BYTES = 64 * 1024;
let scratch: Buffer | undefined;

// libuv adds O_CLOEXEC itself.
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

/**
 * The whole file as UTF-8, refusing more than `maxBytes`. Reads to EOF because procfs and
 * cgroupfs files report size 0, except that a file which gave exactly the size it reported in
 * a short read is complete (a state file on tmpfs): one read instead of two. Throws the fs error
 * (ENOENT and the like: the caller decides what is churn), FileTooLarge or NotARegularFile.
 */
export function readTextSync(path: string, maxBytes: number): string {
  const fd = openSync(path, OPEN_FLAGS);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new NotARegularFile(path);
    return readOpenFile(fd, path, maxBytes, stat.size);
  } finally {
    closeSync(fd);
  }
}

/**
 * A cgroup counter file (cpu.stat, memory.current, memory.stat and their v1 forms) as UTF-8,
 * refusing more than `maxBytes`, in one open and one read where readTextSync takes an fstat and a
 * second read to see EOF. Why that is enough:
 * - cgroupfs is kernfs seq_file with one record per file: a read whose buffer holds the file gets
 *   all of it, so a short read is the end. A regular file (the test and lab trees) is short only
 *   at EOF.
 * - The open is O_NONBLOCK, so a FIFO or device there can never block; one that never ends still
 *   meets the bound (FileTooLarge).
 * Throws the fs error (ENOENT, ENODEV for a removed cgroup…) or FileTooLarge.
 */
export function readCgroupFileSync(path: string, maxBytes: number): string {
  const fd = openSync(path, OPEN_FLAGS);
  try {
    return readOpenFile(fd, path, maxBytes, undefined);
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads an open file into the scratch buffer, bounded. A read of 0 is the end; so is a short read
 * when `sizeAtShortRead` is undefined, or when the total is that size (short reads are normal
 * where it is not: procfs answers a page at a time).
 */
function readOpenFile(fd: number, path: string, maxBytes: number, sizeAtShortRead: number | undefined): string {
  const buffer = (scratch ??= Buffer.allocUnsafe(SCRATCH_BYTES));
  const full: Buffer[] = [];
  let offset = 0;
  let total = 0;
  for (;;) {
    if (offset === buffer.length) {
      full.push(Buffer.from(buffer)); // rare: state files are a few KiB
      offset = 0;
    }
    const wanted = Math.min(buffer.length - offset, maxBytes + 1 - total);
    const read = readSync(fd, buffer, offset, wanted, null);
    if (read === 0) break;
    offset += read;
    total += read;
    if (total > maxBytes) throw new FileTooLarge(path, maxBytes);
    if (read < wanted && (sizeAtShortRead === undefined || total === sizeAtShortRead)) break;
  }
  if (full.length === 0) return buffer.toString('utf8', 0, offset);
  full.push(buffer.subarray(0, offset));
  return Buffer.concat(full, total).toString('utf8');
}

/** Sync reads between two pauses: ~1 ms of reads on a busy node. */
export const READS_PER_PAUSE = 16;
let readsSincePause = 0;

/**
 * Called before each group of sync reads (a sandbox, a cgroup, a VMM's cgroups), with the number
 * of directories the group reads: once READS_PER_PAUSE would be reached, it first lets the event
 * loop run pending I/O, so shim answers that arrived meanwhile are read and the next requests go
 * out, instead of waiting for a whole discovery or cgroup pass (tens of ms at N = 250).
 */
export async function pauseForIo(reads = 1): Promise<void> {
  readsSincePause += reads;
  if (readsSincePause < READS_PER_PAUSE) return;
  readsSincePause = reads;
  await new Promise<void>((resolve) => setImmediate(resolve));
}
