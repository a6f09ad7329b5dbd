/**
 * Decoder for the raw payload of a Kata shim's `GET /metrics` (shim-monitor.sock). Pure.
 *
 * Where the shapes and units come from (kata-containers/kata-containers unless noted):
 * - Go shim: src/runtime/pkg/containerd-shim-v2/shim_management.go `serveMetrics` writes the
 *   default Prometheus registry (so the shim's own unprefixed `go_*` / `process_*` families, plus
 *   `kata_shim_*`, `kata_hypervisor_*`, `kata_virtiofsd_*`, `kata_firecracker_*`), then the agent's
 *   text, re-encoded, with only `go_`/`process_` agent families renamed to `kata_agent_…`.
 * - runtime-rs: src/runtime-rs/crates/runtimes/src/shim_mgmt/handlers.rs `metrics_url_handler`
 *   concatenates agent text, hypervisor text (Dragonball only; Cloud Hypervisor returns an error
 *   that becomes an empty string) and shim text. Unprefixed `process_*` there would be the
 *   agent's, never the shim's: they are ignored for `rs`.
 * - `*_proc_status` memory items: the Go code fills them from prometheus/procfs `ProcStatus`,
 *   which converts "kB" to bytes (prometheus/procfs proc_status.go `vBytes := vKBytes * 1024`).
 *   Rust code (src/agent/src/metrics.rs, src/runtime-rs/crates/runtimes/src/shim_metrics.rs) sets
 *   them from the procfs crate's `Status`, whose fields are "by kibibytes"
 *   (eminence/procfs procfs-core/src/process/status.rs). So: bytes from the Go shim's own,
 *   hypervisor and virtiofsd readings; KiB from the agent always and from everything runtime-rs.
 * - `*_io_stat`: Go spells `readbytes`/`writebytes` (src/runtime/pkg/utils/metrics.go
 *   `SetGaugeVecProcIO`), Rust `read_bytes`/`write_bytes`; both are bytes.
 * - `*_proc_stat` `utime`/`stime`: raw clock ticks from /proc/<pid>/stat (same two files).
 * - `kata_guest_cpu_time`: its unit changed across Kata 2.x and the payload names no version, so
 *   it is told from the values (see guestCpuUnit): seconds as fractions in 2.2–2.3 (procfs 0.7's
 *   f32 `CpuTime`), raw clock ticks in 2.4 (procfs 0.12 stores ticks; kata#3979), milliseconds from
 *   2.5.0 on (`CpuTime::user_ms()`: ticks × (1000 / ticks_per_second), whole multiples of 10 at
 *   USER_HZ 100).
 * - `kata_guest_meminfo`: procfs crate `Meminfo`, "generally reported in bytes"
 *   (eminence/procfs procfs-core/src/meminfo.rs converts kB × 1024).
 * - `kata_guest_diskstat` `sectors_read`/`sectors_written`: /proc/diskstats sectors, 512 bytes.
 * - `kata_firecracker_*{item}`: src/runtime/virtcontainers/fc_metrics.go copies Firecracker's
 *   metrics flush, whose counters are reset at each flush (~60 s): deltas, never counters.
 * - `kata_shim_pod_overhead_cpu` is a percentage, `_memory_in_bytes` an unsigned subtraction that
 *   wraps (src/runtime/pkg/containerd-shim-v2/shim_metrics.go `calcOverhead`).
 *
 * Everything here was written by code the guest may control. A sample is rejected (and counted)
 * when it is NaN, infinite, negative or above MAX_PLAUSIBLE_VALUE; unknown items are ignored.
 */
import {
  PromParseError,
  parsePromText,
  type ParseLimits,
  type ParseOptions,
  type PromFamily,
  type PromSample,
  type SeriesLabels,
} from '../prom-text/index.ts';
import type { GuestCpuUnit, GuestStats, Hypervisor, KataRuntime, ProcessStats, ShimMetrics } from './records.ts';

/**
 * Largest value accepted from a shim: 2^53 − 1. Integers above it are not exact in a double, and a
 * wrapped uint64 (~1.8e19) lands far above it; in any of our units (bytes, ms, ticks, sectors) it
 * is 8 PiB or centuries, far beyond anything a sandbox can report honestly.
 */
export const MAX_PLAUSIBLE_VALUE = Number.MAX_SAFE_INTEGER;

/** Firecracker window entries kept at most (its metric set has ~150 items). */
const MAX_FIRECRACKER_ENTRIES = 1024;

export interface DecodeShimOptions {
  /** Clock ticks per second for `*_proc_stat` (USER_HZ). Default 100. */
  userHz?: number;
  /** When discovery knows it: `dragonball` marks the VMM as part of the shim process. */
  hypervisor?: Hypervisor;
  /** Parser bounds (lines, series, labels) against hostile cardinality. */
  limits?: Partial<ParseLimits>;
}

type Unit = 'bytes' | 'kib';

/** Only these families are decoded; every other line is skipped by the parser's prefix test. */
const COMMON_PREFIXES = [
  'kata_guest_cpu_time',
  'kata_guest_meminfo',
  'kata_guest_load',
  'kata_guest_tasks',
  'kata_guest_netdev_stat',
  'kata_guest_diskstat',
  'kata_guest_vm_stat',
  'kata_agent_proc_stat',
  'kata_agent_proc_status',
  'kata_agent_io_stat',
  'kata_agent_threads',
  'kata_shim_proc_stat',
  'kata_shim_proc_status',
  'kata_shim_io_stat',
  'kata_shim_threads',
  'kata_shim_fds',
  'kata_shim_pod_overhead_',
  'kata_hypervisor_proc_stat',
  'kata_hypervisor_proc_status',
  'kata_hypervisor_io_stat',
  'kata_hypervisor_threads',
  'kata_hypervisor_fds',
  'kata_hypervisor_vcpu',
  'kata_virtiofsd_',
  'kata_firecracker_',
] as const;

/** The Go shim's own client_golang process collector and Go runtime threads. */
const GO_SHIM_PREFIXES = [
  'process_cpu_seconds_total',
  'process_resident_memory_bytes',
  'process_virtual_memory_bytes',
  'process_open_fds',
  'go_threads',
] as const;

const PROCESS_PREFIXES = ['kata_shim', 'kata_hypervisor', 'kata_virtiofsd', 'kata_agent'] as const;
type ProcessPrefix = (typeof PROCESS_PREFIXES)[number];
/** Built once: a name made per call is a new string, hashed again by every Map lookup. */
const PROCESS_FAMILIES = Object.fromEntries(
  PROCESS_PREFIXES.map((prefix) => [
    prefix,
    {
      procStat: `${prefix}_proc_stat`,
      procStatus: `${prefix}_proc_status`,
      ioStat: `${prefix}_io_stat`,
      threads: `${prefix}_threads`,
      fds: `${prefix}_fds`,
    },
  ]),
) as Record<ProcessPrefix, { procStat: string; procStatus: string; ioStat: string; threads: string; fds: string }>;
const PROC_STAT_ITEMS = ['utime', 'stime'] as const;
const PROC_STATUS_ITEMS = ['vmrss', 'vmsize'] as const;
const IO_STAT_ITEMS = ['readbytes', 'writebytes', 'read_bytes', 'write_bytes'] as const;
const MEMINFO_ITEMS = ['mem_total', 'mem_free', 'mem_available'] as const;
const TASKS_ITEMS = ['cur', 'max'] as const;
const LOAD_ITEMS = ['load1'] as const;
/** /proc/vmstat `oom_kill` (kernel 4.13+): the guest's own OOM kills. */
const VM_STAT_ITEMS = ['oom_kill'] as const;
const NETDEV_ITEMS = { recv_bytes: 1, sent_bytes: 1 } as const;
const DISK_ITEMS = { sectors_read: 512, sectors_written: 512 } as const;

/**
 * Of the big `{item}` families, the series the decoder reads: the parser builds nothing for the
 * others (most of the ~840 kept lines of a payload). Must match what the readers below use.
 */
const WANTED_ITEMS: ReadonlyMap<string, ReadonlySet<string>> = new Map<string, ReadonlySet<string>>([
  ...PROCESS_PREFIXES.flatMap((prefix) => [
    [`${prefix}_proc_stat`, new Set<string>(PROC_STAT_ITEMS)] as const,
    [`${prefix}_proc_status`, new Set<string>(PROC_STATUS_ITEMS)] as const,
    [`${prefix}_io_stat`, new Set<string>(IO_STAT_ITEMS)] as const,
  ]),
  ['kata_guest_meminfo', new Set<string>(MEMINFO_ITEMS)],
  ['kata_guest_tasks', new Set<string>(TASKS_ITEMS)],
  ['kata_guest_load', new Set<string>(LOAD_ITEMS)],
  ['kata_guest_vm_stat', new Set<string>(VM_STAT_ITEMS)],
  ['kata_guest_netdev_stat', new Set<string>(Object.keys(NETDEV_ITEMS))],
  ['kata_guest_diskstat', new Set<string>(Object.keys(DISK_ITEMS))],
]);

/** The same arrays on every call: the parser caches its prefix trie by list. */
const GO_KEEP_PREFIXES: readonly string[] = [...COMMON_PREFIXES, ...GO_SHIM_PREFIXES];
const RS_KEEP_PREFIXES: readonly string[] = [...COMMON_PREFIXES];

/**
 * Of the per-CPU rows of kata_guest_cpu_time, the items that tell its unit: the ones non-zero on
 * every online CPU (zeros tell nothing). Building all ten made the decode ~7–12% slower; these three
 * keep most of the evidence for a third of the cost.
 */
export const PER_CPU_UNIT_ITEMS: ReadonlySet<string> = new Set(['user', 'system', 'idle']);
/** A CPU number as the agent writes it; any other `cpu` label is no CPU row, and tells no unit. */
const CPU_NUMBER = /^\d{1,5}$/;

function keepSeries(family: string, labels: SeriesLabels): boolean {
  if (family === 'kata_guest_cpu_time') {
    // The total row, and the per-CPU values that tell the unit too.
    const cpu = labels.get('cpu') ?? '';
    return cpu === 'total' || (CPU_NUMBER.test(cpu) && PER_CPU_UNIT_ITEMS.has(labels.get('item') ?? ''));
  }
  const wanted = WANTED_ITEMS.get(family);
  if (wanted === undefined) return true;
  const item = labels.get('item');
  return item !== undefined && wanted.has(item);
}

/** HELP texts are never read here: the parser only checks them. */
const GO_PARSE_OPTIONS: ParseOptions = { keepPrefixes: GO_KEEP_PREFIXES, keepSeries, omitHelp: true };
const RS_PARSE_OPTIONS: ParseOptions = { keepPrefixes: RS_KEEP_PREFIXES, keepSeries, omitHelp: true };
/** Every kata_ family, each series checked and none built: is there any at all. */
const ANY_KATA_PREFIXES: readonly string[] = ['kata_'];
const ANY_KATA_OPTIONS: ParseOptions = { keepPrefixes: ANY_KATA_PREFIXES, keepSeries: () => false, omitHelp: true };

/** Partitions: vda1, sdb2, xvda1, nvme0n1p1, pmem0p1, mmcblk0p1. */
const PARTITION = /^(?:(?:[shv]d|xvd)[a-z]+\d+|[a-z]+\d+(?:n\d+)?p\d+)$/;
/** Virtual or stacked devices whose I/O is already counted on a whole disk, or is not disk I/O. */
const NOT_A_DISK = /^(?:loop|ram|dm-|sr|zram|md)\d/;

export function isWholeDisk(name: string): boolean {
  return !PARTITION.test(name) && !NOT_A_DISK.test(name);
}

const WHOLE_DISK_MEMO_MAX = 256;
/** isWholeDisk answers for the device names of recent payloads (the same few on every scrape). */
const wholeDiskMemo = new Map<string, boolean>();

function isWholeDiskMemo(name: string): boolean {
  let whole = wholeDiskMemo.get(name);
  if (whole === undefined) {
    whole = isWholeDisk(name);
    if (wholeDiskMemo.size >= WHOLE_DISK_MEMO_MAX) wholeDiskMemo.clear();
    wholeDiskMemo.set(name, whole);
  }
  return whole;
}

/**
 * Decode one raw shim payload. Throws PromParseError (only) when the bytes are not exposition text
 * or carry no kata_* family at all. A payload whose kata_ families are none the decoder reads (an
 * older or trimmed shim's output, e.g. only kata_hypervisor_netdev) is a Kata payload with nothing
 * to read: it decodes to empty readings.
 */
export function decodeShimMetrics(body: Uint8Array, runtime: KataRuntime, options: DecodeShimOptions = {}): ShimMetrics {
  const userHz = options.userHz ?? 100;
  const parsed = parsePromText(body, withLimits(runtime === 'go' ? GO_PARSE_OPTIONS : RS_PARSE_OPTIONS, options.limits));

  const families = new Map<string, PromFamily>();
  for (const family of parsed.families) families.set(family.name, family);
  const reader = new SampleReader(families);
  // Lines outside keepPrefixes are skipped undecoded, so garbage would otherwise decode to nothing.
  // Every Kata shim writes kata_ families: without any it is not ours. Only when none of those read
  // here is there, the other kata_ lines are checked (parsed again, building nothing).
  if (!reader.has('kata_') && parsePromText(body, withLimits(ANY_KATA_OPTIONS, options.limits)).families.length === 0) {
    throw new PromParseError('syntax', 1, 'no kata_* family: not a Kata shim metrics payload');
  }

  // Go shim: its own readings are bytes; runtime-rs: the procfs crate's KiB.
  const hostUnit: Unit = runtime === 'go' ? 'bytes' : 'kib';

  const shim = reader.process('kata_shim', hostUnit, userHz);
  if (runtime === 'go') fillFromGoCollector(shim, reader);

  const result: ShimMetrics = {
    shim,
    hypervisor: reader.process('kata_hypervisor', hostUnit, userHz),
    guest: decodeGuest(reader, userHz),
    rejectedSamples: 0,
  };
  if (reader.has('kata_virtiofsd_')) result.virtiofsd = reader.process('kata_virtiofsd', hostUnit, userHz);
  // The agent is Rust in every supported release: KiB, and guest USER_HZ ticks.
  if (reader.has('kata_agent_')) result.agent = reader.process('kata_agent', 'kib', userHz);

  const vmmInShim =
    options.hypervisor === 'dragonball' ||
    (runtime === 'rs' && families.has('kata_hypervisor_vcpu') && !families.has('kata_hypervisor_proc_stat'));
  if (vmmInShim) result.vmmInShim = true;

  const firecracker = decodeFirecracker(reader);
  if (firecracker) result.firecrackerWindow = firecracker;

  const overhead = decodeOverhead(reader);
  if (overhead) result.reportedOverhead = overhead;

  result.rejectedSamples = reader.rejected;
  return result;
}

function withLimits(base: ParseOptions, limits: Partial<ParseLimits> | undefined): ParseOptions {
  return limits ? { ...base, limits } : base;
}

/** Reads validated values out of the kept families and counts what it refuses. */
class SampleReader {
  rejected = 0;

  constructor(private readonly families: ReadonlyMap<string, PromFamily>) {}

  names(prefix: string): string[] {
    return [...this.families.keys()].filter((name) => name.startsWith(prefix));
  }

  has(prefix: string): boolean {
    for (const name of this.families.keys()) if (name.startsWith(prefix)) return true;
    return false;
  }

  samples(family: string): readonly PromSample[] {
    return this.families.get(family)?.samples ?? [];
  }

  /** A value we use: undefined (and counted) when hostile. */
  accept(value: number): number | undefined {
    if (!Number.isFinite(value) || value < 0 || value > MAX_PLAUSIBLE_VALUE) {
      this.rejected++;
      return undefined;
    }
    return value;
  }

  /** The unlabelled (or first) sample of a single-value family. */
  single(family: string): number | undefined {
    const sample = this.samples(family)[0];
    return sample === undefined ? undefined : this.accept(sample.value);
  }

  /** Known items of an `{item}` family; the first sample per item wins, unknown items are ignored. */
  items<K extends string>(family: string, wanted: readonly K[]): Partial<Record<K, number>> {
    const out: Partial<Record<K, number>> = {};
    // Bit i: wanted[i] was seen (the lists are a few constant items).
    let seen = 0;
    for (const sample of this.samples(family)) {
      const item = sample.labels.item;
      const index = item === undefined ? -1 : (wanted as readonly string[]).indexOf(item);
      if (index < 0 || seen & (1 << index)) continue;
      seen |= 1 << index;
      const value = this.accept(sample.value);
      if (value !== undefined) out[item as K] = value;
    }
    return out;
  }

  /** `<prefix>_proc_stat`, `_proc_status`, `_io_stat`, `_threads`, `_fds` of one process. */
  process(prefix: ProcessPrefix, memoryUnit: Unit, userHz: number): ProcessStats {
    const names = PROCESS_FAMILIES[prefix];
    const stats: ProcessStats = {};
    const stat = this.items(names.procStat, PROC_STAT_ITEMS);
    if (stat.utime !== undefined && stat.stime !== undefined) stats.cpuSeconds = (stat.utime + stat.stime) / userHz;

    const scale = memoryUnit === 'kib' ? 1024 : 1;
    const status = this.items(names.procStatus, PROC_STATUS_ITEMS);
    if (status.vmrss !== undefined) stats.residentBytes = status.vmrss * scale;
    if (status.vmsize !== undefined) stats.virtualBytes = status.vmsize * scale;

    const io = this.items(names.ioStat, IO_STAT_ITEMS);
    const readBytes = io.readbytes ?? io.read_bytes;
    const writeBytes = io.writebytes ?? io.write_bytes;
    if (readBytes !== undefined) stats.readBytes = readBytes;
    if (writeBytes !== undefined) stats.writeBytes = writeBytes;

    const threads = this.single(names.threads);
    if (threads !== undefined) stats.threads = threads;
    const fds = this.single(names.fds);
    if (fds !== undefined) stats.fds = fds;
    return stats;
  }
}

/** client_golang's process collector describes the same shim process: use it where kata_shim_* is silent. */
function fillFromGoCollector(shim: ProcessStats, reader: SampleReader): void {
  shim.cpuSeconds ??= reader.single('process_cpu_seconds_total');
  shim.residentBytes ??= reader.single('process_resident_memory_bytes');
  shim.virtualBytes ??= reader.single('process_virtual_memory_bytes');
  shim.fds ??= reader.single('process_open_fds');
  shim.threads ??= reader.single('go_threads');
  for (const key of Object.keys(shim) as (keyof ProcessStats)[]) if (shim[key] === undefined) delete shim[key];
}

const CPU_ITEMS = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal', 'guest', 'guest_nice'] as const;
type CpuItem = (typeof CPU_ITEMS)[number];

function decodeGuest(reader: SampleReader, userHz: number): GuestStats {
  const guest: GuestStats = {};
  decodeGuestCpu(reader, guest, userHz);

  const mem = reader.items('kata_guest_meminfo', MEMINFO_ITEMS);
  if (mem.mem_total !== undefined) guest.memTotalBytes = mem.mem_total;
  if (mem.mem_free !== undefined) guest.memFreeBytes = mem.mem_free;
  if (mem.mem_available !== undefined) guest.memAvailableBytes = mem.mem_available;

  const tasks = reader.items('kata_guest_tasks', TASKS_ITEMS);
  if (tasks.cur !== undefined) guest.tasks = tasks.cur;
  if (tasks.max !== undefined) guest.tasksMax = tasks.max;
  const load = reader.items('kata_guest_load', LOAD_ITEMS);
  if (load.load1 !== undefined) guest.load1 = load.load1;
  const vmStat = reader.items('kata_guest_vm_stat', VM_STAT_ITEMS);
  if (vmStat.oom_kill !== undefined) guest.oomKills = vmStat.oom_kill;

  const net = sumByLabel(reader, 'kata_guest_netdev_stat', 'interface', isNotLoopback, NETDEV_ITEMS);
  if (net.recv_bytes !== undefined) guest.networkReceiveBytes = net.recv_bytes;
  if (net.sent_bytes !== undefined) guest.networkTransmitBytes = net.sent_bytes;

  const disk = sumByLabel(reader, 'kata_guest_diskstat', 'disk', isWholeDiskMemo, DISK_ITEMS);
  if (disk.sectors_read !== undefined) guest.diskReadBytes = disk.sectors_read;
  if (disk.sectors_written !== undefined) guest.diskWrittenBytes = disk.sectors_written;
  return guest;
}

function isNotLoopback(name: string): boolean {
  return name !== 'lo';
}

/**
 * The cpu="total" row in seconds, and the unit it was in; no row when a core item is missing, any
 * item was refused, or the unit is unknown.
 */
function decodeGuestCpu(reader: SampleReader, guest: GuestStats, userHz: number): void {
  const samples = reader.samples('kata_guest_cpu_time');
  if (samples.length === 0) return;
  const raw: Partial<Record<CpuItem, number>> = {};
  // Bit i: CPU_ITEMS[i] was seen.
  let seen = 0;
  let refused = false;
  for (const sample of samples) {
    const item = sample.labels.item;
    if (sample.labels.cpu !== 'total' || item === undefined) continue;
    const index = (CPU_ITEMS as readonly string[]).indexOf(item);
    if (index < 0 || seen & (1 << index)) continue;
    seen |= 1 << index;
    const value = reader.accept(sample.value);
    if (value === undefined) refused = true;
    else raw[item as CpuItem] = value;
  }
  const unit = guestCpuUnit(samples);
  guest.cpuUnit = unit;
  if (refused || unit === 'unknown' || raw.user === undefined || raw.system === undefined || raw.idle === undefined) return;
  const perSecond = unit === 'milliseconds' ? 1000 : unit === 'ticks' ? userHz : 1;
  const s = (item: CpuItem): number => (raw[item] ?? 0) / perSecond;
  guest.cpu = {
    user: s('user'),
    nice: s('nice'),
    system: s('system'),
    idle: s('idle'),
    iowait: s('iowait'),
    irq: s('irq'),
    softirq: s('softirq'),
    steal: s('steal'),
    guest: s('guest'),
    guestNice: s('guest_nice'),
  };
}

function isCpuRow(cpu: string | undefined, item: string | undefined): boolean {
  return (cpu === 'total' || (cpu !== undefined && /^\d{1,4}$/.test(cpu))) && (CPU_ITEMS as readonly (string | undefined)[]).includes(item);
}

/** Non-zero values needed to call whole multiples of 10 milliseconds rather than chance. */
const MIN_NONZERO_FOR_MILLISECONDS = 3;

/**
 * The unit of kata_guest_cpu_time, from the rows given (the decoder keeps the total row and the
 * per-CPU PER_CPU_UNIT_ITEMS): a fraction anywhere is seconds (Kata 2.2–2.3); whole numbers of
 * which one is not a multiple of 10 are clock ticks (2.4);
 * whole multiples of 10 are milliseconds (2.5.0 on: ticks × 10), once enough are non-zero that
 * ticks would not all be multiples of 10 by chance (three non-zero ticks: 1 in 1000). A row of no
 * CPU (another cpu label, an unknown item) is no agent's output: it does not vote.
 */
export function guestCpuUnit(samples: readonly PromSample[]): GuestCpuUnit {
  let nonZero = 0;
  let tens = true;
  for (const { value, labels } of samples) {
    if (!isCpuRow(labels.cpu, labels.item)) continue;
    if (!Number.isFinite(value) || value < 0) continue;
    if (!Number.isInteger(value)) return 'seconds';
    if (value === 0) continue;
    nonZero++;
    if (value % 10 !== 0) tens = false;
  }
  if (!tens) return 'ticks';
  return nonZero >= MIN_NONZERO_FOR_MILLISECONDS ? 'milliseconds' : 'unknown';
}

/**
 * Sums chosen items over the devices `include` accepts, each item times its factor. Only the
 * running sums are kept, so memory does not grow with the number of devices a guest invents.
 * A device's value that is refused leaves the sum undefined: a partial sum would under-report.
 */
function sumByLabel<K extends string>(
  reader: SampleReader,
  family: string,
  label: string,
  include: (device: string) => boolean,
  factors: Record<K, number>,
): Partial<Record<K, number>> {
  const sums: Partial<Record<K, number>> = {};
  let poisoned: Set<string> | undefined;
  for (const sample of reader.samples(family)) {
    const item = sample.labels.item;
    const device = sample.labels[label];
    if (item === undefined || device === undefined || !Object.hasOwn(factors, item) || !include(device)) continue;
    const key = item as K;
    const value = reader.accept(sample.value);
    if (value === undefined) {
      (poisoned ??= new Set<string>()).add(key);
      continue;
    }
    sums[key] = (sums[key] ?? 0) + value * factors[key];
  }
  if (poisoned !== undefined) for (const key of poisoned) delete sums[key as K];
  for (const key of Object.keys(sums) as K[]) {
    if ((sums[key] ?? 0) > MAX_PLAUSIBLE_VALUE) {
      reader.rejected++;
      delete sums[key];
    }
  }
  return sums;
}

/** `kata_firecracker_<group>{item}` → `<group>.<item>`: one flush window of deltas. */
function decodeFirecracker(reader: SampleReader): Record<string, number> | undefined {
  const prefix = 'kata_firecracker_';
  const families = reader.names(prefix);
  if (families.length === 0) return undefined;
  const window: Record<string, number> = Object.create(null) as Record<string, number>;
  let count = 0;
  for (const family of families) {
    const group = family.slice(prefix.length);
    for (const sample of reader.samples(family)) {
      const item = sample.labels.item;
      if (item === undefined || count >= MAX_FIRECRACKER_ENTRIES) continue;
      const key = `${group}.${item}`;
      if (key in window) continue;
      const value = reader.accept(sample.value);
      if (value === undefined) continue;
      window[key] = value;
      count++;
    }
  }
  return window;
}

function decodeOverhead(reader: SampleReader): ShimMetrics['reportedOverhead'] {
  const cpu = reader.single('kata_shim_pod_overhead_cpu');
  const memoryBytes = reader.single('kata_shim_pod_overhead_memory_in_bytes');
  if (cpu === undefined && memoryBytes === undefined) return undefined;
  return { ...(cpu !== undefined ? { cpu } : {}), ...(memoryBytes !== undefined ? { memoryBytes } : {}) };
}
