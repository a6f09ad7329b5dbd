/** The order of shim calls and the backoff of shims that time out (src/translate/shim-schedule.ts). */
import { describe, expect, it } from 'vitest';
import { ShimSchedule, type ShimCallEnd, type ShimStanding } from '../../src/translate/shim-schedule.ts';

/** Runs collections: in each, the shim is asked unless backed off, and ends as `ends` says; returns its standing per collection. */
function standings(ends: readonly ShimCallEnd[], collections: number): ShimStanding[] {
  const schedule = new ShimSchedule();
  const seen: ShimStanding[] = [];
  let call = 0;
  for (let i = 0; i < collections; i++) {
    schedule.beginCollection();
    const standing = schedule.standing('s');
    seen.push(standing);
    if (standing !== 'backed_off') schedule.record('s', ends[Math.min(call++, ends.length - 1)]!);
  }
  return seen;
}

describe('ShimSchedule', () => {
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
    const schedule = new ShimSchedule();
    schedule.beginCollection();
    schedule.record('gone', 'timed_out');
    schedule.record('kept', 'answered');
    schedule.keepOnly(new Set(['kept']));
    schedule.beginCollection();
    expect([schedule.standing('gone'), schedule.standing('kept')]).toEqual(['new', 'trusted']);
  });
});
