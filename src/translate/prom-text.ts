/**
 * Prometheus text exposition format 0.0.4 parser.
 *
 * One pass over the bytes, no regexes, no whole-input decode: the shim payloads are ~144 KB per
 * sandbox per scrape and come from an untrusted guest, so the parser is both fast and bounded.
 * Rules follow the format spec and, where the spec is silent, the reference Go parser
 * (prometheus/common expfmt): e.g. a second HELP or TYPE line, or a TYPE after samples, is an
 * error; HELP/TYPE without a docstring/type is a plain comment; families without samples are
 * dropped. Deliberately more lenient than Go: trailing blanks after the value are allowed, and a
 * value out of float range reads as ±Inf.
 */

import { SeriesCache, hashBytes, sameBytes, type CachedSeries, type NameMemo } from './prom-series-cache.ts';

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface PromSample {
  /** The sample's own name (e.g. foo_bucket for a histogram family foo). */
  name: string;
  /** Label pairs in wire order. */
  labels: Record<string, string>;
  value: number;
  /** Milliseconds since epoch, when the line carries one (may be negative). */
  timestampMs?: number;
}

export interface PromFamily {
  name: string;
  type: MetricType;
  help?: string;
  samples: PromSample[];
}

export interface ParseLimits {
  maxLineBytes: number;
  maxSeries: number;
  maxLabelsPerSeries: number;
  maxLabelNameBytes: number;
  maxLabelValueBytes: number;
}

export const DEFAULT_PARSE_LIMITS: ParseLimits = {
  maxLineBytes: 64 * 1024,
  maxSeries: 100_000,
  maxLabelsPerSeries: 32,
  maxLabelNameBytes: 128,
  maxLabelValueBytes: 1024,
};

export interface ParseOptions {
  limits?: Partial<ParseLimits>;
  /**
   * Keep only families whose name starts with one of these prefixes. Lines of other families are
   * skipped by a byte-prefix test without being decoded.
   */
  keepPrefixes?: readonly string[];
  /**
   * Called for each series of a kept family before anything is built for it; false skips the
   * series (no sample), which is how a decoder that reads a few items of a big family avoids
   * making garbage of the rest. A skipped line is checked in full up to its labels; its value
   * and timestamp must be made of number characters (injected text fails) but are not
   * converted. The filter must be a pure function of
   * its arguments: its answer for a series is reused for repeats of that series, in this parse
   * and later ones that pass the same function. A skipped series
   * counts toward `maxSeries` (duplicates included) but not toward `seriesCount` or
   * `duplicates`. A family whose every series was skipped is still returned, with no samples,
   * so callers can tell it was there.
   */
  keepSeries?: SeriesFilter;
  /**
   * Leave out HELP texts: families come without `help`. HELP lines are still checked (a second
   * one for a family, an invalid escape), so the same inputs are rejected with the same errors.
   */
  omitHelp?: boolean;
  /**
   * Sample names whose repeated series are returned too, as further samples after the first (still
   * counted in `duplicates`): a decoder that must choose among them (kubernetes#134518).
   */
  keepRepeatsOf?: ReadonlySet<string>;
}

/** The labels of the series being parsed; valid only during a `keepSeries` call. */
export interface SeriesLabels {
  /** The value of a label of the series, or undefined when it has none of that name. */
  get(name: string): string | undefined;
}

export type SeriesFilter = (family: string, labels: SeriesLabels) => boolean;

export interface ParseResult {
  /** In first-seen order. */
  families: PromFamily[];
  /** Series seen more than once; the first one is kept. */
  duplicates: number;
  /** Series kept. */
  seriesCount: number;
}

export type PromParseErrorKind =
  | 'syntax'
  | 'line_too_long'
  | 'too_many_series'
  | 'too_many_labels'
  | 'label_too_long'
  | 'budget';

/** The one error the parser raises. */
export class PromParseError extends Error {
  constructor(
    readonly kind: PromParseErrorKind,
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'PromParseError';
  }
}

/**
 * Labels objects inherit from a frozen, empty, null-prototype object: a guest's `__proto__` or
 * `constructor` label becomes an ordinary own key (no accessor on the chain), nothing inherited
 * can shadow a lookup, and unlike `Object.create(null)` the objects stay in V8's fast mode.
 */
const LabelSet = function LabelSet() {} as unknown as new () => Record<string, string>;
LabelSet.prototype = Object.freeze(Object.create(null) as object);

/** Forgets every series part remembered across parses (tests and benchmarks start cold with it). */
export function clearSeriesCache(): void {
  SCRATCH.cache.clear();
}

export function parsePromText(input: Uint8Array | string, options: ParseOptions = {}): ParseResult {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : asBuffer(input);
  const limits = { ...DEFAULT_PARSE_LIMITS, ...options.limits };
  return new Parser(bytes, limits, options.keepPrefixes, options.keepSeries, options.omitHelp === true, options.keepRepeatsOf).run();
}

/** A view, not a copy: Buffer gives the replacing UTF-8 and latin1 decoders over byte ranges. */
function asBuffer(input: Uint8Array): Buffer {
  return Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
}

const TAB = 9;
const LF = 10;
const CR = 13;
const SPACE = 32;
const QUOTE = 34;
const HASH = 35;
const PLUS = 43;
const COMMA = 44;
const MINUS = 45;
const DOT = 46;
const ZERO = 48;
const NINE = 57;
const EQUALS = 61;
const BACKSLASH = 92;
const LOWER_E = 101;
const LOWER_N = 110;
const LBRACE = 123;
const RBRACE = 125;

// Byte classes: every scan loop is one table load and one test per byte.
const LABEL_START = 1;
const LABEL_CONT = 2;
const METRIC_START = 4;
const METRIC_CONT = 8;
const BLANK = 16;
/** Ends a value or timestamp token. */
const TOKEN_END = 32;
/** Bytes a label value scan must look at: the closing quote, escapes, newline, non-ASCII. */
const VALUE_SPECIAL = 64;
/** Bytes a sample value or timestamp can be made of (digits, sign, point, exponent, Inf, NaN). */
const NUMBER_CHAR = 128;
const CLASS = buildClassTable();

function buildClassTable(): Uint8Array {
  const table = new Uint8Array(256);
  const mark = (from: number, to: number, bits: number): void => {
    for (let c = from; c <= to; c++) table[c] = (table[c] ?? 0) | bits;
  };
  const letters = LABEL_START | LABEL_CONT | METRIC_START | METRIC_CONT;
  mark(0x41, 0x5a, letters); // A-Z
  mark(0x61, 0x7a, letters); // a-z
  mark(0x5f, 0x5f, letters); // _
  mark(ZERO, NINE, LABEL_CONT | METRIC_CONT);
  mark(0x3a, 0x3a, METRIC_START | METRIC_CONT); // :
  mark(SPACE, SPACE, BLANK | TOKEN_END);
  mark(TAB, TAB, BLANK | TOKEN_END);
  mark(LF, LF, TOKEN_END | VALUE_SPECIAL);
  mark(CR, CR, TOKEN_END);
  mark(QUOTE, QUOTE, VALUE_SPECIAL);
  mark(BACKSLASH, BACKSLASH, VALUE_SPECIAL);
  mark(0x80, 0xff, VALUE_SPECIAL);
  mark(ZERO, NINE, NUMBER_CHAR);
  for (const c of '+-.eEiInNfFaAtTyY') mark(c.charCodeAt(0), c.charCodeAt(0), NUMBER_CHAR);
  return table;
}

/** Powers of ten that are exact doubles: the range of the exact fast path for decimals. */
const EXACT_POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);
const MAX_EXACT_MANTISSA = 2 ** 53;

/** A Map, not an object literal: `# TYPE foo constructor` must not find Object.prototype's. */
const TYPES: ReadonlyMap<string, MetricType> = new Map(
  (['counter', 'gauge', 'histogram', 'summary', 'untyped'] as const).map((t) => [t, t]),
);

const TYPE_WORDS: ReadonlyArray<readonly [MetricType, Uint8Array]> = [...TYPES.values()].map((type) => [type, Buffer.from(type, 'latin1')] as const);

const INT64_MAX_DIGITS = '9223372036854775807';
const INT64_MIN_DIGITS = '9223372036854775808';

interface FamilyState {
  name: string;
  type: MetricType | undefined;
  help: string | undefined;
  /** Set by its HELP line, also when the text is omitted. */
  hasHelp: boolean;
  hasSamples: boolean;
  /** False for a family outside keepPrefixes that is tracked only for name resolution. */
  kept: boolean;
  /** Some series of it were skipped by keepSeries. */
  filtered: boolean;
  samples: PromSample[];
}

// Result of comparing a name in the input against keepPrefixes.
const NO_MATCH = 0;
/** The name is a proper prefix of a keep prefix: its TYPE can own kept-looking sample names. */
const NAME_INSIDE_PREFIX = 1;
const PREFIX_MATCH = 2;

const INTERN_SLOTS = 2048;
/** hashString(''), spelled out: the intern table's fill value is computed before hashString's module position. */
const EMPTY_HASH = 0x811c9dc5 | 0;
const INTERN_PROBES = 8;
/** Longer label values are rarely repeated; interning them would only crowd the table. */
const INTERN_MAX_BYTES = 256;

/**
 * String interning for ASCII byte ranges (names, short label values): a repeated string is built
 * once per parse, and a string a previous parse built in the same slot is reused when its bytes
 * match, so successive scrapes of the same shim allocate almost no strings (a bounded cache: one
 * string per slot). The lookup hash samples a few bytes (O(1), hashing every byte cost more
 * than the rest of the parse); a hit is verified byte against byte at the string's first
 * occurrence. Within a parse a string is either always found in its slot or, once its probe run
 * is full, never: so the slot number is a stable identity for series hashing.
 */
class InternTable {
  private readonly lengths = new Int32Array(INTERN_SLOTS);
  private readonly starts = new Int32Array(INTERN_SLOTS);
  /** The parse that filled each slot: a slot of an older parse is free (its string may be reused). */
  private readonly generations = new Int32Array(INTERN_SLOTS);
  private readonly strings: string[] = new Array<string>(INTERN_SLOTS).fill('');
  /** hashString of each slot's string, kept with it across parses. */
  private readonly hashes = new Int32Array(INTERN_SLOTS).fill(EMPTY_HASH);
  private generation = 0;
  /** Slot of the last interned string, or -1 when it was not interned. */
  lastSlot = -1;
  /** hashString of the last interned string: series hashes depend on content only, never on slots. */
  lastHash = 0;

  private bytes: Buffer = EMPTY_BYTES;
  private view: DataView = EMPTY_VIEW;

  /** Starts a parse over `bytes`, read through the parser's `view` of them. */
  begin(bytes: Buffer, view: DataView): void {
    this.bytes = bytes;
    this.view = view;
    if (++this.generation === 0x7fffffff) {
      this.generations.fill(0);
      this.generation = 1;
    }
  }

  /** Ends a parse: the input is not kept alive by the table. */
  end(): void {
    this.bytes = EMPTY_BYTES;
    this.view = EMPTY_VIEW;
  }

  intern(start: number, end: number): string {
    const length = end - start;
    this.lastSlot = -1;
    if (length === 0) {
      this.lastHash = EMPTY_HASH;
      return '';
    }
    const b = this.bytes;
    const last = end - 1;
    const sampled = length ^ (b[start]! << 5) ^ (b[last]! << 12) ^ (b[start + (length >> 1)]! << 19) ^ (b[last - (length >> 2)]! << 26);
    let slot = Math.imul(sampled, 0x9e3779b1) >>> 21;
    const generation = this.generation;
    for (let probe = 0; probe < INTERN_PROBES; probe++) {
      if (this.generations[slot] !== generation) return this.fill(slot, start, end);
      if (this.lengths[slot] === length && sameBytes(this.view, this.starts[slot]!, this.view, start, length)) {
        this.lastSlot = slot;
        this.lastHash = this.hashes[slot]!;
        return this.strings[slot]!;
      }
      slot = (slot + 1) & (INTERN_SLOTS - 1);
    }
    const text = latin1Slice(b, start, end);
    this.lastHash = hashString(text);
    return text;
  }

  private fill(slot: number, start: number, end: number): string {
    const length = end - start;
    const previous = this.strings[slot]!;
    const reused = previous.length === length && this.sameString(previous, start);
    const fresh = reused ? previous : latin1Slice(this.bytes, start, end);
    if (!reused) this.hashes[slot] = hashString(fresh);
    this.lastHash = this.hashes[slot]!;
    this.generations[slot] = this.generation;
    this.lengths[slot] = length;
    this.starts[slot] = start;
    this.strings[slot] = fresh;
    this.lastSlot = slot;
    return fresh;
  }

  /** An interned string is latin1 of ASCII bytes: one char code per byte. */
  private sameString(text: string, start: number): boolean {
    const b = this.bytes;
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) !== b[start + i]) return false;
    return true;
  }
}

const EMPTY_BYTES = Buffer.alloc(0);
const EMPTY_VIEW = new DataView(new ArrayBuffer(0));

const SERIES_TABLE_INITIAL = 2048;
/** Largest table kept between parses (a 32 768-series input); a larger one is dropped after use. */
const SERIES_TABLE_KEPT = 65_536;

/**
 * Kept series as an open-addressing table of (hash, index + 1); equal hashes are compared in
 * full by the caller. Typed arrays: a Map here cost more than the rest of the bookkeeping.
 */
class SeriesTable {
  private hashes = new Int32Array(SERIES_TABLE_INITIAL);
  private refs = new Int32Array(SERIES_TABLE_INITIAL);
  private readonly samples: PromSample[] = [];

  /** Empties the table for the next parse, keeping its arrays unless a huge input grew them. */
  reset(): void {
    if (this.samples.length === 0) return; // nothing stored since the last reset
    this.samples.length = 0;
    if (this.refs.length > SERIES_TABLE_KEPT) {
      this.hashes = new Int32Array(SERIES_TABLE_INITIAL);
      this.refs = new Int32Array(SERIES_TABLE_INITIAL);
    } else {
      this.refs.fill(0);
    }
  }

  /** The first kept sample with this hash at or after `slot`'s probe position, and its slot. */
  candidate(hash: number, from: number): number {
    const refs = this.refs;
    const mask = refs.length - 1;
    for (let slot = from < 0 ? hash & mask : (from + 1) & mask; ; slot = (slot + 1) & mask) {
      const ref = refs[slot]!;
      if (ref === 0) return ~slot;
      if (this.hashes[slot] === hash) return slot;
    }
  }

  sampleAt(slot: number): PromSample {
    return this.samples[this.refs[slot]! - 1]!;
  }

  /** Stores at the free slot `candidate` returned (as ~slot). */
  add(freeSlot: number, hash: number, sample: PromSample): void {
    this.samples.push(sample);
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

/**
 * Tables every parse needs, allocated once and reused: a parse is synchronous and calls out to
 * nothing, so two can never overlap. Each parse resets what it reads (see Parser.run).
 */
const SCRATCH = {
  strings: new InternTable(),
  /** Series parts of earlier parses (every caller's: shims and kubelet alike). */
  cache: new SeriesCache(),
  /** Numbers the parses, for CachedSeries.seenInParse. */
  parses: 0,
  series: new SeriesTable(),
  slotFamily: new Array<FamilyState | undefined>(INTERN_SLOTS).fill(undefined),
  /** Float64: epochs grow across parses and must not wrap. */
  slotFamilyEpoch: new Float64Array(INTERN_SLOTS),
  epoch: 0,
};

class Parser implements SeriesLabels {
  private line = 0;
  /** Start of the line being parsed, to tell a too-long line from the error it caused. */
  private lineStart = 0;
  private seriesCount = 0;
  /** Series keepSeries skipped: they count toward maxSeries. */
  private skippedSeries = 0;
  private duplicates = 0;
  private readonly familyList: FamilyState[] = [];
  private readonly familyByName = new Map<string, FamilyState>();
  // Sample name (by intern slot) → family, valid while familyEpoch is unchanged: resolution only
  // changes when a HELP/TYPE line creates or types a family.
  private readonly slotFamily = SCRATCH.slotFamily;
  /** Some slotFamily entry was set: the end of the parse clears them (they hold this parse's families). */
  private slotFamilyUsed = false;
  private readonly slotFamilyEpoch = SCRATCH.slotFamilyEpoch;
  /** Above every epoch an earlier parse left in slotFamilyEpoch. */
  private familyEpoch = ++SCRATCH.epoch;
  private readonly series = SCRATCH.series;
  private readonly strings: InternTable;
  private readonly prefixes: PrefixTrie | undefined;
  private readonly prefixStrings: readonly string[] | undefined;
  // Scratch for the labels of the current line, reused across lines.
  private readonly labelNames: string[] = [];
  private readonly labelValues: string[] = [];
  private labelCount = 0;
  private labelHashSum = 0;
  /** Longest label name and decoded value of the current line (what a cache entry must re-check). */
  private longestLabelName = 0;
  private longestLabelValue = 0;
  /** The cached series of the previous sample line: its `next` is the guess for this one. */
  private previous: CachedSeries | undefined;
  /**
   * The last name the prefix walk rejected, as the bytes that decided it (from the name's start
   * to the byte the walk stopped at), and the walk's answer: a name starting with the same bytes
   * gets the same answer without a walk. A family's lines (and its HELP and TYPE) come together.
   */
  private rejectedStart = 0;
  private rejectedLength = 0;
  private rejectedMatch = NO_MATCH;
  /** Where the last walkPrefix stopped. */
  private walkStop = 0;
  /** The bytes of the last name the walk matched, up to the end of its keep prefix. */
  private acceptedStart = 0;
  private acceptedLength = 0;
  /** Set while keepSeries looks at a cached series: get() reads it instead of the scratch labels. */
  private cachedLabels: Readonly<Record<string, string>> | undefined;
  private readonly parseId = ++SCRATCH.parses;
  /** Which CachedSeries.next* guesses this parse follows and updates: 1 when skipping by prefix. */
  private readonly lane: 0 | 1;
  private readonly cache = SCRATCH.cache;
  private view: DataView = EMPTY_VIEW;
  /** Name memos this parse pointed at its families: released at the end. */
  private readonly memos: NameMemo[] = [];
  /** End of the token the last value/timestamp parse read. */
  private tokenEnd = 0;
  /** The current line's value and timestamp (readValueTail). */
  private lineValue = 0;
  private lineTimestampMs: number | undefined;

  constructor(
    private readonly bytes: Buffer,
    private readonly limits: ParseLimits,
    keepPrefixes: readonly string[] | undefined,
    private readonly keepSeries: SeriesFilter | undefined,
    private readonly omitHelp: boolean,
    private readonly keepRepeatsOf: ReadonlySet<string> | undefined,
  ) {
    this.strings = SCRATCH.strings;
    this.lane = keepPrefixes === undefined ? 0 : 1;
    if (keepPrefixes !== undefined) {
      this.prefixStrings = keepPrefixes;
      this.prefixes = prefixTrie(keepPrefixes);
    }
  }

  run(): ParseResult {
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    this.strings.begin(this.bytes, this.view);
    this.series.reset();
    this.cache.beginParse();
    try {
      return this.parseAll();
    } finally {
      this.strings.end();
      this.series.reset();
      if (this.slotFamilyUsed) this.slotFamily.fill(undefined);
      for (const memo of this.memos) memo.family = undefined;
      this.view = EMPTY_VIEW;
    }
  }

  private parseAll(): ParseResult {
    const b = this.bytes;
    const length = b.length;
    const maxLine = this.limits.maxLineBytes;
    let pos = 0;
    while (pos < length) {
      this.line++;
      this.lineStart = pos;
      // Sample lines are parsed up to their newline with no separate newline search; reading
      // stops at `limit`, one byte past the longest allowed line.
      const limit = Math.min(length, pos + maxLine + 1);
      const p = this.skipBlanks(pos, limit);
      if (!(p < limit && CLASS[b[p]!]! & METRIC_START)) {
        pos = this.parseOtherLine(pos, limit) + 1;
        continue;
      }
      let guessed = false;
      if (this.prefixes !== undefined) {
        // Checked before the guess: in a run of skipped lines the guess (the next kept line) fails on each.
        if (this.startsLikeRejected(p, limit)) {
          pos = this.skipRejectedRun(pos, this.afterWalked(p, p + this.rejectedLength - 1), limit);
          continue;
        }
        // The line that followed last time, when its name is known to be kept: no prefix walk.
        const guess = this.previous?.nextSkipping;
        if (guess !== undefined && guess.name.keptBy === this.prefixes) {
          guessed = true;
          if (this.fits(guess, p, limit)) {
            pos = this.guessedRun(guess, p, limit);
            continue;
          }
        }
        if (!this.startsLikeAccepted(p, limit) && this.walkPrefix(p, limit) !== PREFIX_MATCH) {
          pos = this.skipRejectedRun(pos, this.afterWalked(p, this.walkStop), limit);
          continue;
        }
      }
      pos = this.parseSample(p, limit, guessed) + 1;
    }
    return this.result();
  }

  /**
   * A sample line skipped by its name, then each following line that starts, at its very start,
   * with a name byte and the bytes of the last rejection (a family's lines come together): the
   * main loop would skip it alike. Returns the position after the last line skipped.
   */
  private skipRejectedRun(start: number, from: number, limit: number): number {
    const b = this.bytes;
    const length = b.length;
    const maxLine = this.limits.maxLineBytes;
    for (;;) {
      const pos = this.boundedNewline(start, from, limit) + 1;
      if (pos >= length || !(CLASS[b[pos]!]! & METRIC_START)) return pos;
      const nextLimit = Math.min(length, pos + maxLine + 1);
      if (!this.startsLikeRejected(pos, nextLimit)) return pos;
      this.line++;
      this.lineStart = pos;
      start = pos;
      from = this.afterWalked(pos, pos + this.rejectedLength - 1);
      limit = nextLimit;
    }
  }

  /**
   * A guessed line that fits, then each following line while the guess of the line before fits it
   * at its very start (a family's series in last time's order, most skipped by keepSeries).
   * Returns the position after the last line taken. The main loop's other steps could not change
   * such a line's outcome: it starts with a name byte, and a name the keep prefixes match never
   * starts like the last rejected one (the walk would have taken the same path and stopped alike).
   */
  private guessedRun(entry: CachedSeries, p: number, limit: number): number {
    const length = this.bytes.length;
    const maxLine = this.limits.maxLineBytes;
    const prefixes = this.prefixes;
    for (;;) {
      const pos = this.finishSample(entry, p + entry.length, limit) + 1;
      if (pos >= length) return pos;
      const next = entry.nextSkipping;
      if (next === undefined || next.name.keptBy !== prefixes) return pos;
      const nextLimit = Math.min(length, pos + maxLine + 1);
      if (!this.fits(next, pos, nextLimit)) return pos;
      this.line++;
      this.lineStart = pos;
      entry = next;
      p = pos;
      limit = nextLimit;
    }
  }

  /**
   * The name at p starts with the bytes that decided the last rejection, so the walk would reject
   * it alike.
   */
  private startsLikeRejected(p: number, end: number): boolean {
    return this.startsWithBytesAt(p, end, this.rejectedStart, this.rejectedLength);
  }

  /**
   * The name at p starts with the bytes of the last name the walk matched, up to the end of its
   * keep prefix: it matches too (a family's HELP, TYPE and first sample line name it alike).
   */
  private startsLikeAccepted(p: number, end: number): boolean {
    return this.startsWithBytesAt(p, end, this.acceptedStart, this.acceptedLength);
  }

  /**
   * The `length` bytes at p (before `end`) are those at `start`; never for an empty range. The
   * deciding byte of a walk is the last one, and a name that differs mostly differs there, so the
   * last four bytes are compared first.
   */
  private startsWithBytesAt(p: number, end: number, start: number, length: number): boolean {
    if (length === 0 || p + length > end) return false;
    const view = this.view;
    if (length >= 4 && view.getInt32(p + length - 4, true) !== view.getInt32(start + length - 4, true)) return false;
    return sameBytes(view, p, view, start, length);
  }

  /**
   * Where the newline search of a skipped line may start: at `stop`, the byte the prefix walk
   * stopped at (the bytes before it are keep-prefix bytes, so no newline), unless a keep prefix
   * itself holds a newline.
   */
  private afterWalked(p: number, stop: number): number {
    return this.prefixes!.newlineFree ? stop : p;
  }

  /** The newline ending the line at `start`, searched from `from` on; a line past the bound fails. */
  private boundedNewline(start: number, from: number, limit: number): number {
    const nl = this.findNewline(from, limit);
    if (nl - start > this.limits.maxLineBytes) this.fail('line_too_long', 'line too long');
    return nl;
  }

  /**
   * The first LF from p to `limit` (one byte past the longest allowed line, or the input's end),
   * else `limit`: four bytes a step, without a call into native code.
   */
  private findNewline(p: number, limit: number): number {
    const view = this.view;
    for (; p + 4 <= limit; p += 4) {
      const x = view.getInt32(p, true) ^ 0x0a0a0a0a;
      // A flag per byte of x that is zero; a borrow may flag bytes above the first zero byte too,
      // never below it, so the lowest flag (the first in memory) is exact.
      const zero = (x - 0x01010101) & ~x & 0x80808080;
      if (zero !== 0) return p + ((31 - Math.clz32(zero & -zero)) >> 3);
    }
    const b = this.bytes;
    while (p < limit && b[p] !== LF) p++;
    return p;
  }

  /** Comments, blank lines and skipped samples: found by findNewline, decoded only when needed. */
  private parseOtherLine(start: number, limit: number): number {
    const b = this.bytes;
    const nl = this.boundedNewline(start, start, limit);
    const end = nl > start && b[nl - 1] === CR ? nl - 1 : nl;
    const p = this.skipBlanks(start, end);
    if (p === end) return nl;
    if (b[p] === HASH) this.parseComment(p + 1, end);
    else if (!(CLASS[b[p]!]! & METRIC_START)) this.syntax('invalid metric name');
    return nl;
  }

  // ---- comments: HELP and TYPE -------------------------------------------------------------

  private parseComment(start: number, end: number): void {
    let p = this.skipBlanks(start, end);
    const keyword = this.commentKeyword(p, end);
    if (keyword === undefined) return;
    p = this.skipBlanks(p + 4, end);
    if (p === end) return;
    if (this.prefixes !== undefined) {
      const match = this.startsLikeRejected(p, end)
        ? this.rejectedMatch
        : this.startsLikeAccepted(p, end)
          ? PREFIX_MATCH
          : this.walkPrefix(p, end);
      // A TYPE naming a parent of kept-looking samples (foo for foo_count) decides where those
      // samples go, so it is read; every other comment of a skipped family is not.
      if (match === NO_MATCH || (match === NAME_INSIDE_PREFIX && keyword === 'HELP')) return;
    }
    const nameEnd = this.scanMetricName(p, end);
    if (nameEnd === p || (nameEnd < end && !(CLASS[this.bytes[nameEnd]!]! & BLANK))) {
      this.syntax('invalid metric name in comment');
    }
    const rest = this.skipBlanks(nameEnd, end);
    // Like the Go parser: HELP/TYPE with nothing after the name is a plain comment.
    if (rest === end) return;
    const family = this.familyNamed(this.strings.intern(p, nameEnd));
    if (keyword === 'HELP') this.readHelp(family, rest, end);
    else this.readType(family, rest, end);
  }

  /** HELP or TYPE when the comment starts with that word followed by a blank. */
  private commentKeyword(p: number, end: number): 'HELP' | 'TYPE' | undefined {
    const b = this.bytes;
    if (p + 4 >= end || !(CLASS[b[p + 4]!]! & BLANK)) return undefined;
    if (b[p] === 0x48 && b[p + 1] === 0x45 && b[p + 2] === 0x4c && b[p + 3] === 0x50) return 'HELP';
    if (b[p] === 0x54 && b[p + 1] === 0x59 && b[p + 2] === 0x50 && b[p + 3] === 0x45) return 'TYPE';
    return undefined;
  }

  private readHelp(family: FamilyState, start: number, end: number): void {
    if (family.hasHelp) this.syntax(`second HELP line for ${family.name}`);
    family.hasHelp = true;
    const textEnd = this.trimBlanksEnd(start, end);
    if (this.omitHelp) this.checkEscapes(start, textEnd, HELP_ESCAPES, 'HELP');
    else family.help = this.unescape(start, textEnd, HELP_ESCAPES, 'HELP');
  }

  private readType(family: FamilyState, start: number, end: number): void {
    if (family.type !== undefined || family.hasSamples) {
      this.syntax(`second TYPE line for ${family.name}, or TYPE after its samples`);
    }
    const tokenEnd = this.scanToken(start, end);
    if (this.skipBlanks(tokenEnd, end) !== end) this.syntax('unexpected text after the type');
    const type = this.typeWord(start, tokenEnd);
    if (type === undefined) this.syntax('unknown metric type');
    family.type = type;
    this.familyEpoch = ++SCRATCH.epoch;
  }

  /** The metric type a token spells, in any case, read from the bytes without a string. */
  private typeWord(start: number, end: number): MetricType | undefined {
    const b = this.bytes;
    for (const [type, word] of TYPE_WORDS) {
      if (word.length !== end - start) continue;
      let i = 0;
      // `| 0x20` lowercases A-Z and maps no other byte onto a-z.
      while (i < word.length && (b[start + i]! | 0x20) === word[i]) i++;
      if (i === word.length) return type;
    }
    return undefined;
  }

  /**
   * Decodes a byte range with backslash escapes as UTF-8 (invalid sequences become U+FFFD,
   * never an error). `escapes` lists the bytes allowed after a backslash.
   */
  private unescape(start: number, end: number, escapes: string, what: string): string {
    const b = this.bytes;
    // Bounded to the range (an indexOf from `start` would search the rest of the input on every
    // line without a backslash); plain ASCII, the common case, is sliced without UTF-8 decoding.
    let firstEscape = -1;
    let ascii = true;
    for (let p = start; p < end; p++) {
      const c = b[p]!;
      if (c === BACKSLASH) {
        firstEscape = p;
        break;
      }
      if (c >= 0x80) ascii = false;
    }
    if (firstEscape < 0) {
      if (!ascii) return b.toString('utf8', start, end);
      // HELP texts repeat on every scrape: interned, the string of the last parse is reused.
      return end - start <= INTERN_MAX_BYTES ? this.strings.intern(start, end) : latin1Slice(b, start, end);
    }
    const out = Buffer.allocUnsafe(end - start);
    let n = 0;
    for (let p = start; p < end; p++) {
      let c = b[p]!;
      if (c === BACKSLASH) {
        const next = p + 1 < end ? b[++p]! : -1;
        if (!escapes.includes(String.fromCharCode(next))) this.syntax(`invalid escape sequence in ${what}`);
        c = next === LOWER_N ? LF : next;
      }
      out[n++] = c;
    }
    return out.toString('utf8', 0, n);
  }

  /** The escapes unescape would reject, found without decoding anything. */
  private checkEscapes(start: number, end: number, escapes: string, what: string): void {
    const b = this.bytes;
    const view = this.view;
    // Four bytes a step to the first backslash (most texts have none), as findNewline.
    let first = start;
    for (; first + 4 <= end; first += 4) {
      const x = view.getInt32(first, true) ^ 0x5c5c5c5c;
      if (((x - 0x01010101) & ~x & 0x80808080) !== 0) break;
    }
    for (let p = first; p < end; p++) {
      if (b[p] !== BACKSLASH) continue;
      const next = p + 1 < end ? b[++p]! : -1;
      if (!escapes.includes(String.fromCharCode(next))) this.syntax(`invalid escape sequence in ${what}`);
    }
  }

  // ---- samples -----------------------------------------------------------------------------

  /** Parses a sample line from its name; returns the index of its newline (or the input end). */
  private parseSample(start: number, end: number, guessed: boolean): number {
    const entry = this.cachedSeries(start, end, guessed);
    if (entry !== undefined) return this.finishSample(entry, start + entry.length, end);

    const b = this.bytes;
    let p = start + 1;
    while (p < end && CLASS[b[p]!]! & METRIC_CONT) p++;
    const nameEnd = p;
    const name = this.strings.intern(start, nameEnd);
    const nameSlot = this.strings.lastSlot;
    const nameHash = this.strings.lastHash;

    p = this.skipBlanks(p, end);
    this.labelCount = 0;
    this.labelHashSum = 0;
    this.longestLabelName = 0;
    this.longestLabelValue = 0;
    let seriesEnd = nameEnd;
    if (p < end && b[p] === LBRACE) {
      const labelsStart = p;
      p = this.parseLabels(p + 1, end);
      // Only the canonical form, `{` right after the name, is cached (what every client writes).
      seriesEnd = labelsStart === nameEnd ? p : -1;
      p = this.skipBlanks(p, end);
    } else if (p === nameEnd) {
      this.syntax('expected a blank or "{" after the metric name');
    }
    const hash = mixHash(nameHash, (this.labelHashSum ^ this.labelCount) | 0);
    const remembered = seriesEnd < 0 ? undefined : this.remember(start, seriesEnd, name, hash);
    if (remembered !== undefined) return this.finishSample(remembered, seriesEnd, end);
    this.previous = undefined;
    const lineEnd = this.readValueTail(p, end);
    this.addSample(name, nameSlot, hash, this.lineValue, this.lineTimestampMs);
    return lineEnd;
  }

  // ---- series parts remembered across parses (prom-series-cache.ts) ---------------------------

  /**
   * The cached series whose bytes start this line, usable under this parse's limits: first the
   * one that followed the previous line's last time (unless the caller tried it), else a lookup
   * by the bytes' hash.
   */
  private cachedSeries(start: number, end: number, guessed: boolean): CachedSeries | undefined {
    const previous = this.previous;
    const guess = guessed || previous === undefined ? undefined : this.lane === 1 ? previous.nextSkipping : previous.nextFull;
    if (guess !== undefined && this.fits(guess, start, end)) return guess;
    const seriesEnd = this.scanSeriesPart(start, end);
    if (seriesEnd < 0) return undefined;
    const entry = this.cache.find(hashBytes(this.bytes, start, seriesEnd), this.bytes, this.view, start, seriesEnd);
    if (entry === undefined || !this.usable(entry, start, end)) return undefined;
    if (previous !== undefined) this.setNext(previous, entry);
    return entry;
  }

  /** Records `entry` as the line after `previous` in this parse's lane. */
  private setNext(previous: CachedSeries, entry: CachedSeries): void {
    if (this.lane === 1) previous.nextSkipping = entry;
    else previous.nextFull = entry;
  }

  /** The guessed series is this line's, and usable. */
  private fits(entry: CachedSeries, start: number, end: number): boolean {
    return start + entry.length < end && this.cache.matches(entry, this.bytes, this.view, start) && this.usable(entry, start, end);
  }

  /** A cached series whose bytes start the line at `start` is this line's series under this parse's limits. */
  private usable(entry: CachedSeries, start: number, end: number): boolean {
    const limits = this.limits;
    if (
      entry.labelCount > limits.maxLabelsPerSeries ||
      entry.longestLabelName > limits.maxLabelNameBytes ||
      entry.longestLabelValue > limits.maxLabelValueBytes
    ) {
      return false; // the full parse reports the limit
    }
    // A name without labels must end here: `foo_total` is not `foo` followed by `_total`, and
    // `foo {…}` (a blank before the labels) is not the series `foo`.
    const after = start + entry.length;
    if (this.bytes[after - 1] !== RBRACE) {
      if (!(CLASS[this.bytes[after]!]! & BLANK)) return false;
      const p = this.skipBlanks(after, end);
      if (p < end && this.bytes[p] === LBRACE) return false;
    }
    return true;
  }

  /**
   * End of the series part of a canonical line (`name` or `name{…}`, labels scanned by their
   * quotes only), or -1 when the line is not in that form: the full parse then decides.
   */
  private scanSeriesPart(start: number, end: number): number {
    const b = this.bytes;
    let p = start + 1;
    while (p < end && CLASS[b[p]!]! & METRIC_CONT) p++;
    if (p >= end || b[p] !== LBRACE) return p < end ? p : -1;
    for (p++; p < end; p++) {
      const c = b[p]!;
      if (c === RBRACE) return p + 1;
      if (c === LF) return -1;
      if (c === QUOTE) {
        for (p++; p < end && b[p] !== QUOTE; p++) {
          if (b[p] === LF) return -1;
          if (b[p] === BACKSLASH) p++;
        }
      }
    }
    return -1;
  }

  /** Caches the series part just parsed, with a frozen label set. */
  private remember(start: number, seriesEnd: number, name: string, seriesHash: number): CachedSeries | undefined {
    const entry = this.cache.add(this.bytes, start, seriesEnd, hashBytes(this.bytes, start, seriesEnd), {
      name,
      seriesHash,
      labels: this.buildLabels(),
      labelCount: this.labelCount,
      longestLabelName: this.longestLabelName,
      longestLabelValue: this.longestLabelValue,
    });
    if (entry !== undefined && this.previous !== undefined) this.setNext(this.previous, entry);
    return entry;
  }

  /**
   * The rest of a line whose series part is cached: its family, the filter's answer, then the
   * value and timestamp. A series the filter skips is not read further than its series part,
   * like a line outside keepPrefixes: only its length is checked.
   */
  private finishSample(entry: CachedSeries, seriesEnd: number, end: number): number {
    this.previous = entry;
    const prefixes = this.prefixes;
    if (prefixes !== undefined && entry.name.keptBy !== prefixes) entry.name.keptBy = prefixes;
    const family = this.familyOf(entry.name);
    family.hasSamples = true;
    if (family.kept && this.keepSeries !== undefined && !this.cachedVerdict(entry, family.name)) {
      family.filtered = true;
      this.countSkipped();
      return this.checkValueTail(seriesEnd, end);
    }
    const lineEnd = this.readValueTail(this.skipBlanks(seriesEnd, end), end);
    if (family.kept) this.addCachedSample(entry, family, this.lineValue, this.lineTimestampMs);
    return lineEnd;
  }

  /**
   * The rest of a line whose series is skipped: one or two tokens made of number characters, then
   * the end of the line. Nothing is converted; a token with any other byte (injected labels,
   * quotes, text) is read in full, which reports the syntax error.
   */
  private checkValueTail(seriesEnd: number, end: number): number {
    const b = this.bytes;
    // The usual tail first: one space, one number token, the newline.
    if (seriesEnd < end && b[seriesEnd] === SPACE) {
      const token = seriesEnd + 1;
      let q = token;
      while (q < end && CLASS[b[q]!]! & NUMBER_CHAR) q++;
      if (q > token && q < end && b[q] === LF) return q;
    }
    const first = this.skipBlanks(seriesEnd, end);
    let p = first;
    for (let token = 0; token < 2 && p < end && !(CLASS[b[p]!]! & TOKEN_END); token++) {
      const start = p;
      while (p < end && CLASS[b[p]!]! & NUMBER_CHAR) p++;
      if (p === start || (p < end && !(CLASS[b[p]!]! & TOKEN_END))) return this.readValueTail(first, end);
      p = this.skipBlanks(p, end);
    }
    if (p === first) return this.readValueTail(p, end); // no value: the error
    return this.lineEndAt(p, end);
  }

  /** The value, the optional timestamp and the line's end, from p; the numbers land in lineValue and lineTimestampMs. */
  private readValueTail(p: number, end: number): number {
    const b = this.bytes;
    this.lineValue = this.parseValue(p, end);
    p = this.skipBlanks(this.tokenEnd, end);
    this.lineTimestampMs = undefined;
    if (p < end && !(CLASS[b[p]!]! & TOKEN_END)) {
      this.lineTimestampMs = this.parseTimestamp(p, end);
      p = this.skipBlanks(this.tokenEnd, end);
    }
    return this.lineEndAt(p, end);
  }

  /** The family of a cached name, resolved once per name while the families do not change. */
  private familyOf(memo: NameMemo): FamilyState {
    if (memo.familyEpoch === this.familyEpoch && memo.family !== undefined) return memo.family as FamilyState;
    const family = this.familyForSample(memo.name, -1);
    memo.family = family;
    memo.familyEpoch = this.familyEpoch;
    this.memos.push(memo);
    return family;
  }

  private addCachedSample(entry: CachedSeries, family: FamilyState, value: number, timestampMs: number | undefined): void {
    const name = entry.name.name;
    const freeSlot = entry.seenInParse === this.parseId ? -1 : this.freeSeriesSlot(entry.seriesHash, name, entry.labels);
    if (freeSlot < 0) {
      this.addRepeat(family, name, entry.labels, value, timestampMs);
      return;
    }
    this.countKept();
    entry.seenInParse = this.parseId;
    const sample: PromSample =
      timestampMs === undefined ? { name, labels: entry.labels, value } : { name, labels: entry.labels, value, timestampMs };
    family.samples.push(sample);
    this.series.add(freeSlot, entry.seriesHash, sample);
  }

  /** keepSeries for a cached series; remembered per filter and family (a filter is pure). */
  private cachedVerdict(entry: CachedSeries, family: string): boolean {
    if (entry.verdictFilter === this.keepSeries && entry.verdictFamily === family) return entry.verdict;
    this.cachedLabels = entry.labels;
    try {
      entry.verdict = this.keepSeries!(family, this);
    } finally {
      this.cachedLabels = undefined;
    }
    entry.verdictFilter = this.keepSeries;
    entry.verdictFamily = family;
    return entry.verdict;
  }

  /** Only an optional CR may remain before the newline. */
  private lineEndAt(p: number, end: number): number {
    const b = this.bytes;
    if (p < end && b[p] === CR) p++;
    if (p < end && b[p] === LF) return p;
    if (p === b.length) return p;
    if (p >= end) this.fail('line_too_long', 'line too long');
    return this.syntax('unexpected text at the end of the sample');
  }

  /** From just after `{` to just after `}`; fills the label scratch. */
  private parseLabels(start: number, end: number): number {
    const b = this.bytes;
    const limits = this.limits;
    let p = this.skipBlanks(start, end);
    while (p >= end || b[p] !== RBRACE) {
      const nameStart = p;
      if (p >= end || !(CLASS[b[p]!]! & LABEL_START)) this.syntax('invalid label name');
      do p++;
      while (p < end && CLASS[b[p]!]! & LABEL_CONT);
      if (p - nameStart > limits.maxLabelNameBytes) {
        this.fail('label_too_long', `label name longer than ${limits.maxLabelNameBytes} bytes`);
      }
      if (this.labelCount === limits.maxLabelsPerSeries) {
        this.fail('too_many_labels', `more than ${limits.maxLabelsPerSeries} labels`);
      }
      const labelName = this.strings.intern(nameStart, p);
      const nameId = this.strings.lastHash;
      if (p - nameStart > this.longestLabelName) this.longestLabelName = p - nameStart;
      p = this.skipBlanks(p, end);
      if (p >= end || b[p] !== EQUALS) this.syntax('expected "=" after the label name');
      p = this.skipBlanks(p + 1, end);
      if (p >= end || b[p] !== QUOTE) this.syntax('expected a quoted label value');
      p = this.parseLabelValue(labelName, nameId, p + 1, end);
      p = this.skipBlanks(p, end);
      if (p < end && b[p] === COMMA) p = this.skipBlanks(p + 1, end);
      else if (p >= end || b[p] !== RBRACE) this.syntax('expected "," or "}" after the label value');
    }
    return p + 1;
  }

  /** From just after the opening quote to just after the closing one; stores the pair. */
  private parseLabelValue(labelName: string, nameId: number, start: number, end: number): number {
    const b = this.bytes;
    let p = start;
    let plainAscii = true;
    let escapes = 0;
    for (;;) {
      if (p >= end) this.syntax('unterminated label value');
      const c = b[p]!;
      if (CLASS[c]! & VALUE_SPECIAL) {
        if (c === QUOTE) break;
        if (c === LF) this.syntax('newline in label value');
        plainAscii = false;
        if (c === BACKSLASH) {
          escapes++;
          p++;
        }
      }
      p++;
    }
    // The bound is on the decoded bytes: an escape pair is one byte.
    const decodedBytes = p - start - escapes;
    if (decodedBytes > this.limits.maxLabelValueBytes) {
      this.fail('label_too_long', `label value longer than ${this.limits.maxLabelValueBytes} bytes`);
    }
    if (decodedBytes > this.longestLabelValue) this.longestLabelValue = decodedBytes;
    let value: string;
    let valueId: number;
    if (plainAscii && p - start <= INTERN_MAX_BYTES) {
      value = this.strings.intern(start, p);
      valueId = this.strings.lastHash;
    } else {
      value = plainAscii ? latin1Slice(b, start, p) : this.unescape(start, p, LABEL_VALUE_ESCAPES, 'label value');
      valueId = hashString(value);
    }
    this.storeLabel(labelName, nameId, value, valueId);
    return p + 1;
  }

  private storeLabel(name: string, nameId: number, value: string, valueId: number): void {
    const count = this.labelCount;
    const names = this.labelNames;
    for (let i = 0; i < count; i++) if (names[i] === name) this.syntax(`duplicate label name ${name}`);
    names[count] = name;
    this.labelValues[count] = value;
    this.labelCount = count + 1;
    // A sum: the series hash must not depend on label order.
    this.labelHashSum = (this.labelHashSum + mixHash(nameId, valueId)) | 0;
  }

  /** A series seen before in this parse: counted, and returned only for `keepRepeatsOf` names. */
  private addRepeat(family: FamilyState, name: string, labels: Readonly<Record<string, string>>, value: number, timestampMs: number | undefined): void {
    this.duplicates++;
    if (this.keepRepeatsOf?.has(name) !== true) return;
    family.samples.push(timestampMs === undefined ? { name, labels, value } : { name, labels, value, timestampMs });
  }

  private addSample(name: string, nameSlot: number, hash: number, value: number, timestampMs: number | undefined): void {
    const family = this.familyForSample(name, nameSlot);
    family.hasSamples = true;
    if (!family.kept) return;
    if (this.keepSeries !== undefined && !this.keepSeries(family.name, this)) {
      family.filtered = true;
      this.countSkipped();
      return;
    }
    const labels = this.buildLabels();
    const freeSlot = this.freeSeriesSlot(hash, name, labels);
    if (freeSlot < 0) {
      this.addRepeat(family, name, labels, value, timestampMs);
      return;
    }
    this.countKept();
    const sample: PromSample =
      timestampMs === undefined ? { name, labels, value } : { name, labels, value, timestampMs };
    family.samples.push(sample);
    this.series.add(freeSlot, hash, sample);
  }

  private countSkipped(): void {
    if (this.seriesCount + this.skippedSeries === this.limits.maxSeries) {
      this.fail('too_many_series', `more than ${this.limits.maxSeries} series`);
    }
    this.skippedSeries++;
  }

  private countKept(): void {
    if (this.seriesCount + this.skippedSeries === this.limits.maxSeries) {
      this.fail('too_many_series', `more than ${this.limits.maxSeries} series`);
    }
    this.seriesCount++;
  }

  /** The table slot for a new series, or -1 when the same series was kept before. */
  private freeSeriesSlot(hash: number, name: string, labels: Readonly<Record<string, string>>): number {
    for (let slot = this.series.candidate(hash, -1); ; slot = this.series.candidate(hash, slot)) {
      if (slot < 0) return ~slot;
      const kept = this.series.sampleAt(slot);
      if (kept.name === name && sameLabels(kept.labels, labels)) return -1;
    }
  }

  /** SeriesLabels over the current line's labels (for keepSeries). */
  get(name: string): string | undefined {
    // Cached label sets inherit from a frozen empty object: a missing name reads undefined.
    if (this.cachedLabels !== undefined) return this.cachedLabels[name];
    const names = this.labelNames;
    for (let i = 0; i < this.labelCount; i++) if (names[i] === name) return this.labelValues[i];
    return undefined;
  }

  private buildLabels(): Record<string, string> {
    const labels = new LabelSet();
    const names = this.labelNames;
    const values = this.labelValues;
    for (let i = 0; i < this.labelCount; i++) labels[names[i]!] = values[i]!;
    return labels;
  }

  // ---- families ----------------------------------------------------------------------------

  /** The family a sample belongs to: exact name, else a histogram/summary parent, else its own. */
  private familyForSample(name: string, slot: number): FamilyState {
    if (slot >= 0 && this.slotFamilyEpoch[slot] === this.familyEpoch) return this.slotFamily[slot]!;
    const family = this.familyByName.get(name) ?? this.parentFamily(name) ?? this.createFamily(name);
    if (slot >= 0) {
      this.slotFamily[slot] = family;
      this.slotFamilyUsed = true;
      this.slotFamilyEpoch[slot] = this.familyEpoch;
    }
    return family;
  }

  private parentFamily(name: string): FamilyState | undefined {
    const suffix = name.endsWith('_bucket') ? 7 : name.endsWith('_count') ? 6 : name.endsWith('_sum') ? 4 : 0;
    if (suffix === 0 || name.length === suffix) return undefined;
    const parent = this.familyByName.get(name.slice(0, -suffix));
    if (parent?.type === 'histogram') return parent;
    if (parent?.type === 'summary' && suffix !== 7) return parent;
    return undefined;
  }

  /** The family a HELP/TYPE line names (exact name only). */
  private familyNamed(name: string): FamilyState {
    const existing = this.familyByName.get(name);
    if (existing !== undefined) return existing;
    // The exact family now wins over a parent this name may have resolved to before.
    this.familyEpoch = ++SCRATCH.epoch;
    return this.createFamily(name);
  }

  private createFamily(name: string): FamilyState {
    const family: FamilyState = {
      name,
      type: undefined,
      help: undefined,
      hasHelp: false,
      hasSamples: false,
      filtered: false,
      kept: this.prefixStrings === undefined || keptByPrefixes(this.prefixes!, this.prefixStrings, name),
      samples: [],
    };
    this.familyByName.set(name, family);
    this.familyList.push(family);
    return family;
  }

  private result(): ParseResult {
    const families: PromFamily[] = [];
    for (const f of this.familyList) {
      if (f.samples.length === 0 && !f.filtered) continue;
      const type = f.type ?? 'untyped';
      families.push(
        f.help === undefined
          ? { name: f.name, type, samples: f.samples }
          : { name: f.name, type, help: f.help, samples: f.samples },
      );
    }
    return { families, duplicates: this.duplicates, seriesCount: this.seriesCount };
  }

  // ---- numbers -----------------------------------------------------------------------------

  private parseValue(start: number, end: number): number {
    const fast = this.plainDecimal(start, end);
    if (fast === fast) return fast; // not NaN: read (tokenEnd is set)
    const tokenEnd = this.scanToken(start, end);
    if (tokenEnd === start) this.syntax('missing sample value');
    this.tokenEnd = tokenEnd;
    return this.parseFloatToken(start, tokenEnd);
  }

  /**
   * The common value token in one pass: unsigned digits with an optional fraction and exponent,
   * ending at a token end, whose value exactDecimal gives. NaN for anything else (parseValue
   * then reads the token in full): the same digits give the same value as parseFloatToken.
   */
  private plainDecimal(start: number, end: number): number {
    const b = this.bytes;
    let p = start;
    let mantissa = 0;
    while (p < end && isDigit(b[p]!)) mantissa = mantissa * 10 + (b[p++]! - ZERO);
    let digits = p - start;
    let fractionDigits = 0;
    if (p < end && b[p] === DOT) {
      const fractionStart = ++p;
      while (p < end && isDigit(b[p]!)) mantissa = mantissa * 10 + (b[p++]! - ZERO);
      fractionDigits = p - fractionStart;
      digits += fractionDigits;
    }
    if (digits === 0) return NaN;
    let exponent = 0;
    if (p < end && (b[p]! | 0x20) === LOWER_E) {
      p++;
      const negative = p < end && b[p] === MINUS;
      if (negative || (p < end && b[p] === PLUS)) p++;
      const exponentStart = p;
      for (; p < end && isDigit(b[p]!); p++) if (exponent < 10_000) exponent = exponent * 10 + (b[p]! - ZERO);
      if (p === exponentStart) return NaN;
      if (negative) exponent = -exponent;
    }
    if (p < end && !(CLASS[b[p]!]! & TOKEN_END)) return NaN;
    const value = exactDecimal(mantissa, exponent - fractionDigits);
    if (value === undefined) return NaN;
    this.tokenEnd = p;
    return value;
  }

  /** Go ParseFloat syntax (decimal forms): digits with optional fraction and exponent, Inf, NaN. */
  private parseFloatToken(start: number, end: number): number {
    const b = this.bytes;
    let p = start;
    const negative = b[p] === MINUS;
    if (negative || b[p] === PLUS) p++;
    if (p < end && !isDigit(b[p]!) && b[p] !== DOT) return this.parseSpecialFloat(p, end, negative, p !== start);
    let mantissa = 0;
    const digitsStart = p;
    while (p < end && isDigit(b[p]!)) mantissa = mantissa * 10 + (b[p++]! - ZERO);
    let fractionDigits = 0;
    if (p < end && b[p] === DOT) {
      const fractionStart = ++p;
      while (p < end && isDigit(b[p]!)) mantissa = mantissa * 10 + (b[p++]! - ZERO);
      fractionDigits = p - fractionStart;
    }
    if (p - digitsStart - (fractionDigits > 0 || b[p - 1] === DOT ? 1 : 0) === 0) this.syntax('invalid sample value');
    let exponent = 0;
    if (p < end && (b[p]! | 0x20) === LOWER_E) {
      p = this.scanExponent(p + 1, end);
      exponent = this.exponent;
    }
    if (p !== end) this.syntax('invalid sample value');
    // The sign is applied once, below, so the fallback reads the unsigned part.
    const value = exactDecimal(mantissa, exponent - fractionDigits) ?? Number(latin1Slice(b, digitsStart, end));
    return negative ? -value : value;
  }

  private exponent = 0;

  /** Exponent digits after `e`; the value saturates (beyond ±10000 the float is 0 or Inf anyway). */
  private scanExponent(start: number, end: number): number {
    const b = this.bytes;
    let p = start;
    const negative = b[p] === MINUS;
    if (negative || b[p] === PLUS) p++;
    const digitsStart = p;
    let exponent = 0;
    for (; p < end && isDigit(b[p]!); p++) if (exponent < 10_000) exponent = exponent * 10 + (b[p]! - ZERO);
    if (p === digitsStart) this.syntax('invalid exponent in sample value');
    this.exponent = negative ? -exponent : exponent;
    return p;
  }

  /** Inf, Infinity (signed or not) and NaN (unsigned), case-insensitive, as Go accepts them. */
  private parseSpecialFloat(start: number, end: number, negative: boolean, signed: boolean): number {
    const word = latin1Slice(this.bytes, start, end).toLowerCase();
    if (word === 'inf' || word === 'infinity') return negative ? -Infinity : Infinity;
    if (word === 'nan' && !signed) return NaN;
    return this.syntax('invalid sample value');
  }

  /** An int64 in decimal, as Go's ParseInt(token, 10, 64). */
  private parseTimestamp(start: number, end: number): number {
    const b = this.bytes;
    const tokenEnd = this.scanToken(start, end);
    this.tokenEnd = tokenEnd;
    let p = start;
    const negative = b[p] === MINUS;
    if (negative || b[p] === PLUS) p++;
    const digitsStart = p;
    let value = 0;
    while (p < tokenEnd && isDigit(b[p]!)) value = value * 10 + (b[p++]! - ZERO);
    const digits = p - digitsStart;
    if (digits === 0 || p !== tokenEnd || digits > 19) this.syntax('invalid timestamp');
    if (digits < 16) return negative ? -value : value;
    const text = latin1Slice(b, digitsStart, tokenEnd);
    if (digits === 19 && text > (negative ? INT64_MIN_DIGITS : INT64_MAX_DIGITS)) this.syntax('timestamp out of int64 range');
    return negative ? -Number(text) : Number(text);
  }

  // ---- bytes -------------------------------------------------------------------------------

  private skipBlanks(p: number, end: number): number {
    const b = this.bytes;
    while (p < end && CLASS[b[p]!]! & BLANK) p++;
    return p;
  }

  private trimBlanksEnd(start: number, end: number): number {
    const b = this.bytes;
    while (end > start && CLASS[b[end - 1]!]! & BLANK) end--;
    return end;
  }

  /** To the next blank, CR or newline. */
  private scanToken(p: number, end: number): number {
    const b = this.bytes;
    while (p < end && !(CLASS[b[p]!]! & TOKEN_END)) p++;
    return p;
  }

  private scanMetricName(start: number, end: number): number {
    const b = this.bytes;
    if (start >= end || !(CLASS[b[start]!]! & METRIC_START)) return start;
    let p = start + 1;
    while (p < end && CLASS[b[p]!]! & METRIC_CONT) p++;
    return p;
  }

  /**
   * Walks the name at p down the keep-prefix trie, one byte per step and without decoding
   * anything: a line of a skipped family costs the bytes it shares with some prefix. A rejection
   * is remembered (startsLikeRejected).
   */
  private walkPrefix(p: number, end: number): number {
    const b = this.bytes;
    const trie = this.prefixes!;
    const next = trie.next;
    const terminal = trie.terminal;
    const column = trie.column;
    const width = trie.width;
    let node = 0;
    let i = p;
    for (; i < end; i++) {
      const child = next[node * width + column[b[i]!]!]!;
      if (child === 0) break;
      node = child;
      if (terminal[node] === 1) {
        this.acceptedStart = p;
        this.acceptedLength = i - p + 1;
        return PREFIX_MATCH;
      }
    }
    // The walk stopped inside the trie: the name is a proper prefix of a keep prefix when it ends here.
    const match = i > p && (i >= end || !(CLASS[b[i]!]! & METRIC_CONT)) ? NAME_INSIDE_PREFIX : NO_MATCH;
    this.walkStop = i;
    if (i < end) {
      // Bytes p..i decided it; a walk that reached `end` depends on where the line ends.
      this.rejectedStart = p;
      this.rejectedLength = i - p + 1;
      this.rejectedMatch = match;
    }
    return match;
  }

  private syntax(message: string): never {
    return this.fail('syntax', message);
  }

  /** A line over the length bound reports that, whatever else went wrong in it. */
  private fail(kind: PromParseErrorKind, message: string): never {
    const b = this.bytes;
    const nl = b.indexOf(LF, this.lineStart);
    if (kind !== 'too_many_series' && (nl < 0 ? b.length : nl) - this.lineStart > this.limits.maxLineBytes) {
      throw new PromParseError('line_too_long', this.line, `line longer than ${this.limits.maxLineBytes} bytes`);
    }
    throw new PromParseError(kind, this.line, message);
  }
}

/**
 * Keep prefixes as a byte trie, node 0 the root. A row per node with a slot per byte that occurs
 * in some prefix (`column`; column 0, every other byte, has no child): a few dozen slots, not 256,
 * so the rows a walk touches stay in cache.
 */
interface PrefixTrie {
  /** Child of node n for column c at n * width + c (0 = none). */
  next: Int32Array;
  column: Uint16Array;
  width: number;
  /** 1 where a keep prefix ends. */
  terminal: Uint8Array;
  /** Family names already tested against the prefixes (the same few dozen on every scrape). */
  keptNames: Map<string, boolean>;
  /** No keep prefix holds a newline: the bytes a walk went through are not the end of the line. */
  newlineFree: boolean;
}

const KEPT_NAMES_MAX = 4096;

/** Whether a family name starts with one of the keep prefixes, remembered per prefix list. */
function keptByPrefixes(trie: PrefixTrie, prefixes: readonly string[], name: string): boolean {
  let kept = trie.keptNames.get(name);
  if (kept === undefined) {
    kept = prefixes.some((p) => name.startsWith(p));
    if (trie.keptNames.size >= KEPT_NAMES_MAX) trie.keptNames.clear();
    trie.keptNames.set(name, kept);
  }
  return kept;
}

const TRIE_CACHE_MAX = 16;
/** Built once per prefix list: the decoder passes the same few lists on every scrape. */
const trieCache = new Map<string, PrefixTrie>();

/** The same list object (a decoder's constant) skips building the key. */
const trieByList = new WeakMap<readonly string[], PrefixTrie>();

function prefixTrie(prefixes: readonly string[]): PrefixTrie {
  const known = trieByList.get(prefixes);
  if (known !== undefined) return known;
  const trie = prefixTrieByContent(prefixes);
  trieByList.set(prefixes, trie);
  return trie;
}

function prefixTrieByContent(prefixes: readonly string[]): PrefixTrie {
  const key = `${prefixes.length}\n${prefixes.join('\n')}`;
  const cached = trieCache.get(key);
  if (cached !== undefined) return cached;
  const encoded = prefixes.map((p) => Buffer.from(p, 'utf8'));
  const capacity = 2 + encoded.reduce((sum, p) => sum + p.length, 0);
  const column = new Uint16Array(256);
  let width = 1;
  for (const prefix of encoded) for (const byte of prefix) if (column[byte] === 0) column[byte] = width++;
  const next = new Int32Array(capacity * width);
  const terminal = new Uint8Array(capacity);
  let nodes = 1;
  let emptyPrefix = false;
  for (const prefix of encoded) {
    if (prefix.length === 0) emptyPrefix = true;
    let node = 0;
    for (const byte of prefix) {
      const slot = node * width + column[byte]!;
      if (next[slot] === 0) next[slot] = nodes++;
      node = next[slot]!;
    }
    terminal[node] = 1;
  }
  // An empty prefix keeps every name: every first byte leads to a terminal node.
  if (emptyPrefix) {
    const all = nodes++;
    terminal[all] = 1;
    for (let c = 0; c < width; c++) next[c] = all;
  }
  const trie: PrefixTrie = {
    next: next.slice(0, Math.max(1, nodes) * width),
    column,
    width,
    terminal: terminal.slice(0, nodes),
    keptNames: new Map<string, boolean>(),
    newlineFree: encoded.every((p) => !p.includes(LF)),
  };
  if (trieCache.size >= TRIE_CACHE_MAX) trieCache.delete(trieCache.keys().next().value!);
  trieCache.set(key, trie);
  return trie;
}

const HELP_ESCAPES = '\\n';
const LABEL_VALUE_ESCAPES = '\\"n';

type Latin1Slicer = (this: Buffer, start: number, end: number) => string;
const nativeLatin1Slice = (Buffer.prototype as unknown as { latin1Slice?: Latin1Slicer }).latin1Slice;

/** Buffer's undocumented latin1Slice skips toString's argument handling; fall back if it goes. */
const latin1Slice: (bytes: Buffer, start: number, end: number) => string =
  typeof nativeLatin1Slice === 'function'
    ? (bytes, start, end) => nativeLatin1Slice.call(bytes, start, end)
    : (bytes, start, end) => bytes.toString('latin1', start, end);

function isDigit(c: number): boolean {
  return c >= ZERO && c <= NINE;
}

/** Correctly rounded when both the mantissa and the power of ten are exact doubles. */
function exactDecimal(mantissa: number, exponent10: number): number | undefined {
  if (mantissa > MAX_EXACT_MANTISSA) return undefined;
  if (exponent10 === 0) return mantissa;
  if (exponent10 > 0 && exponent10 <= 22) return mantissa * EXACT_POW10[exponent10]!;
  if (exponent10 < 0 && exponent10 >= -22) return mantissa / EXACT_POW10[-exponent10]!;
  return undefined;
}

/** Same label set, in any order. */
function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  if (a === b) return true;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const key of keys) if (!Object.hasOwn(b, key) || a[key] !== b[key]) return false;
  return true;
}

function mixHash(a: number, b: number): number {
  const h = Math.imul(a ^ Math.imul(b, 0x9e3779b1), 0x85ebca6b);
  return h ^ (h >>> 15);
}

/** FNV-1a over UTF-16 code units, for strings that have no intern slot. */
function hashString(s: string): number {
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}
