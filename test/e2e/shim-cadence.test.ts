/**
 * Guest data on its own cadence, end to end on the node lab with the clock injected: with
 * --shim.interval=60s and a scrape every 15 s for four simulated minutes, each shim (counted by
 * the lab's fake shim) is called at once on first sight and then at most once per interval, the
 * host series move at every scrape, the guest series hold their values between calls with their
 * age growing, and kata_bridge_shim_calls_total counts exactly the calls the shims saw.
 */
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import type { LabPodScenario } from '../../src/lab/node-lab.ts';
import type { ShimPool } from '../../src/scrapers/shim-pool.ts';
import { SourceError } from '../../src/scrapers/source-error.ts';
import { labExporterConfig, startLabExporter, type LabExporter } from '../support/lab-exporter.ts';
import { seriesKey } from '../support/scrape.ts';

const SCRAPE_S = 15;
const INTERVAL_S = 60;
/** Four simulated minutes: collections at 0, 15, …, 240 s. */
const COLLECTIONS = (4 * INTERVAL_S) / SCRAPE_S + 1;

const pods: LabPodScenario[] = [
  { name: 'qemu', hypervisor: 'qemu' },
  { name: 'clh', hypervisor: 'cloud-hypervisor' },
  { name: 'fc', hypervisor: 'firecracker' },
  { name: 'dragonball', hypervisor: 'dragonball' },
  {
    name: 'pair',
    hypervisor: 'qemu',
    containers: [
      { name: 'build', cpuCores: 0.5, memoryBytes: 256 * 2 ** 20 },
      { name: 'cache', cpuCores: 0.2, memoryBytes: 128 * 2 ** 20 },
    ],
  },
];

const podKey = (family: string, pod: string): string => seriesKey(`kata_bridge_${family}`, { namespace: 'ci', pod });

interface Observed {
  /** Shim calls each pod's shim saw during this collection. */
  calls: Map<string, number>;
  series: Map<string, number>;
}

describe('--shim.interval on the node lab', () => {
  let bridge: LabExporter;
  let nowMs = Date.UTC(2026, 0, 5, 9, 0, 0);
  const observed: Observed[] = [];

  const shimCalls = (): Map<string, number> =>
    new Map(pods.map((p) => [p.name, bridge.lab.pods.get(`ci/${p.name}`)?.shim?.stats.calls ?? 0]));

  beforeAll(async () => {
    bridge = await startLabExporter({ pods }, { now: () => nowMs, shimInterval: `${INTERVAL_S}s` });
    let before = shimCalls();
    for (let k = 0; k < COLLECTIONS; k++) {
      if (k > 0) nowMs += SCRAPE_S * 1000;
      await bridge.lab.tick();
      const series = await bridge.scrape();
      const after = shimCalls();
      observed.push({ calls: new Map(pods.map((p) => [p.name, after.get(p.name)! - before.get(p.name)!])), series });
      before = after;
    }
  }, 120_000);

  afterAll(async () => {
    await bridge?.close();
  });

  test('the first scrape is complete: every shim called once, every pod with its guest series, age 0', () => {
    const first = observed[0]!;
    for (const { name } of pods) {
      expect({ name, calls: first.calls.get(name) }).toEqual({ name, calls: 1 });
      expect(first.series.has(podKey('pod_guest_cpu_usage_seconds_total', name))).toBe(true);
      expect(first.series.get(podKey('pod_guest_sample_age_seconds', name))).toBe(0);
    }
  });

  test('each shim is called at most once per interval: 4 or 5 calls in four minutes, never twice in 4 scrapes', () => {
    const perInterval = INTERVAL_S / SCRAPE_S;
    for (const { name } of pods) {
      const calls = observed.map((o) => o.calls.get(name)!);
      expect(calls.every((c) => c <= 1)).toBe(true);
      const total = calls.reduce((a, b) => a + b, 0);
      expect({ name, inRange: total >= 4 && total <= 5 }).toEqual({ name, inRange: true });
      for (let k = 0; k + perInterval <= calls.length; k++) {
        expect(calls.slice(k, k + perInterval).reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(1);
      }
    }
  });

  test('host series move at every scrape; guest series hold between calls while their age grows', () => {
    for (const { name } of pods) {
      const host = observed.map((o) => o.series.get(podKey('pod_host_cpu_usage_seconds_total', name))!);
      const guest = observed.map((o) => o.series.get(podKey('pod_guest_cpu_usage_seconds_total', name))!);
      const age = observed.map((o) => o.series.get(podKey('pod_guest_sample_age_seconds', name))!);
      for (let k = 1; k < observed.length; k++) {
        expect(host[k]!).toBeGreaterThan(host[k - 1]!);
        if (observed[k]!.calls.get(name) === 1) {
          expect(age[k]).toBe(0);
          expect(guest[k]!).toBeGreaterThan(guest[k - 1]!);
        } else {
          expect(age[k]).toBe(age[k - 1]! + SCRAPE_S);
          expect(guest[k]).toBe(guest[k - 1]);
        }
      }
      // Never past the stale bound, so never a gap for an honest shim.
      expect(Math.max(...age)).toBeLessThan(2 * INTERVAL_S + SCRAPE_S);
      expect(
        observed.some((o) => o.series.has(seriesKey('kata_bridge_pod_metrics_gap', { namespace: 'ci', pod: name, reason: 'shim_stale' }))),
      ).toBe(false);
    }
  });

  test('kata_bridge_shim_calls_total counts exactly the calls the shims saw', () => {
    const seen = observed.reduce((sum, o) => sum + [...o.calls.values()].reduce((a, b) => a + b, 0), 0);
    const last = observed.at(-1)!.series;
    expect(last.get(seriesKey('kata_bridge_shim_calls_total', { result: 'answered' }))).toBe(seen);
    expect(last.get(seriesKey('kata_bridge_shim_calls_total', { result: 'timed_out' }))).toBe(0);
  });
});

describe('a due shim the collection deadline never reaches', () => {
  let bridge: LabExporter;
  let nowMs = Date.UTC(2026, 0, 5, 9, 0, 0);
  const starved = 'starved';

  beforeAll(async () => {
    bridge = await startLabExporter(
      { pods: [{ name: 'steady' }, { name: starved }] },
      { now: () => nowMs, shimInterval: `${INTERVAL_S}s` },
    );
  });

  afterAll(async () => {
    vi.restoreAllMocks();
    await bridge?.close();
  });

  /** The pool as the collector sees it: the starved sandbox's calls stay queued past the deadline. */
  function starve(pool: ShimPool, socketPath: string): void {
    const original = pool.scrapeAll.bind(pool) as (...args: unknown[]) => Promise<Map<string, unknown>>;
    vi.spyOn(pool, 'scrapeAll').mockImplementation(((targets: Parameters<ShimPool['scrapeAll']>[0], options: unknown) => {
      const target = targets[0]!;
      if (target.socketPath !== socketPath) return original(targets, options);
      const error = new SourceError('timeout', socketPath, 'not scraped: the collection deadline passed while it was queued');
      return Promise.resolve(new Map([[target.id, { ok: false, error, durationMs: 0, notStarted: true }]]));
    }) as ShimPool['scrapeAll']);
  }

  test('keeps its last answer, then is a gap (shim_stale) past 3 intervals; its next answer ends the gap', async () => {
    const at = async (seconds: number): Promise<Map<string, number>> => {
      nowMs += seconds * 1000;
      await bridge.lab.tick();
      return bridge.scrape();
    };
    const stale = seriesKey('kata_bridge_pod_metrics_gap', { namespace: 'ci', pod: starved, reason: 'shim_stale' });
    const guestCpu = podKey('pod_guest_cpu_usage_seconds_total', starved);
    const first = await at(0);
    const shim = bridge.lab.pods.get(`ci/${starved}`)!.shim!;
    starve(bridge.exporter.shims, shim.socketPath);
    // Due from 60 s on (plus its offset), never reached: its answer stands in up to 180 s old.
    const views: Map<string, number>[] = [];
    for (let k = 1; k <= (3 * INTERVAL_S) / SCRAPE_S; k++) views.push(await at(SCRAPE_S));
    for (const view of views) {
      expect(view.get(guestCpu)).toBe(first.get(guestCpu));
      expect(view.has(stale)).toBe(false);
    }
    expect(views.at(-1)!.get(podKey('pod_guest_sample_age_seconds', starved))).toBe(3 * INTERVAL_S);
    // Each queued call is counted as a timeout, though the old answer is still published.
    expect(views.at(-1)!.get(seriesKey('kata_bridge_shim_scrape_errors_total', { reason: 'timeout' }))).toBeGreaterThan(0);
    const past = await at(SCRAPE_S);
    expect(past.get(stale)).toBe(1);
    expect(past.has(guestCpu)).toBe(false);
    expect(past.has(podKey('pod_guest_sample_age_seconds', starved))).toBe(false);
    expect(past.has(podKey('pod_guest_cpu_usage_seconds_total', 'steady'))).toBe(true);
    expect(shim.stats.calls).toBe(1);
    vi.restoreAllMocks();
    const back = await at(SCRAPE_S);
    expect(back.has(stale)).toBe(false);
    expect(back.get(podKey('pod_guest_sample_age_seconds', starved))).toBe(0);
    expect(shim.stats.calls).toBe(2);
  });
});

describe('the lab harness and --shim.interval', () => {
  const lab = { flags: () => ['--node.name=n1', '--kubelet.url=https://127.0.0.1:1', '--kubeconfig=/dev/null'] };

  test('every shim at every collection unless the test says otherwise, and never set among the flags', () => {
    expect(labExporterConfig(lab).shimIntervalMs).toBe(0);
    expect(labExporterConfig(lab, { shimInterval: '60s' }).shimIntervalMs).toBe(60_000);
    expect(() => labExporterConfig(lab, { flags: ['--shim.interval=5s'] })).toThrow(/shimInterval/);
  });
});
