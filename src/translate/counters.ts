/**
 * Keeps every republished counter monotonic while its container or pod lives.
 *
 * A counter's identity is a scope (the pod: `namespace/name`), a name within it, and an epoch (which
 * life of the thing it counts: the pod UID, and for a container its restart count). Within one
 * epoch the published value only moves forward by what the current source says was added since its
 * last sample:
 * - a source switch adds nothing at the switch point, then follows the new source's increments;
 * - a sample that is not newer than the last one applied (skewed kubelet timestamps) is ignored;
 * - the first sample of an epoch, which has no baseline, may be at most what the node could have run
 *   since that life started (`startedAtMs`): beyond it, it is refused and nothing is published;
 * - a sample that grew more than the node could have run since the last one (`maxPerSecond`) is
 *   refused: nothing is added, and it is kept as an alternative baseline, so that a source whose
 *   counter really moved (a re-created cgroup) is followed again from the next sample on;
 * - a sample lower than the source's last one is held the same way, unless it still continues the
 *   baseline before the last, or the zero a life starts from (then the last one was a spike, and
 *   this one becomes the baseline).
 *   A source that really reset (a shim restart) is followed from its next sample.
 * Only a new epoch starts the published value again. State lives as long as its scope is seen in
 * collections, so a source that is silent for a while loses nothing.
 */

/** Margin over the node's CPUs for the most CPU time one sample may add (elapsed × CPUs × margin). */
export const PLAUSIBLE_CPU_MARGIN = 1.5;
/** Wall seconds added to the elapsed time: a sample may be taken a little before or after its collection. */
export const PLAUSIBLE_SLACK_SECONDS = 10;

export interface CounterSample {
  /** Which source produced the value; switching it never creates a new series. */
  source: string;
  value: number;
  /** When the source took the sample; undefined for values read now (cgroups, guest). */
  timestampMs?: number;
}

interface CounterCell {
  epoch: string;
  source: string;
  lastRaw: number;
  lastTimestampMs: number | undefined;
  /** Collection time of the last applied sample. */
  lastAtMs: number;
  /** The baseline before `lastRaw`, to tell a spike from a reset. */
  previousRaw?: number;
  /** A refused or held sample: followed instead when the next sample continues it and not `lastRaw`. */
  alternativeRaw?: number;
  published: number;
}

interface DifferenceCell {
  epoch: string;
  basis: string;
  minuend: number;
  subtrahend: number;
  published: number;
}

interface Scope {
  counters: Map<string, CounterCell>;
  differences: Map<string, DifferenceCell>;
  /** Duplicate candidates seen before any could be followed, by counter key. */
  pending: Map<string, PendingCandidates>;
  seenInGeneration: number;
}

interface PendingCandidates {
  epoch: string;
  values: number[];
  atMs: number;
}

export interface CounterOptions {
  /** What a new epoch publishes first; see `update`. */
  start?: CounterStart;
  /** Most the counter can grow per second (for CPU: the node's CPUs × margin); none: unbounded. */
  maxPerSecond?: number;
  /**
   * When the life this epoch counts started (a container's startedAt, a pod's start), in ms: with
   * `maxPerSecond`, the most a raw first sample may be. Unknown: the first sample is unbounded.
   */
  startedAtMs?: number;
}

/**
 * What a sample did: `applied` (followed, or ignored as not newer), `held` (a drop kept aside for a
 * collection), `rebased` (the new baseline of a source that jumped or dropped: nothing added),
 * `refused` (an implausible increase), `undecided` (several candidates, none clearly continuing).
 */
export type CounterEffect = 'applied' | 'held' | 'rebased' | 'refused' | 'undecided';

export interface CounterOutcome {
  effect: CounterEffect;
  /** Undefined only when nothing was ever published for this epoch (undecided or refused at first sight). */
  published: number | undefined;
}

export type CounterStart = 'raw' | 'zero';

export class CounterState {
  private readonly scopes = new Map<string, Scope>();
  private generation = 0;
  private nowMs = 0;

  /**
   * Call once per collection, with its time; scopes not seen by the collection are dropped at
   * `endCollection`. Without a time, bounded counters measure elapsed time by sample timestamps only.
   */
  beginCollection(atMs = this.nowMs): void {
    this.generation++;
    this.nowMs = atMs;
  }

  /** Marks a scope (a pod) as alive in this collection and returns its cells. */
  private scope(name: string): Scope {
    let scope = this.scopes.get(name);
    if (scope === undefined) {
      scope = { counters: new Map(), differences: new Map(), pending: new Map(), seenInGeneration: this.generation };
      this.scopes.set(name, scope);
    }
    scope.seenInGeneration = this.generation;
    return scope;
  }

  /** Keeps a scope's state through a collection that has nothing to add to it. */
  keep(scope: string): void {
    this.scope(scope);
  }

  /**
   * Applies a sample and returns the value to publish.
   * `start` says what a new epoch publishes first: the raw value when the source counts the same
   * life (the kubelet's own container counter), or zero when it does not (a VM-wide estimate).
   */
  update(scope: string, key: string, epoch: string, sample: CounterSample, start: CounterStart = 'raw'): number {
    return this.follow(scope, key, epoch, [sample], { start }).published!;
  }

  /**
   * Applies one sample, or picks among several candidates of one series (a kubelet that serves the
   * same series twice, kubernetes#134518): the one that continues what was published. Several that
   * do, or none, is `undecided` and changes nothing; at first sight the candidates are remembered,
   * and the one that alone moved on from them by the next collection is followed.
   */
  follow(scope: string, key: string, epoch: string, candidates: readonly CounterSample[], options: CounterOptions = {}): CounterOutcome {
    const { counters, pending } = this.scope(scope);
    const cell = counters.get(key);
    const current = cell !== undefined && cell.epoch === epoch ? cell : undefined;
    const bound = (from: { lastAtMs: number; lastTimestampMs: number | undefined } | undefined, sample: CounterSample): number =>
      boundOf(options.maxPerSecond, from, sample, this.nowMs);
    let sample = candidates[0];
    if (sample === undefined) return { effect: 'undecided', published: current?.published };
    if (candidates.length > 1) {
      const chosen =
        current !== undefined && current.source === sample.source
          ? only(
              candidates.filter(
                (c) => continues(c.value, current.lastRaw, bound(current, c)) && !isNotNewer(c.timestampMs, current.lastTimestampMs),
              ),
            )
          : this.movedFromPending(pending.get(key), epoch, candidates, options.maxPerSecond);
      pending.delete(key);
      if (chosen === undefined) {
        if (current === undefined || current.source !== sample.source)
          pending.set(key, { epoch, values: candidates.map((c) => c.value), atMs: this.nowMs });
        return { effect: 'undecided', published: current?.published };
      }
      sample = chosen;
    } else {
      pending.delete(key);
    }
    if (current === undefined) {
      // No baseline to refuse it against later: a raw start is bounded by the life it counts.
      if (options.start !== 'zero' && sample.value > bound(startOf(options.startedAtMs), sample)) {
        return { effect: 'refused', published: undefined };
      }
      const published = options.start === 'zero' ? 0 : Math.max(0, sample.value);
      // A life's counter starts from zero: one that falls back below its first sample found that one a spike.
      counters.set(key, {
        epoch,
        source: sample.source,
        lastRaw: sample.value,
        lastTimestampMs: sample.timestampMs,
        lastAtMs: this.nowMs,
        previousRaw: 0,
        published,
      });
      return { effect: 'applied', published };
    }
    if (current.source !== sample.source) {
      rebase(current, sample, this.nowMs);
      current.source = sample.source;
      return { effect: 'rebased', published: current.published };
    }
    if (isNotNewer(sample.timestampMs, current.lastTimestampMs)) return { effect: 'applied', published: current.published };
    return { effect: this.step(current, sample, bound(current, sample)), published: current.published };
  }

  /** One sample of the source a cell follows. */
  private step(cell: CounterCell, sample: CounterSample, bound: number): CounterEffect {
    const value = sample.value;
    if (continues(value, cell.lastRaw, bound)) {
      cell.published += value - cell.lastRaw;
      advance(cell, sample, this.nowMs);
      return 'applied';
    }
    if (cell.alternativeRaw !== undefined && continues(value, cell.alternativeRaw, bound)) {
      // The source moved to the kept-aside value last time and went on from there.
      cell.published += value - cell.alternativeRaw;
      rebase(cell, sample, this.nowMs);
      return 'applied';
    }
    if (value < cell.lastRaw && cell.previousRaw !== undefined && value >= cell.previousRaw) {
      // Below the last sample but not below the one before: the last one was a spike.
      const spike = cell.lastRaw;
      rebase(cell, sample, this.nowMs);
      cell.alternativeRaw = spike;
      return 'rebased';
    }
    cell.alternativeRaw = value;
    return value < cell.lastRaw ? 'held' : 'refused';
  }

  /**
   * The one candidate that moved on from a value remembered at first sight (the closest one below
   * it), within the bound; a leftover series that did not move is not it.
   */
  private movedFromPending(
    remembered: PendingCandidates | undefined,
    epoch: string,
    candidates: readonly CounterSample[],
    maxPerSecond: number | undefined,
  ): CounterSample | undefined {
    if (remembered === undefined || remembered.epoch !== epoch) return undefined;
    const since = { lastAtMs: remembered.atMs, lastTimestampMs: undefined };
    return only(
      candidates.filter((c) => {
        const below = remembered.values.filter((v) => v <= c.value);
        if (below.length === 0) return false;
        const base = Math.max(...below);
        return c.value > base && continues(c.value, base, boundOf(maxPerSecond, since, c, this.nowMs));
      }),
    );
  }

  /**
   * A counter derived as the difference of two counters (host − workload). It follows the
   * difference of their increments while both are measured on the same basis, so a change of basis
   * (e.g. Σ containers ↔ guest total) adds nothing instead of a jump. A collection where the
   * workload grew more than the host adds nothing (no running maximum: a workload outlier cannot
   * freeze the overhead; it only costs that one collection).
   * `hold`: an input refused or held its sample, so its next increment spans two collections:
   * keep the old baselines, to measure both over the same span. `skip`: an input jumped to a new
   * baseline: take the new baselines and add nothing.
   */
  updateDifference(
    scope: string,
    key: string,
    epoch: string,
    basis: string,
    minuend: number,
    subtrahend: number,
    inputs: 'follow' | 'hold' | 'skip' = 'follow',
  ): number {
    const cells = this.scope(scope).differences;
    const cell = cells.get(key);
    if (cell === undefined || cell.epoch !== epoch) {
      const published = Math.max(0, minuend - subtrahend);
      cells.set(key, { epoch, basis, minuend, subtrahend, published });
      return published;
    }
    if (inputs === 'hold' && cell.basis === basis) return cell.published;
    if (cell.basis === basis && inputs === 'follow') {
      cell.published += Math.max(0, minuend - cell.minuend - (subtrahend - cell.subtrahend));
    }
    cell.basis = basis;
    cell.minuend = minuend;
    cell.subtrahend = subtrahend;
    return cell.published;
  }

  /** The epoch and value published last for a counter, whatever its epoch. */
  peek(scope: string, key: string): { epoch: string; published: number } | undefined {
    const cell = this.scopes.get(scope)?.counters.get(key);
    return cell === undefined ? undefined : { epoch: cell.epoch, published: cell.published };
  }

  /**
   * An accumulator within an epoch: adds `amount` and returns the total. Used to remember what
   * restarted containers had counted, so a pod-level difference does not jump at a restart.
   */
  accumulate(scope: string, key: string, epoch: string, amount: number): number {
    const cells = this.scope(scope).counters;
    const cell = cells.get(key);
    if (cell === undefined || cell.epoch !== epoch) {
      cells.set(key, { epoch, source: 'accumulator', lastRaw: 0, lastTimestampMs: undefined, lastAtMs: this.nowMs, published: amount });
      return amount;
    }
    cell.published += amount;
    return cell.published;
  }

  /** Drops a counter, e.g. once a restarted container's count has been retired. */
  forget(scope: string, key: string): void {
    this.scopes.get(scope)?.counters.delete(key);
    this.scopes.get(scope)?.pending.delete(key);
  }

  /** Forgets every scope (pod) that this collection did not see. */
  endCollection(): void {
    for (const [name, scope] of this.scopes) {
      if (scope.seenInGeneration !== this.generation) this.scopes.delete(name);
    }
  }

  /** Number of live cells, for leak checks. */
  get size(): number {
    let size = 0;
    for (const scope of this.scopes.values()) size += scope.counters.size + scope.differences.size + scope.pending.size;
    return size;
  }
}

function isNotNewer(timestampMs: number | undefined, lastMs: number | undefined): boolean {
  return timestampMs !== undefined && lastMs !== undefined && timestampMs <= lastMs;
}

/** `value` goes on from `base` by no more than `bound`. */
function continues(value: number, base: number, bound: number): boolean {
  return value >= base && value - base <= bound;
}

/** The single element, or undefined for none or several. */
function only<T>(items: readonly T[]): T | undefined {
  return items.length === 1 ? items[0] : undefined;
}

/**
 * The most a sample may add since the last applied one: the rate over the elapsed time (by the
 * collections' clock, or the samples' own timestamps when those span more) plus the slack.
 */
function boundOf(
  maxPerSecond: number | undefined,
  last: { lastAtMs: number; lastTimestampMs: number | undefined } | undefined,
  sample: CounterSample,
  nowMs: number,
): number {
  if (maxPerSecond === undefined || last === undefined) return Infinity;
  const bySamples = sample.timestampMs !== undefined && last.lastTimestampMs !== undefined ? sample.timestampMs - last.lastTimestampMs : 0;
  const elapsedSeconds = Math.max(nowMs - last.lastAtMs, bySamples, 0) / 1000;
  return maxPerSecond * (elapsedSeconds + PLAUSIBLE_SLACK_SECONDS);
}

/** A life's start as the baseline a first sample is bounded from: zero CPU time at that moment. */
function startOf(startedAtMs: number | undefined): { lastAtMs: number; lastTimestampMs: number } | undefined {
  return startedAtMs === undefined ? undefined : { lastAtMs: startedAtMs, lastTimestampMs: startedAtMs };
}

/** Moves a cell on to a sample that continued its baseline. */
function advance(cell: CounterCell, sample: CounterSample, nowMs: number): void {
  cell.previousRaw = cell.lastRaw;
  cell.lastRaw = sample.value;
  cell.lastTimestampMs = sample.timestampMs;
  cell.lastAtMs = nowMs;
  delete cell.alternativeRaw;
}

/** Makes a sample the new baseline of a cell, with no history before it. */
function rebase(cell: CounterCell, sample: CounterSample, nowMs: number): void {
  advance(cell, sample, nowMs);
  delete cell.previousRaw;
}
