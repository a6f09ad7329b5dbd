/**
 * The pod's network counters as the host kernel counts them: find the sandbox's VMM among the
 * processes of its cgroups, and read `<procfs>/<pid>/net/dev`, which shows the pod's network
 * namespace (the VMM runs in it). I/O only; what counts as the VMM and which interfaces count
 * is decided in translate/vmm.ts and translate/host-decode.ts.
 *
 * Every read is bounded (cgroups walked, pids, bytes), and a pid is trusted only while it is in
 * the sandbox's cgroups: after net/dev is read, the cgroup it was found in must still list it, so
 * a reused pid can never lend another process's namespace to a pod.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

import { decodeNetDev, isHostNamespace, type NetDevSums } from '../translate/host-decode.ts';
import type { HostNetworkRead, Hypervisor } from '../translate/records.ts';
import { isVmmComm, parseCgroupProcs } from '../translate/vmm.ts';
import { readCgroupFileSync, readTextSync } from './pseudo-fs.ts';

/** Cgroup directories walked per sandbox, and how deep below each starting cgroup. */
const MAX_CGROUPS = 64;
const MAX_DEPTH = 3;
/** Pids looked at per sandbox (a VM has a handful of processes: shim, VMM, virtiofsd). */
const MAX_PIDS = 256;
const PROCS_MAX_BYTES = 64 * 1024;
const COMM_MAX_BYTES = 64;
/** net/dev is ~130 bytes per interface; a pod namespace has a few. */
const NETDEV_MAX_BYTES = 256 * 1024;

/**
 * A sandbox whose VMM was not found is searched again only every this many collections (its gap
 * stays meanwhile): the search walks its cgroups, and a VM without a findable VMM (a Dragonball
 * shim in the host namespace, a hypervisor not known by name) would pay it on every scrape.
 */
const RETRY_EVERY = 4;

/** Where a sandbox's VMM was found: its pid and the cgroup directory that listed it. */
interface FoundVmm {
  pid: number;
  procsFile: string;
}

/** A pseudo-file's text, or undefined when it is gone, unreadable or past its bound. */
function readOrUndefined(read: (path: string, max: number) => string, path: string, maxBytes: number): string | undefined {
  try {
    return read(path, maxBytes);
  } catch {
    return undefined;
  }
}

function subdirectories(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
}

export class VmmNetworkReader {
  /** Each present sandbox's VMM as last found, so a collection costs two reads per sandbox. */
  private readonly known = new Map<string, FoundVmm>();
  /** The host's own namespace this collection (pid 1), to refuse a VMM that shares it. */
  private host: NetDevSums | undefined;
  /** Sandboxes whose last search failed: the collection to search again, and what it found. */
  private readonly misses = new Map<string, { retryAt: number; read: HostNetworkRead }>();
  private collection = 0;

  constructor(private readonly procDir: string) {}

  /** Reads the host namespace's interfaces once per collection. */
  beginCollection(): void {
    this.collection++;
    const text = readOrUndefined(readTextSync, join(this.procDir, '1', 'net', 'dev'), NETDEV_MAX_BYTES);
    this.host = text === undefined ? undefined : decodeNetDev(text);
  }

  /**
   * The network counters of a sandbox whose cgroups are `cgroupDirs` (absolute, in one hierarchy;
   * the overhead cgroup first, where the VMM lives when sandbox_cgroup_only=false). `statePid`,
   * Kata's own record of the VMM pid, is tried first and trusted no more than any other pid.
   */
  read(sandboxId: string, cgroupDirs: readonly string[], hypervisor: Hypervisor, statePid?: number): HostNetworkRead {
    const last = this.known.get(sandboxId);
    if (last !== undefined && cgroupDirs.some((dir) => last.procsFile.startsWith(`${dir}/`))) {
      const read = this.readFound(last);
      if (read !== undefined) return read;
    }
    this.known.delete(sandboxId);
    const miss = this.misses.get(sandboxId);
    if (miss !== undefined && this.collection < miss.retryAt) return miss.read;
    const found = this.find(cgroupDirs, hypervisor, statePid);
    const read = (found === undefined ? undefined : this.readFound(found)) ?? { state: 'vmm_not_found' };
    if (read.state === 'ok') {
      this.known.set(sandboxId, found!);
      this.misses.delete(sandboxId);
    } else {
      this.misses.set(sandboxId, { retryAt: this.collection + RETRY_EVERY, read });
    }
    return read;
  }

  /** Drops the sandboxes no longer present. */
  keepOnly(sandboxIds: ReadonlySet<string>): void {
    for (const map of [this.known, this.misses]) for (const id of map.keys()) if (!sandboxIds.has(id)) map.delete(id);
  }

  /** net/dev of a found VMM; undefined when it is gone or left the cgroup meanwhile (pid reuse). */
  private readFound(found: FoundVmm): HostNetworkRead | undefined {
    const text = readOrUndefined(readTextSync, join(this.procDir, String(found.pid), 'net', 'dev'), NETDEV_MAX_BYTES);
    if (text === undefined) return undefined;
    const procs = readOrUndefined(readCgroupFileSync, found.procsFile, PROCS_MAX_BYTES);
    if (procs === undefined || !parseCgroupProcs(procs, Number.MAX_SAFE_INTEGER).includes(found.pid)) return undefined;
    const sums = decodeNetDev(text);
    if (sums === undefined) return undefined;
    if (isHostNamespace(sums, this.host)) return { state: 'host_namespace' };
    return { state: 'ok', receiveBytes: sums.receiveBytes, transmitBytes: sums.transmitBytes };
  }

  /** The first process of the cgroups (breadth first, bounded) whose comm is the hypervisor's. */
  private find(cgroupDirs: readonly string[], hypervisor: Hypervisor, statePid: number | undefined): FoundVmm | undefined {
    const queue = cgroupDirs.map((dir) => ({ dir, depth: 0 }));
    const candidates: FoundVmm[] = [];
    for (let walked = 0; walked < queue.length && walked < MAX_CGROUPS && candidates.length < MAX_PIDS; walked++) {
      const { dir, depth } = queue[walked]!;
      const procsFile = join(dir, 'cgroup.procs');
      const text = readOrUndefined(readCgroupFileSync, procsFile, PROCS_MAX_BYTES);
      for (const pid of text === undefined ? [] : parseCgroupProcs(text, MAX_PIDS - candidates.length)) candidates.push({ pid, procsFile });
      if (depth < MAX_DEPTH) for (const name of subdirectories(dir)) queue.push({ dir: join(dir, name), depth: depth + 1 });
    }
    // Kata's recorded pid first: one comm read when it is right.
    candidates.sort((a, b) => Number(b.pid === statePid) - Number(a.pid === statePid));
    for (const candidate of candidates) {
      const comm = readOrUndefined(readTextSync, join(this.procDir, String(candidate.pid), 'comm'), COMM_MAX_BYTES);
      if (comm !== undefined && isVmmComm(comm, hypervisor)) return candidate;
    }
    return undefined;
  }
}
