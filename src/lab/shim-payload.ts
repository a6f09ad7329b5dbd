/**
 * Renders a raw Kata shim `/metrics` payload from plain values, in the shape and units each real
 * shim writes (see src/translate/kata-decode.ts for the sources). Pure: the simulated node calls
 * it on every scrape with values that move over time.
 *
 * Flavours:
 * - `go`: client_golang default registry first (families sorted by name: go_*, kata_firecracker_*,
 *   kata_hypervisor_*, kata_shim_*, kata_virtiofsd_*, process_*), then the agent's families
 *   re-encoded by Go's expfmt. Numbers use Go's shortest %g (1.048576e+06).
 * - `rs`: agent text, then hypervisor text (Dragonball only), then shim text, each as the Rust
 *   prometheus crate encodes it (plain decimal numbers, no go_*, no histograms).
 */
import type { Hypervisor, KataRuntime } from '../translate/records.ts';
import { escapeLabelValue, formatGoFloat } from '../prom-text/format.ts';

export const GUEST_CPU_ITEMS = ['guest', 'guest_nice', 'idle', 'iowait', 'irq', 'nice', 'softirq', 'steal', 'system', 'user'] as const;
export type GuestCpuItem = (typeof GUEST_CPU_ITEMS)[number];

/** One process as /proc shows it: ticks, bytes, counts. The renderer converts to each flavour's units. */
export interface ProcValues {
  utimeTicks: number;
  stimeTicks: number;
  rssBytes: number;
  vsizeBytes: number;
  threads: number;
  fds?: number;
  readBytes: number;
  writeBytes: number;
  voluntaryCtxtSwitches?: number;
}

export interface NetdevValues {
  recvBytes: number;
  sentBytes: number;
  recvPackets?: number;
  sentPackets?: number;
}

export interface DiskValues {
  reads: number;
  sectorsRead: number;
  writes: number;
  sectorsWritten: number;
}

export interface ShimPayloadValues {
  runtime: KataRuntime;
  hypervisor: Hypervisor;
  /** Guest CPU time per vCPU, in milliseconds (multiples of 10 on a USER_HZ=100 guest); total = sum. */
  guestCpuMs: Record<GuestCpuItem, number>[];
  /** /proc/meminfo items in bytes (mem_total, mem_free, mem_available, …); others get plausible fill. */
  meminfo: Record<string, number>;
  load: { load1: number; load5: number; load15: number };
  tasks: { cur: number; max: number };
  /** /proc/vmstat items; a realistic set is filled in when absent. */
  vmstat?: Record<string, number>;
  netdev: Record<string, NetdevValues>;
  disks: Record<string, DiskValues>;
  /** From 3.32: statvfs per guest mount, items in bytes (shape inferred, see fixture README). */
  filesystems?: { mount: string; device: string; total: number; free: number; avail: number }[];
  shim: ProcValues;
  hypervisorProc?: ProcValues;
  virtiofsd?: ProcValues;
  agent: ProcValues;
  /** Netdev seen from the VMM's network namespace (Go: kata_hypervisor_netdev). */
  hypervisorNetdev?: Record<string, NetdevValues>;
  overhead?: { cpu: number; memoryBytes: number };
  /** `kata_firecracker_<group>{item}` window deltas. */
  firecracker?: Record<string, Record<string, number>>;
  /** Dragonball's own counters (kata_hypervisor_vcpu / seccomp / signals). */
  dragonball?: { vcpu: Record<string, number>; seccomp: number; sigbus: number; sigsegv: number; scrapeCount: number };
  /** Shim-side RPC call counts and total milliseconds, rendered as Go histograms. */
  shimRpc?: Record<string, { count: number; sumMs: number }>;
  agentRpc?: Record<string, { count: number; sumMs: number }>;
  agentScrapeCount?: number;
  goVersion?: string;
}

type Flavour = 'go' | 'rs';

/** The Rust prometheus crate writes f64 with Display: plain decimal. */
export function formatRs(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? '+Inf' : '-Inf';
  return Number.isInteger(value) ? BigInt(value).toString() : String(value);
}

class Writer {
  readonly parts: string[] = [];
  constructor(private readonly flavour: Flavour) {}

  family(name: string, help: string, type: string): this {
    this.parts.push(`# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`);
    return this;
  }

  sample(name: string, labels: Record<string, string>, value: number): this {
    const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
    const text = this.flavour === 'go' ? formatGoFloat(value) : formatRs(value);
    this.parts.push(`${name}${pairs.length ? `{${pairs.join(',')}}` : ''} ${text}\n`);
    return this;
  }

  gauge(name: string, help: string, value: number, type = 'gauge'): this {
    return this.family(name, help, type).sample(name, {}, value);
  }

  /** An `{item}` gauge vector; items sorted as both encoders sort label values. */
  items(name: string, help: string, values: Record<string, number>): this {
    this.family(name, help, 'gauge');
    for (const item of Object.keys(values).sort()) this.sample(name, { item }, values[item] ?? 0);
    return this;
  }

  /** A `{<device label>, item}` gauge vector. */
  deviceItems(name: string, help: string, label: string, rows: Record<string, Record<string, number>>): this {
    this.family(name, help, 'gauge');
    for (const device of Object.keys(rows).sort()) {
      const row = rows[device] ?? {};
      for (const item of Object.keys(row).sort()) this.sample(name, { [label]: device, item }, row[item] ?? 0);
    }
    return this;
  }

  text(): string {
    return this.parts.join('');
  }
}

// ─── per-process families ──────────────────────────────────────────────────────

const KIB = 1024;

function procStatus(p: ProcValues, unit: 'bytes' | 'kib', withVmpmd: boolean): Record<string, number> {
  const m = (bytes: number): number => (unit === 'kib' ? Math.round(bytes / KIB) : Math.round(bytes / KIB) * KIB);
  const status: Record<string, number> = {
    hugetlbpages: 0,
    nonvoluntary_ctxt_switches: Math.round((p.voluntaryCtxtSwitches ?? 4000) / 9),
    rssanon: m(p.rssBytes * 0.62),
    rssfile: m(p.rssBytes * 0.38),
    rssshmem: 0,
    vmdata: m(p.vsizeBytes * 0.21),
    vmexe: m(25_165_824),
    vmhwm: m(p.rssBytes * 1.08),
    vmlck: 0,
    vmlib: m(2_285_568),
    vmpeak: m(p.vsizeBytes * 1.02),
    vmpin: 0,
    vmpte: m(393_216),
    vmrss: m(p.rssBytes),
    vmsize: m(p.vsizeBytes),
    vmstk: m(135_168),
    vmswap: 0,
    voluntary_ctxt_switches: p.voluntaryCtxtSwitches ?? 4000,
  };
  if (withVmpmd) status.vmpmd = m(12_288);
  return status;
}

function ioStat(p: ProcValues, flavour: Flavour): Record<string, number> {
  const common = { rchar: p.readBytes * 3 + 81_920, wchar: p.writeBytes * 2 + 40_960, syscr: 48_213, syscw: 21_977 };
  return flavour === 'go'
    ? { ...common, readbytes: p.readBytes, writebytes: p.writeBytes, cancelledwritebytes: 0 }
    : { ...common, read_bytes: p.readBytes, write_bytes: p.writeBytes, cancelled_write_bytes: 0 };
}

function procStat(p: ProcValues): Record<string, number> {
  return { cstime: 0, cutime: 0, stime: p.stimeTicks, utime: p.utimeTicks };
}

/** threads / fds / io_stat / proc_stat / proc_status of one host process, sorted by family name. */
function processFamilies(
  w: Writer,
  prefix: string,
  label: string,
  p: ProcValues,
  unit: 'bytes' | 'kib',
  flavour: Flavour,
  netdev?: Record<string, NetdevValues>,
): void {
  if (p.fds !== undefined) w.gauge(`${prefix}_fds`, `${label} open FDs.`, p.fds);
  w.items(`${prefix}_io_stat`, `${label} process IO statistics.`, ioStat(p, flavour));
  if (netdev) w.deviceItems(`${prefix}_netdev`, 'Net devices statistics.', 'interface', netdevRows(netdev));
  w.items(`${prefix}_proc_stat`, `${label} process statistics.`, procStat(p));
  w.items(`${prefix}_proc_status`, `${label} process status.`, procStatus(p, unit, flavour === 'go'));
  w.gauge(`${prefix}_threads`, `${label} process threads.`, p.threads);
}

function netdevRows(netdev: Record<string, NetdevValues>): Record<string, Record<string, number>> {
  const rows: Record<string, Record<string, number>> = {};
  for (const [name, v] of Object.entries(netdev)) {
    const recvPackets = v.recvPackets ?? Math.round(v.recvBytes / 900);
    const sentPackets = v.sentPackets ?? Math.round(v.sentBytes / 700);
    rows[name] = {
      recv_bytes: v.recvBytes,
      recv_compressed: 0,
      recv_drop: 0,
      recv_errs: 0,
      recv_fifo: 0,
      recv_frame: 0,
      recv_multicast: 0,
      recv_packets: recvPackets,
      sent_bytes: v.sentBytes,
      sent_carrier: 0,
      sent_colls: 0,
      sent_compressed: 0,
      sent_drop: 0,
      sent_errs: 0,
      sent_fifo: 0,
      sent_packets: sentPackets,
    };
  }
  return rows;
}

// ─── guest (agent) families ────────────────────────────────────────────────────

const MEMINFO_FILL: readonly string[] = [
  'active',
  'active_anon',
  'active_file',
  'anon_hugepages',
  'anon_pages',
  'bounce',
  'buffers',
  'cached',
  'cma_free',
  'cma_total',
  'commit_limit',
  'committed_as',
  'direct_map_1G',
  'direct_map_2M',
  'direct_map_4M',
  'direct_map_4k',
  'dirty',
  'hardware_corrupted',
  'high_free',
  'high_total',
  'hugepages_free',
  'hugepages_rsvd',
  'hugepages_surp',
  'hugepages_total',
  'hugepagesize',
  'hugetlb',
  'inactive',
  'inactive_anon',
  'inactive_file',
  'k_reclaimable',
  'kernel_stack',
  'low_free',
  'low_total',
  'mapped',
  'mem_available',
  'mem_free',
  'mem_total',
  'mlocked',
  'mmap_copy',
  'nfs_unstable',
  'page_tables',
  'per_cpu',
  'quicklists',
  's_reclaimable',
  's_unreclaim',
  'shmem',
  'shmem_hugepages',
  'shmem_pmd_mapped',
  'slab',
  'swap_cached',
  'swap_free',
  'swap_total',
  'unevictable',
  'vmalloc_chunk',
  'vmalloc_total',
  'vmalloc_used',
  'writeback',
  'writeback_tmp',
];

function meminfoItems(given: Record<string, number>): Record<string, number> {
  const total = given.mem_total ?? 2_147_483_648;
  const used = total - (given.mem_free ?? total / 2);
  const page = (fraction: number): number => Math.round((used * fraction) / 4096) * 4096;
  const fill: Record<string, number> = {
    active: page(0.41),
    active_anon: page(0.22),
    active_file: page(0.19),
    anon_pages: page(0.35),
    buffers: page(0.02),
    cached: page(0.38),
    commit_limit: Math.round(total / 2),
    committed_as: page(0.9),
    direct_map_2M: total,
    direct_map_4k: 94_371_840,
    hugepagesize: 2_097_152,
    inactive: page(0.31),
    inactive_anon: page(0.13),
    inactive_file: page(0.18),
    k_reclaimable: page(0.05),
    kernel_stack: 3_538_944,
    mapped: page(0.09),
    page_tables: 5_996_544,
    per_cpu: 1_310_720,
    s_reclaimable: page(0.04),
    s_unreclaim: page(0.03),
    shmem: page(0.06),
    slab: page(0.07),
    vmalloc_total: 35_184_372_087_808,
    vmalloc_used: 13_729_792,
  };
  const out: Record<string, number> = {};
  for (const item of MEMINFO_FILL) out[item] = given[item] ?? fill[item] ?? 0;
  return out;
}

const VMSTAT_ITEMS: readonly string[] = [
  'allocstall_dma',
  'allocstall_dma32',
  'allocstall_movable',
  'allocstall_normal',
  'balloon_deflate',
  'balloon_inflate',
  'balloon_migrate',
  'compact_daemon_free_scanned',
  'compact_daemon_migrate_scanned',
  'compact_daemon_wake',
  'compact_fail',
  'compact_free_scanned',
  'compact_isolated',
  'compact_migrate_scanned',
  'compact_stall',
  'compact_success',
  'drop_pagecache',
  'drop_slab',
  'htlb_buddy_alloc_fail',
  'htlb_buddy_alloc_success',
  'kswapd_high_wmark_hit_quickly',
  'kswapd_inodesteal',
  'kswapd_low_wmark_hit_quickly',
  'nr_active_anon',
  'nr_active_file',
  'nr_anon_pages',
  'nr_anon_transparent_hugepages',
  'nr_bounce',
  'nr_dirtied',
  'nr_dirty',
  'nr_dirty_background_threshold',
  'nr_dirty_threshold',
  'nr_file_hugepages',
  'nr_file_pages',
  'nr_file_pmdmapped',
  'nr_foll_pin_acquired',
  'nr_foll_pin_released',
  'nr_free_cma',
  'nr_free_pages',
  'nr_inactive_anon',
  'nr_inactive_file',
  'nr_isolated_anon',
  'nr_isolated_file',
  'nr_kernel_misc_reclaimable',
  'nr_kernel_stack',
  'nr_mapped',
  'nr_mlock',
  'nr_page_table_pages',
  'nr_shadow_call_stack',
  'nr_shmem',
  'nr_shmem_hugepages',
  'nr_shmem_pmdmapped',
  'nr_slab_reclaimable',
  'nr_slab_unreclaimable',
  'nr_swapcached',
  'nr_throttled_written',
  'nr_unevictable',
  'nr_unstable',
  'nr_vmscan_immediate_reclaim',
  'nr_vmscan_write',
  'nr_writeback',
  'nr_writeback_temp',
  'nr_written',
  'nr_zone_active_anon',
  'nr_zone_active_file',
  'nr_zone_inactive_anon',
  'nr_zone_inactive_file',
  'nr_zone_unevictable',
  'nr_zone_write_pending',
  'nr_zspages',
  'numa_foreign',
  'numa_hit',
  'numa_interleave',
  'numa_local',
  'numa_miss',
  'numa_other',
  'oom_kill',
  'pageoutrun',
  'pgactivate',
  'pgalloc_dma',
  'pgalloc_dma32',
  'pgalloc_movable',
  'pgalloc_normal',
  'pgdeactivate',
  'pgdemote_direct',
  'pgdemote_kswapd',
  'pgfault',
  'pgfree',
  'pginodesteal',
  'pglazyfree',
  'pglazyfreed',
  'pgmajfault',
  'pgmigrate_fail',
  'pgmigrate_success',
  'pgpgin',
  'pgpgout',
  'pgrefill',
  'pgreuse',
  'pgrotated',
  'pgscan_anon',
  'pgscan_direct',
  'pgscan_direct_throttle',
  'pgscan_file',
  'pgscan_kswapd',
  'pgskip_dma',
  'pgskip_dma32',
  'pgskip_movable',
  'pgskip_normal',
  'pgsteal_anon',
  'pgsteal_direct',
  'pgsteal_file',
  'pgsteal_kswapd',
  'pswpin',
  'pswpout',
  'slabs_scanned',
  'swap_ra',
  'swap_ra_hit',
  'thp_collapse_alloc',
  'thp_collapse_alloc_failed',
  'thp_deferred_split_page',
  'thp_fault_alloc',
  'thp_fault_fallback',
  'thp_file_alloc',
  'thp_file_mapped',
  'thp_split_page',
  'thp_split_pmd',
  'thp_swpout',
  'thp_zero_page_alloc',
  'unevictable_pgs_cleared',
  'unevictable_pgs_culled',
  'unevictable_pgs_mlocked',
  'unevictable_pgs_munlocked',
  'unevictable_pgs_rescued',
  'unevictable_pgs_scanned',
  'unevictable_pgs_stranded',
  'workingset_activate_anon',
  'workingset_activate_file',
  'workingset_nodereclaim',
  'workingset_nodes',
  'workingset_refault_anon',
  'workingset_refault_file',
  'workingset_restore_anon',
  'workingset_restore_file',
  'zone_reclaim_failed',
];

function vmstatItems(values: ShimPayloadValues): Record<string, number> {
  const out: Record<string, number> = {};
  // Deterministic, plausible magnitudes: a hash of the name scaled by the guest's CPU time.
  const busy = values.guestCpuMs.reduce((sum, cpu) => sum + cpu.user + cpu.system, 0);
  for (const item of VMSTAT_ITEMS) {
    let h = 7;
    for (const ch of item) h = (h * 31 + ch.charCodeAt(0)) % 100_003;
    out[item] =
      values.vmstat?.[item] ??
      (item.startsWith('nr_') || item.startsWith('pg') ? Math.round((h * busy) / 5_000_000) : h % 97 === 0 ? h : 0);
  }
  return out;
}

const DISK_ITEMS = (d: DiskValues): Record<string, number> => ({
  discards: 0,
  discards_merged: 0,
  flushes: Math.round(d.writes / 40),
  in_progress: 0,
  merged: Math.round(d.reads / 12),
  reads: d.reads,
  sectors_discarded: 0,
  sectors_read: d.sectorsRead,
  sectors_written: d.sectorsWritten,
  time_discarding: 0,
  time_flushing: Math.round(d.writes / 9),
  time_in_progress: Math.round((d.reads + d.writes) / 3),
  time_reading: Math.round(d.reads / 2),
  time_writing: Math.round(d.writes * 1.5),
  weighted_time_in_progress: Math.round((d.reads + d.writes) * 1.7),
  writes: d.writes,
  writes_merged: Math.round(d.writes / 5),
});

/** The agent's text, as src/agent/src/metrics.rs registers it (families sorted by name). */
function agentText(values: ShimPayloadValues, flavour: Flavour): string {
  const w = new Writer(flavour);
  const a = values.agent;
  w.items('kata_agent_io_stat', 'Agent process IO statistics.', ioStat(a, 'rs'));
  w.items('kata_agent_proc_stat', 'Agent process statistics.', procStat(a));
  w.items('kata_agent_proc_status', 'Agent process status.', procStatus(a, 'kib', false));
  w.gauge('kata_agent_scrape_count', 'Metrics scrape count', values.agentScrapeCount ?? 1, 'counter');
  w.gauge('kata_agent_threads', 'Agent process threads', a.threads);
  w.gauge('kata_agent_total_rss', 'Agent process total RSS size', a.rssBytes);
  w.gauge('kata_agent_total_time', 'Agent process total time', (a.utimeTicks + a.stimeTicks) / 100);
  w.gauge('kata_agent_total_vm', 'Agent process total VM size', a.vsizeBytes);

  w.family('kata_guest_cpu_time', 'Guest CPU statistics.', 'gauge');
  const total = {} as Record<GuestCpuItem, number>;
  for (const item of GUEST_CPU_ITEMS) total[item] = values.guestCpuMs.reduce((sum, cpu) => sum + cpu[item], 0);
  // Label values sort as strings: "0" … "7" before "total".
  values.guestCpuMs.forEach((cpu, index) => {
    for (const item of GUEST_CPU_ITEMS) w.sample('kata_guest_cpu_time', { cpu: String(index), item }, cpu[item]);
  });
  for (const item of GUEST_CPU_ITEMS) w.sample('kata_guest_cpu_time', { cpu: 'total', item }, total[item]);

  const disks: Record<string, Record<string, number>> = {};
  for (const [name, d] of Object.entries(values.disks)) disks[name] = DISK_ITEMS(d);
  w.deviceItems('kata_guest_diskstat', 'Disks statistics in system.', 'disk', disks);

  if (values.filesystems) {
    w.family('kata_guest_filesystem_bytes', 'Guest filesystem usage.', 'gauge');
    for (const fs of [...values.filesystems].sort((x, y) => x.device.localeCompare(y.device))) {
      for (const item of ['avail', 'free', 'total'] as const) {
        w.sample('kata_guest_filesystem_bytes', { device: fs.device, item, mount: fs.mount }, fs[item]);
      }
    }
  }

  w.items('kata_guest_load', 'Guest system load.', { ...values.load });
  w.items('kata_guest_meminfo', 'Statistics about memory usage in the system.', meminfoItems(values.meminfo));
  w.deviceItems('kata_guest_netdev_stat', 'Guest net devices statistics.', 'interface', netdevRows(values.netdev));
  w.items('kata_guest_tasks', 'Guest system load.', { ...values.tasks });
  w.items('kata_guest_vm_stat', 'Guest virtual memory statistics.', vmstatItems(values));
  return w.text();
}

// ─── Go-only families ──────────────────────────────────────────────────────────

const SHIM_ACTIONS = [
  'checkpoint',
  'close_io',
  'connect',
  'create',
  'delete',
  'exec',
  'kill',
  'pause',
  'pids',
  'resize_pty',
  'resume',
  'shutdown',
  'start',
  'state',
  'stats',
  'update',
  'wait',
];
const AGENT_ACTIONS = [
  'grpc.CheckRequest',
  'grpc.CloseStdinRequest',
  'grpc.CopyFileRequest',
  'grpc.CreateContainerRequest',
  'grpc.CreateSandboxRequest',
  'grpc.DestroySandboxRequest',
  'grpc.ExecProcessRequest',
  'grpc.GetMetricsRequest',
  'grpc.GetOOMEventRequest',
  'grpc.GuestDetailsRequest',
  'grpc.ListInterfacesRequest',
  'grpc.ListRoutesRequest',
  'grpc.MemHotplugByProbeRequest',
  'grpc.OnlineCPUMemRequest',
  'grpc.PauseContainerRequest',
  'grpc.ReadStreamRequest',
  'grpc.RemoveContainerRequest',
  'grpc.ReseedRandomDevRequest',
  'grpc.ResumeContainerRequest',
  'grpc.SetGuestDateTimeRequest',
  'grpc.SignalProcessRequest',
  'grpc.StartContainerRequest',
  'grpc.StatsContainerRequest',
  'grpc.TtyWinResizeRequest',
  'grpc.UpdateContainerRequest',
  'grpc.UpdateInterfaceRequest',
  'grpc.UpdateRoutesRequest',
  'grpc.WaitProcessRequest',
  'grpc.WriteStreamRequest',
];
/** prometheus.ExponentialBuckets(1, 2, 10) in shim_metrics.go / sandbox_metrics.go. */
const RPC_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

function histogram(w: Writer, name: string, actions: string[], calls: Record<string, { count: number; sumMs: number }> | undefined): void {
  w.family(name, 'RPC latency distributions.', 'histogram');
  for (const action of actions) {
    const { count, sumMs } = calls?.[action] ?? { count: 0, sumMs: 0 };
    const mean = count > 0 ? sumMs / count : 0;
    for (const le of RPC_BUCKETS) {
      // A plausible cumulative shape around the mean.
      const share = count === 0 ? 0 : Math.min(1, Math.max(0, (le / Math.max(mean, 0.5)) * 0.5));
      w.sample(`${name}_bucket`, { action, le: String(le) }, Math.round(count * share));
    }
    w.sample(`${name}_bucket`, { action, le: '+Inf' }, count);
    w.sample(`${name}_sum`, { action }, sumMs);
    w.sample(`${name}_count`, { action }, count);
  }
}

function goRuntimeFamilies(w: Writer, values: ShimPayloadValues): void {
  const rss = values.shim.rssBytes;
  w.family('go_gc_duration_seconds', 'A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.', 'summary');
  [
    ['0', 2.1e-5],
    ['0.25', 3.4e-5],
    ['0.5', 4.6e-5],
    ['0.75', 7.1e-5],
    ['1', 0.000412],
  ].forEach(([q, v]) => w.sample('go_gc_duration_seconds', { quantile: String(q) }, Number(v)));
  w.sample('go_gc_duration_seconds_sum', {}, 0.0061);
  w.sample('go_gc_duration_seconds_count', {}, 97);
  w.gauge('go_gc_gogc_percent', 'Heap size target percentage configured by the user, otherwise 100.', 100);
  w.gauge('go_gc_gomemlimit_bytes', 'Go runtime memory limit configured by the user, otherwise math.MaxInt64.', 9.223372036854776e18);
  w.gauge('go_goroutines', 'Number of goroutines that currently exist.', 41);
  w.family('go_info', 'Information about the Go environment.', 'gauge').sample('go_info', { version: values.goVersion ?? 'go1.23.6' }, 1);
  const mem: [string, string, number, string?][] = [
    ['alloc_bytes', 'Number of heap bytes allocated and currently in use, runtime/metrics: /gc/heap/allocs:bytes.', rss * 0.18],
    ['alloc_bytes_total', 'Total number of bytes allocated in heap until now, even if released already.', rss * 41.3, 'counter'],
    ['buck_hash_sys_bytes', 'Number of bytes used by the profiling bucket hash table.', 1_489_562],
    ['frees_total', 'Total number of heap objects frees.', 3_918_441, 'counter'],
    ['gc_sys_bytes', 'Number of bytes used for garbage collection system metadata.', 3_620_192],
    ['heap_alloc_bytes', 'Number of heap bytes allocated and currently in use.', rss * 0.18],
    ['heap_idle_bytes', 'Number of heap bytes waiting to be used.', rss * 0.09],
    ['heap_inuse_bytes', 'Number of heap bytes that are in use.', rss * 0.21],
    ['heap_objects', 'Number of currently allocated objects.', 31_877],
    ['heap_released_bytes', 'Number of heap bytes released to OS.', 2_359_296],
    ['heap_sys_bytes', 'Number of heap bytes obtained from system.', rss * 0.3],
    ['last_gc_time_seconds', 'Number of seconds since 1970 of last garbage collection.', 1.7201164335741382e9],
    ['mallocs_total', 'Total number of heap objects allocated, both live and gc-ed.', 3_950_318, 'counter'],
    ['mcache_inuse_bytes', 'Number of bytes in use by mcache structures.', 19_200],
    ['mcache_sys_bytes', 'Number of bytes used for mcache structures obtained from system.', 31_200],
    ['mspan_inuse_bytes', 'Number of bytes in use by mspan structures.', 296_640],
    ['mspan_sys_bytes', 'Number of bytes used for mspan structures obtained from system.', 358_560],
    ['next_gc_bytes', 'Number of heap bytes when next garbage collection will take place.', 8_617_416],
    ['other_sys_bytes', 'Number of bytes used for other system allocations.', 1_974_174],
    ['stack_inuse_bytes', 'Number of bytes obtained from system for stack allocator in non-CGO environments.', 1_179_648],
    ['stack_sys_bytes', 'Number of bytes obtained from system for stack allocator.', 1_179_648],
    ['sys_bytes', 'Number of bytes obtained from system.', rss * 0.55],
  ];
  for (const [suffix, help, value, type] of mem) w.gauge(`go_memstats_${suffix}`, help, Math.round(value), type ?? 'gauge');
  w.gauge('go_sched_gomaxprocs_threads', 'The current runtime.GOMAXPROCS setting.', 8);
  w.gauge('go_threads', 'Number of OS threads created.', values.shim.threads);
}

function goProcessFamilies(w: Writer, p: ProcValues): void {
  w.gauge('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', (p.utimeTicks + p.stimeTicks) / 100, 'counter');
  w.gauge('process_max_fds', 'Maximum number of open file descriptors.', 1_048_576);
  w.gauge('process_network_receive_bytes_total', 'Number of bytes received by the process over the network.', 0, 'counter');
  w.gauge('process_network_transmit_bytes_total', 'Number of bytes sent by the process over the network.', 0, 'counter');
  w.gauge('process_open_fds', 'Number of open file descriptors.', p.fds ?? 0);
  w.gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', p.rssBytes);
  w.gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', 1.72011563452e9);
  w.gauge('process_virtual_memory_bytes', 'Virtual memory size in bytes.', p.vsizeBytes);
  w.gauge('process_virtual_memory_max_bytes', 'Maximum amount of virtual memory available in bytes.', 1.8446744073709552e19);
}

function goShimText(values: ShimPayloadValues): string {
  const w = new Writer('go');
  goRuntimeFamilies(w, values);
  if (values.firecracker) {
    for (const group of Object.keys(values.firecracker).sort()) {
      w.items(`kata_firecracker_${group}`, `Firecracker ${group} metrics.`, values.firecracker[group] ?? {});
    }
  }
  if (values.hypervisorProc) {
    processFamilies(w, 'kata_hypervisor', 'Hypervisor', values.hypervisorProc, 'bytes', 'go', values.hypervisorNetdev ?? {});
  }
  histogram(w, 'kata_shim_agent_rpc_durations_histogram_milliseconds', AGENT_ACTIONS, values.agentRpc);
  processFamiliesShimGo(w, values);
  if (values.virtiofsd) processFamilies(w, 'kata_virtiofsd', 'Virtiofsd', values.virtiofsd, 'bytes', 'go');
  goProcessFamilies(w, values.shim);
  return w.text();
}

/** kata_shim_* in name order: fds, io_stat, pod_overhead_*, proc_stat, proc_status, rpc histogram, threads. */
function processFamiliesShimGo(w: Writer, values: ShimPayloadValues): void {
  const p = values.shim;
  w.gauge('kata_shim_fds', 'Kata containerd shim v2 open FDs.', p.fds ?? 0);
  w.items('kata_shim_io_stat', 'Kata containerd shim v2 process IO statistics.', ioStat(p, 'go'));
  const overhead = values.overhead ?? { cpu: 0, memoryBytes: 0 };
  w.gauge('kata_shim_pod_overhead_cpu', 'Kata Pod overhead for CPU resources(percent).', overhead.cpu);
  w.gauge('kata_shim_pod_overhead_memory_in_bytes', 'Kata Pod overhead for memory resources(bytes).', overhead.memoryBytes);
  w.items('kata_shim_proc_stat', 'Kata containerd shim v2 process statistics.', procStat(p));
  w.items('kata_shim_proc_status', 'Kata containerd shim v2 process status.', procStatus(p, 'bytes', true));
  histogram(w, 'kata_shim_rpc_durations_histogram_milliseconds', SHIM_ACTIONS, values.shimRpc);
  w.gauge('kata_shim_threads', 'Kata containerd shim v2 process threads.', p.threads);
}

// ─── runtime-rs-only families ──────────────────────────────────────────────────

function dragonballText(values: ShimPayloadValues): string {
  const d = values.dragonball ?? { vcpu: {}, seccomp: 0, sigbus: 0, sigsegv: 0, scrapeCount: 1 };
  const w = new Writer('rs');
  w.gauge('kata_hypervisor_scrape_count', 'Hypervisor metrics scrape count.', d.scrapeCount, 'counter');
  w.items('kata_hypervisor_seccomp', 'Hypervisor metrics for the seccomp filtering.', { num_faults: d.seccomp });
  w.items('kata_hypervisor_signals', 'Hypervisor metrics related to signals.', { sigbus: d.sigbus, sigsegv: d.sigsegv });
  const vcpu = { exit_io_in: 0, exit_io_out: 0, exit_mmio_read: 0, exit_mmio_write: 0, failures: 0, filter_cpuid: 0, ...d.vcpu };
  w.items('kata_hypervisor_vcpu', "Hypervisor metrics specific to VCPUs' mode of functioning.", vcpu);
  return w.text();
}

function rsShimText(values: ShimPayloadValues): string {
  const w = new Writer('rs');
  processFamilies(w, 'kata_shim', 'Kata containerd shim v2', values.shim, 'kib', 'rs');
  return w.text();
}

/** The whole raw payload of one `GET /metrics` on shim-monitor.sock. */
export function renderShimPayload(values: ShimPayloadValues): string {
  if (values.runtime === 'go') return goShimText(values) + agentText(values, 'go');
  // runtime-rs: agent, then hypervisor (Dragonball only; Cloud Hypervisor errors into ""), then shim.
  const hypervisor = values.hypervisor === 'dragonball' ? dragonballText(values) : '';
  return agentText(values, 'rs') + hypervisor + rsShimText(values);
}
