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

  constructor(private readonly procDir: string) {}

  /** Reads the host namespace's interfaces once per collection. */
  beginCollection(): void {
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
    const found = this.find(cgroupDirs, hypervisor, statePid);
    if (found === undefined) return { state: 'vmm_not_found' };
    const read = this.readFound(found);
    if (read === undefined) return { state: 'vmm_not_found' };
    if (read.state === 'ok') this.known.set(sandboxId, found);
    return read;
  }

  /** Drops the sandboxes no longer present. */
  keepOnly(sandboxIds: ReadonlySet<string>): void {
    for (const id of this.known.keys()) if (!sandboxIds.has(id)) this.known.delete(id);
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
