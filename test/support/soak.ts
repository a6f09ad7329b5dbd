/**
 * The soak engine (`npm run soak` is bench/soak.ts, its command line; test/e2e/soak.test.ts runs it
 * for 30 s): the real exporter process (src/main.ts, through tsx, with the node lab's flags, the
 * DaemonSet's NODE_OPTIONS and min-interval, so it runs as deployed) against a simulated node with
 * pod churn (one pod created or deleted every 100 ms, on top of the demo pods), while a client
 * scrapes /metrics every second. Measures the series count before the churn and after it (it must
 * come back to the baseline: no leaked series), the counter series per pod, the V8 heap in use
 * after a forced GC (what a leak of the exporter's own objects would grow), the exporter's
 * resident memory (from /proc/<pid>/status, so the lab's own memory does not count) and every log
 * line the exporter writes, classified as expected churn or not.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DEMO_SCENARIO } from '../../src/lab/demo.ts';
import { NodeLab, type LabPodScenario } from '../../src/lab/node-lab.ts';
import { daemonSetNodeOptions, daemonSetRuntimeEnv } from './daemonset-node-options.ts';
import { REPO_ROOT } from './e2e-helpers.ts';
import { percentile } from './percentile.ts';
import { parseSamples, seriesKey } from './scrape.ts';
import { sleep } from './wait.ts';

const MIB = 2 ** 20;
const GC_HOOK = fileURLToPath(new URL('./soak-gc-hook.ts', import.meta.url));
const CHURN_NAMESPACE = 'soak';
/** The DaemonSet sets none, so the exporter runs with the flag's default: say it, as deployed. */
const SOAK_MIN_INTERVAL = '5s';

export interface SoakOptions {
  /** How long the churn runs (the whole soak takes longer: start-up, baseline, settling). */
  durationMs: number;
  /** One pod created or deleted per interval. */
  churnIntervalMs?: number;
  /** The scraping client's period. */
  scrapeIntervalMs?: number;
  /** Most churned pods alive at once; the pool swings between 0 and this. */
  poolMax?: number;
  /** End RSS − start RSS (both after a forced GC) must stay below this. */
  rssBoundBytes?: number;
  /** End − start V8 heap in use (both after a forced GC) must stay below this. */
  heapBoundBytes?: number;
  /** How long the series may take to come back to the baseline once the churn stopped. */
  settleTimeoutMs?: number;
  /** Extra exporter flags. */
  exporterFlags?: string[];
  /** Progress lines; the report is returned either way. */
  log?: (line: string) => void;
  /** Seed of the churn's choices, so a run can be repeated. */
  seed?: number;
}

export interface SoakCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface LogSummary {
  total: number;
  byLevel: Record<string, number>;
  /** message (and reason) → count, for lines that churn explains. */
  expected: Record<string, number>;
  /** Lines nothing explains: errors, unknown messages, non-JSON output. At most 20 kept. */
  unexpected: string[];
  unexpectedCount: number;
}

export interface SoakReport {
  durationMs: number;
  churn: { added: number; removed: number; maxPool: number; drainMs: number; opsPerSecond: number; slowestOpMs: number };
  scrapes: { total: number; failed: number; failures: string[]; p50Ms: number; p99Ms: number; maxMs: number };
  series: {
    /** kata_bridge_* series whose identity depends on the node's pods (self counters excluded). */
    baseline: number;
    end: number;
    max: number;
    /** All series in the exposition, process metrics included. */
    totalBaseline: number;
    totalEnd: number;
    /** Series at the end that the baseline did not have, and the reverse (at most 20 each). */
    leaked: string[];
    missing: string[];
    settleMs: number;
  };
  pods: { baseline: number; max: number; end: number };
  /** Counter series carrying a pod label: the exposition-side view of the live counter-state cells. */
  counterSeries: { baseline: number; max: number; end: number };
  rss: {
    startBytes: number;
    maxBytes: number;
    endBytes: number;
    growthBytes: number;
    boundBytes: number;
    afterGc: boolean;
    hwmBytes: number;
  };
  /** V8 heap in use after the forced GCs: what the exporter's objects hold, without allocator slack. */
  heapUsed: { startBytes: number; endBytes: number; growthBytes: number; boundBytes: number };
  exitCode: number | null;
  logs: LogSummary;
  checks: SoakCheck[];
  ok: boolean;
}

// ─── small helpers ───────────────────────────────────────────────────────────

/** mulberry32: a tiny seeded PRNG, so a soak's churn can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const mib = (bytes: number): string => `${(bytes / MIB).toFixed(1)} MiB`;

/** The exporter's own cumulative counters: their label sets grow with error reasons, never with pods. */
const SELF_FAMILIES = new Set([
  'kata_bridge_shim_scrape_errors_total',
  'kata_bridge_kubelet_rejected_samples_total',
  'kata_bridge_shim_rejected_samples_total',
]);

export interface ExpositionView {
  total: number;
  /** kata_bridge_* series whose presence depends on the node's pods and sandboxes. */
  bridgeKeys: Set<string>;
  pods: number;
  counterSeries: number;
}

export function viewOf(text: string): ExpositionView {
  const samples = parseSamples(text);
  const bridgeKeys = new Set<string>();
  let pods = 0;
  let counterSeries = 0;
  for (const sample of samples) {
    const bridge = sample.family.startsWith('kata_bridge_') && !SELF_FAMILIES.has(sample.family);
    if (bridge) bridgeKeys.add(seriesKey(sample.name, sample.labels));
    if (sample.family === 'kata_bridge_pod_info') pods++;
    if (bridge && sample.type === 'counter' && sample.labels.pod !== undefined) counterSeries++;
  }
  return { total: samples.length, bridgeKeys, pods, counterSeries };
}

// ─── the exporter's logs ─────────────────────────────────────────────────────

/** Info lines the exporter writes in normal operation. */
const KNOWN_INFO = [
  /^serving metrics on /,
  /: the API server answers again$/,
  /: resourceVersion expired \(410\), relisting$/,
  /^shutting down$/,
  /^already shutting down$/,
];

export type LogClass = { kind: 'expected'; label: string } | { kind: 'unexpected'; why: string } | { kind: 'soak' };

/**
 * Classifies one line of the exporter's output. Expected: its normal info lines, usage records of
 * the pods churn ends, and a shim that
 * vanished mid-scrape while its pod was being deleted (`shim scrape failed`, reason
 * shim_unreachable). Everything else (any error, any other warning, unknown messages, non-JSON
 * output) is unexpected under churn.
 */
export function classifyLogLine(line: string): LogClass {
  let entry: { level?: unknown; msg?: unknown; reason?: unknown; soak?: unknown; kind?: unknown };
  try {
    entry = JSON.parse(line) as typeof entry;
  } catch {
    return { kind: 'unexpected', why: 'not a JSON log line' };
  }
  if (typeof entry !== 'object' || entry === null) return { kind: 'unexpected', why: 'not a JSON object' };
  if (entry.soak === 'gc') return { kind: 'soak' };
  // Churn ends pods: each gets its usage record on stdout (docs/usage-records.md).
  if (entry.kind === 'usage_record') return { kind: 'expected', label: 'usage record' };
  const level = typeof entry.level === 'number' ? entry.level : NaN;
  const msg = typeof entry.msg === 'string' ? entry.msg : '';
  if (!(level < 50)) return { kind: 'unexpected', why: `level ${String(entry.level)}` };
  if (level <= 30 && KNOWN_INFO.some((re) => re.test(msg))) return { kind: 'expected', label: msg.replace(/ on http:\/\/\S+$/, '') };
  if (level === 40 && msg === 'shim scrape failed' && entry.reason === 'shim_unreachable') {
    return { kind: 'expected', label: "shim scrape failed (shim_unreachable): a deleted pod's shim" };
  }
  return { kind: 'unexpected', why: `unknown message at level ${level}` };
}

class LogCollector {
  readonly summary: LogSummary = { total: 0, byLevel: {}, expected: {}, unexpected: [], unexpectedCount: 0 };
  private readonly waiters: Array<{
    test: (entry: Record<string, unknown>) => boolean;
    resolve: (entry: Record<string, unknown>) => void;
  }> = [];

  feed(stream: NodeJS.ReadableStream): void {
    let buffered = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line !== '') this.line(line);
      }
    });
    stream.on('end', () => {
      if (buffered.trim() !== '') this.line(buffered.trim());
    });
  }

  private line(line: string): void {
    const verdict = classifyLogLine(line);
    let entry: Record<string, unknown> | undefined;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      entry = undefined;
    }
    if (verdict.kind !== 'soak') {
      this.summary.total++;
      const level = String(entry?.level ?? 'none');
      this.summary.byLevel[level] = (this.summary.byLevel[level] ?? 0) + 1;
      if (verdict.kind === 'expected') this.summary.expected[verdict.label] = (this.summary.expected[verdict.label] ?? 0) + 1;
      else {
        this.summary.unexpectedCount++;
        if (this.summary.unexpected.length < 20) this.summary.unexpected.push(`${verdict.why}: ${line.slice(0, 2000)}`);
      }
    }
    if (entry !== undefined) {
      for (const waiter of [...this.waiters]) {
        if (waiter.test(entry)) {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          waiter.resolve(entry);
        }
      }
    }
  }

  nextLine(test: (entry: Record<string, unknown>) => boolean, timeoutMs: number, what: string): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`soak: no ${what} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        test,
        resolve: (entry) => {
          clearTimeout(timer);
          resolve(entry);
        },
      });
    });
  }
}

// ─── the exporter process ────────────────────────────────────────────────────

async function readRss(pid: number): Promise<{ rss: number; hwm: number } | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    return { rss: field('VmRSS'), hwm: field('VmHWM') };
  } catch {
    return undefined;
  }
}

interface ExporterProcess {
  child: ChildProcess;
  pid: number;
  url: string;
  logs: LogCollector;
  exited: Promise<number | null>;
  /** Forces a full GC in the exporter and resolves with its RSS afterwards. */
  gc(): Promise<{ rss: number; heapUsed: number; exposed: boolean }>;
}

async function startExporter(lab: NodeLab, extraFlags: readonly string[]): Promise<ExporterProcess> {
  const args = [
    ...daemonSetNodeOptions(),
    '--expose-gc',
    '--import',
    'tsx',
    '--import',
    pathToFileURL(GC_HOOK).href,
    'src/main.ts',
    ...lab.flags(),
    '--web.listen-address=127.0.0.1:0',
    `--collect.min-interval=${SOAK_MIN_INTERVAL}`,
    ...extraFlags,
  ];
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...daemonSetRuntimeEnv(), NODE_OPTIONS: '' },
  });
  if (child.pid === undefined) throw new Error('soak: the exporter process did not start');
  const logs = new LogCollector();
  logs.feed(child.stdout!);
  logs.feed(child.stderr!);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const serving = logs.nextLine(
    (e) => typeof e.msg === 'string' && e.msg.startsWith('serving metrics on '),
    120_000,
    '"serving metrics" log line',
  );
  const failed = exited.then((code) => {
    throw new Error(`soak: the exporter exited (${code}) before serving: ${logs.summary.unexpected.join('\n')}`);
  });
  let entry: Record<string, unknown>;
  try {
    entry = await Promise.race([serving, failed]);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  failed.catch(() => undefined);
  const pid = child.pid;
  return {
    child,
    pid,
    url: `http://127.0.0.1:${String(entry.port)}/metrics`,
    logs,
    exited,
    async gc() {
      const done = logs.nextLine((e) => e.soak === 'gc', 30_000, 'GC acknowledgement');
      process.kill(pid, 'SIGUSR2');
      const ack = await done;
      await sleep(200);
      const rss = (await readRss(pid))?.rss ?? Number(ack.rss);
      return { rss, heapUsed: Number(ack.heapUsed), exposed: ack.exposed === true };
    },
  };
}

async function stopExporter(exporter: ExporterProcess): Promise<number | null> {
  if (exporter.child.exitCode !== null) return exporter.child.exitCode;
  exporter.child.kill('SIGTERM');
  const timeout = sleep(20_000).then(() => 'timeout' as const);
  const result = await Promise.race([exporter.exited, timeout]);
  if (result === 'timeout') {
    exporter.child.kill('SIGKILL');
    await exporter.exited;
    return null;
  }
  return result;
}

// ─── churn ───────────────────────────────────────────────────────────────────

const MIB_CONTAINER = 2 ** 20;

/** Churned pods vary over the shapes the demo has: both runtimes, several hypervisors and gaps. */
function churnPod(seq: number, random: () => number): LabPodScenario {
  const name = `churn-${seq}`;
  const base = { name, namespace: CHURN_NAMESPACE, ageSeconds: Math.floor(random() * 120) };
  switch (seq % 6) {
    case 0:
      return { ...base, hypervisor: 'qemu', runtime: 'go' };
    case 1:
      return {
        ...base,
        hypervisor: 'cloud-hypervisor',
        runtime: 'go',
        sandboxCgroupOnly: true,
        containers: [
          { name: 'app', cpuCores: 0.6, memoryBytes: 300 * MIB_CONTAINER, limits: { cpu: '1', memory: '1Gi' } },
          { name: 'sidecar', cpuCores: 0.1, memoryBytes: 50 * MIB_CONTAINER, restartCount: 1 },
        ],
      };
    case 2:
      return { ...base, hypervisor: 'dragonball', runtime: 'rs' };
    case 3:
      return { ...base, hypervisor: 'firecracker', runtime: 'go', kubelet: 'zeros' };
    case 4:
      return { ...base, hypervisor: 'cloud-hypervisor', runtime: 'rs', kubelet: 'missing' };
    default:
      // A VM no source joins to a pod: a sandbox_unmapped series keyed by its sandbox id.
      return { ...base, hypervisor: 'qemu', runtime: 'go', mapping: 'none', inApiServer: false };
  }
}

/**
 * Serialises everything that changes the lab (pod churn and the cgroup counter ticks): the lab's
 * own ticker would race a tick's file writes against a removal's rm -r.
 */
class LabQueue {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(work: () => Promise<T>): Promise<T> {
    const next = this.tail.then(work);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

// ─── the soak ────────────────────────────────────────────────────────────────

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const churnIntervalMs = options.churnIntervalMs ?? 100;
  const scrapeIntervalMs = options.scrapeIntervalMs ?? 1000;
  const poolMax = options.poolMax ?? 30;
  const rssBoundBytes = options.rssBoundBytes ?? 50 * MIB;
  const heapBoundBytes = options.heapBoundBytes ?? 8 * MIB;
  const settleTimeoutMs = options.settleTimeoutMs ?? 60_000;
  const log = options.log ?? (() => undefined);
  const random = prng(options.seed ?? 20240611);

  const lab = await NodeLab.start(DEMO_SCENARIO);
  const queue = new LabQueue();
  let exporter: ExporterProcess | undefined;
  let stopTicks = false;
  let ticks: Promise<void> = Promise.resolve();
  try {
    exporter = await startExporter(lab, options.exporterFlags ?? []);
    const proc = exporter;
    log(`exporter pid ${proc.pid} serving ${proc.url}`);

    // Cgroup counters move once a second, as the kernel's do (serialised with the churn).
    ticks = (async () => {
      while (!stopTicks) {
        await queue.run(() => lab.tick());
        await sleep(1000);
      }
    })();

    // RSS sampling, once a second, for the whole run.
    let rssMax = 0;
    let hwm = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const sample = await readRss(proc.pid);
        if (sample !== undefined) {
          rssMax = Math.max(rssMax, sample.rss);
          hwm = Math.max(hwm, sample.hwm);
        }
        await sleep(1000);
      }
    })();

    // The scraping client.
    const latencies: number[] = [];
    const failures: string[] = [];
    let failed = 0;
    let latest: ExpositionView | undefined;
    const maxima = { series: 0, pods: 0, counterSeries: 0 };
    const scrapeOnce = async (): Promise<ExpositionView | undefined> => {
      const started = performance.now();
      try {
        const response = await fetch(proc.url, { signal: AbortSignal.timeout(30_000) });
        const text = await response.text();
        latencies.push(performance.now() - started);
        if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
        const view = viewOf(text);
        latest = view;
        maxima.series = Math.max(maxima.series, view.bridgeKeys.size);
        maxima.pods = Math.max(maxima.pods, view.pods);
        maxima.counterSeries = Math.max(maxima.counterSeries, view.counterSeries);
        return view;
      } catch (error) {
        failed++;
        if (failures.length < 20) failures.push(error instanceof Error ? error.message : String(error));
        return undefined;
      }
    };
    let scraping = true;
    const scraper = (async () => {
      while (scraping) {
        const started = Date.now();
        await scrapeOnce();
        await sleep(Math.max(0, scrapeIntervalMs - (Date.now() - started)));
      }
    })();

    // Baseline: the demo node, settled (the same series in scrapes across several collections).
    const baseline = await settle(() => latest, undefined, 90_000, 12_000);
    if (baseline === undefined) throw new Error('soak: no baseline exposition (the exporter never answered)');
    const startGc = await proc.gc();
    log(
      `baseline: ${baseline.bridgeKeys.size} bridge series (${baseline.total} in all), ${baseline.pods} pods, ` +
        `${baseline.counterSeries} per-pod counter series, RSS ${mib(startGc.rss)} after GC`,
    );

    // Churn.
    const pool: string[] = [];
    let seq = 0;
    let added = 0;
    let removed = 0;
    let maxPool = 0;
    let slowestOpMs = 0;
    let rising = true;
    const churnStarted = Date.now();
    let nextProgress = churnStarted + 30_000;
    while (Date.now() - churnStarted < options.durationMs) {
      const slot = Date.now();
      if (pool.length >= poolMax) rising = false;
      if (pool.length === 0) rising = true;
      // Mostly follow the swing, sometimes go against it, so pods of every age get deleted.
      const add = pool.length === 0 || (pool.length < poolMax && random() < (rising ? 0.8 : 0.2));
      const opStarted = performance.now();
      if (add) {
        const spec = churnPod(seq++, random);
        await queue.run(() => lab.addPod(spec));
        pool.push(spec.name);
        added++;
      } else {
        const [name] = pool.splice(Math.floor(random() * pool.length), 1);
        await queue.run(() => lab.removePod(CHURN_NAMESPACE, name!));
        removed++;
      }
      slowestOpMs = Math.max(slowestOpMs, performance.now() - opStarted);
      maxPool = Math.max(maxPool, pool.length);
      if (Date.now() >= nextProgress) {
        nextProgress += 30_000;
        const rss = (await readRss(proc.pid))?.rss ?? 0;
        log(
          `${Math.round((Date.now() - churnStarted) / 1000)} s: pool ${pool.length}, +${added}/-${removed}, ` +
            `series ${latest?.bridgeKeys.size ?? '?'}, pods ${latest?.pods ?? '?'}, RSS ${mib(rss)}, scrapes ${latencies.length} (${failed} failed), ` +
            `unexpected logs ${proc.logs.summary.unexpectedCount}`,
        );
      }
      await sleep(Math.max(0, churnIntervalMs - (Date.now() - slot)));
    }
    const churnMs = Date.now() - churnStarted;
    // Drain: delete the last churned pods, still one per interval.
    const drainStarted = Date.now();
    while (pool.length > 0) {
      const name = pool.pop()!;
      await queue.run(() => lab.removePod(CHURN_NAMESPACE, name));
      removed++;
      await sleep(churnIntervalMs);
    }
    const drainMs = Date.now() - drainStarted;
    log(
      `churn done: +${added}/-${removed} in ${Math.round(churnMs / 1000)} s, drained in ${Math.round(drainMs / 1000)} s; waiting for the series to settle`,
    );

    // After: the series must come back to the baseline set.
    const settleStarted = Date.now();
    const end = await settle(() => latest, baseline.bridgeKeys, settleTimeoutMs, 12_000);
    const settleMs = Date.now() - settleStarted;
    const endGc = await proc.gc();

    scraping = false;
    await scraper;
    sampling = false;
    await sampler;
    stopTicks = true;
    await ticks;
    const exitCode = await stopExporter(proc);
    exporter = undefined;

    const final = end ?? latest!;
    const leaked = [...final.bridgeKeys].filter((k) => !baseline.bridgeKeys.has(k));
    const missing = [...baseline.bridgeKeys].filter((k) => !final.bridgeKeys.has(k));
    const sorted = [...latencies].sort((a, b) => a - b);
    const logs = proc.logs.summary;
    const growth = endGc.rss - startGc.rss;
    const heapGrowth = endGc.heapUsed - startGc.heapUsed;
    const checks: SoakCheck[] = [
      {
        name: 'series back to baseline',
        ok: leaked.length === 0 && missing.length === 0,
        detail: `${baseline.bridgeKeys.size} → ${final.bridgeKeys.size} (leaked ${leaked.length}, missing ${missing.length})`,
      },
      {
        name: 'per-pod counter series back to baseline',
        ok: final.counterSeries === baseline.counterSeries,
        detail: `${baseline.counterSeries} → ${final.counterSeries}`,
      },
      { name: 'pods back to baseline', ok: final.pods === baseline.pods, detail: `${baseline.pods} → ${final.pods}` },
      {
        name: 'the churn was seen',
        ok: maxima.pods > baseline.pods,
        detail: `at most ${maxima.pods} pods published (baseline ${baseline.pods})`,
      },
      {
        name: `RSS growth under ${mib(rssBoundBytes)}`,
        ok: growth < rssBoundBytes,
        detail: `${mib(startGc.rss)} → ${mib(endGc.rss)} (${growth >= 0 ? '+' : ''}${mib(growth)}), max ${mib(rssMax)}`,
      },
      {
        name: `V8 heap growth under ${mib(heapBoundBytes)}`,
        ok: heapGrowth < heapBoundBytes,
        detail: `${mib(startGc.heapUsed)} → ${mib(endGc.heapUsed)} (${heapGrowth >= 0 ? '+' : ''}${mib(heapGrowth)})`,
      },
      { name: 'forced GC available', ok: startGc.exposed && endGc.exposed, detail: startGc.exposed ? '--expose-gc' : 'gc() missing' },
      { name: 'every scrape answered 200 and parsed', ok: failed === 0, detail: `${latencies.length} scrapes, ${failed} failed` },
      { name: 'no unexpected log lines', ok: logs.unexpectedCount === 0, detail: `${logs.unexpectedCount} unexpected of ${logs.total}` },
      { name: 'clean exit on SIGTERM', ok: exitCode === 0, detail: `exit code ${exitCode}` },
    ];
    return {
      durationMs: churnMs,
      churn: { added, removed, maxPool, drainMs, opsPerSecond: (added + removed) / ((churnMs + drainMs) / 1000), slowestOpMs },
      scrapes: {
        total: latencies.length,
        failed,
        failures,
        p50Ms: percentile(sorted, 50),
        p99Ms: percentile(sorted, 99),
        maxMs: sorted.at(-1) ?? 0,
      },
      series: {
        baseline: baseline.bridgeKeys.size,
        end: final.bridgeKeys.size,
        max: maxima.series,
        totalBaseline: baseline.total,
        totalEnd: final.total,
        leaked: leaked.slice(0, 20),
        missing: missing.slice(0, 20),
        settleMs,
      },
      pods: { baseline: baseline.pods, max: maxima.pods, end: final.pods },
      counterSeries: { baseline: baseline.counterSeries, max: maxima.counterSeries, end: final.counterSeries },
      rss: {
        startBytes: startGc.rss,
        maxBytes: rssMax,
        endBytes: endGc.rss,
        growthBytes: growth,
        boundBytes: rssBoundBytes,
        afterGc: startGc.exposed && endGc.exposed,
        hwmBytes: hwm,
      },
      heapUsed: { startBytes: startGc.heapUsed, endBytes: endGc.heapUsed, growthBytes: heapGrowth, boundBytes: heapBoundBytes },
      exitCode,
      logs,
      checks,
      ok: checks.every((c) => c.ok),
    };
  } finally {
    stopTicks = true;
    await ticks.catch(() => undefined);
    if (exporter !== undefined) await stopExporter(exporter).catch(() => undefined);
    await lab.close();
  }
}

/**
 * Waits until the scraped series set is stable for `stableMs` (two or more collections at the
 * soak's 5 s min-interval) and, given a target, equal to it. Resolves with the last view, or
 * undefined when nothing was scraped; on timeout resolves with what there is.
 */
async function settle(
  current: () => ExpositionView | undefined,
  target: ReadonlySet<string> | undefined,
  timeoutMs: number,
  stableMs: number,
): Promise<ExpositionView | undefined> {
  const deadline = Date.now() + timeoutMs;
  let since = Date.now();
  let last = '';
  while (Date.now() < deadline) {
    const view = current();
    if (view !== undefined) {
      const keys = [...view.bridgeKeys].sort().join('\n');
      if (keys !== last) {
        last = keys;
        since = Date.now();
      }
      const matches = target === undefined || (view.bridgeKeys.size === target.size && [...target].every((k) => view.bridgeKeys.has(k)));
      if (matches && Date.now() - since >= stableMs) return view;
    }
    await sleep(250);
  }
  return current();
}

// ─── the report ──────────────────────────────────────────────────────────────

export function formatReport(report: SoakReport): string {
  const lines = [
    `soak: ${Math.round(report.durationMs / 1000)} s of churn + ${Math.round(report.churn.drainMs / 1000)} s drain, +${report.churn.added}/-${report.churn.removed} pods ` +
      `(${report.churn.opsPerSecond.toFixed(1)} ops/s, slowest op ${report.churn.slowestOpMs.toFixed(0)} ms, pool max ${report.churn.maxPool})`,
    `series (kata_bridge_, by pods): baseline ${report.series.baseline}, max ${report.series.max}, end ${report.series.end} ` +
      `(all series: ${report.series.totalBaseline} → ${report.series.totalEnd}); settled in ${(report.series.settleMs / 1000).toFixed(1)} s`,
    `pods published: baseline ${report.pods.baseline}, max ${report.pods.max}, end ${report.pods.end}`,
    `per-pod counter series (counter-state view): baseline ${report.counterSeries.baseline}, max ${report.counterSeries.max}, end ${report.counterSeries.end}`,
    `exporter RSS: start ${mib(report.rss.startBytes)}, max ${mib(report.rss.maxBytes)} (VmHWM ${mib(report.rss.hwmBytes)}), end ${mib(report.rss.endBytes)}, ` +
      `growth ${mib(report.rss.growthBytes)} (bound ${mib(report.rss.boundBytes)}, ${report.rss.afterGc ? 'after forced GC' : 'no forced GC'})`,
    `exporter V8 heap used after GC: start ${mib(report.heapUsed.startBytes)}, end ${mib(report.heapUsed.endBytes)}, ` +
      `growth ${mib(report.heapUsed.growthBytes)} (bound ${mib(report.heapUsed.boundBytes)})`,
    `scrapes: ${report.scrapes.total} (${report.scrapes.failed} failed), latency p50 ${report.scrapes.p50Ms.toFixed(1)} ms, ` +
      `p99 ${report.scrapes.p99Ms.toFixed(1)} ms, max ${report.scrapes.maxMs.toFixed(1)} ms`,
    `logs: ${report.logs.total} lines, by level ${JSON.stringify(report.logs.byLevel)}`,
    ...Object.entries(report.logs.expected).map(([label, n]) => `  expected: ${n} × ${label}`),
    ...report.logs.unexpected.map((line) => `  UNEXPECTED: ${line}`),
    ...report.series.leaked.map((k) => `  LEAKED: ${k}`),
    ...report.series.missing.map((k) => `  MISSING: ${k}`),
    ...report.scrapes.failures.map((f) => `  SCRAPE FAILED: ${f}`),
    `exporter exit code: ${report.exitCode}`,
    'checks:',
    ...report.checks.map((c) => `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`),
    report.ok ? 'soak: PASS' : 'soak: FAIL',
  ];
  return lines.join('\n');
}
