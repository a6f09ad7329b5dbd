import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { CounterState, type CounterOptions } from '../../src/translate/counters.ts';

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
  test('a change of basis adds nothing; a collection where the workload ran ahead adds nothing', () => {
    const s = new CounterState();
    expect(collect(s, () => s.updateDifference('p', 'o', 'e', 'containers', 100, 80))).toBe(20);
    expect(collect(s, () => s.updateDifference('p', 'o', 'e', 'containers', 110, 85))).toBe(25);
    // The guest total is 30 above the containers: switching to it must not drop the overhead.
    expect(collect(s, () => s.updateDifference('p', 'o', 'e', 'guest', 112, 116))).toBe(25);
    expect(collect(s, () => s.updateDifference('p', 'o', 'e', 'guest', 122, 120))).toBe(31);
    // Skew: the workload ran ahead of the host for one collection (+1 host, +4 guest).
    expect(collect(s, () => s.updateDifference('p', 'o', 'e', 'guest', 123, 124))).toBe(31);
    // Then the increments are followed again: +7 host, +1 guest.
    expect(collect(s, () => s.updateDifference('p', 'o', 'e', 'guest', 130, 125))).toBe(37);
  });

  test('one inflated workload sample does not freeze the overhead (no running maximum)', () => {
    const s = new CounterState();
    collect(s, () => s.updateDifference('p', 'o', 'e', 'containers', 100, 76));
    // The workload jumps by 1000 in one collection: that collection adds nothing...
    expect(collect(s, () => s.updateDifference('p', 'o', 'e', 'containers', 101, 1076))).toBe(24);
    // ...and the host's next 150 s of overhead are there at once.
    expect(collect(s, () => s.updateDifference('p', 'o', 'e', 'containers', 251, 1076))).toBe(174);
  });

  test('hold measures the next increments over both collections; skip takes new baselines and adds nothing', () => {
    const s = new CounterState();
    collect(s, () => s.updateDifference('p', 'o', 'e', 'containers', 100, 80));
    expect(collect(s, () => s.updateDifference('p', 'o', 'e', 'containers', 110, 80, 'hold'))).toBe(20);
    // Host +20, workload +15 over the two collections.
    expect(collect(s, () => s.updateDifference('p', 'o', 'e', 'containers', 120, 95))).toBe(25);
    expect(collect(s, () => s.updateDifference('p', 'o', 'e', 'containers', 130, 5, 'skip'))).toBe(25);
    expect(collect(s, () => s.updateDifference('p', 'o', 'e', 'containers', 140, 8))).toBe(32);
  });
});

describe('CounterState.follow: plausibility bound', () => {
  const at = (s: CounterState, ms: number, fn: () => unknown): void => {
    s.beginCollection(ms);
    fn();
    s.endCollection();
  };
  const cpu = (value: number) => ({ source: 'kubelet', value });
  const bounded = { maxPerSecond: 4 * 1.5 }; // a 4-CPU node

  test('an increase beyond elapsed × rate (+ slack) is refused and adds nothing; the next honest sample follows', () => {
    const s = new CounterState();
    at(s, 0, () => s.follow('p', 'k', 'e', [cpu(100)], bounded));
    let outcome;
    at(s, 15_000, () => (outcome = s.follow('p', 'k', 'e', [cpu(2 ** 40)], bounded)));
    expect(outcome).toEqual({ effect: 'refused', published: 100 });
    at(s, 30_000, () => (outcome = s.follow('p', 'k', 'e', [cpu(130)], bounded)));
    expect(outcome).toEqual({ effect: 'applied', published: 130 });
  });

  test('within the bound an increase is followed', () => {
    const s = new CounterState();
    at(s, 0, () => s.follow('p', 'k', 'e', [cpu(100)], bounded));
    let outcome;
    // 15 s + 10 s slack at 6 cores: up to 150.
    at(s, 15_000, () => (outcome = s.follow('p', 'k', 'e', [cpu(250)], bounded)));
    expect(outcome).toEqual({ effect: 'applied', published: 250 });
  });

  test('a source that really moved (a refused value, then one continuing it) is followed from there', () => {
    const s = new CounterState();
    at(s, 0, () => s.follow('p', 'k', 'e', [cpu(100)], bounded));
    at(s, 15_000, () => s.follow('p', 'k', 'e', [cpu(100_000)], bounded));
    let outcome;
    at(s, 30_000, () => (outcome = s.follow('p', 'k', 'e', [cpu(100_010)], bounded)));
    expect(outcome).toEqual({ effect: 'applied', published: 110 });
  });

  test('a spike that comes back down is a rebase, not a new baseline to climb from again', () => {
    const s = new CounterState();
    at(s, 0, () => s.follow('p', 'k', 'e', [cpu(100)], bounded));
    at(s, 15_000, () => s.follow('p', 'k', 'e', [cpu(110)], bounded));
    at(s, 30_000, () => s.follow('p', 'k', 'e', [cpu(200)], bounded)); // +90: plausible, followed
    let outcome;
    at(s, 45_000, () => (outcome = s.follow('p', 'k', 'e', [cpu(125)], bounded)));
    expect(outcome).toEqual({ effect: 'rebased', published: 200 });
    at(s, 60_000, () => (outcome = s.follow('p', 'k', 'e', [cpu(140)], bounded)));
    expect(outcome).toEqual({ effect: 'applied', published: 215 });
  });
});

describe('CounterState.follow: the first sample of a life', () => {
  const cpu = (value: number) => ({ source: 'kubelet', value });
  // A 4-CPU node; the container started 60 s before the collection at 100 s: up to 6 × (60 + 10) = 420.
  const started: CounterOptions = { maxPerSecond: 4 * 1.5, startedAtMs: 40_000 };
  const first = (value: number, options = started) => {
    const s = new CounterState();
    s.beginCollection(100_000);
    return { s, outcome: s.follow('p', 'k', 'e', [cpu(value)], options) };
  };

  test('beyond what the node could have run since the start it is refused, and nothing is published', () => {
    expect(first(2 ** 40).outcome).toEqual({ effect: 'refused', published: undefined });
    expect(first(421).outcome).toEqual({ effect: 'refused', published: undefined });
  });

  test('within it, it is published as it is', () => {
    expect(first(420).outcome).toEqual({ effect: 'applied', published: 420 });
  });

  test('after a refused first sample, the next honest one starts the counter at its raw value', () => {
    const { s } = first(2 ** 40);
    s.beginCollection(115_000);
    expect(s.follow('p', 'k', 'e', [cpu(200)], started)).toEqual({ effect: 'applied', published: 200 });
    s.beginCollection(130_000);
    expect(s.follow('p', 'k', 'e', [cpu(230)], started)).toEqual({ effect: 'applied', published: 230 });
  });

  test('a source that stays beyond the bound is refused at every collection', () => {
    const { s } = first(2 ** 40);
    s.beginCollection(115_000);
    expect(s.follow('p', 'k', 'e', [cpu(2 ** 40 + 10)], started)).toEqual({ effect: 'refused', published: undefined });
  });

  test('a plausible first sample that the next one falls below was a spike: rebased, then the increments are followed', () => {
    const { s } = first(300);
    s.beginCollection(115_000);
    expect(s.follow('p', 'k', 'e', [cpu(120)], started)).toEqual({ effect: 'rebased', published: 300 });
    s.beginCollection(130_000);
    expect(s.follow('p', 'k', 'e', [cpu(150)], started)).toEqual({ effect: 'applied', published: 330 });
  });

  test('a life that starts at zero has nothing to bound; an unknown start leaves the first sample unbounded', () => {
    expect(first(2 ** 40, { ...started, start: 'zero' }).outcome).toEqual({ effect: 'applied', published: 0 });
    expect(first(2 ** 40, { maxPerSecond: 6 }).outcome).toEqual({ effect: 'applied', published: 2 ** 40 });
  });

  test('the chosen one of duplicate candidates is bounded as a first sample too', () => {
    const s = new CounterState();
    s.beginCollection(100_000);
    s.follow('p', 'k', 'e', [cpu(100), cpu(2 ** 40)], started);
    s.beginCollection(115_000);
    // Only the inflated one moved on: it is the one picked, and refused.
    expect(s.follow('p', 'k', 'e', [cpu(100), cpu(2 ** 40 + 10)], started)).toEqual({ effect: 'refused', published: undefined });
  });
});

describe('CounterState.follow: duplicate candidates of one series', () => {
  const cpu = (value: number, timestampMs: number) => ({ source: 'kubelet', value, timestampMs });
  const bounded = { maxPerSecond: 6 };

  test('the candidate that continues the published value is followed, in either order', () => {
    const s = new CounterState();
    s.beginCollection(0);
    s.follow('p', 'k', 'e', [cpu(1000, 1)], bounded);
    s.beginCollection(15_000);
    expect(s.follow('p', 'k', 'e', [cpu(900_000, 15_001), cpu(1010, 15_002)], bounded)).toEqual({ effect: 'applied', published: 1010 });
    s.beginCollection(30_000);
    expect(s.follow('p', 'k', 'e', [cpu(1020, 30_002), cpu(900_000, 30_001)], bounded)).toEqual({ effect: 'applied', published: 1020 });
  });

  test('at first sight, or when both continue, it is undecided and publishes nothing new', () => {
    const s = new CounterState();
    s.beginCollection(0);
    expect(s.follow('p', 'k', 'e', [cpu(900_000, 1), cpu(1000, 2)], bounded)).toEqual({ effect: 'undecided', published: undefined });
    // Next time the live one moved on and the leftover did not: the live one is followed.
    s.beginCollection(15_000);
    expect(s.follow('p', 'k', 'e', [cpu(900_000, 15_001), cpu(1010, 15_002)], bounded)).toEqual({ effect: 'applied', published: 1010 });
    s.beginCollection(30_000);
    expect(s.follow('p', 'k', 'e', [cpu(1015, 30_001), cpu(1020, 30_002)], bounded)).toEqual({ effect: 'undecided', published: 1010 });
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
    const step = fc.tuple(
      fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
      sample,
    );
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
        fc.array(
          fc.tuple(
            fc.constantFrom('containers', 'guest'),
            fc.double({ min: 0, max: 1e6, noNaN: true }),
            fc.double({ min: 0, max: 1e6, noNaN: true }),
          ),
          {
            maxLength: 60,
          },
        ),
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
