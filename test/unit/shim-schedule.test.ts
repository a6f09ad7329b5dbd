/** The cadence, order and backoff of shim calls (src/translate/shim-schedule.ts). */
import { describe, expect, it } from 'vitest';
import { ShimSchedule, spreadOffsetMs, type ShimCallEnd, type ShimStanding } from '../../src/translate/shim-schedule.ts';

const SCRAPE_MS = 15_000;
const INTERVAL_MS = 60_000;
const T0 = 1_700_000_000_000;

/**
 * Runs collections every 15 s: in each, the shim is asked unless backed off or not due, and ends
 * as `ends` says; returns its standing per collection.
 */
function standings(ends: readonly ShimCallEnd[], collections: number, intervalMs = 0): ShimStanding[] {
  const schedule = new ShimSchedule(intervalMs);
  const seen: ShimStanding[] = [];
  let call = 0;
  for (let i = 0; i < collections; i++) {
    schedule.beginCollection(T0 + i * SCRAPE_MS);
    const standing = schedule.standing('s');
    seen.push(standing);
    if (standing !== 'backed_off' && standing !== 'not_due') schedule.record('s', ends[Math.min(call++, ends.length - 1)]!);
  }
  return seen;
}

const sandboxIds = (n: number): string[] =>
  Array.from({ length: n }, (_, i) => `${i.toString(16).padStart(8, '0')}a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e`);

/**
 * Collections at `atMs` over honest shims (every call answered): the ids called in each. Sandboxes
 * of `ids(k)` are present from collection k on.
 */
function callsPerCollection(
  times: readonly number[],
  ids: (collection: number) => readonly string[],
  intervalMs = INTERVAL_MS,
): string[][] {
  const schedule = new ShimSchedule(intervalMs);
  return times.map((atMs, k) => {
    schedule.beginCollection(atMs);
    const called = ids(k).filter((id) => schedule.standing(id) !== 'not_due');
    for (const id of called) schedule.record(id, 'answered');
    return called;
  });
}

describe('ShimSchedule: cadence (--shim.interval)', () => {
  it('a sandbox seen for the first time is called at once, at start and later alike', () => {
    const early = sandboxIds(3);
    const late = 'f'.repeat(64);
    const times = Array.from({ length: 6 }, (_, k) => T0 + k * SCRAPE_MS);
    const calls = callsPerCollection(times, (k) => (k < 3 ? early : [...early, late]));
    expect(calls[0]).toEqual(early);
    expect(calls[3]).toContain(late);
  });

  it('over each interval after the first, every sandbox is called exactly once, spread over the collections (no burst)', () => {
    const n = 400;
    const ids = sandboxIds(n);
    // 20 minutes of collections every 15 s.
    const times = Array.from({ length: 81 }, (_, k) => T0 + k * SCRAPE_MS);
    const calls = callsPerCollection(times, () => ids);
    const perWindow = INTERVAL_MS / SCRAPE_MS;
    // First refreshes fall in collections 4 (offset 0) to 8 (offset just below the interval): from
    // collection 5 on, each window of one interval.
    for (let start = 5; start + perWindow <= calls.length; start += perWindow) {
      const window = calls.slice(start, start + perWindow).flat();
      expect(window.length).toBe(n);
      expect(new Set(window).size).toBe(n);
    }
    // Each collection after start calls about N × 15 s / 60 s = 100, never the whole node.
    const perCollection = calls.slice(5).map((c) => c.length);
    expect(Math.max(...perCollection)).toBeLessThanOrEqual((1.3 * (n * SCRAPE_MS)) / INTERVAL_MS);
    expect(Math.min(...perCollection)).toBeGreaterThanOrEqual((0.7 * (n * SCRAPE_MS)) / INTERVAL_MS);
  });

  it('never calls an answering shim twice within an interval, with scrape times a few ms early or late', () => {
    const ids = sandboxIds(50);
    const jitter = [0, -4, 3, -2, 5, -5, 1];
    const times = Array.from({ length: 60 }, (_, k) => T0 + k * SCRAPE_MS + jitter[k % jitter.length]!);
    const calls = callsPerCollection(times, () => ids);
    for (const id of ids) {
      const at = calls.flatMap((called, k) => (called.includes(id) ? [times[k]!] : []));
      const gaps = at.slice(1).map((t, i) => t - at[i]!);
      // The first refresh comes one interval plus the sandbox's offset after the first call.
      expect(gaps[0]).toBeGreaterThanOrEqual(INTERVAL_MS - 10);
      expect(gaps[0]).toBeLessThan(2 * INTERVAL_MS + SCRAPE_MS);
      // After it, every 4th collection: jitter does not push a refresh by a whole scrape interval.
      for (const gap of gaps.slice(1)) expect(Math.abs(gap - INTERVAL_MS)).toBeLessThanOrEqual(10);
    }
  });

  it('a scrape interval longer than the shim interval calls every shim at every collection', () => {
    const ids = sandboxIds(5);
    const times = Array.from({ length: 5 }, (_, k) => T0 + k * 3 * INTERVAL_MS);
    expect(callsPerCollection(times, () => ids)).toEqual(times.map(() => ids));
  });

  it('a 0s interval calls every shim at every collection', () => {
    expect(standings(['answered'], 4, 0)).toEqual(['new', 'trusted', 'trusted', 'trusted']);
  });

  it('a failing shim is retried by its backoff, not its interval; an honest one by its interval', () => {
    const honest = standings(['answered'], 13, INTERVAL_MS);
    const honestCalls = honest.flatMap((s, i) => (s === 'not_due' ? [] : [i]));
    // First call at once, then after the interval plus the id's offset, then every 4 collections.
    const first = Math.ceil((INTERVAL_MS + spreadOffsetMs('s', INTERVAL_MS)) / SCRAPE_MS);
    expect(honestCalls).toEqual([0, first, first + 4, first + 8].filter((i) => i < 13));
    // Timeouts: asked after 1, 2, 4, then every 8 collections, whatever the interval.
    const timingOut = standings(['timed_out'], 24, INTERVAL_MS);
    expect(timingOut.flatMap((s, i) => (s === 'backed_off' ? [] : [i]))).toEqual([0, 1, 3, 7, 15, 23]);
    // Other failures: asked at every collection.
    expect(standings(['answered', 'failed', 'failed'], 3 + first, INTERVAL_MS).slice(first)).toEqual(['trusted', 'retry', 'retry']);
  });

  it('an answer after failures puts the shim back on its interval', () => {
    const seen = standings(['timed_out', 'answered'], 8, INTERVAL_MS);
    expect(seen.slice(0, 3)).toEqual(['new', 'retry', 'not_due']);
    expect(seen.slice(2).every((s) => s === 'not_due')).toBe(true);
  });

  it('counts the calls it records, by how they ended', () => {
    const schedule = new ShimSchedule(INTERVAL_MS);
    schedule.beginCollection(T0);
    schedule.record('a', 'answered');
    schedule.record('b', 'timed_out');
    schedule.record('c', 'failed');
    schedule.record('d', 'answered');
    expect(schedule.callCounts()).toEqual({ answered: 2, timed_out: 1, failed: 1 });
  });

  it('spreads ids over [0, interval), the same id always alike', () => {
    const offsets = sandboxIds(1000).map((id) => spreadOffsetMs(id, INTERVAL_MS));
    expect(offsets.every((o) => o >= 0 && o < INTERVAL_MS)).toBe(true);
    expect(spreadOffsetMs('abc', INTERVAL_MS)).toBe(spreadOffsetMs('abc', INTERVAL_MS));
    // Each quarter of the interval gets about a quarter of the ids.
    const quarters = [0, 1, 2, 3].map((q) => offsets.filter((o) => Math.floor((4 * o) / INTERVAL_MS) === q).length);
    for (const count of quarters) expect(count).toBeGreaterThan(200);
  });
});

describe('ShimSchedule: order and backoff', () => {
  it('a shim that always answers is new once, then trusted', () => {
    expect(standings(['answered'], 3)).toEqual(['new', 'trusted', 'trusted']);
  });

  it('a shim that keeps timing out is retried after 1, 2, 4, then every 8 collections', () => {
    const seen = standings(['timed_out'], 32);
    const asked = seen.flatMap((s, i) => (s === 'backed_off' ? [] : [i]));
    expect(asked).toEqual([0, 1, 3, 7, 15, 23, 31]);
    expect(seen.slice(0, 4)).toEqual(['new', 'retry', 'backed_off', 'retry']);
  });

  it('a shim that answers again after a timeout is asked every collection, but never trusted again', () => {
    expect(standings(['answered', 'timed_out', 'answered'], 5)).toEqual(['new', 'trusted', 'retry', 'recovered', 'recovered']);
  });

  it('other failures (refused, malformed, over the cap) are retried every collection and do not take trust away for good', () => {
    expect(standings(['answered', 'failed', 'failed', 'answered'], 5)).toEqual(['new', 'trusted', 'retry', 'retry', 'trusted']);
  });

  it('an answer ends the backoff: the next timeout starts again at one collection', () => {
    const seen = standings(['timed_out', 'timed_out', 'answered', 'timed_out'], 6);
    expect(seen).toEqual(['new', 'retry', 'backed_off', 'retry', 'recovered', 'retry']);
  });

  it('forgets a sandbox that is gone: it comes back as new', () => {
    const schedule = new ShimSchedule(0);
    schedule.beginCollection(T0);
    schedule.record('gone', 'timed_out');
    schedule.record('kept', 'answered');
    schedule.keepOnly(new Set(['kept']));
    schedule.beginCollection(T0 + SCRAPE_MS);
    expect([schedule.standing('gone'), schedule.standing('kept')]).toEqual(['new', 'trusted']);
  });
});
