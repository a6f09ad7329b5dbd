/**
 * The performance benchmark (never part of npm test): `npm run bench [-- --runs=5 --sizes=50,100,250,500]`.
 * `--sizes=50,100,250,500,2500` adds the RunD density (2,500 sandboxes: ~6 s a collection, a few
 * minutes more per run), left out by default.
 *
 * (a) parsing one ~144 KB shim payload four ways, side by side in each run;
 * (b) one full collection by the whole Exporter, alone in a child process, against a simulated
 *     node in another child (N sandboxes × 3 containers, 20 ms per shim call), next to a
 *     read-only baseline client in a third child that reads the same sockets and discards bytes;
 * (c) rendering /metrics for the snapshot; (d) series per container and pod vs the budget;
 * (e) (b) at several N, as cost per sandbox.
 * (f) memory: idle RSS (serving, pods watched, no collection yet) and peak RSS at each N.
 * Prints min / median / max over the runs and exits 1 when a target is missed.
 */
import { cpus, loadavg, totalmem } from 'node:os';
import { CARDINALITY_BUDGET } from '../src/publish/families.ts';
import type { CollectSample, SeriesCount } from './exporter-child.ts';
import { imageEnv, imageNodeFlags } from './build.ts';
import { Child, type Runtime } from './child.ts';
import { IDLE_RSS_TARGET_MIB, memoryVerdicts, PEAK_RSS_TARGETS_MIB, type Verdict } from './memory-targets.ts';
import type { ProcessMemory } from './process-memory.ts';
import { runParseBench, type ParseRun } from './parse.ts';
import { runNodeCost } from './node-cost.ts';

const args = new Map(
  process.argv.slice(2).map((a) => {
    const flag = a.replace(/^--/, '');
    const eq = flag.indexOf('=');
    return (eq < 0 ? [flag, ''] : [flag.slice(0, eq), flag.slice(eq + 1)]) as [string, string];
  }),
);
const RUNS = Math.max(5, Number(args.get('runs') ?? 5));
const SIZES = (args.get('sizes') ?? '50,100,250,500').split(',').map(Number);
const REFERENCE_N = SIZES.includes(250) ? 250 : SIZES[SIZES.length - 1]!;
const CONCURRENCY = 8; // the exporter's --shim.concurrency default
const WARMUP = 2;
/**
 * Collections at N per round: one at N ≥ 250, more below, so a small node scrapes about as many
 * sandboxes as N = 250 does and is not judged on five collections (whether a major GC lands in one
 * of them decides its median).
 */
const perRound = (n: number): number => Math.max(1, Math.ceil(250 / n));
const MIB = 2 ** 20;
/**
 * How the exporter and baseline children run: 'compiled' (default) is what the image ships (tsc
 * output, `node --enable-source-maps`); 'tsx' is the development loader. --compare-tsx adds a
 * second exporter under tsx, interleaved in the same runs, for a side-by-side RSS / CPU figure.
 */
const RUNTIME: Runtime = args.get('runtime') === 'tsx' ? 'tsx' : 'compiled';
const COMPARE_TSX = args.has('compare-tsx') && RUNTIME === 'compiled';
/**
 * Extra node flags for the exporter children only (not the baseline, not the simulated node), e.g.
 * `--node-flags=--max-old-space-size=96` for the DaemonSet's NODE_OPTIONS. Several flags are
 * separated by commas or blanks.
 */
const EXPORTER_NODE_FLAGS = (args.get('node-flags') ?? '').split(/[\s,]+/).filter((f) => f !== '');

// ─── statistics ──────────────────────────────────────────────────────────────

interface Stat {
  min: number;
  median: number;
  max: number;
}

function stat(values: number[]): Stat {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { min: sorted[0]!, median, max: sorted[sorted.length - 1]! };
}

/** The q-quantile of values (nearest rank). */
function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

const fmt = (v: number, digits = 2): string => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(digits));
const show = (s: Stat, digits = 2, unit = ''): string => `${fmt(s.median, digits)}${unit} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;

// ─── one node size ───────────────────────────────────────────────────────────

interface Ready {
  flags: string[];
  env: Record<string, string>;
  sockets: string[];
  latencyMs: number;
  bodyBytes: number;
  kubelet: { kubeletUrl: string; kubeletTokenFile: string; kubeletCaFile: string };
}
interface BaselineRead {
  wallMs: number;
  cpuMs: number;
  kubeletMs: number;
  bytes: number;
}

interface SizeResult {
  /** The same exporter under tsx, interleaved in the same runs (--compare-tsx). */
  tsx: { idleRss: number; peakRss: number; wall: Stat; cpu: Stat } | undefined;
  n: number;
  bodyBytes: number;
  wall: Stat;
  ideal: Stat;
  /** Each emulated shim call as the shims served it, request in to last byte out (ms), exporter's and baseline's calls alike. */
  served: Stat & { mean: number; p90: number; calls: number };
  wallRatio: Stat;
  baseWallRatio: Stat;
  cpu: Stat;
  baseCpu: Stat;
  cpuRatio: Stat;
  renderCpu: Stat;
  renderShare: Stat;
  perSandboxCpu: Stat;
  /** All the exporter's collection CPU at this N over all the sandboxes those collections scraped. */
  amortizedPerSandboxCpu: number;
  runs: number;
  idle: ProcessMemory;
  idleRss: number;
  peakRss: number;
  heapUsed: Stat;
  heapTotal: Stat;
  baselinePeakRss: number;
  series: SeriesCount;
  failures: string[];
}

/** One node size's processes: its simulated node, its exporter and its read-only baseline. */
interface Rig {
  n: number;
  ready: Ready;
  node: Child;
  exporter: Child;
  baseline: Child;
  tsxExporter: Child | undefined;
  idle: ProcessMemory;
  tsxIdleRss: number | undefined;
  samples: { e: CollectSample; b: BaselineRead }[];
  tsxSamples: CollectSample[];
}

/** The exporter's default --collect.deadline. */
const DEFAULT_DEADLINE_MS = 5_000;

/**
 * A collection of N sandboxes at this concurrency takes at least N × latency / concurrency: 6.25 s
 * at N = 2,500, past the default 5 s deadline, which would cut it short. Such a node gets twice
 * that as its deadline (an operator would raise --shim.concurrency instead; the bench keeps the
 * concurrency of the baseline it compares with).
 */
function deadlineFlags(n: number, latencyMs: number): string[] {
  const floorMs = (n * latencyMs) / CONCURRENCY;
  return 2 * floorMs <= DEFAULT_DEADLINE_MS ? [] : [`--collect.deadline=${Math.ceil((2 * floorMs) / 1000)}s`];
}

async function startRig(n: number): Promise<Rig> {
  const node = new Child('node-child.ts', [String(n)]);
  const exporter = new Child('exporter-child.ts', [], { runtime: RUNTIME, extraFlags: EXPORTER_NODE_FLAGS });
  const baseline = new Child('baseline-child.ts', [], { runtime: RUNTIME });
  const tsxExporter = COMPARE_TSX ? new Child('exporter-child.ts', [], { runtime: 'tsx', extraFlags: EXPORTER_NODE_FLAGS }) : undefined;
  const rig: Rig = {
    n,
    node,
    exporter,
    baseline,
    tsxExporter,
    ready: undefined!,
    idle: undefined!,
    tsxIdleRss: undefined,
    samples: [],
    tsxSamples: [],
  };
  try {
    rig.ready = await node.next<Ready>();
    // Every shim at every collection: (b) measures one full collection (--node-cost measures the cadence).
    rig.ready.flags = [...rig.ready.flags, ...deadlineFlags(n, rig.ready.latencyMs), '--shim.interval=0s'];
    const started = await exporter.request<{ idle: ProcessMemory }>({ kind: 'start', flags: rig.ready.flags, env: rig.ready.env, pods: n });
    rig.idle = started.idle;
    const tsxStarted = await tsxExporter?.request<{ idle: ProcessMemory }>({
      kind: 'start',
      flags: rig.ready.flags,
      env: rig.ready.env,
      pods: n,
    });
    rig.tsxIdleRss = tsxStarted?.idle.rssBytes;
    const k = rig.ready.kubelet;
    await baseline.request({
      kind: 'start',
      sockets: rig.ready.sockets,
      concurrency: CONCURRENCY,
      kubelet: { url: k.kubeletUrl, tokenFile: k.kubeletTokenFile, caFile: k.kubeletCaFile },
    });
    return rig;
  } catch (error) {
    await stopRig(rig);
    throw error;
  }
}

/** One collection by the exporter, then one read by the baseline, of the same node. */
async function collectOnce(rig: Rig, keep: boolean): Promise<void> {
  const e = await rig.exporter.request<CollectSample>({ kind: 'collect' });
  const b = await rig.baseline.request<BaselineRead>({ kind: 'read' });
  if (keep) rig.samples.push({ e, b });
  const t = await rig.tsxExporter?.request<CollectSample>({ kind: 'collect' });
  if (t && keep) rig.tsxSamples.push(t);
}

async function stopRig(rig: Rig): Promise<void> {
  await Promise.all([rig.exporter.stop(), rig.baseline.stop(), rig.node.stop(), rig.tsxExporter?.stop()]);
}

/**
 * Every size's collections, interleaved: all the rigs are up at once and each round visits each
 * size in turn (a small size several times, see perRound), so a change in the machine's speed during
 * the run falls on every size alike instead of on whichever size was being measured.
 */
async function measureSizes(sizes: readonly number[]): Promise<SizeResult[]> {
  const rigs: Rig[] = [];
  try {
    for (const n of sizes) rigs.push(await startRig(n));
    for (let round = 0; round < WARMUP + RUNS; round++) {
      // The shims' served latency counts from the first measured round on.
      if (round === WARMUP) for (const rig of rigs) await rig.node.request({ kind: 'served' });
      process.stderr.write(`round ${round + 1} of ${WARMUP + RUNS}${round < WARMUP ? ' (warm-up)' : ''}\n`);
      for (const rig of rigs) {
        for (let k = 0; k < perRound(rig.n); k++) await collectOnce(rig, round >= WARMUP);
      }
    }
    const results: SizeResult[] = [];
    for (const rig of rigs) results.push(await summarize(rig));
    return results;
  } finally {
    await Promise.all(rigs.map(stopRig));
  }
}

async function summarize(rig: Rig): Promise<SizeResult> {
  const { n, ready, samples, tsxSamples } = rig;
  const failures = new Set<string>();
  for (const { e } of samples) {
    if (e.shimsOk !== n) failures.add(`${n - e.shimsOk} of ${n} shims not scraped`);
    if (e.sourcesDown.length > 0) failures.add(`sources down: ${e.sourcesDown.join(', ')}`);
  }
  const ideal = samples.map(({ b }) => (n * ready.latencyMs) / CONCURRENCY + b.kubeletMs);
  const served = (await rig.node.request<{ ms: number[] }>({ kind: 'served' })).ms;
  // Counted after the last collection's peak is read: parsing the exposition is the bench's work.
  const { series } = await rig.exporter.request<{ series: SeriesCount }>({ kind: 'series' });
  await rig.exporter.request({ kind: 'stop' });
  const baselineStop = await rig.baseline.request<{ maxRssBytes: number }>({ kind: 'stop' });
  const tsxStop = await rig.tsxExporter?.request<{ maxRssBytes: number }>({ kind: 'stop' });
  const tsx =
    rig.tsxIdleRss !== undefined && tsxStop
      ? {
          idleRss: rig.tsxIdleRss,
          peakRss: Math.max(tsxStop.maxRssBytes, ...tsxSamples.map((s) => s.maxRssBytes)),
          wall: stat(tsxSamples.map((s) => s.wallMs)),
          cpu: stat(tsxSamples.map((s) => s.cpuMs)),
        }
      : undefined;
  return {
    tsx,
    n,
    bodyBytes: ready.bodyBytes,
    wall: stat(samples.map((s) => s.e.wallMs)),
    ideal: stat(ideal),
    served: { ...stat(served), mean: served.reduce((a, b) => a + b, 0) / served.length, p90: quantile(served, 0.9), calls: served.length },
    wallRatio: stat(samples.map((s, i) => s.e.wallMs / ideal[i]!)),
    baseWallRatio: stat(samples.map((s, i) => s.b.wallMs / ideal[i]!)),
    cpu: stat(samples.map((s) => s.e.cpuMs)),
    baseCpu: stat(samples.map((s) => s.b.cpuMs)),
    cpuRatio: stat(samples.map((s) => s.e.cpuMs / s.b.cpuMs)),
    renderCpu: stat(samples.map((s) => s.e.renderCpuMs)),
    renderShare: stat(samples.map((s) => (100 * s.e.renderCpuMs) / s.e.cpuMs)),
    perSandboxCpu: stat(samples.map((s) => s.e.cpuMs / n)),
    amortizedPerSandboxCpu: samples.reduce((sum, s) => sum + s.e.cpuMs, 0) / (samples.length * n),
    runs: samples.length,
    idle: rig.idle,
    idleRss: rig.idle.rssBytes,
    heapUsed: stat(samples.map((s) => s.e.heapUsedBytes / MIB)),
    heapTotal: stat(samples.map((s) => s.e.heapTotalBytes / MIB)),
    peakRss: Math.max(...samples.map((s) => s.e.maxRssBytes)),
    baselinePeakRss: baselineStop.maxRssBytes,
    series,
    failures: [...failures],
  };
}

// ─── report ──────────────────────────────────────────────────────────────────

async function main(): Promise<void> {
  const cpu = cpus();
  const loadBefore = loadavg();
  console.log('## Machine');
  console.log(
    `cpu: ${cpu[0]?.model ?? 'unknown'} × ${cpu.length} cores; memory ${(totalmem() / 2 ** 30).toFixed(1)} GiB; node ${process.version}`,
  );
  console.log(
    `exporter and baseline children: ${
      RUNTIME === 'compiled'
        ? `compiled with the Dockerfile's tsc flags, ${Object.entries(imageEnv())
            .map(([k, v]) => `${k}=${v} `)
            .join('')}node ${imageNodeFlags().join(' ')}`
        : 'tsx'
    }${COMPARE_TSX ? '; plus the exporter under tsx, interleaved' : ''}${EXPORTER_NODE_FLAGS.length > 0 ? `; exporter children also with ${EXPORTER_NODE_FLAGS.join(' ')}` : ''}`,
  );
  console.log(
    `load average at start: ${loadBefore.map((l) => l.toFixed(2)).join(' ')}; runs per figure: ${RUNS} at N ≥ 250, more below (as many sandboxes), after ${WARMUP} warm-up, the sizes interleaved round by round; parse runs: ${Math.max(21, RUNS * 4 + 1)}`,
  );
  console.log('figures: median (min–max)\n');

  const parseRuns = args.has('skip-parse') ? 1 : Math.max(21, RUNS * 4 + 1);
  const parse = runParseBench(parseRuns);
  const col = (k: keyof ParseRun): Stat => stat(parse.runs.map((r) => r[k]));
  const ratio = (f: (r: ParseRun) => number): Stat => stat(parse.runs.map(f));
  const fullScan = ratio((r) => r.full / r.scan);
  const decodeScan = ratio((r) => r.decode / r.scan);
  const peerFull = ratio((r) => r.peer / r.full);
  console.log(`## (a) Parsing one shim payload: ${(parse.bytes / 1024).toFixed(1)} KiB, ${parse.lines} lines, ${parse.series} series`);
  console.log('| way | µs per payload | vs bare scan |');
  console.log('|---|---|---|');
  console.log(`| bare newline scan, 4 bytes a step (floor) | ${show(col('scan'), 1)} | 1 |`);
  console.log(
    `| bare newline scan, Buffer.indexOf per line (earlier floor) | ${show(col('indexOfScan'), 1)} | ${show(ratio((r) => r.indexOfScan / r.scan))}× |`,
  );
  console.log(`| full parse (parsePromText) | ${show(col('full'), 1)} | ${show(fullScan)}× |`);
  console.log(`| skipping decoder (decodeShimMetrics) | ${show(col('decode'), 1)} | ${show(decodeScan)}× |`);
  console.log(`| peer parse-prometheus-text-format | ${show(col('peer'), 1)} | ${show(ratio((r) => r.peer / r.scan))}× |`);
  console.log(`peer / full parse: ${show(peerFull, 1)}×\n`);

  process.stderr.write(`measuring N = ${SIZES.join(', ')}, interleaved…\n`);
  const sizes = await measureSizes(SIZES);
  const ref = sizes.find((s) => s.n === REFERENCE_N)!;

  console.log(
    `## (b) One full collection at N = ${ref.n} (${ref.n * 3} containers, ${(ref.bodyBytes / 1024).toFixed(0)} KiB per shim, 20 ms per shim call, concurrency ${CONCURRENCY})`,
  );
  console.log('| figure | value |');
  console.log('|---|---|');
  console.log(`| wall time | ${show(ref.wall, 0, ' ms')} |`);
  console.log(`| ideal (Σ latency / concurrency + kubelet) | ${show(ref.ideal, 0, ' ms')} |`);
  console.log(
    `| emulated shim call as served (request in → last byte out), ${ref.served.calls} calls | mean ${fmt(ref.served.mean)} ms, median ${fmt(ref.served.median)} ms, p90 ${fmt(ref.served.p90)} ms, max ${fmt(ref.served.max, 1)} ms |`,
  );
  console.log(`| wall / ideal | ${show(ref.wallRatio)}× |`);
  console.log(`| read-only baseline wall / ideal (what the machine allows) | ${show(ref.baseWallRatio)}× |`);
  console.log(`| exporter CPU per collection | ${show(ref.cpu, 0, ' ms')} |`);
  console.log(`| read-only baseline client CPU | ${show(ref.baseCpu, 0, ' ms')} |`);
  console.log(`| exporter CPU / baseline | ${show(ref.cpuRatio)}× |`);
  console.log(
    `| exporter peak RSS | ${(ref.peakRss / MIB).toFixed(0)} MiB (baseline client ${(ref.baselinePeakRss / MIB).toFixed(0)} MiB) |`,
  );
  console.log(`| exporter RSS before its first collection (serving, pod list in) | ${(ref.idleRss / MIB).toFixed(0)} MiB |`);
  console.log(
    `| exporter V8 heap right after a collection: used / reserved | ${show(ref.heapUsed, 0, ' MiB')} / ${show(ref.heapTotal, 0, ' MiB')} |`,
  );
  console.log('');
  if (ref.tsx) {
    console.log(`### Compiled (as shipped) vs tsx, same runs, N = ${ref.n}`);
    console.log('| figure | compiled | tsx |');
    console.log('|---|---|---|');
    console.log(`| RSS before the first collection | ${(ref.idleRss / MIB).toFixed(0)} MiB | ${(ref.tsx.idleRss / MIB).toFixed(0)} MiB |`);
    console.log(`| peak RSS | ${(ref.peakRss / MIB).toFixed(0)} MiB | ${(ref.tsx.peakRss / MIB).toFixed(0)} MiB |`);
    console.log(`| CPU per collection | ${show(ref.cpu, 0, ' ms')} | ${show(ref.tsx.cpu, 0, ' ms')} |`);
    console.log(`| wall per collection | ${show(ref.wall, 0, ' ms')} | ${show(ref.tsx.wall, 0, ' ms')} |`);
    console.log('');
  }
  console.log(`## (c) Rendering /metrics (text) at N = ${ref.n}`);
  console.log(`render CPU ${show(ref.renderCpu, 1, ' ms')} = ${show(ref.renderShare, 1, '%')} of collection CPU\n`);
  console.log(`## (d) Series at N = ${ref.n}`);
  console.log(
    `${ref.series.total} series in kata_bridge_* families; most per container ${ref.series.maxPerContainer} (budget ${CARDINALITY_BUDGET.perContainer}) over ${ref.series.containers} containers; most per pod ${ref.series.maxPerPod} (budget ${CARDINALITY_BUDGET.perPod}) over ${ref.series.pods} pods\n`,
  );
  console.log('## (e) Scaling');
  console.log(
    '| N | runs | wall ms | ideal ms | shim call served, mean ms | wall/ideal | CPU ms | baseline CPU ms | CPU/baseline | CPU ms per sandbox: all runs (per run) | render % | idle → peak RSS MiB |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const s of sizes) {
    console.log(
      `| ${s.n} | ${s.runs} | ${show(s.wall, 0)} | ${fmt(s.ideal.median, 0)} | ${fmt(s.served.mean)} | ${show(s.wallRatio)} | ${show(s.cpu, 0)} | ${fmt(s.baseCpu.median, 0)} | ${show(s.cpuRatio)} | ${fmt(s.amortizedPerSandboxCpu, 3)} (${show(s.perSandboxCpu, 3)}) | ${fmt(s.renderShare.median, 1)} | ${(s.idleRss / MIB).toFixed(0)} → ${(s.peakRss / MIB).toFixed(0)} |`,
    );
  }
  // What a node pays per sandbox: all the CPU of the runs at N over all the sandboxes they scraped,
  // so the GC work a collection leaves to the next is counted once, wherever it lands.
  const perSandbox = sizes.map((s) => s.amortizedPerSandboxCpu);
  const center = stat(perSandbox).median;
  const spread = Math.max(...perSandbox.map((v) => Math.abs(v / center - 1)));
  const medians = sizes.map((s) => s.perSandboxCpu.median);
  const medianCenter = stat(medians).median;
  const medianSpread = Math.max(...medians.map((v) => Math.abs(v / medianCenter - 1)));
  console.log(
    `cost per sandbox over all runs: ${perSandbox.map((v) => fmt(v, 3)).join(' / ')} ms, at most ${(spread * 100).toFixed(0)}% from their median`,
  );
  console.log(
    `(medians of the per-run figures: ${medians.map((v) => fmt(v, 3)).join(' / ')} ms, at most ${(medianSpread * 100).toFixed(0)}% from their median)\n`,
  );

  console.log('## (f) Memory of the exporter process (resident MiB)');
  console.log(
    '| N | idle: all (anonymous + file-backed) | peak over the collections | V8 heap after a collection: used / reserved | target |',
  );
  console.log('|---|---|---|---|---|');
  for (const s of sizes) {
    const target = PEAK_RSS_TARGETS_MIB.get(s.n);
    console.log(
      `| ${s.n} | ${(s.idle.rssBytes / MIB).toFixed(1)} (${(s.idle.anonBytes / MIB).toFixed(1)} + ${(s.idle.fileBytes / MIB).toFixed(1)}) | ${(s.peakRss / MIB).toFixed(1)} | ${show(s.heapUsed, 0)} / ${show(s.heapTotal, 0)} | idle ≤ ${IDLE_RSS_TARGET_MIB}${target === undefined ? '' : `, peak ≤ ${target}`} |`,
    );
  }
  console.log('file-backed: pages of the node binary and libraries, shared with other node processes but counted in RSS\n');

  const verdicts: Verdict[] = [
    { target: 'full parse ≥ 10× faster than the peer', measured: `${fmt(peerFull.median, 1)}×`, ok: peerFull.median >= 10 },
    { target: 'full parse ≤ 6× the bare scan', measured: `${fmt(fullScan.median)}×`, ok: fullScan.median <= 6 },
    { target: 'skipping decode ≤ 2.5× the bare scan', measured: `${fmt(decodeScan.median)}×`, ok: decodeScan.median <= 2.5 },
    {
      target: `collection wall ≤ 1.2× the ideal (N = ${ref.n})`,
      measured: `${fmt(ref.wallRatio.median)}×`,
      ok: ref.wallRatio.median <= 1.2,
    },
    {
      target: `collection CPU ≤ 3× the read-only baseline (N = ${ref.n})`,
      measured: `${fmt(ref.cpuRatio.median)}×`,
      ok: ref.cpuRatio.median <= 3,
    },
    {
      target: `rendering ≤ 10% of collection CPU (N = ${ref.n})`,
      measured: `${fmt(ref.renderShare.median, 1)}%`,
      ok: ref.renderShare.median <= 10,
    },
    {
      target: `series ≤ ${CARDINALITY_BUDGET.perContainer} per container, ≤ ${CARDINALITY_BUDGET.perPod} per pod`,
      measured: `${ref.series.maxPerContainer} / ${ref.series.maxPerPod}`,
      ok: ref.series.maxPerContainer <= CARDINALITY_BUDGET.perContainer && ref.series.maxPerPod <= CARDINALITY_BUDGET.perPod,
    },
    {
      target: `cost per sandbox flat within ±25% (N = ${SIZES.join(', ')})`,
      measured: `±${(spread * 100).toFixed(0)}%`,
      ok: spread <= 0.25,
    },
  ];
  verdicts.push(...memoryVerdicts(sizes));
  const failures = sizes.flatMap((s) => s.failures.map((f) => `N = ${s.n}: ${f}`));
  for (const f of failures) verdicts.push({ target: 'every collection complete', measured: f, ok: false });
  console.log('## Targets');
  console.log('| target | measured (median) | met |');
  console.log('|---|---|---|');
  for (const v of verdicts) console.log(`| ${v.target} | ${v.measured} | ${v.ok ? 'yes' : '**no**'} |`);
  console.log(
    `\nload average at end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  process.exitCode = verdicts.every((v) => v.ok) ? 0 : 1;
}

// --node-cost: only the node-cost table (bench/node-cost.ts).
if (args.has('node-cost')) process.exitCode = (await runNodeCost(process.argv.slice(2))) ? 0 : 1;
else await main();
