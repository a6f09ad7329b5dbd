/**
 * A fake host cgroup tree on an ordinary directory, shaped like a Kubernetes node running Kata
 * (domain.md §3): v1 or v2 (optionally hybrid), either kubelet driver, sandbox_cgroup_only true or
 * false, Kata issue 11325's literal directory. Used by the simulated node behind --demo and by
 * end-to-end tests; the exporter reads it through --path.cgroupfs exactly as a real host.
 *
 * Only the files the exporter reads are written, with the key sets the kernel prints, so a reader
 * that looks up the wrong key (e.g. v1 `inactive_file` instead of `total_inactive_file`) sees a
 * different number. Values can be changed over time; each file is replaced atomically.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

import {
  overheadCgroupPaths,
  podCgroupName,
  podCgroupPath,
  QOS_LEVELS,
  qosCgroupPath,
  sandboxChildNames,
  systemdLiteralSandboxPath,
  type CgroupDriver,
  type PodQos,
} from '../translate/cgroup-paths.ts';
import type { CgroupVersion, KataRuntime } from '../translate/records.ts';

const PAGE = 4096;

export interface LabCgroupUsage {
  cpuSeconds: number;
  memoryUsageBytes: number;
  /** Page cache the kernel may drop; working set = usage − this (0 when absent). */
  inactiveFileBytes?: number;
}

export interface LabSandbox {
  id: string;
  /** Naming of the sandbox cgroup with the cgroupfs driver: Go `kata_<id>` (default), runtime-rs `<id>`. */
  runtime?: KataRuntime;
  sandboxCgroupOnly: boolean;
  /** The sandbox cgroup (with sandbox_cgroup_only=false it holds only the vCPU threads). */
  usage: LabCgroupUsage;
  /** sandbox_cgroup_only=false: the VMM, shim and I/O threads in the overhead cgroup at the root. */
  overheadUsage?: LabCgroupUsage;
  /** Kata issue 11325 (systemd driver): the sandbox cgroup is the literal `/<pod slice>:cri-containerd:<id>`. */
  systemdLiteralDir?: boolean;
}

export interface LabPod {
  uid: string;
  qos: PodQos;
  /** The pod cgroup; defaults to the sum of the sandbox cgroups inside it (hierarchical counters). */
  usage?: LabCgroupUsage;
  sandboxes?: LabSandbox[];
}

export interface LabCgroupTreeOptions {
  version: CgroupVersion;
  driver: CgroupDriver;
  /** v1 controllers beside a v2 mount at `unified/`; with version 2 the kubelet's tree is under `unified/`. */
  hybrid?: boolean;
  /** How the v1 cpuacct controller is mounted (default `cpu,cpuacct`, as most distributions do). */
  v1CpuDir?: 'cpu,cpuacct' | 'cpuacct';
  /** v2 only: false leaves out the memory files, as when the memory controller is not enabled. */
  memoryController?: boolean;
}

export interface LabSandboxPaths {
  sandbox: string;
  overhead?: string;
}

export interface LabPodPaths {
  pod: string;
  sandboxes: Record<string, LabSandboxPaths>;
}

// ─── file contents in the kernel's formats ────────────────────────────────────

function pages(bytes: number): number {
  return Math.floor(bytes / PAGE) * PAGE;
}

/** Splits a usage into the parts memory.stat reports; anon + file + kernel = usage (when usage ≥ inactive_file). */
function memoryParts(u: LabCgroupUsage) {
  const inactiveFile = u.inactiveFileBytes ?? 0;
  const rest = Math.max(u.memoryUsageBytes - inactiveFile, 0);
  const kernel = pages(rest / 16);
  const activeFile = pages((rest - kernel) / 8);
  const anon = rest - kernel - activeFile;
  const inactiveAnon = pages(anon / 32);
  return { inactiveFile, activeFile, file: inactiveFile + activeFile, anon, inactiveAnon, activeAnon: anon - inactiveAnon, kernel };
}

/** `key value` lines; a string value is printed as is (numbers past 2^53 cannot be a number). */
function lines(entries: [string, number | string][]): string {
  return entries.map(([k, v]) => `${k} ${typeof v === 'string' ? v : Math.round(v)}\n`).join('');
}

/** What v1 prints for an unlimited memory limit: PAGE_COUNTER_MAX in bytes. */
const V1_UNLIMITED = '9223372036854771712';

/** cgroup v2 memory.stat (Documentation/admin-guide/cgroup-v2.rst, kernel 6.x key set). */
export function renderV2MemoryStat(u: LabCgroupUsage): string {
  const m = memoryParts(u);
  const stack = pages(m.kernel / 4);
  const slab = m.kernel - stack - pages(m.kernel / 8);
  return lines([
    ['anon', m.anon], ['file', m.file], ['kernel', m.kernel], ['kernel_stack', stack], ['pagetables', pages(m.kernel / 8)],
    ['sec_pagetables', 0], ['percpu', 0], ['sock', 0], ['vmalloc', 0], ['shmem', 0], ['zswap', 0], ['zswapped', 0],
    ['file_mapped', pages(m.file / 4)], ['file_dirty', 0], ['file_writeback', 0], ['swapcached', 0], ['anon_thp', 0],
    ['file_thp', 0], ['shmem_thp', 0], ['inactive_anon', m.inactiveAnon], ['active_anon', m.activeAnon],
    ['inactive_file', m.inactiveFile], ['active_file', m.activeFile], ['unevictable', 0],
    ['slab_reclaimable', pages(slab / 2)], ['slab_unreclaimable', slab - pages(slab / 2)], ['slab', slab],
    ['workingset_refault_anon', 0], ['workingset_refault_file', 0], ['workingset_activate_anon', 0],
    ['workingset_activate_file', 0], ['workingset_restore_anon', 0], ['workingset_restore_file', 0],
    ['workingset_nodereclaim', 0], ['pgscan', 0], ['pgsteal', 0], ['pgscan_kswapd', 0], ['pgscan_direct', 0],
    ['pgscan_khugepaged', 0], ['pgsteal_kswapd', 0], ['pgsteal_direct', 0], ['pgsteal_khugepaged', 0],
    ['pgfault', m.anon / PAGE], ['pgmajfault', 0], ['pgrefill', 0], ['pgactivate', 0], ['pgdeactivate', 0],
    ['pglazyfree', 0], ['pglazyfreed', 0], ['zswpin', 0], ['zswpout', 0], ['zswpwb', 0], ['thp_fault_alloc', 0],
    ['thp_collapse_alloc', 0], ['thp_swpout', 0], ['thp_swpout_fallback', 0],
  ]);
}

/**
 * cgroup v1 memory.stat (Documentation/admin-guide/cgroup-v1/memory.rst §5.2): local counters, the
 * hierarchy limits, then the same counters prefixed `total_` for the whole subtree. A cgroup whose
 * memory is all in its children (`local` false) reports zeros locally.
 */
export function renderV1MemoryStat(u: LabCgroupUsage, local = true): string {
  const m = memoryParts(u);
  const counters = (x: typeof m): [string, number][] => [
    ['cache', x.file], ['rss', x.anon], ['rss_huge', 0], ['shmem', 0], ['mapped_file', pages(x.file / 4)], ['dirty', 0],
    ['writeback', 0], ['workingset_refault_anon', 0], ['workingset_refault_file', 0], ['swap', 0], ['swapcached', 0],
    ['pgpgin', (x.anon + x.file) / PAGE], ['pgpgout', 0], ['pgfault', x.anon / PAGE], ['pgmajfault', 0],
    ['inactive_anon', x.inactiveAnon], ['active_anon', x.activeAnon], ['inactive_file', x.inactiveFile],
    ['active_file', x.activeFile], ['unevictable', 0],
  ];
  const zero = { inactiveFile: 0, activeFile: 0, file: 0, anon: 0, inactiveAnon: 0, activeAnon: 0, kernel: 0 };
  return lines([
    ...counters(local ? m : zero),
    ['hierarchical_memory_limit', V1_UNLIMITED],
    ['hierarchical_memsw_limit', V1_UNLIMITED],
    ...counters(m).map(([k, v]): [string, number] => [`total_${k}`, v]),
  ]);
}

/** cgroup v2 cpu.stat; without the cpu controller enabled only the three usage lines exist. */
export function renderV2CpuStat(cpuSeconds: number, cpuController = true): string {
  const usage = Math.round(cpuSeconds * 1e6);
  const user = Math.round(usage * 0.7);
  const base: [string, number][] = [['usage_usec', usage], ['user_usec', user], ['system_usec', usage - user]];
  const throttling: [string, number][] = [
    ['nr_periods', 0], ['nr_throttled', 0], ['throttled_usec', 0], ['nr_bursts', 0], ['burst_usec', 0],
  ];
  return lines(cpuController ? [...base, ...throttling] : base);
}

/** cgroup v1 cpuacct.usage: total CPU time in nanoseconds, one number. */
export function renderV1CpuacctUsage(cpuSeconds: number): string {
  return `${BigInt(Math.round(cpuSeconds * 1e6)) * 1000n}\n`;
}

export function sumUsage(parts: LabCgroupUsage[]): LabCgroupUsage {
  return {
    cpuSeconds: parts.reduce((s, p) => s + p.cpuSeconds, 0),
    memoryUsageBytes: parts.reduce((s, p) => s + p.memoryUsageBytes, 0),
    inactiveFileBytes: parts.reduce((s, p) => s + (p.inactiveFileBytes ?? 0), 0),
  };
}

// ─── the tree ─────────────────────────────────────────────────────────────────

/** Replaces a file so that a concurrent reader sees the old or the new content, never half. */
async function writeAtomic(path: string, content: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, content);
  await rename(tmp, path);
}

export class LabCgroupTree {
  private readonly pods = new Map<string, { pod: LabPod; paths: LabPodPaths }>();

  private constructor(
    /** The directory to pass as --path.cgroupfs. */
    readonly root: string,
    readonly options: Readonly<LabCgroupTreeOptions>,
  ) {}

  /** Writes the hierarchy skeleton (and the given pods) under `root`, which may already exist. */
  static async create(root: string, options: LabCgroupTreeOptions, pods: LabPod[] = []): Promise<LabCgroupTree> {
    const tree = new LabCgroupTree(root, options);
    await tree.writeSkeleton();
    for (const pod of pods) await tree.addPod(pod);
    return tree;
  }

  /** The directory of the kubelet's v2 hierarchy, or undefined on v1. */
  private get v2Dir(): string | undefined {
    if (this.options.version !== 2) return undefined;
    return this.options.hybrid ? join(this.root, 'unified') : this.root;
  }

  private get v1CpuDir(): string {
    return join(this.root, this.options.v1CpuDir ?? 'cpu,cpuacct');
  }

  private async writeSkeleton(): Promise<void> {
    const { version, hybrid, driver } = this.options;
    const v2Controllers = this.options.memoryController === false ? 'cpuset cpu io pids\n' : 'cpuset cpu io memory hugetlb pids rdma misc\n';
    if (version === 2) await writeAtomic(join(this.v2Dir ?? this.root, 'cgroup.controllers'), v2Controllers);
    if (version === 1 || hybrid) {
      for (const dir of [this.v1CpuDir, join(this.root, 'memory')]) await mkdir(dir, { recursive: true });
    }
    // A hybrid v1 host's unified mount usually has no controllers to give.
    if (version === 1 && hybrid) await writeAtomic(join(this.root, 'unified', 'cgroup.controllers'), '\n');
    // The kubelet creates the QoS levels at start-up, before any pod.
    for (const qos of QOS_LEVELS) await this.ensureDirs(qosCgroupPath(driver, qos));
  }

  /** The hierarchies every cgroup of the kubelet's tree is created in. */
  private get hierarchies(): string[] {
    return this.v2Dir !== undefined ? [this.v2Dir] : [this.v1CpuDir, join(this.root, 'memory')];
  }

  private async ensureDirs(relPath: string): Promise<void> {
    for (const dir of this.hierarchies) await mkdir(join(dir, relPath), { recursive: true });
  }

  /** Writes (or rewrites) the counter files of one cgroup, creating its directory when needed. */
  async setUsage(relPath: string, usage: LabCgroupUsage, hasChildren = false): Promise<void> {
    const v2 = this.v2Dir;
    if (v2 !== undefined) {
      const dir = join(v2, relPath);
      await writeAtomic(join(dir, 'cpu.stat'), renderV2CpuStat(usage.cpuSeconds));
      if (this.options.memoryController === false) return;
      await writeAtomic(join(dir, 'memory.current'), `${usage.memoryUsageBytes}\n`);
      await writeAtomic(join(dir, 'memory.stat'), renderV2MemoryStat(usage));
      return;
    }
    await writeAtomic(join(this.v1CpuDir, relPath, 'cpuacct.usage'), renderV1CpuacctUsage(usage.cpuSeconds));
    const memDir = join(this.root, 'memory', relPath);
    await writeAtomic(join(memDir, 'memory.usage_in_bytes'), `${usage.memoryUsageBytes}\n`);
    await writeAtomic(join(memDir, 'memory.stat'), renderV1MemoryStat(usage, !hasChildren));
  }

  private pathsFor(pod: LabPod): LabPodPaths {
    const { driver } = this.options;
    const podPath = podCgroupPath(driver, pod.qos, pod.uid);
    const sandboxes: Record<string, LabSandboxPaths> = {};
    for (const sb of pod.sandboxes ?? []) {
      const names = sandboxChildNames(driver, sb.id);
      const childName = driver === 'cgroupfs' && sb.runtime === 'rs' ? names[1] : names[0];
      const sandbox = sb.systemdLiteralDir
        ? systemdLiteralSandboxPath(podCgroupName(driver, pod.qos, pod.uid), sb.id)
        : `${podPath}/${childName ?? sb.id}`;
      sandboxes[sb.id] = sb.sandboxCgroupOnly ? { sandbox } : { sandbox, overhead: overheadCgroupPaths(sb.id)[0] ?? `/kata_overhead/${sb.id}` };
    }
    return { pod: podPath, sandboxes };
  }

  private async writePod(pod: LabPod, paths: LabPodPaths): Promise<void> {
    const inPod = (pod.sandboxes ?? []).filter((sb) => !sb.systemdLiteralDir);
    await this.setUsage(paths.pod, pod.usage ?? sumUsage(inPod.map((sb) => sb.usage)), inPod.length > 0);
    for (const sb of pod.sandboxes ?? []) {
      const p = paths.sandboxes[sb.id];
      if (!p) continue;
      await this.setUsage(p.sandbox, sb.usage);
      if (p.overhead) await this.setUsage(p.overhead, sb.overheadUsage ?? { cpuSeconds: 0, memoryUsageBytes: 0 });
    }
  }

  /** Adds a pod with its sandboxes; returns the cgroup paths written (relative to the hierarchy). */
  async addPod(pod: LabPod): Promise<LabPodPaths> {
    const paths = this.pathsFor(pod);
    await this.writePod(pod, paths);
    this.pods.set(pod.uid, { pod: structuredClone(pod), paths });
    return paths;
  }

  /**
   * Changes a pod's values over time: its own usage and/or its sandboxes' by id. A pod without an
   * explicit usage keeps following the sum of its sandboxes.
   */
  async updatePod(
    uid: string,
    change: { usage?: LabCgroupUsage; sandboxes?: Record<string, { usage?: LabCgroupUsage; overheadUsage?: LabCgroupUsage }> },
  ): Promise<void> {
    const entry = this.pods.get(uid);
    if (!entry) throw new Error(`lab cgroup tree: no pod ${uid}`);
    if (change.usage) entry.pod.usage = change.usage;
    for (const sb of entry.pod.sandboxes ?? []) {
      const c = change.sandboxes?.[sb.id];
      if (c?.usage) sb.usage = c.usage;
      if (c?.overheadUsage) sb.overheadUsage = c.overheadUsage;
    }
    await this.writePod(entry.pod, entry.paths);
  }

  /** Removes a pod's cgroups, its overhead and 11325 directories included, as Kata and the kubelet do. */
  async removePod(uid: string): Promise<void> {
    const entry = this.pods.get(uid);
    if (!entry) return;
    const rels = [entry.paths.pod, ...Object.values(entry.paths.sandboxes).flatMap((p) => [p.sandbox, p.overhead])];
    for (const rel of rels) {
      if (rel === undefined) continue;
      for (const dir of this.hierarchies) await rm(join(dir, rel), { recursive: true, force: true });
    }
    this.pods.delete(uid);
  }

  paths(uid: string): LabPodPaths | undefined {
    return this.pods.get(uid)?.paths;
  }
}
