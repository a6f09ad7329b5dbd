/**
 * Guest values between shim calls (--shim.interval): a re-used answer is not a new sample for the
 * counters, the next fresh one is bounded by the whole time since its call, the overhead measures
 * host and guest over the same span, the age is published, and an answer past the bound is stale.
 */
import { describe, expect, test } from 'vitest';
import { correlate, type SandboxObservation } from '../../src/translate/correlate.ts';
import { CounterState } from '../../src/translate/counters.ts';
import { HeldAnswers, STALE_AFTER_INTERVALS } from '../../src/translate/held-answers.ts';
import type { PodSnapshot } from '../../src/translate/snapshot.ts';
import { NOW, cgroup, guest, input, pod, sandboxFor, shimOk } from '../support/correlation-builders.ts';

const SCRAPE_MS = 15_000;
const INTERVAL_MS = 60_000;

interface Step {
  /** Collection time. */
  atMs: number;
  /** The guest's busy CPU seconds in the answer used, and when the shim gave it. */
  guestCpu: number;
  answeredAtMs: number;
  hostCpu?: number;
}

/** Collections of one pod (two containers, no kubelet: the overhead's basis is the guest). */
function run(steps: readonly Step[], hostCpus = 2): PodSnapshot[] {
  const counters = new CounterState();
  const p = pod('b', ['a', 'b']);
  return steps.map((step) => {
    const reused = step.answeredAtMs < step.atMs;
    const extra: Partial<SandboxObservation> = reused ? { shimAnsweredAtMs: step.answeredAtMs } : {};
    counters.beginCollection(step.atMs);
    const result = correlate(
      input({
        nowMs: step.atMs,
        hostCpus,
        pods: [p],
        kubelet: undefined,
        podCgroups: new Map([[p.uid, cgroup(step.hostCpu ?? 1000, 3 * 2 ** 30)]]),
        sandboxes: [sandboxFor(p, 's', shimOk(guest(step.guestCpu)), extra)],
      }),
      counters,
    );
    counters.endCollection();
    return result.pods[0]!;
  });
}

/** A fresh answer at 0 and at 60 s, re-used at 15, 30 and 45 s. */
function minute(first: number, second: number, host: (k: number) => number = () => 1000): Step[] {
  return [0, 1, 2, 3, 4].map((k) => ({
    atMs: NOW + k * SCRAPE_MS,
    guestCpu: k < 4 ? first : second,
    answeredAtMs: k < 4 ? NOW : NOW + 4 * SCRAPE_MS,
    hostCpu: host(k),
  }));
}

describe('guest values re-used between shim calls', () => {
  test('a fresh sample after 60 s is bounded by those 60 s, not by the time since the last collection', () => {
    // 2 host CPUs × 1.5 margin = 3 CPU-seconds per second; 60 s (+10 s slack) allow 210, 15 s only 75.
    const pods = run(minute(100, 295));
    expect(pods.map((p) => p.guestCpuSeconds)).toEqual([100, 100, 100, 100, 295]);
    expect(pods.flatMap((p) => p.gaps)).not.toContain('implausible_increase');
  });

  test('an increase beyond what 60 s allow is still refused', () => {
    const pods = run(minute(100, 100 + 3 * 75));
    expect(pods[4]!.guestCpuSeconds).toBe(100);
    expect(pods[4]!.gaps).toContain('implausible_increase');
  });

  test('the overhead on the guest basis takes host and guest over the same span: from one call to the next', () => {
    // Host +10 s per collection; the guest +35 s over the minute: the overhead grew by 40 − 35 = 5.
    const pods = run(minute(60, 95, (k) => 100 + 10 * k));
    expect(pods.map((p) => p.overheadCpuSeconds)).toEqual([40, 40, 40, 40, 45]);
  });

  test('fresh answers are followed whatever the clock says (a frozen clock in tests)', () => {
    const frozen = [5, 7, 9].map((guestCpu) => ({ atMs: NOW, guestCpu, answeredAtMs: NOW }));
    expect(run(frozen).map((p) => p.guestCpuSeconds)).toEqual([5, 7, 9]);
  });

  test('the age of the answer is published with the guest values', () => {
    expect(run(minute(1, 2)).map((p) => p.guestSampleAgeSeconds)).toEqual([0, 15, 30, 45, 0]);
  });
});

describe('HeldAnswers', () => {
  const stale = STALE_AFTER_INTERVALS * INTERVAL_MS;

  test('an answer is re-used up to the stale bound, then is stale', () => {
    const held = new HeldAnswers<string>(stale);
    held.keep('s', 'answer', NOW);
    expect(held.get('s', NOW + stale)).toEqual({ answer: 'answer', atMs: NOW });
    expect(held.get('s', NOW + stale + 1)).toBe('stale');
  });

  test('a dropped answer or a sandbox gone leaves nothing', () => {
    const held = new HeldAnswers<string>(stale);
    held.keep('a', 'x', NOW);
    held.keep('b', 'y', NOW);
    held.drop('a');
    held.keepOnly(new Set(['a']));
    expect([held.get('a', NOW), held.get('b', NOW)]).toEqual([undefined, undefined]);
  });
});
