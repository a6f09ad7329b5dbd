/** The reflector's pure part: how long it waits before the next list/watch after failures. */
import { describe, expect, test } from 'vitest';
import { backoffDelayMs } from '../../src/scrapers/reflector.ts';

describe('backoff', () => {
  // initial 500 ms, cap 30 s; the jitter draw picks a point in [ceiling/2, ceiling].
  test.each([
    [0, 0.7, 0], // after a success: reconnect at once
    [1, 0, 250],
    [1, 1, 500],
    [3, 0.5, 1_500], // ceiling 2000
    [7, 0, 15_000], // 500 × 64 = 32 000, capped at 30 000
    [1000, 1, 30_000], // no overflow however long the outage
  ])('after %i failures with jitter draw %d: %d ms', (failures, draw, expected) => {
    expect(backoffDelayMs(failures, { initialMs: 500, maxMs: 30_000, random: () => draw })).toBe(expected);
  });
});
