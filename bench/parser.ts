/**
 * Prometheus text parser benchmark (not part of npm test): `npx tsx bench/parser.ts`.
 *
 * Builds a ~144 KB Go-shim payload (the size reported per sandbox) and reports, side by side in
 * one run, medians of: full parse, keepPrefixes parse (kata_guest_ and kata_hypervisor_ only),
 * the npm peer parse-prometheus-text-format, and a bare newline scan of the same buffer.
 * Targets: full ≥ 10× faster than the peer and ≤ 6× the scan; keepPrefixes ≤ 2.5× the scan.
 */
import { createRequire } from 'node:module';
import { parsePromText } from '../src/translate/prom-text.ts';

const require = createRequire(import.meta.url);
const parsePeer = require('parse-prometheus-text-format') as (text: string) => unknown;

const RUNS = 9;
const MIN_RUN_MS = 200;

export function buildShimPayload(): string {
  const out: string[] = [];
  const family = (name: string, type: string, help: string): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  };
  const samples = (name: string, items: readonly string[], extra = '', scale = 1): void => {
    items.forEach((item, i) => out.push(`${name}{${extra}item="${item}"} ${(i + 1) * 7919 * scale}`));
  };
  const itemized = (name: string, items: readonly string[], extra = '', scale = 1): void => {
    family(name, 'gauge', `Kata ${name.replace(/_/g, ' ')}.`);
    samples(name, items, extra, scale);
  };
  const numbered = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

  goRuntime(out, family);
  for (const proc of ['kata_shim', 'kata_hypervisor', 'kata_virtiofsd', 'kata_agent', 'kata_agent_guest_process']) {
    family(`${proc}_threads`, 'gauge', 'Threads.');
    out.push(`${proc}_threads 23`);
    itemized(`${proc}_proc_status`, numbered('status_item_', 80));
    itemized(`${proc}_proc_stat`, numbered('stat_item_', 70));
    itemized(`${proc}_io_stat`, ['rchar', 'wchar', 'syscr', 'syscw', 'readbytes', 'writebytes', 'cancelled_write_bytes']);
    family(`${proc}_fds`, 'gauge', 'Open fds.');
    out.push(`${proc}_fds 112`);
  }
  family('kata_hypervisor_netdev', 'gauge', 'Hypervisor network devices.');
  for (const iface of ['eth0', 'tap0_kata', 'lo']) samples('kata_hypervisor_netdev', NETDEV_ITEMS, `interface="${iface}",`);
  rpcHistogram(out, family);
  family('kata_shim_pod_overhead_memory_in_bytes', 'gauge', 'Pod overhead memory (can wrap).');
  out.push('kata_shim_pod_overhead_memory_in_bytes 1.8446743709127774e+19');
  family('kata_shim_pod_overhead_cpu', 'gauge', 'Pod overhead CPU.');
  out.push('kata_shim_pod_overhead_cpu 0.35');

  family('kata_guest_cpu_time', 'gauge', 'Guest CPU time in milliseconds.');
  for (const cpu of ['total', ...numbered('', 4)]) {
    CPU_ITEMS.forEach((item, i) => out.push(`kata_guest_cpu_time{cpu="${cpu}",item="${item}"} ${1_000_000 + i * 131}`));
  }
  itemized('kata_guest_meminfo', numbered('mem_item_', 60), '', 4096);
  itemized('kata_guest_load', ['load1', 'load5', 'load15'], '', 0.01);
  itemized('kata_guest_tasks', ['cur', 'max']);
  itemized('kata_guest_vm_stat', numbered('vm_stat_item_', 160));
  family('kata_guest_netdev_stat', 'gauge', 'Guest network devices.');
  for (const iface of ['eth0', 'lo']) samples('kata_guest_netdev_stat', NETDEV_ITEMS, `interface="${iface}",`, 13);
  family('kata_guest_diskstat', 'gauge', 'Guest disk statistics.');
  for (const disk of ['vda', 'vdb', 'pmem0', 'pmem1', 'loop0', 'loop1', 'loop2', 'loop3']) {
    samples('kata_guest_diskstat', DISK_ITEMS, `disk="${disk}",`, 512);
  }
  family('kata_guest_filesystem_bytes', 'gauge', 'Guest filesystem usage in bytes.');
  for (let i = 0; i < 56; i++) {
    const id = (i * 2654435761).toString(16).padStart(8, '0').repeat(8);
    const labels = `mount="/run/kata-containers/shared/containers/${id}/rootfs",device="virtiofs-${i}",`;
    samples('kata_guest_filesystem_bytes', ['total', 'free', 'available', 'used'], labels, 4096);
  }
  return `${out.join('\n')}\n`;
}

const RPC_ACTIONS = [
  'create', 'start', 'delete', 'exec', 'state', 'pause', 'resume', 'kill', 'pids', 'close_io', 'checkpoint',
  'connect', 'shutdown', 'stats', 'resize_pty', 'update', 'wait', 'create_task', 'start_task', 'delete_task',
];
const CPU_ITEMS = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal', 'guest', 'guest_nice'];
const NETDEV_ITEMS = [
  'recv_bytes', 'recv_packets', 'recv_errs', 'recv_drop', 'recv_fifo', 'recv_frame', 'recv_compressed',
  'recv_multicast', 'sent_bytes', 'sent_packets', 'sent_errs', 'sent_drop', 'sent_fifo', 'sent_colls',
  'sent_carrier', 'sent_compressed',
];
const DISK_ITEMS = [
  'reads', 'reads_merged', 'sectors_read', 'time_reading', 'writes', 'writes_merged', 'sectors_written',
  'time_writing', 'in_progress', 'time_in_progress', 'weighted_time_in_progress',
];

type FamilyHeader = (name: string, type: string, help: string) => void;

function goRuntime(out: string[], family: FamilyHeader): void {
  family('go_gc_duration_seconds', 'summary', 'A summary of the pause duration of garbage collection cycles.');
  for (const q of ['0', '0.25', '0.5', '0.75', '1']) out.push(`go_gc_duration_seconds{quantile="${q}"} 4.3119e-05`);
  out.push('go_gc_duration_seconds_sum 0.012281367', 'go_gc_duration_seconds_count 187');
  family('go_goroutines', 'gauge', 'Number of goroutines that currently exist.');
  out.push('go_goroutines 31');
  family('go_info', 'gauge', 'Information about the Go environment.');
  out.push('go_info{version="go1.22.5"} 1');
  for (let i = 0; i < 40; i++) {
    family(`go_memstats_stat_${i}_bytes`, 'gauge', 'Number of bytes of one Go runtime memory statistic, as reported by runtime.ReadMemStats.');
    out.push(`go_memstats_stat_${i}_bytes ${3.145728e6 + i}`);
  }
  for (const name of ['process_cpu_seconds_total', 'process_open_fds', 'process_max_fds', 'process_resident_memory_bytes']) {
    family(name, 'gauge', 'Process statistic.');
    out.push(`${name} 1.23e+07`);
  }
}

function rpcHistogram(out: string[], family: FamilyHeader): void {
  const name = 'kata_shim_rpc_durations_histogram_milliseconds';
  family(name, 'histogram', 'RPC latency distributions.');
  for (const action of RPC_ACTIONS) {
    let count = 0;
    for (const le of ['1', '2', '4', '8', '16', '32', '64', '128', '256', '512', '+Inf']) {
      count += 3;
      out.push(`${name}_bucket{action="${action}",le="${le}"} ${count}`);
    }
    out.push(`${name}_sum{action="${action}"} 1234.5`, `${name}_count{action="${action}"} ${count}`);
  }
}

/** The floor any line-oriented parser pays: one indexOf(10) per line, nothing else. */
function newlineScan(bytes: Uint8Array): number {
  let lines = 0;
  for (let pos = 0; pos < bytes.length; lines++) {
    const nl = bytes.indexOf(10, pos);
    pos = nl < 0 ? bytes.length : nl + 1;
  }
  return lines;
}

/** Median microseconds per call over RUNS timed runs of at least MIN_RUN_MS each. */
function medianMicros(fn: () => unknown): number {
  let iterations = 1;
  for (let start = performance.now(); performance.now() - start < MIN_RUN_MS; iterations *= 2) {
    for (let i = 0; i < iterations; i++) fn();
  }
  const perCall: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const start = performance.now();
    for (let i = 0; i < iterations; i++) fn();
    perCall.push(((performance.now() - start) * 1000) / iterations);
  }
  perCall.sort((a, b) => a - b);
  return perCall[Math.floor(RUNS / 2)]!;
}

function main(): void {
  const text = buildShimPayload();
  const bytes = Buffer.from(text, 'utf8');
  const keepPrefixes = ['kata_guest_', 'kata_hypervisor_'];
  const full = parsePromText(bytes);
  const kept = parsePromText(bytes, { keepPrefixes });
  console.log(
    `payload ${(bytes.length / 1024).toFixed(1)} KiB, ${newlineScan(bytes)} lines, ` +
      `${full.seriesCount} series (${kept.seriesCount} kept by prefix)`,
  );

  const scan = medianMicros(() => newlineScan(bytes));
  const fullParse = medianMicros(() => parsePromText(bytes));
  const prefixParse = medianMicros(() => parsePromText(bytes, { keepPrefixes }));
  const peer = medianMicros(() => parsePeer(text));

  const row = (label: string, micros: number): void => console.log(`${label.padEnd(34)} ${micros.toFixed(1).padStart(9)} µs`);
  row('bare newline scan', scan);
  row('full parse', fullParse);
  row('keepPrefixes parse', prefixParse);
  row('parse-prometheus-text-format', peer);
  console.log(`full / scan           ${(fullParse / scan).toFixed(2)}×   (target ≤ 6)`);
  console.log(`keepPrefixes / scan   ${(prefixParse / scan).toFixed(2)}×   (target ≤ 2.5)`);
  console.log(`peer / full           ${(peer / fullParse).toFixed(1)}×   (target ≥ 10)`);
}

// Run only when executed, so other benchmarks can import the payload builder.
if (process.argv[1]?.endsWith('parser.ts')) main();
