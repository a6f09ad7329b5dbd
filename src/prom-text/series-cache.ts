/**
 * The series part of sample lines (`name{labels}`), remembered across parses with what parsing
 * it produced: its name, its frozen label set and its hash. A shim answers with the same series
 * in the same order on every scrape, and the shims of a node with each other's, only the values
 * change; so a parse that finds a line's series bytes here skips the label scan, the string
 * building and the label object, and pays one comparison of the bytes.
 *
 * Safe for untrusted input: an entry is used only after its bytes compare equal to the line's,
 * so a crafted line can at worst miss (and be parsed in full). The cache is bounded (entries and
 * bytes); when full it is emptied, and one parse may add only so many entries, so a guest that
 * sends thousands of distinct series cannot flush the other shims' entries on every scrape.
 * Equal byte hashes are bounded too: at most MAX_CHAIN entries share one, and once one parse has
 * compared MAX_COLLISIONS_PER_PARSE different parts of equal hash the cache sits the parse out.
 */
import * as bytesModule from './bytes.ts';
import type { SeriesFilter } from './types.ts';
import * as workModule from './work.ts';

const { sameBytes } = bytesModule;
const { WORK } = workModule;

/** What the parser knows about one metric name in the parse under way (e.g. its family). */
export interface NameMemo {
  name: string;
  /** The keep-prefix trie this name is known to match (parser-owned), so a guessed line skips the walk. */
  keptBy: unknown;
  /** Parser-owned: the family resolution and the parse epoch it is valid for. */
  family: unknown;
  familyEpoch: number;
}

export interface CachedSeries {
  /** The cache generation the entry belongs to: after a clear, old entries (still reachable through `next`) are dead. */
  readonly generation: number;
  /** The series part's bytes, in the arena. */
  readonly offset: number;
  readonly length: number;
  /** Order-independent hash of the name and label set: the parser's duplicate detection key. */
  readonly seriesHash: number;
  readonly name: NameMemo;
  readonly labels: Readonly<Record<string, string>>;
  readonly labelCount: number;
  /** Longest label name and decoded value, re-checked against each parse's limits. */
  readonly longestLabelName: number;
  readonly longestLabelValue: number;
  /**
   * The entry of the sample line that followed this one last time: the first guess for the next
   * line. One per lane: a parse that skips families by prefix sees other next lines than a full
   * parse of the same bytes, and the two must not overwrite each other's guesses. Two fields, not
   * a pair array: one load less on every guessed line.
   */
  nextFull: CachedSeries | undefined;
  /** The same for parses that skip families by prefix. */
  nextSkipping: CachedSeries | undefined;
  /** Another entry with the same byte hash. */
  readonly other: CachedSeries | undefined;
  /** Entries in the chain from this one (this one included). */
  readonly depth: number;
  /** The last parse that kept this series (duplicate detection without the series table). */
  seenInParse: number;
  /** The last keepSeries answer, valid for this filter and family name. */
  verdictFilter: SeriesFilter | undefined;
  verdictFamily: string;
  verdict: boolean;
}

export interface SeriesCacheLimits {
  maxEntries: number;
  maxArenaBytes: number;
  maxNewPerParse: number;
}

export const SERIES_CACHE_LIMITS: SeriesCacheLimits = {
  maxEntries: 16_384,
  maxArenaBytes: 2 * 1024 * 1024,
  maxNewPerParse: 4096,
};

/** Entries that may share one byte hash. */
export const MAX_CHAIN = 4;
/** Different parts of equal hash compared in one parse before the cache is bypassed for the rest of it. */
export const MAX_COLLISIONS_PER_PARSE = 64;

export class SeriesCache {
  private arena: Uint8Array;
  private arenaView: DataView;
  private used = 0;
  private readonly byHash = new Map<number, CachedSeries>();
  private readonly names = new Map<string, NameMemo>();
  private entries = 0;
  private addedThisParse = 0;
  private collisionsThisParse = 0;
  private generation = 1;

  constructor(private readonly limits: SeriesCacheLimits = SERIES_CACHE_LIMITS) {
    this.arena = new Uint8Array(Math.min(64 * 1024, limits.maxArenaBytes));
    this.arenaView = new DataView(this.arena.buffer);
  }

  get size(): number {
    return this.entries;
  }

  /** Called once per parse. */
  beginParse(): void {
    this.addedThisParse = 0;
    this.collisionsThisParse = 0;
  }

  /** True when `entry` is live and holds exactly `bytes[start, start + entry.length)`. */
  matches(entry: CachedSeries, bytes: Uint8Array, view: DataView, start: number): boolean {
    const length = entry.length;
    if (entry.generation !== this.generation || start + length > bytes.length) return false;
    return sameBytes(view, start, this.arenaView, entry.offset, length);
  }

  /** The entry for `bytes[start, end)` whose byte hash is `byteHash`, if any. */
  find(byteHash: number, bytes: Uint8Array, view: DataView, start: number, end: number): CachedSeries | undefined {
    if (this.collisionsThisParse >= MAX_COLLISIONS_PER_PARSE) return undefined;
    for (let entry = this.byHash.get(byteHash); entry !== undefined; entry = entry.other) {
      if (entry.length !== end - start) continue;
      if (this.matches(entry, bytes, view, start)) return entry;
      WORK.collisions++;
      if (++this.collisionsThisParse >= MAX_COLLISIONS_PER_PARSE) return undefined;
    }
    return undefined;
  }

  /** The shared memo of a metric name. */
  nameMemo(name: string): NameMemo {
    let memo = this.names.get(name);
    if (memo === undefined) {
      memo = { name, keptBy: undefined, family: undefined, familyEpoch: -1 };
      this.names.set(name, memo);
    }
    return memo;
  }

  /**
   * Remembers a parsed series part. Undefined when this parse has added its share already, or
   * the part is too big to be worth keeping.
   */
  add(
    bytes: Uint8Array,
    start: number,
    end: number,
    byteHash: number,
    parsed: Pick<CachedSeries, 'seriesHash' | 'labels' | 'labelCount' | 'longestLabelName' | 'longestLabelValue'> & { name: string },
  ): CachedSeries | undefined {
    const length = end - start;
    if (this.addedThisParse >= this.limits.maxNewPerParse || length > this.limits.maxArenaBytes / 64) return undefined;
    if (this.entries >= this.limits.maxEntries || this.used + length > this.limits.maxArenaBytes) this.clear();
    const other = this.byHash.get(byteHash);
    if (other !== undefined && other.depth >= MAX_CHAIN) return undefined;
    this.ensureRoom(length);
    this.arena.set(bytes.subarray(start, end), this.used);
    const entry: CachedSeries = {
      generation: this.generation,
      offset: this.used,
      length,
      seriesHash: parsed.seriesHash,
      name: this.nameMemo(parsed.name),
      labels: Object.freeze(parsed.labels),
      labelCount: parsed.labelCount,
      longestLabelName: parsed.longestLabelName,
      longestLabelValue: parsed.longestLabelValue,
      nextFull: undefined,
      nextSkipping: undefined,
      other,
      depth: other === undefined ? 1 : other.depth + 1,
      seenInParse: 0,
      verdictFilter: undefined,
      verdictFamily: '',
      verdict: false,
    };
    this.byHash.set(byteHash, entry);
    this.used += length;
    this.entries++;
    this.addedThisParse++;
    return entry;
  }

  /** Forgets everything (also the name memos, which hold families of finished parses). */
  clear(): void {
    this.generation++;
    this.byHash.clear();
    this.names.clear();
    this.entries = 0;
    this.used = 0;
  }

  /** The arena grows by doubling up to its bound; entries keep their offsets. */
  private ensureRoom(length: number): void {
    if (this.used + length <= this.arena.length) return;
    let size = this.arena.length * 2;
    while (size < this.used + length) size *= 2;
    const grown = new Uint8Array(Math.min(size, this.limits.maxArenaBytes));
    grown.set(this.arena.subarray(0, this.used));
    this.arena = grown;
    this.arenaView = new DataView(grown.buffer);
  }
}
