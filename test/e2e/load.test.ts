/**
 * Load: ten clients scrape /metrics back to back for 60 seconds against the real exporter on the
 * demo node, with the default --collect.min-interval=5s. Single-flight must hold: one collection
 * per min-interval whatever the load, so every scraped shim was called exactly once per
 * collection (counted both by the exporter's shim pool and by the lab's fake shims themselves).
 * Latency is printed for docs/load.md, never asserted.
 */

import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEMO_SCENARIO } from '../../src/lab/demo.ts';
import { startLabExporter, type LabExporter } from '../support/lab-exporter.ts';
import { percentile } from '../support/percentile.ts';
import { parseSamples } from '../support/scrape.ts';

const CLIENTS = 10;
const DURATION_MS = 60_000;
const MIN_INTERVAL_MS = 5_000;

interface LoadResult {
  requests: number;
  statuses: Map<number, number>;
  parseFailures: string[];
  /** Distinct bodies seen (one rendering per collection). */
  distinctBodies: number;
  latenciesMs: number[];
  elapsedMs: number;
  collectionsBefore: number;
  collectionsAfter: number;
}

describe('ten concurrent clients for 60 s on the demo node (min-interval 5s)', () => {
  let bridge: LabExporter;
  let result: LoadResult;

  beforeAll(async () => {
    bridge = await startLabExporter(DEMO_SCENARIO, { minInterval: `${MIN_INTERVAL_MS / 1000}s` });
    bridge.lab.startTicking(1000);

    const statuses = new Map<number, number>();
    const parsed = new Map<string, string | undefined>();
    const parseFailures: string[] = [];
    const latenciesMs: number[] = [];
    let requests = 0;
    const collectionsBefore = bridge.exporter.collections;
    const started = performance.now();
    const end = started + DURATION_MS;

    const client = async (): Promise<void> => {
      while (performance.now() < end) {
        const t0 = performance.now();
        const response = await fetch(bridge.url);
        const body = await response.text();
        latenciesMs.push(performance.now() - t0);
        requests++;
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        // Identical bodies (one snapshot rendered once, served many times) are parsed once.
        if (!parsed.has(body)) {
          let failure: string | undefined;
          try {
            if (!parseSamples(body).some((s) => s.family === 'kata_bridge_pod_info')) failure = 'no kata_bridge_pod_info family';
          } catch (error) {
            failure = error instanceof Error ? error.message : String(error);
          }
          parsed.set(body, failure);
          if (failure !== undefined) parseFailures.push(failure);
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, () => client()));
    const elapsedMs = performance.now() - started;

    result = {
      requests,
      statuses,
      parseFailures,
      distinctBodies: parsed.size,
      latenciesMs: latenciesMs.sort((a, b) => a - b),
      elapsedMs,
      collectionsBefore,
      collectionsAfter: bridge.exporter.collections,
    };
    const l = result.latenciesMs;
    console.info(
      `load: ${CLIENTS} clients, ${(elapsedMs / 1000).toFixed(1)} s, ${requests} requests (${(requests / (elapsedMs / 1000)).toFixed(0)}/s), ` +
        `${result.collectionsAfter - collectionsBefore} collections, ${result.distinctBodies} distinct bodies; ` +
        `latency p50 ${percentile(l, 50).toFixed(2)} ms, p99 ${percentile(l, 99).toFixed(2)} ms, max ${(l.at(-1) ?? 0).toFixed(2)} ms`,
    );
  }, 180_000);

  afterAll(async () => {
    await bridge?.close();
  });

  test('every response is 200 and parses', () => {
    expect(result.requests).toBeGreaterThan(CLIENTS);
    expect([...result.statuses.keys()]).toEqual([200]);
    expect(result.parseFailures).toEqual([]);
  });

  test('single-flight: at most one collection per min-interval, whatever the number of clients', () => {
    const collections = result.collectionsAfter - result.collectionsBefore;
    const bound = Math.ceil(result.elapsedMs / MIN_INTERVAL_MS) + 1;
    console.info(`load: ${collections} collections for ${result.requests} requests; bound ${bound}`);
    expect(collections).toBeGreaterThanOrEqual(1);
    expect(collections).toBeLessThanOrEqual(bound);
    // Many requests share each collection.
    expect(result.requests).toBeGreaterThan(collections * CLIENTS);
  });

  test('every scraped shim was called exactly once per collection, on both sides of the socket', () => {
    const collections = bridge.exporter.collections;
    const counts = bridge.exporter.shims.callCounts();
    expect(counts.size).toBeGreaterThan(0);
    for (const [socketPath, calls] of counts) expect({ socketPath, calls }).toEqual({ socketPath, calls: collections });

    const seen: Record<string, number> = {};
    for (const [name, pod] of bridge.lab.pods) {
      if (pod.shim === undefined) continue;
      const poolCalls = [...counts].find(([socketPath]) => socketPath.includes(pod.sandboxId))?.[1] ?? 0;
      seen[name] = pod.shim.stats.calls;
      // What the fake shim received is what the exporter sent: no retries, no extra calls.
      expect({ name, calls: pod.shim.stats.calls }).toEqual({ name, calls: poolCalls });
      expect(pod.shim.stats.maxInFlight).toBeLessThanOrEqual(1);
    }
    // The demo's runtime-rs + QEMU shims are never scraped (they would crash) and the unmapped VM's
    // numbers belong to no pod; every other shim is scraped once per collection.
    // A runc pod (no RuntimeClass) has no VM and no shim.
    const expected = Object.fromEntries(
      DEMO_SCENARIO.pods
        .filter((p) => p.runtimeClassName !== null)
        .map((p) => {
          const key = `${p.namespace ?? 'ci'}/${p.name}`;
          const skipped = (p.runtime === 'rs' && p.hypervisor === 'qemu') || p.name === 'orphan';
          return [key, skipped ? 0 : collections];
        }),
    );
    expect(seen).toEqual(expected);
  });
});
