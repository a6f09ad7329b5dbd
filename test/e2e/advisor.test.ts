/**
 * The overhead advisor (scripts/advisor-rules.ts) against a REAL Prometheus: a population of pods
 * with a known overhead distribution per RuntimeClass handler gives, for each handler, the p50,
 * p95, p99 and max computed here independently from the same samples, and recommendations
 * p99 × (1 + headroom) rounded up to a step only where enough pods ran; the capacity alerts fire
 * for exactly the handlers and pods they should; every panel query of the "Capacity and cost"
 * dashboard returns data.
 *
 * The advisor looks back a day, so the day is backfilled, not waited for:
 * 1. the raw series of the past 26 hours (finished pods spread over the day, pods still running,
 *    and pods that ended before the window) become TSDB blocks (`promtool tsdb create-blocks-from
 *    openmetrics`);
 * 2. a first Prometheus serves them to `promtool tsdb create-blocks-from rules`, which evaluates the
 *    overhead CPU rate rule over the past as Prometheus would have (the advisor reads that rule);
 * 3. a second Prometheus opens both, loads the generated rules (with `for:` shortened, nothing
 *    else changed), and scrapes a target that serves the running pods' present values, timestamped,
 *    as functions of time, under the job and instance labels of their past: nothing depends on
 *    when the test runs.
 * Every time in the population is at least an hour from a window edge.
 */

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { DEFAULT_THRESHOLDS, resolveThresholds } from '../../deploy/prometheus/thresholds.ts';
import { ADVISOR } from '../../scripts/advisor-rules.ts';
import { R, generate } from '../../scripts/gen-rules.ts';
import { SELECT_ALL, isRecord, loadDashboards, panelRefs, substitute } from '../support/dashboards.ts';
import { startPrometheus, type RunningPrometheus, type Sample } from '../support/prometheus.ts';
import { sleep, waitFor } from '../support/wait.ts';

const run = promisify(execFile);
const PROMTOOL = '/usr/bin/promtool';
const ADVICE = DEFAULT_THRESHOLDS.overheadAdvisor;
const MI = 1024 * 1024;
const GI = 1024 * MI;
const HOUR = 3600;
/** Seconds between backfilled samples, and between the backfilled rule evaluations. */
const STEP = 60;
const LIFE = 30 * 60;
/** Minutes after its start at which a pod reaches its peak overhead memory (a sample time). */
const PEAK_AT = 5;
const JOB = 'kata-metrics-bridge';

interface HandlerSpec {
  name: string;
  finished: number;
  running: number;
  /** Overhead memory peaks, MiB, spread over [lo, hi]. */
  memoryMiB: readonly [number, number];
  /** Overhead CPU, cores, spread over [lo, hi]: each pod's rate is constant, so its peak is exact. */
  cpuCores: readonly [number, number];
  reservedMemoryBytes: number;
  reservedCpuCores: number;
}

/**
 * kata-qemu: enough pods; reserves less memory than its p99 and over twice the CPU it needs.
 * kata-clh: enough pods, reserves well: no alert. kata-fc: too few pods to advise on (its
 * reservation is below what its pods use, which the advisor must not judge).
 */
const HANDLERS: readonly HandlerSpec[] = [
  {
    name: 'kata-qemu',
    finished: 36,
    running: 4,
    memoryMiB: [180, 420],
    cpuCores: [0.02, 0.06],
    reservedMemoryBytes: 320 * MI,
    reservedCpuCores: 0.25,
  },
  {
    name: 'kata-clh',
    finished: 21,
    running: 3,
    memoryMiB: [50, 100],
    cpuCores: [0.1, 0.2],
    reservedMemoryBytes: 130 * MI,
    reservedCpuCores: 0.25,
  },
  {
    name: 'kata-fc',
    finished: 4,
    running: 2,
    memoryMiB: [150, 250],
    cpuCores: [0.01, 0.02],
    reservedMemoryBytes: 130 * MI,
    reservedCpuCores: 0.25,
  },
];
/** Pods that ended before the window: were they counted, kata-clh's p99 would be 2 GiB and alert. */
/** The running pod whose VM plus overhead does not fit its host memory limit. */
const MISFIT = { handler: 'kata-qemu', index: HANDLERS[0]!.finished };
const BEFORE_WINDOW = [
  { handler: 'kata-clh', pods: 3 },
  { handler: 'kata-old', pods: 2 },
];

interface Pod {
  name: string;
  handler: string;
  start: number;
  /** Undefined: still running. */
  end?: number;
  peakMemoryBytes: number;
  cpuCores: number;
  reservedMemoryBytes: number;
  reservedCpuCores: number;
  vmMemoryBytes: number;
  hostMemoryLimitBytes: number;
}

/** A well-spread, deterministic fraction in [0, 1) for the k-th pod (golden-ratio sequence). */
const spread = (k: number) => ((k + 1) * 0.6180339887498949) % 1;
const within = ([lo, hi]: readonly [number, number], k: number) => lo + (hi - lo) * spread(k);

function population(t0: number): Pod[] {
  const pods: Pod[] = [];
  const add = (
    handler: string,
    index: number,
    spec: Pick<HandlerSpec, 'memoryMiB' | 'cpuCores' | 'reservedMemoryBytes' | 'reservedCpuCores'>,
    start: number,
    end: number | undefined,
  ) => {
    const vmMemoryBytes = 2 * GI;
    // The first running kata-qemu pod leaves its VM less room than the overhead it uses.
    const room = handler === MISFIT.handler && index === MISFIT.index ? 64 * MI : GI;
    pods.push({
      name: `build-${handler}-${index}`,
      handler,
      start,
      end,
      peakMemoryBytes: Math.round(within(spec.memoryMiB, index) * MI),
      cpuCores: within(spec.cpuCores, index),
      reservedMemoryBytes: spec.reservedMemoryBytes,
      reservedCpuCores: spec.reservedCpuCores,
      vmMemoryBytes,
      hostMemoryLimitBytes: vmMemoryBytes + room,
    });
  };
  for (const h of HANDLERS) {
    for (let i = 0; i < h.finished; i++) {
      const start = t0 - 23 * HOUR + Math.floor((i * 20 * HOUR) / h.finished);
      add(h.name, i, h, start, start + LIFE);
    }
    for (let j = 0; j < h.running; j++) add(h.name, h.finished + j, h, t0 - 2 * HOUR - j * 600, undefined);
  }
  for (const { handler, pods: n } of BEFORE_WINDOW) {
    for (let j = 0; j < n; j++) {
      const start = t0 - 26 * HOUR + j * 300;
      add(
        handler,
        100 + j,
        { memoryMiB: [2048, 2048], cpuCores: [1.5, 1.5], reservedMemoryBytes: 130 * MI, reservedCpuCores: 0.25 },
        start,
        start + LIFE,
      );
    }
  }
  return pods;
}

interface Row {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Overhead memory at `t`: the peak once, at PEAK_AT minutes; below it otherwise. */
function overheadMemoryAt(pod: Pod, t: number): number {
  const minute = Math.floor((t - pod.start) / STEP);
  return minute === PEAK_AT ? pod.peakMemoryBytes : Math.round(pod.peakMemoryBytes * (0.55 + 0.05 * (minute % 3)));
}

function rowsAt(pod: Pod, t: number): Row[] {
  const id = { namespace: 'ci', pod: pod.name };
  const elapsed = t - pod.start;
  const overhead = overheadMemoryAt(pod, t);
  return [
    {
      name: 'kata_bridge_pod_info',
      labels: {
        ...id,
        uid: `uid-${pod.name}`,
        sandbox_id: `sb-${pod.name}`,
        runtime_handler: pod.handler,
        runtime: 'go',
        hypervisor: 'qemu',
        sandbox_cgroup_only: 'false',
      },
      value: 1,
    },
    { name: 'kata_bridge_pod_overhead_memory_bytes', labels: id, value: overhead },
    { name: 'kata_bridge_pod_overhead_cpu_usage_seconds_total', labels: id, value: pod.cpuCores * elapsed },
    { name: 'kata_bridge_pod_overhead_memory_reserved_bytes', labels: id, value: pod.reservedMemoryBytes },
    { name: 'kata_bridge_pod_overhead_cpu_reserved_cores', labels: id, value: pod.reservedCpuCores },
    { name: 'kata_bridge_pod_vm_memory_bytes', labels: id, value: pod.vmMemoryBytes },
    // Published by the exporter from the host-truth families (issue 13); served here as it will be.
    { name: 'kata_bridge_pod_host_memory_limit_bytes', labels: id, value: pod.hostMemoryLimitBytes },
    { name: 'kata_bridge_pod_host_cpu_usage_seconds_total', labels: id, value: (1 + pod.cpuCores) * elapsed },
    { name: 'kata_bridge_pod_host_memory_working_set_bytes', labels: id, value: GI + overhead },
  ];
}

const labelText = (labels: Record<string, string>) =>
  `{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v.replace(/[\\"]/g, '\\$&').replace(/\n/g, '\\n')}"`)
    .join(',')}}`;

/** Sample lines grouped by metric name (both formats want a family's samples together). */
function sampleLines(samples: Iterable<{ t: number; rows: Row[] }>, timestamp: (t: number) => string): string[] {
  const byName = new Map<string, string[]>();
  for (const { t, rows } of samples) {
    for (const row of rows) {
      const lines = byName.get(row.name) ?? [];
      lines.push(`${row.name}${labelText(row.labels)} ${row.value} ${timestamp(t)}`);
      byName.set(row.name, lines);
    }
  }
  return [...byName.values()].flat();
}

/** Every pod's samples from its start to its end, or to t0 for a running pod, a STEP apart. */
function* history(pods: Pod[], t0: number): Generator<{ t: number; rows: Row[] }> {
  // The labels Prometheus gives the live target's series, so past and present are one series.
  const scraped = { job: JOB, instance: target };
  for (const pod of pods) {
    for (let t = pod.start; t <= (pod.end ?? t0); t += STEP)
      yield { t, rows: rowsAt(pod, t).map((r) => ({ ...r, labels: { ...scraped, ...r.labels } })) };
  }
}

/** Prometheus' quantile: linear interpolation between the closest ranks, rank = phi × (n − 1). */
function quantile(phi: number, values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = phi * (sorted.length - 1);
  const lower = Math.max(0, Math.floor(rank));
  const upper = Math.min(sorted.length - 1, lower + 1);
  const weight = rank - Math.floor(rank);
  return sorted[lower]! * (1 - weight) + sorted[upper]! * weight;
}

const recommend = (p99: number, step: number) => Math.ceil((p99 * (1 + ADVICE.headroom)) / step) * step;

function expectClose(actual: number | undefined, expected: number, what: string): void {
  expect(actual, what).toBeDefined();
  expect(Math.abs(actual! - expected), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(expected)));
}

function byHandler(samples: Sample[]): Map<string, number> {
  return new Map(samples.map((s) => [s.metric['runtime_handler']!, Number(s.value[1])]));
}

let t0 = 0;
let pods: Pod[] = [];
/** host:port of the target serving the running pods. */
let target = '';
let work = '';
let server: Server | undefined;
let prom: RunningPrometheus | undefined;

function serveRunningPods(): Promise<string> {
  server = createServer((req, res) => {
    const now = Date.now();
    const running = pods.filter((p) => p.end === undefined);
    const found = req.url === '/metrics';
    res.writeHead(found ? 200 : 404, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(
      found
        ? `${sampleLines(
            running.map((p) => ({ t: now / 1000, rows: rowsAt(p, now / 1000) })),
            () => String(now),
          ).join('\n')}\n`
        : 'not found\n',
    );
  });
  return new Promise((resolve) => server!.listen(0, '127.0.0.1', () => resolve(`127.0.0.1:${(server!.address() as AddressInfo).port}`)));
}

/** The generated rules; only `for:` shortened, so alerts fire at their first true evaluation. */
function rulesUnderTest(): string {
  const now = { for: '0s' };
  return generate(resolveThresholds({ overheadAdvisor: { belowP99: now, wasteful: now, tooFewPods: now }, vmFit: now }));
}

/** The generated rule file reduced to the one recording rule the advisor reads from the past. */
function overheadRateRule(rules: string): string {
  const doc: unknown = parseYaml(rules);
  const groups = isRecord(doc) && Array.isArray(doc['groups']) ? doc['groups'].filter(isRecord) : [];
  const rule = groups
    .flatMap((g) => (Array.isArray(g['rules']) ? g['rules'].filter(isRecord) : []))
    .find((r) => r['record'] === R.podOverheadCpuRate);
  if (rule === undefined) throw new Error(`no recording rule ${R.podOverheadCpuRate} in the generated rules`);
  return stringifyYaml({ groups: [{ name: 'backfill', rules: [rule] }] });
}

beforeAll(async () => {
  t0 = Math.floor(Date.now() / 1000) - 1;
  pods = population(t0);
  target = await serveRunningPods();
  work = mkdtempSync(join(tmpdir(), 'kmb-advisor-'));
  const data = join(work, 'data');
  const raw = join(work, 'raw.om');
  writeFileSync(raw, `${sampleLines(history(pods, t0), String).join('\n')}\n# EOF\n`);
  await run(PROMTOOL, ['tsdb', 'create-blocks-from', 'openmetrics', raw, data], { timeout: 60_000 });

  const rules = rulesUnderTest();
  const rateRule = join(work, 'rate.rules.yaml');
  writeFileSync(rateRule, overheadRateRule(rules));
  const past = await startPrometheus({ targets: [], jobName: 'none', dataDir: data });
  try {
    await run(
      PROMTOOL,
      [
        'tsdb',
        'create-blocks-from',
        'rules',
        `--url=${past.url}`,
        `--start=${t0 - 26 * HOUR}`,
        `--end=${t0}`,
        `--eval-interval=${STEP}s`,
        `--output-dir=${data}`,
        '--quiet',
        rateRule,
      ],
      { timeout: 60_000 },
    );
  } finally {
    await past.close();
  }

  prom = await startPrometheus({ targets: [target], jobName: JOB, dataDir: data, ruleFiles: { 'kata-bridge.rules.yaml': rules } });
  // Bounded wait until the advisor has read the day and the alerts have seen its results.
  await waitFor(
    'the running pods scraped, the advisor recommendations and the capacity alerts',
    async () => {
      const [up, recommended, alerts] = await Promise.all([
        prom!.query(`up{job="${JOB}"} == 1`),
        prom!.query(ADVISOR.recommendedMemory),
        prom!.alerts(),
      ]);
      return (
        up.length === 1 &&
        recommended.length === 2 &&
        alerts.some((a) => a.labels['alertname'] === 'KataBridgeOverheadAdvisorTooFewPods' && a.state === 'firing')
      );
    },
    { timeoutMs: 60_000, intervalMs: 500, describe: () => prom!.log() },
  );
  // Two more evaluations of every group, so every alert reads settled recordings.
  await sleep(2_500);
}, 150_000);

afterAll(async () => {
  await prom?.close();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the overhead advisor on a real Prometheus, a day of pods backfilled', () => {
  const inWindow = (handler: string) => pods.filter((p) => p.handler === handler && p.start > t0 - 24 * HOUR);

  it('every rule evaluates without error', async () => {
    const broken = (await prom!.rules()).filter((r) => r.health === 'err');
    expect(broken.map((r) => `${r.name}: ${r.lastError ?? ''}`)).toEqual([]);
  });

  it('counts the pods of the window per handler, and none that ended before it', async () => {
    const counts = byHandler(await prom!.query(ADVISOR.handlerPods));
    expect(Object.fromEntries(counts)).toEqual(Object.fromEntries(HANDLERS.map((h) => [h.name, h.finished + h.running])));
  });

  it("gives the p50, p95, p99 and max of each handler's peak overhead memory and CPU as computed from the samples", async () => {
    for (const [resource, names, peakOf] of [
      ['memory', ADVISOR.handlerMemory, (p: Pod) => p.peakMemoryBytes],
      ['cpu', ADVISOR.handlerCpu, (p: Pod) => p.cpuCores],
    ] as const) {
      for (const [stat, phi] of [
        ['p50', 0.5],
        ['p95', 0.95],
        ['p99', 0.99],
        ['max', 1],
      ] as const) {
        const got = byHandler(await prom!.query(names[stat]));
        expect([...got.keys()].sort()).toEqual(HANDLERS.map((h) => h.name).sort());
        for (const h of HANDLERS)
          expectClose(got.get(h.name), quantile(phi, inWindow(h.name).map(peakOf)), `${h.name} ${resource} ${stat}`);
      }
    }
  });

  it('recommends p99 × (1 + headroom) rounded up to a step, only for handlers with enough pods', async () => {
    for (const [resource, name, peakOf, step] of [
      ['memory', ADVISOR.recommendedMemory, (p: Pod) => p.peakMemoryBytes, ADVICE.memoryStepBytes],
      ['cpu', ADVISOR.recommendedCpu, (p: Pod) => p.cpuCores, ADVICE.cpuStepCores],
    ] as const) {
      const got = byHandler(await prom!.query(name));
      const advised = HANDLERS.filter((h) => h.finished + h.running >= ADVICE.minPods);
      expect([...got.keys()].sort(), resource).toEqual(advised.map((h) => h.name).sort());
      for (const h of advised) {
        const scaled = (quantile(0.99, inWindow(h.name).map(peakOf)) * (1 + ADVICE.headroom)) / step;
        // The population keeps clear of a step edge, where float rounding could flip the ceiling.
        expect(
          Math.min(scaled - Math.floor(scaled), Math.ceil(scaled) - scaled),
          `${h.name} ${resource} is not on a step edge`,
        ).toBeGreaterThan(1e-6);
        expectClose(got.get(h.name), recommend(quantile(0.99, inWindow(h.name).map(peakOf)), step), `${h.name} ${resource} recommendation`);
      }
    }
  });

  it('fires the capacity alerts for exactly the handlers and the pod they are about', async () => {
    const firing = (await prom!.alerts()).filter((a) => a.state === 'firing');
    const of = (alertname: string, ...labels: string[]) =>
      firing
        .filter((a) => a.labels['alertname'] === alertname)
        .map((a) => labels.map((l) => a.labels[l] ?? '').join(' '))
        .sort();
    expect(of('KataBridgeOverheadReservationBelowP99', 'runtime_handler')).toEqual(['kata-qemu']);
    expect(of('KataBridgeOverheadReservationWasteful', 'runtime_handler', 'resource')).toEqual(['kata-qemu cpu']);
    expect(of('KataBridgeOverheadAdvisorTooFewPods', 'runtime_handler')).toEqual(['kata-fc']);
    expect(of('KataBridgeVmExceedsHostMemoryLimit', 'namespace', 'pod')).toEqual([`ci build-${MISFIT.handler}-${MISFIT.index}`]);
  });

  it('every panel query of the Capacity and cost dashboard returns data', async () => {
    const board = loadDashboards().find((d) => d.dashboard['uid'] === 'kata-capacity-cost');
    expect(board, 'dashboards/kata-capacity-cost.json').toBeDefined();
    const handlers = await prom!.labelValues('runtime_handler', 'kata_bridge_pod_info');
    expect(handlers).toEqual(expect.arrayContaining(HANDLERS.map((h) => h.name)));
    // Over a day Grafana's step is about a minute (1d / its ~1,000 points).
    const values = { ...SELECT_ALL, runtime_handler: '.+', __range: '1d', __interval: '1m', __interval_ms: '60000' };
    const empty: string[] = [];
    let queries = 0;
    for (const ref of panelRefs(board!.dashboard)) {
      for (const q of ref.queries) {
        queries++;
        const expr = substitute(q.expr, values);
        if ((await prom!.query(expr)).length === 0) empty.push(`${ref.title} / ${q.refId}: ${expr}`);
      }
    }
    expect(empty).toEqual([]);
    expect(queries).toBeGreaterThan(10);
  });
});
