/** The series a parse kept, for duplicate detection. */
import type { PromSample } from './types.ts';
import { WORK } from './work.ts';

const SERIES_TABLE_INITIAL = 2048;
/** Largest table kept between parses (a 32 768-series input); a larger one is dropped after use. */
const SERIES_TABLE_KEPT = 65_536;
/**
 * Different series with one hash compared in one lookup, and in one parse, before the table
 * gives up on hashes for the rest of the parse. With seeded hashes an honest input has none.
 */
export const MAX_COLLISIONS_PER_LOOKUP = 8;
export const MAX_COLLISIONS_PER_PARSE = 256;

/**
 * Kept series as an open-addressing table of (hash, index + 1); equal hashes are compared in
 * full. Typed arrays: a Map here cost more than the rest of the bookkeeping.
 */
export class SeriesTable {
  private hashes = new Int32Array(SERIES_TABLE_INITIAL);
  private refs = new Int32Array(SERIES_TABLE_INITIAL);
  private readonly samples: PromSample[] = [];
  /**
   * Set once hashes collided too often in this parse: series are then found by their exact key
   * (a Map of strings, hashed by V8 with its own per-process seed), linear whatever the input.
   */
  private exact: Map<string, true> | undefined;
  /** The key freeSlot computed in exact mode, for the add that follows it. */
  private pendingKey = '';
  private collisions = 0;

  /** Empties the table for the next parse, keeping its arrays unless a huge input grew them. */
  reset(): void {
    this.exact = undefined;
    this.collisions = 0;
    if (this.samples.length === 0) return; // nothing stored since the last reset
    this.samples.length = 0;
    if (this.refs.length > SERIES_TABLE_KEPT) {
      this.hashes = new Int32Array(SERIES_TABLE_INITIAL);
      this.refs = new Int32Array(SERIES_TABLE_INITIAL);
    } else {
      this.refs.fill(0);
    }
  }

  /** The free slot for a new series, or -1 when the same series (name and label set) was kept before. */
  freeSlot(hash: number, name: string, labels: Readonly<Record<string, string>>): number {
    if (this.exact !== undefined) return this.freeByKey(name, labels);
    let collisions = 0;
    for (let slot = this.candidate(hash, -1); ; slot = this.candidate(hash, slot)) {
      if (slot < 0) return ~slot;
      const kept = this.sampleAt(slot);
      if (kept.name === name && sameLabels(kept.labels, labels)) return -1;
      WORK.collisions++;
      collisions++;
      this.collisions++;
      if (collisions >= MAX_COLLISIONS_PER_LOOKUP || this.collisions >= MAX_COLLISIONS_PER_PARSE) {
        this.exact = this.keysSoFar();
        return this.freeByKey(name, labels);
      }
    }
  }

  /** Exact mode: 0 (any slot) for a new series, -1 for one kept before. */
  private freeByKey(name: string, labels: Readonly<Record<string, string>>): number {
    const key = seriesKey(name, labels);
    if (this.exact!.has(key)) return -1;
    this.pendingKey = key;
    return 0;
  }

  /** The exact keys of every series kept so far (once per parse, when it turns exact). */
  private keysSoFar(): Map<string, true> {
    const keys = new Map<string, true>();
    for (const sample of this.samples) keys.set(seriesKey(sample.name, sample.labels), true);
    return keys;
  }

  /** The first kept sample with this hash at or after `slot`'s probe position, and its slot. */
  private candidate(hash: number, from: number): number {
    const refs = this.refs;
    const mask = refs.length - 1;
    for (let slot = from < 0 ? hash & mask : (from + 1) & mask; ; slot = (slot + 1) & mask) {
      const ref = refs[slot]!;
      if (ref === 0) return ~slot;
      if (this.hashes[slot] === hash) return slot;
    }
  }

  private sampleAt(slot: number): PromSample {
    return this.samples[this.refs[slot]! - 1]!;
  }

  /** Stores at the slot freeSlot returned. */
  add(freeSlot: number, hash: number, sample: PromSample): void {
    this.samples.push(sample);
    if (this.exact !== undefined) {
      this.exact.set(this.pendingKey, true);
      return;
    }
    this.hashes[freeSlot] = hash;
    this.refs[freeSlot] = this.samples.length;
    // Keep the load under one half so probe runs stay short.
    if (this.samples.length * 2 > this.refs.length) this.grow();
  }

  private grow(): void {
    const oldHashes = this.hashes;
    const oldRefs = this.refs;
    this.hashes = new Int32Array(oldRefs.length * 2);
    this.refs = new Int32Array(oldRefs.length * 2);
    const mask = this.refs.length - 1;
    for (let i = 0; i < oldRefs.length; i++) {
      if (oldRefs[i] === 0) continue;
      let slot = oldHashes[i]! & mask;
      while (this.refs[slot] !== 0) slot = (slot + 1) & mask;
      this.hashes[slot] = oldHashes[i]!;
      this.refs[slot] = oldRefs[i]!;
    }
  }
}

/** Same label set, in any order. */
function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  if (a === b) return true;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const key of keys) if (!Object.hasOwn(b, key) || a[key] !== b[key]) return false;
  return true;
}

/**
 * A series' identity as one string, its labels in name order: label names cannot hold NUL and
 * each value is length-prefixed, so two different series never share a key.
 */
function seriesKey(name: string, labels: Readonly<Record<string, string>>): string {
  let key = name;
  for (const label of Object.keys(labels).sort()) {
    const value = labels[label]!;
    key += `\0${label}\0${value.length}\0${value}`;
  }
  return key;
}
