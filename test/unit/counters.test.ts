import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { CounterState } from '../../src/translate/counters.ts';

function collect(state: CounterState, fn: () => number): number {
  state.beginCollection();
  const value = fn();
  state.endCollection();
  return value;
}

describe('CounterState.update', () => {
  test('follows one source from its raw value', () => {
    const s = new CounterState();
    expect(collect(s, () => s.update('p', 'k', 'e', { source: 'a', value: 10 }))).toBe(10);
    expect(collect(s, () => s.update('p', 'k', 'e', { source: 'a', value: 12.5 }))).toBe(12.5);
  });

  test('a source switch adds nothing at the switch, then follows the new source', () => {
    const s = new CounterState();
    collect(s, () => s.update('p', 'k', 'e', { source: 'kubelet', value: 100 }));
    // The guest total is far above the container's own counter: no jump.
    expect(collect(s, () => s.update('p', 'k', 'e', { source: 'guest', value: 500 }))).toBe(100);
    expect(collect(s, () => s.update('p', 'k', 'e', { source: 'guest', value: 503 }))).toBe(103);
    // Back to a source far below: still no drop.
    expect(collect(s, () => s.update('p', 'k', 'e', { source: 'kubelet', value: 20 }))).toBe(103);
    expect(collect(s, () => s.update('p', 'k', 'e', { source: 'kubelet', value: 21 }))).toBe(104);
  });

  test('a sample not newer than the last applied one is ignored (skewed timestamps)', () => {
    const s = new CounterState();
    collect(s, () => s.update('p', 'k', 'e', { source: 'a', value: 100, timestampMs: 2000 }));
    expect(collect(s, () => s.update('p', 'k', 'e', { source: 'a', value: 95, timestampMs: 1000 }))).toBe(100);
    expect(collect(s, () => s.update('p', 'k', 'e', { source: 'a', value: 105, timestampMs: 3000 }))).toBe(105);
  });

  test('a lower newer sample is a reset of the source: new baseline, no drop', () => {
    const s = new CounterState();
    collect(s, () => s.update('p', 'k', 'e', { source: 'a', value: 100 }));
    expect(collect(s, () => s.update('p', 'k', 'e', { source: 'a', value: 2 }))).toBe(100);
    expect(collect(s, () => s.update('p', 'k', 'e', { source: 'a', value: 7 }))).toBe(105);
  });

  test('a new epoch starts again, from the raw value or from zero', () => {
    const s = new CounterState();
    collect(s, () => s.update('p', 'k', 'e1', { source: 'a', value: 100 }));
    expect(collect(s, () => s.update('p', 'k', 'e2', { source: 'a', value: 3 }))).toBe(3);
    expect(collect(s, () => s.update('p', 'k', 'e3', { source: 'guest', value: 900 }, 'zero'))).toBe(0);
  });

  test('a pod not seen in a collection loses its state; keep() holds it through a gap', () => {
    const s = new CounterState();
    collect(s, () => s.update('pod-a', 'cpu', 'e', { source: 'x', value: 5 }) + s.update('pod-b', 'cpu', 'e', { source: 'x', value: 5 }));
    collect(s, () => {
      s.keep('pod-a');
      return 0;
    });
    expect(s.peek('pod-a', 'cpu')?.published).toBe(5);
    expect(s.peek('pod-b', 'cpu')).toBeUndefined();
    expect(s.size).toBe(1);
  });
});

describe('CounterState.updateDifference', () => {
  test('a change of basis adds nothing; dips are held', () => {
    const s = new CounterState();
    expect(collect(s, () => s.updateDifference('p', 'o', 'e', 'containers', 100, 80))).toBe(20);
    expect(collect(s, () => s.updateDifference('p', 'o', 'e', 'containers', 110, 85))).toBe(25);
    // The guest total is 30 above the containers: switching to it must not drop the overhead.
    expect(collect(s, () => s.updateDifference('p', 'o', 'e', 'guest', 112, 116))).toBe(25);
    expect(collect(s, () => s.updateDifference('p', 'o', 'e', 'guest', 122, 120))).toBe(31);
    // Skew: the workload ran ahead of the host for one collection.
    expect(collect(s, () => s.updateDifference('p', 'o', 'e', 'guest', 123, 124))).toBe(31);
    // 25 at the switch (112 − 116 = −4), now 130 − 125 = 5: 25 + (5 − (−4)) = 34.
    expect(collect(s, () => s.updateDifference('p', 'o', 'e', 'guest', 130, 125))).toBe(34);
  });
});

describe('CounterState properties', () => {
  const sample = fc.record({
    source: fc.constantFrom('kubelet', 'guest', 'cgroup'),
    value: fc.double({ min: 0, max: 1e9, noNaN: true }),
    timestampMs: fc.option(fc.integer({ min: 0, max: 1e9 }), { nil: undefined }),
  });

  test('published values never decrease within an epoch, whatever the sources do', () => {
    // Mostly the same epoch; now and then a restart starts a new one.
    const step = fc.tuple(fc.integer({ min: 0, max: 9 }).map((n) => n === 0), sample);
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const s = new CounterState();
        let epoch = 0;
        let previous: number | undefined;
        for (const [restart, smp] of steps) {
          if (restart) {
            epoch++;
            previous = undefined;
          }
          s.beginCollection();
          const value = s.update('p', 'k', `e${epoch}`, smp);
          s.endCollection();
          expect(value).toBeGreaterThanOrEqual(0);
          if (previous !== undefined) expect(value).toBeGreaterThanOrEqual(previous);
          previous = value;
        }
      }),
    );
  });

  test('a derived difference never decreases within an epoch', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('containers', 'guest'), fc.double({ min: 0, max: 1e6, noNaN: true }), fc.double({ min: 0, max: 1e6, noNaN: true })), {
          maxLength: 60,
        }),
        (steps) => {
          const s = new CounterState();
          let previous = 0;
          for (const [basis, host, workload] of steps) {
            s.beginCollection();
            const value = s.updateDifference('p', 'o', 'e', basis, host, workload);
            s.endCollection();
            expect(value).toBeGreaterThanOrEqual(previous);
            previous = value;
          }
        },
      ),
    );
  });
});
