/**
 * Keeps every republished counter monotonic while its container or pod lives.
 *
 * A counter's identity is a scope (the pod: `namespace/name`), a name within it, and an epoch (which
 * life of the thing it counts: the pod UID, and for a container its restart count). Within one
 * epoch the published value only moves forward by what the current source says was added since its
 * last sample:
 * - a source switch adds nothing at the switch point, then follows the new source's increments;
 * - a sample that is not newer than the last one applied (skewed kubelet timestamps) is ignored;
 * - a sample lower than the source's last one, with a newer time, is a reset of that source (a
 *   shim restart, a re-created cgroup): it becomes the new baseline and adds nothing.
 * Only a new epoch starts the published value again. State lives as long as its scope is seen in
 * collections, so a source that is silent for a while loses nothing.
 */

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
  published: number;
}

interface DifferenceCell {
  epoch: string;
  basis: string;
  minuend: number;
  subtrahend: number;
  /** Accumulated difference of increments; may dip below `published`. */
  sum: number;
  published: number;
}

interface Scope {
  counters: Map<string, CounterCell>;
  differences: Map<string, DifferenceCell>;
  seenInGeneration: number;
}

export type CounterStart = 'raw' | 'zero';

export class CounterState {
  private readonly scopes = new Map<string, Scope>();
  private generation = 0;

  /** Call once per collection; scopes not seen by the collection are dropped at `endCollection`. */
  beginCollection(): void {
    this.generation++;
  }

  /** Marks a scope (a pod) as alive in this collection and returns its cells. */
  private scope(name: string): Scope {
    let scope = this.scopes.get(name);
    if (scope === undefined) {
      scope = { counters: new Map(), differences: new Map(), seenInGeneration: this.generation };
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
    const cells = this.scope(scope).counters;
    const cell = cells.get(key);
    if (cell === undefined || cell.epoch !== epoch) {
      const published = start === 'raw' ? Math.max(0, sample.value) : 0;
      cells.set(key, { epoch, source: sample.source, lastRaw: sample.value, lastTimestampMs: sample.timestampMs, published });
      return published;
    }
    if (cell.source !== sample.source) {
      cell.source = sample.source;
      cell.lastRaw = sample.value;
      cell.lastTimestampMs = sample.timestampMs;
      return cell.published;
    }
    if (isNotNewer(sample.timestampMs, cell.lastTimestampMs)) return cell.published;
    const delta = sample.value - cell.lastRaw;
    if (delta > 0) cell.published += delta;
    cell.lastRaw = sample.value;
    cell.lastTimestampMs = sample.timestampMs;
    return cell.published;
  }

  /**
   * A counter derived as the difference of two counters (host − workload). It accumulates the
   * differences of their increments while both are measured on the same basis, so a change of basis
   * (e.g. Σ containers ↔ guest total) adds nothing instead of a jump, and publishes the running
   * maximum, since a dip is skew between sources, never a reset.
   */
  updateDifference(scope: string, key: string, epoch: string, basis: string, minuend: number, subtrahend: number): number {
    const cells = this.scope(scope).differences;
    const cell = cells.get(key);
    if (cell === undefined || cell.epoch !== epoch) {
      const published = Math.max(0, minuend - subtrahend);
      cells.set(key, { epoch, basis, minuend, subtrahend, sum: published, published });
      return published;
    }
    if (cell.basis === basis) cell.sum += minuend - cell.minuend - (subtrahend - cell.subtrahend);
    cell.basis = basis;
    cell.minuend = minuend;
    cell.subtrahend = subtrahend;
    if (cell.sum > cell.published) cell.published = cell.sum;
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
      cells.set(key, { epoch, source: 'accumulator', lastRaw: 0, lastTimestampMs: undefined, published: amount });
      return amount;
    }
    cell.published += amount;
    return cell.published;
  }

  /** Drops a counter, e.g. once a restarted container's count has been retired. */
  forget(scope: string, key: string): void {
    this.scopes.get(scope)?.counters.delete(key);
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
    for (const scope of this.scopes.values()) size += scope.counters.size + scope.differences.size;
    return size;
  }
}

function isNotNewer(timestampMs: number | undefined, lastMs: number | undefined): boolean {
  return timestampMs !== undefined && lastMs !== undefined && timestampMs <= lastMs;
}
