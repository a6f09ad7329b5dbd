/**
 * A fake host cgroup tree on an ordinary directory, shaped like a Kubernetes node running Kata
 * (domain.md §3): v1 or v2 (optionally hybrid), either kubelet driver, sandbox_cgroup_only true or
 * false, Kata issue 11325's literal directory. Used by the simulated node behind --demo and by
 * end-to-end tests; the exporter reads it through --path.cgroupfs exactly as a real host.
 *
 * Only the files the exporter reads are written, with the key sets the kernel prints, so a reader
 * that looks up the wrong key (e.g. v1 `inactive_file` instead of `total_inactive_file`) sees a
 * different number: usage, and the host-truth files of issue 13 (limits, CFS throttling, OOM
 * kills, peak, PSI on v2, block I/O per device, cgroup.procs). Values can be changed over time;
 * each file is replaced atomically.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

import {
  kubepodsPath,
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
import { PRESSURE_RESOURCES, type CgroupVersion, type KataRuntime } from '../translate/records.ts';

const PAGE = 4096;

export interface LabCgroupUsage {
  cpuSeconds: number;
  memoryUsageBytes: number;
  /** Page cache the kernel may drop; working set = usage − this (0 when absent). */
  inactiveFileBytes?: number;
  /** Highest usage seen (v2 memory.peak, v1 memory.max_usage_in_bytes); default the usage. */
  memoryPeakBytes?: number;
  /** OOM kills in this cgroup and below (v2 memory.events, v1 memory.oom_control). */
  oomKills?: number;
  /** Bytes read and written on the host's block devices (v2 io.stat, v1 blkio). */
  diskReadBytes?: number;
  diskWriteBytes?: number;
  /** PSI totals (v2 only): seconds some / all tasks stalled on each resource. */
  pressure?: LabPressure;
  /** Processes in the cgroup (cgroup.procs), e.g. the VMM. */
  pids?: number[];
}

export type LabPressureResource = 'cpu' | 'memory' | 'io';
export type LabPressure = Partial<Record<LabPressureResource, { someSeconds: number; fullSeconds: number }>>;

/** What only the pod cgroup has: the limits the kubelet sets from the pod spec and CFS throttling under them. */
export interface LabPodLimits {
  /** memory.max / memory.limit_in_bytes; undefined: unlimited. */
  memoryLimitBytes?: number;
  /** cpu.max quota in cores; undefined: no quota. */
  cpuQuotaCores?: number;
  /** CFS bandwidth periods elapsed, periods throttled, and time throttled. */
  cpuPeriods?: number;
  cpuThrottledPeriods?: number;
  cpuThrottledSeconds?: number;
  /** PSI of the pod cgroup (the pressure of the whole pod). */
  pressure?: LabPressure;
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
  /** The pod cgroup's own limits, throttling and pressure. */
  limits?: LabPodLimits;
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
    ['anon', m.anon],
    ['file', m.file],
    ['kernel', m.kernel],
    ['kernel_stack', stack],
    ['pagetables', pages(m.kernel / 8)],
    ['sec_pagetables', 0],
    ['percpu', 0],
    ['sock', 0],
    ['vmalloc', 0],
    ['shmem', 0],
    ['zswap', 0],
    ['zswapped', 0],
    ['file_mapped', pages(m.file / 4)],
    ['file_dirty', 0],
    ['file_writeback', 0],
    ['swapcached', 0],
    ['anon_thp', 0],
    ['file_thp', 0],
    ['shmem_thp', 0],
    ['inactive_anon', m.inactiveAnon],
    ['active_anon', m.activeAnon],
    ['inactive_file', m.inactiveFile],
    ['active_file', m.activeFile],
    ['unevictable', 0],
    ['slab_reclaimable', pages(slab / 2)],
    ['slab_unreclaimable', slab - pages(slab / 2)],
    ['slab', slab],
    ['workingset_refault_anon', 0],
    ['workingset_refault_file', 0],
    ['workingset_activate_anon', 0],
    ['workingset_activate_file', 0],
    ['workingset_restore_anon', 0],
    ['workingset_restore_file', 0],
    ['workingset_nodereclaim', 0],
    ['pgscan', 0],
    ['pgsteal', 0],
    ['pgscan_kswapd', 0],
    ['pgscan_direct', 0],
    ['pgscan_khugepaged', 0],
    ['pgsteal_kswapd', 0],
    ['pgsteal_direct', 0],
    ['pgsteal_khugepaged', 0],
    ['pgfault', m.anon / PAGE],
    ['pgmajfault', 0],
    ['pgrefill', 0],
    ['pgactivate', 0],
    ['pgdeactivate', 0],
    ['pglazyfree', 0],
    ['pglazyfreed', 0],
    ['zswpin', 0],
    ['zswpout', 0],
    ['zswpwb', 0],
    ['thp_fault_alloc', 0],
    ['thp_collapse_alloc', 0],
    ['thp_swpout', 0],
    ['thp_swpout_fallback', 0],
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
    ['cache', x.file],
    ['rss', x.anon],
    ['rss_huge', 0],
    ['shmem', 0],
    ['mapped_file', pages(x.file / 4)],
    ['dirty', 0],
    ['writeback', 0],
    ['workingset_refault_anon', 0],
    ['workingset_refault_file', 0],
    ['swap', 0],
    ['swapcached', 0],
    ['pgpgin', (x.anon + x.file) / PAGE],
    ['pgpgout', 0],
    ['pgfault', x.anon / PAGE],
    ['pgmajfault', 0],
    ['inactive_anon', x.inactiveAnon],
    ['active_anon', x.activeAnon],
    ['inactive_file', x.inactiveFile],
    ['active_file', x.activeFile],
    ['unevictable', 0],
  ];
  const zero = { inactiveFile: 0, activeFile: 0, file: 0, anon: 0, inactiveAnon: 0, activeAnon: 0, kernel: 0 };
  return lines([
    ...counters(local ? m : zero),
    ['hierarchical_memory_limit', V1_UNLIMITED],
    ['hierarchical_memsw_limit', V1_UNLIMITED],
    ...counters(m).map(([k, v]): [string, number] => [`total_${k}`, v]),
  ]);
}

/** CFS bandwidth counters of a cgroup (zeros without a quota). */
export interface LabThrottling {
  periods: number;
  throttledPeriods: number;
  throttledSeconds: number;
}

const NO_THROTTLING: LabThrottling = { periods: 0, throttledPeriods: 0, throttledSeconds: 0 };

/** cgroup v2 cpu.stat; without the cpu controller enabled only the three usage lines exist. */
export function renderV2CpuStat(cpuSeconds: number, cpuController = true, throttling: LabThrottling = NO_THROTTLING): string {
  const usage = Math.round(cpuSeconds * 1e6);
  const user = Math.round(usage * 0.7);
  const base: [string, number][] = [
    ['usage_usec', usage],
    ['user_usec', user],
    ['system_usec', usage - user],
  ];
  const bandwidth: [string, number][] = [
    ['nr_periods', throttling.periods],
    ['nr_throttled', throttling.throttledPeriods],
    ['throttled_usec', throttling.throttledSeconds * 1e6],
    ['nr_bursts', 0],
    ['burst_usec', 0],
  ];
  return lines(cpuController ? [...base, ...bandwidth] : base);
}

/** cgroup v1 cpu.stat of the cpu controller (kernel 5.14+ key set; throttled_time in ns). */
export function renderV1CpuStat(throttling: LabThrottling = NO_THROTTLING): string {
  return lines([
    ['nr_periods', throttling.periods],
    ['nr_throttled', throttling.throttledPeriods],
    ['throttled_time', `${BigInt(Math.round(throttling.throttledSeconds * 1e6)) * 1000n}`],
    ['nr_bursts', 0],
    ['burst_time', 0],
  ]);
}

/** cgroup v2 cpu.max: `<quota> <period>` in µs, or `max <period>`. */
export function renderV2CpuMax(quotaCores: number | undefined): string {
  return `${quotaCores === undefined ? 'max' : Math.round(quotaCores * CFS_PERIOD_US)} ${CFS_PERIOD_US}\n`;
}

/** The kubelet's CFS period: 100 ms. */
export const CFS_PERIOD_US = 100_000;

/** cgroup v2 memory.events (hierarchical; `oom_kill` counts processes the OOM killer killed). */
export function renderV2MemoryEvents(oomKills: number): string {
  // Every OOM kill follows an OOM event and hitting memory.max; the kernel counts both at least as often.
  return lines([
    ['low', 0],
    ['high', 0],
    ['max', oomKills * 12],
    ['oom', oomKills],
    ['oom_kill', oomKills],
    ['oom_group_kill', 0],
  ]);
}

/** cgroup v1 memory.oom_control (kernel 4.13+ prints oom_kill). */
export function renderV1OomControl(oomKills: number): string {
  return lines([
    ['oom_kill_disable', 0],
    ['under_oom', 0],
    ['oom_kill', oomKills],
  ]);
}

/** PSI file (`cpu.pressure`, `memory.pressure`, `io.pressure`): `some` and `full`, total in µs. */
export function renderPressure(p: { someSeconds: number; fullSeconds: number } | undefined): string {
  const line = (kind: string, seconds: number) => `${kind} avg10=0.00 avg60=0.00 avg300=0.00 total=${Math.round(seconds * 1e6)}\n`;
  return line('some', p?.someSeconds ?? 0) + line('full', p?.fullSeconds ?? 0);
}

/**
 * The host block devices a VM's I/O lands on, with the share of it each takes: the image or
 * virtio-blk volume on the NVMe disk, and the rest (virtio-fs writes by virtiofsd) on a device-mapper
 * volume. A reader that keeps only the first device sees a different number.
 */
const DISKS: ReadonlyArray<{ device: string; share: number }> = [
  { device: '259:0', share: 0.7 },
  { device: '253:1', share: 0.3 },
];

function perDisk(bytes: number | undefined): Array<{ device: string; bytes: number }> {
  const total = Math.round(bytes ?? 0);
  const first = Math.round(total * (DISKS[0]?.share ?? 1));
  return DISKS.map((d, i) => ({ device: d.device, bytes: i === 0 ? first : total - first }));
}

/** cgroup v2 io.stat: one line per device the cgroup did I/O on (none at all when idle). */
export function renderV2IoStat(readBytes: number | undefined, writeBytes: number | undefined): string {
  const reads = perDisk(readBytes);
  const writes = perDisk(writeBytes);
  return DISKS.map((d, i) => {
    const r = reads[i]?.bytes ?? 0;
    const w = writes[i]?.bytes ?? 0;
    return r === 0 && w === 0
      ? ''
      : `${d.device} rbytes=${r} wbytes=${w} rios=${Math.round(r / 65536)} wios=${Math.round(w / 65536)} dbytes=0 dios=0\n`;
  }).join('');
}

/** cgroup v1 blkio.throttle.io_service_bytes_recursive: per device Read/Write/Sync/Async/Discard/Total, then Total. */
export function renderV1BlkioServiceBytes(readBytes: number | undefined, writeBytes: number | undefined): string {
  const reads = perDisk(readBytes);
  const writes = perDisk(writeBytes);
  let total = 0;
  const out = DISKS.map((d, i) => {
    const r = reads[i]?.bytes ?? 0;
    const w = writes[i]?.bytes ?? 0;
    total += r + w;
    const sync = Math.round(w / 4) + r;
    return lines([
      [`${d.device} Read`, r],
      [`${d.device} Write`, w],
      [`${d.device} Sync`, sync],
      [`${d.device} Async`, r + w - sync],
      [`${d.device} Discard`, 0],
      [`${d.device} Total`, r + w],
    ]);
  });
  return `${out.join('')}Total ${total}\n`;
}

/** cgroup v1 cpuacct.usage: total CPU time in nanoseconds, one number. */
export function renderV1CpuacctUsage(cpuSeconds: number): string {
  return `${BigInt(Math.round(cpuSeconds * 1e6)) * 1000n}\n`;
}

/** The hierarchical counters of a parent: the sum of its children's (processes and PSI stay the children's own). */
export function sumUsage(parts: LabCgroupUsage[]): LabCgroupUsage {
  const sum = (pick: (p: LabCgroupUsage) => number | undefined) => parts.reduce((s, p) => s + (pick(p) ?? 0), 0);
  return {
    cpuSeconds: sum((p) => p.cpuSeconds),
    memoryUsageBytes: sum((p) => p.memoryUsageBytes),
    inactiveFileBytes: sum((p) => p.inactiveFileBytes),
    memoryPeakBytes: sum((p) => p.memoryPeakBytes ?? p.memoryUsageBytes),
    oomKills: sum((p) => p.oomKills),
    diskReadBytes: sum((p) => p.diskReadBytes),
    diskWriteBytes: sum((p) => p.diskWriteBytes),
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

  /** The v1 controller directory of cpuacct (and of cpu, when they are co-mounted as most distributions do). */
  private get v1CpuDir(): string {
    return join(this.root, this.options.v1CpuDir ?? 'cpu,cpuacct');
  }

  /** The v1 cpu controller (CFS bandwidth, throttling): its own `cpu` mount when cpuacct is mounted alone. */
  private get v1CpuControllerDir(): string {
    return this.options.v1CpuDir === 'cpuacct' ? join(this.root, 'cpu') : this.v1CpuDir;
  }

  private async writeSkeleton(): Promise<void> {
    const { version, hybrid, driver } = this.options;
    const v2Controllers =
      this.options.memoryController === false ? 'cpuset cpu io pids\n' : 'cpuset cpu io memory hugetlb pids rdma misc\n';
    if (version === 2) await writeAtomic(join(this.v2Dir ?? this.root, 'cgroup.controllers'), v2Controllers);
    if (version === 1 || hybrid) {
      for (const dir of this.v1Hierarchies) await mkdir(dir, { recursive: true });
    }
    // A hybrid v1 host's unified mount usually has no controllers to give.
    if (version === 1 && hybrid) await writeAtomic(join(this.root, 'unified', 'cgroup.controllers'), '\n');
    // The kubelet creates the QoS levels at start-up, before any pod.
    for (const qos of QOS_LEVELS) await this.ensureDirs(qosCgroupPath(driver, qos));
    const v2 = this.v2Dir;
    // A PSI kernel (5.2+) has the pressure files in every v2 cgroup, the root included.
    if (v2 !== undefined) {
      for (const rel of ['', kubepodsPath(driver), ...QOS_LEVELS.map((qos) => qosCgroupPath(driver, qos))])
        await this.writePressure(join(v2, rel));
    }
  }

  private async writePressure(dir: string, pressure: LabPressure = {}): Promise<void> {
    for (const resource of PRESSURE_RESOURCES) await writeAtomic(join(dir, `${resource}.pressure`), renderPressure(pressure[resource]));
  }

  private get v1Hierarchies(): string[] {
    return [...new Set([this.v1CpuDir, this.v1CpuControllerDir, join(this.root, 'memory'), join(this.root, 'blkio')])];
  }

  /** The hierarchies every cgroup of the kubelet's tree is created in. */
  private get hierarchies(): string[] {
    return this.v2Dir !== undefined ? [this.v2Dir] : this.v1Hierarchies;
  }

  private async ensureDirs(relPath: string): Promise<void> {
    for (const dir of this.hierarchies) await mkdir(join(dir, relPath), { recursive: true });
  }

  /**
   * Writes (or rewrites) the counter files of one cgroup, creating its directory when needed.
   * `limits` are the pod cgroup's own (quota, memory limit, throttling, PSI); other cgroups have none.
   */
  async setUsage(relPath: string, usage: LabCgroupUsage, hasChildren = false, limits: LabPodLimits = {}): Promise<void> {
    const throttling: LabThrottling = {
      periods: limits.cpuPeriods ?? 0,
      throttledPeriods: limits.cpuThrottledPeriods ?? 0,
      throttledSeconds: limits.cpuThrottledSeconds ?? 0,
    };
    const procs = (usage.pids ?? []).map((pid) => `${pid}\n`).join('');
    const peak = usage.memoryPeakBytes ?? usage.memoryUsageBytes;
    const v2 = this.v2Dir;
    if (v2 !== undefined) {
      const dir = join(v2, relPath);
      const pressure = limits.pressure ?? usage.pressure;
      await writeAtomic(join(dir, 'cgroup.procs'), procs);
      await writeAtomic(join(dir, 'cpu.stat'), renderV2CpuStat(usage.cpuSeconds, true, throttling));
      await writeAtomic(join(dir, 'cpu.max'), renderV2CpuMax(limits.cpuQuotaCores));
      await writeAtomic(join(dir, 'io.stat'), renderV2IoStat(usage.diskReadBytes, usage.diskWriteBytes));
      await this.writePressure(dir, pressure);
      if (this.options.memoryController === false) return;
      await writeAtomic(join(dir, 'memory.current'), `${usage.memoryUsageBytes}\n`);
      await writeAtomic(join(dir, 'memory.stat'), renderV2MemoryStat(usage));
      await writeAtomic(join(dir, 'memory.max'), `${limits.memoryLimitBytes ?? 'max'}\n`);
      await writeAtomic(join(dir, 'memory.peak'), `${peak}\n`);
      await writeAtomic(join(dir, 'memory.events'), renderV2MemoryEvents(usage.oomKills ?? 0));
      return;
    }
    for (const hierarchy of this.v1Hierarchies) await writeAtomic(join(hierarchy, relPath, 'cgroup.procs'), procs);
    await writeAtomic(join(this.v1CpuDir, relPath, 'cpuacct.usage'), renderV1CpuacctUsage(usage.cpuSeconds));
    await writeAtomic(join(this.v1CpuControllerDir, relPath, 'cpu.stat'), renderV1CpuStat(throttling));
    const memDir = join(this.root, 'memory', relPath);
    await writeAtomic(join(memDir, 'memory.usage_in_bytes'), `${usage.memoryUsageBytes}\n`);
    await writeAtomic(join(memDir, 'memory.stat'), renderV1MemoryStat(usage, !hasChildren));
    await writeAtomic(join(memDir, 'memory.limit_in_bytes'), `${limits.memoryLimitBytes ?? V1_UNLIMITED}\n`);
    await writeAtomic(join(memDir, 'memory.max_usage_in_bytes'), `${peak}\n`);
    await writeAtomic(join(memDir, 'memory.oom_control'), renderV1OomControl(usage.oomKills ?? 0));
    await writeAtomic(
      join(this.root, 'blkio', relPath, 'blkio.throttle.io_service_bytes_recursive'),
      renderV1BlkioServiceBytes(usage.diskReadBytes, usage.diskWriteBytes),
    );
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
      sandboxes[sb.id] = sb.sandboxCgroupOnly
        ? { sandbox }
        : { sandbox, overhead: overheadCgroupPaths(sb.id)[0] ?? `/kata_overhead/${sb.id}` };
    }
    return { pod: podPath, sandboxes };
  }

  private async writePod(pod: LabPod, paths: LabPodPaths): Promise<void> {
    const inPod = (pod.sandboxes ?? []).filter((sb) => !sb.systemdLiteralDir);
    await this.setUsage(paths.pod, pod.usage ?? sumUsage(inPod.map((sb) => sb.usage)), inPod.length > 0, pod.limits);
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
    change: {
      usage?: LabCgroupUsage;
      limits?: LabPodLimits;
      sandboxes?: Record<string, { usage?: LabCgroupUsage; overheadUsage?: LabCgroupUsage }>;
    },
  ): Promise<void> {
    const entry = this.pods.get(uid);
    if (!entry) throw new Error(`lab cgroup tree: no pod ${uid}`);
    if (change.usage) entry.pod.usage = change.usage;
    if (change.limits) entry.pod.limits = change.limits;
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
