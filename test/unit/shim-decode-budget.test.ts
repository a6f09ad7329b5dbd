/**
 * A shim payload past its decode work budget (the parser's PromParseError of kind `budget`), with a
 * fake decoder that throws it for one sandbox: that pod gets the gap shim_decode_budget, the error
 * is counted as decode_budget and logged with the socket, and the other pod is untouched. The same
 * gap for a decode that has not finished when the collection must answer.
 */

import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { silentLogger } from '../../src/log.ts';
import type { LabPodScenario } from '../../src/lab/node-lab.ts';
import { PromParseError } from '../../src/prom-text/index.ts';
import { startLabExporter, type LabExporter } from '../support/lab-exporter.ts';
import { podSeries } from '../support/scrape.ts';

/** The hypervisor whose payloads the fake decoder refuses as over budget (switched on per test). */
const overBudget = vi.hoisted(() => ({ hypervisor: undefined as string | undefined }));
/** The hypervisor whose payloads the decode thread never finishes. */
const stuck = vi.hoisted(() => ({ hypervisor: undefined as string | undefined }));
vi.mock('../../src/translate/kata-decode.ts', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/translate/kata-decode.ts')>();
  return {
    ...original,
    decodeShimMetrics: (...args: Parameters<typeof original.decodeShimMetrics>) => {
      if (args[2]?.hypervisor !== undefined && args[2].hypervisor === overBudget.hypervisor) {
        throw new PromParseError('budget', 1200, 'decode work budget exhausted');
      }
      return original.decodeShimMetrics(...args);
    },
  };
});

// The fake decoder lives in this thread: the exporter decodes here instead of on its decode thread.
vi.mock('../../src/shim-decoder.ts', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/shim-decoder.ts')>();
  const { inlineShimDecoder } = original;
  class InThread {
    decode: typeof inlineShimDecoder.decode = (body, input) =>
      input.hypervisor !== undefined && input.hypervisor === stuck.hypervisor
        ? new Promise(() => undefined)
        : inlineShimDecoder.decode(body, input);
    close = inlineShimDecoder.close;
  }
  return { ...original, WorkerShimDecoder: InThread };
});

const pods: LabPodScenario[] = [
  { name: 'greedy', hypervisor: 'cloud-hypervisor' },
  { name: 'steady', hypervisor: 'qemu' },
];

describe('a shim payload over its decode budget', () => {
  let bridge: LabExporter;
  const nowMs = Date.now();

  beforeAll(async () => {
    bridge = await startLabExporter({ pods }, { now: () => nowMs });
  }, 60_000);

  afterAll(async () => {
    await bridge?.close();
  });

  test('gap shim_decode_budget, counted as decode_budget, a warning naming the socket; the other pod untouched', async () => {
    const before = await bridge.scrape();
    expect(podSeries(before, 'pod_metrics_gap', 'greedy').size).toBe(0);
    const warn = vi.spyOn(silentLogger, 'warn');
    overBudget.hypervisor = 'cloud-hypervisor';
    try {
      const after = await bridge.scrape();
      expect([...podSeries(after, 'pod_metrics_gap', 'greedy').keys()]).toEqual([
        'kata_bridge_pod_metrics_gap{namespace="ci",pod="greedy",reason="shim_decode_budget"}',
      ]);
      expect(podSeries(after, 'pod_guest_cpu_usage_seconds_total', 'greedy').size).toBe(0);
      expect(after.get('kata_bridge_shim_scrape_errors_total{reason="decode_budget"}')).toBe(1);
      expect(podSeries(after, '', 'steady')).toEqual(podSeries(before, '', 'steady'));
      const sandboxId = bridge.lab.pods.get('ci/greedy')!.sandboxId;
      const logged = warn.mock.calls.map(([fields]) => fields as unknown as Record<string, unknown>);
      expect(logged).toContainEqual(
        expect.objectContaining({ sandbox: sandboxId, reason: 'shim_decode_budget', socket: expect.stringContaining(sandboxId) }),
      );
    } finally {
      overBudget.hypervisor = undefined;
      warn.mockRestore();
    }
  });
});

describe('a decode that has not finished when the collection must answer', () => {
  let bridge: LabExporter;
  const nowMs = Date.now();

  beforeAll(async () => {
    bridge = await startLabExporter(
      { pods },
      { flags: ['--collect.deadline=2s', '--shim.timeout=1s', '--kubelet.timeout=1s'], now: () => nowMs },
    );
  }, 60_000);

  afterAll(async () => {
    await bridge?.close();
  });

  test('is not waited for: the collection answers, that pod gets shim_decode_budget, the other pod untouched', async () => {
    const before = await bridge.scrape();
    stuck.hypervisor = 'cloud-hypervisor';
    try {
      const after = await bridge.scrape();
      expect([...podSeries(after, 'pod_metrics_gap', 'greedy').keys()]).toEqual([
        'kata_bridge_pod_metrics_gap{namespace="ci",pod="greedy",reason="shim_decode_budget"}',
      ]);
      expect(after.get('kata_bridge_shim_scrape_errors_total{reason="decode_budget"}')).toBe(1);
      expect(podSeries(after, '', 'steady')).toEqual(podSeries(before, '', 'steady'));
    } finally {
      stuck.hypervisor = undefined;
    }
  });
});
