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

import * as bytesModule from './bytes.ts';
import * as commentsModule from './comments.ts';
import { FamilyTable, type FamilyState } from './families.ts';
import * as formatModule from './format.ts';
import * as hashModule from './hash.ts';
import * as internModule from './intern-table.ts';
import { InternTable } from './intern-table.ts';
import { LineLabels, type LabelSource } from './labels.ts';
import * as numbersModule from './numbers.ts';
import type { TokenReader } from './numbers.ts';
import * as prefixTrieModule from './prefix-trie.ts';
import type { PrefixTrie } from './prefix-trie.ts';
import { SeriesCache, type CachedSeries, type NameMemo } from './series-cache.ts';
import { SeriesTable } from './series-table.ts';
import * as workModule from './work.ts';
import type { ParseWork } from './work.ts';
import {
  DEFAULT_PARSE_LIMITS,
  PromParseError,
  type ParseLimits,
  type ParseOptions,
  type ParseResult,
  type PromParseErrorKind,
  type PromSample,
  type SeriesFilter,
  type SeriesLabels,
} from './types.ts';

/**
 * Imported constants and functions are read once, into module-local consts: an imported binding
 * is a live module cell to V8's optimizing compiler, loaded and checked on every use in a hot
 * loop, while a module-local const is folded into the code. The other modules of the parser's hot
 * path (labels, numbers, comments, the intern table, the series cache) do the same.
 */
const {
  BACKSLASH,
  BLANK,
  CLASS,
  CR,
  EMPTY_VIEW,
  findNewline,
  HASH,
  LBRACE,
  latin1Slice,
  LF,
  METRIC_CONT,
  METRIC_START,
  NUMBER_CHAR,
  QUOTE,
  RBRACE,
  sameBytes,
  scanMetricName,
  scanToken,
  skipBlanks,
  SPACE,
  TOKEN_END,
  trimBlanksEnd,
} = bytesModule;
const { commentKeyword, typeWord } = commentsModule;
const { HELP_ESCAPES, unescapeBytes, validEscapes } = formatModule;
const { hashBytes, mixHash } = hashModule;
const { INTERN_MAX_BYTES } = internModule;
const { readTimestamp, readValue } = numbersModule;
const { NAME_INSIDE_PREFIX, NO_MATCH, PREFIX_MATCH, prefixTrie, walkTrie } = prefixTrieModule;
const { seriesUnits, WORK } = workModule;

const LAST_WORK: ParseWork = { units: 0, collisions: 0 };

/** The work the last parse spent (a test and fuzz hook: work is asserted on, never wall time). */
export function lastParseWork(): ParseWork {
  return { ...LAST_WORK };
}

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
};

class Parser implements SeriesLabels, TokenReader, LabelSource {
  private line = 0;
  /** Start of the line being parsed, to tell a too-long line from the error it caused. */
  private lineStart = 0;
  private seriesCount = 0;
  /** Series keepSeries skipped: they count toward maxSeries. */
  private skippedSeries = 0;
  private duplicates = 0;
  /** Bytes the parse went through, for its work figure. */
  private scanned = 0;
  /** Units charged beyond the bytes scanned (sample lines): a field of the parser, not of WORK (see work.ts). */
  private extraWork = 0;
  private readonly families: FamilyTable;
  private readonly series = SCRATCH.series;
  readonly strings = SCRATCH.strings;
  private readonly prefixes: PrefixTrie | undefined;
  private readonly prefixStrings: readonly string[] | undefined;
  /** The labels of the current line. */
  private readonly lineLabels = new LineLabels(this);
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
  view: DataView = EMPTY_VIEW;
  /** Name memos this parse pointed at its families: released at the end. */
  private readonly memos: NameMemo[] = [];
  /** End of the token the last value/timestamp parse read. */
  tokenEnd = 0;
  /** The current line's value and timestamp (readValueTail). */
  private lineValue = 0;
  private lineTimestampMs: number | undefined;

  constructor(
    readonly bytes: Buffer,
    readonly limits: ParseLimits,
    keepPrefixes: readonly string[] | undefined,
    private readonly keepSeries: SeriesFilter | undefined,
    private readonly omitHelp: boolean,
    private readonly keepRepeatsOf: ReadonlySet<string> | undefined,
  ) {
    this.lane = keepPrefixes === undefined ? 0 : 1;
    if (keepPrefixes !== undefined) {
      this.prefixStrings = keepPrefixes;
      this.prefixes = prefixTrie(keepPrefixes);
    }
    this.families = new FamilyTable(this.prefixes, this.prefixStrings);
  }

  run(): ParseResult {
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    this.strings.begin(this.bytes, this.view);
    this.series.reset();
    this.cache.beginParse();
    WORK.collisions = 0;
    try {
      return this.parseAll();
    } finally {
      LAST_WORK.units = Math.max(this.scanned, this.lineStart) + this.extraWork;
      LAST_WORK.collisions = WORK.collisions;
      this.strings.end();
      this.series.reset();
      this.families.release();
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
      this.checkBudget(pos);
      this.lineStart = pos;
      // Sample lines are parsed up to their newline with no separate newline search; reading
      // stops at `limit`, one byte past the longest allowed line.
      const limit = Math.min(length, pos + maxLine + 1);
      const p = skipBlanks(this.bytes, pos, limit);
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
    this.checkBudget(length);
    this.scanned = length;
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
    const nl = findNewline(this, from, limit);
    if (nl - start > this.limits.maxLineBytes) this.fail('line_too_long', 'line too long');
    return nl;
  }

  /** Comments, blank lines and skipped samples: found by findNewline, decoded only when needed. */
  private parseOtherLine(start: number, limit: number): number {
    const b = this.bytes;
    const nl = this.boundedNewline(start, start, limit);
    const end = nl > start && b[nl - 1] === CR ? nl - 1 : nl;
    const p = skipBlanks(this.bytes, start, end);
    if (p === end) return nl;
    if (b[p] === HASH) this.parseComment(p + 1, end);
    else if (!(CLASS[b[p]!]! & METRIC_START)) this.syntax('invalid metric name');
    return nl;
  }

  // ---- comments: HELP and TYPE -------------------------------------------------------------

  private parseComment(start: number, end: number): void {
    let p = skipBlanks(this.bytes, start, end);
    const keyword = commentKeyword(this.bytes, p, end);
    if (keyword === undefined) return;
    p = skipBlanks(this.bytes, p + 4, end);
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
    const nameEnd = scanMetricName(this.bytes, p, end);
    if (nameEnd === p || (nameEnd < end && !(CLASS[this.bytes[nameEnd]!]! & BLANK))) {
      this.syntax('invalid metric name in comment');
    }
    const rest = skipBlanks(this.bytes, nameEnd, end);
    // Like the Go parser: HELP/TYPE with nothing after the name is a plain comment.
    if (rest === end) return;
    const family = this.families.named(this.strings.intern(p, nameEnd));
    if (keyword === 'HELP') this.readHelp(family, rest, end);
    else this.readType(family, rest, end);
  }

  private readHelp(family: FamilyState, start: number, end: number): void {
    if (family.hasHelp) this.syntax(`second HELP line for ${family.name}`);
    family.hasHelp = true;
    const textEnd = trimBlanksEnd(this.bytes, start, end);
    if (this.omitHelp) {
      if (!validEscapes(this.view, this.bytes, start, textEnd, HELP_ESCAPES)) this.syntax('invalid escape sequence in HELP');
    } else family.help = this.unescape(start, textEnd, HELP_ESCAPES, 'HELP');
  }

  private readType(family: FamilyState, start: number, end: number): void {
    if (family.type !== undefined || family.hasSamples) {
      this.syntax(`second TYPE line for ${family.name}, or TYPE after its samples`);
    }
    const tokenEnd = scanToken(this.bytes, start, end);
    if (skipBlanks(this.bytes, tokenEnd, end) !== end) this.syntax('unexpected text after the type');
    const type = typeWord(this.bytes, start, tokenEnd);
    if (type === undefined) this.syntax('unknown metric type');
    family.type = type;
    this.families.changed();
  }

  /**
   * Decodes a byte range with backslash escapes as UTF-8 (invalid sequences become U+FFFD,
   * never an error). `escapes` lists the bytes allowed after a backslash.
   */
  unescape(start: number, end: number, escapes: string, what: string): string {
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
    return unescapeBytes(b, start, end, escapes) ?? this.syntax(`invalid escape sequence in ${what}`);
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

    p = skipBlanks(this.bytes, p, end);
    const labels = this.lineLabels;
    labels.clear();
    let seriesEnd = nameEnd;
    if (p < end && b[p] === LBRACE) {
      const labelsStart = p;
      p = labels.scan(p + 1, end);
      // Only the canonical form, `{` right after the name, is cached (what every client writes).
      seriesEnd = labelsStart === nameEnd ? p : -1;
      p = skipBlanks(this.bytes, p, end);
    } else if (p === nameEnd) {
      this.syntax('expected a blank or "{" after the metric name');
    }
    const hash = mixHash(nameHash, (labels.hashSum ^ labels.count) | 0);
    const remembered = seriesEnd < 0 ? undefined : this.remember(start, seriesEnd, name, hash);
    if (remembered !== undefined) return this.finishSample(remembered, seriesEnd, end);
    this.previous = undefined;
    this.extraWork += seriesUnits(labels.count);
    const lineEnd = this.readValueTail(p, end);
    this.addSample(name, nameSlot, hash, this.lineValue, this.lineTimestampMs);
    return lineEnd;
  }

  // ---- series parts remembered across parses (series-cache.ts) --------------------------------

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
      const p = skipBlanks(this.bytes, after, end);
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
      labels: this.lineLabels.build(),
      labelCount: this.lineLabels.count,
      longestLabelName: this.lineLabels.longestName,
      longestLabelValue: this.lineLabels.longestValue,
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
    this.extraWork += seriesUnits(entry.labelCount);
    const prefixes = this.prefixes;
    if (prefixes !== undefined && entry.name.keptBy !== prefixes) entry.name.keptBy = prefixes;
    const family = this.familyOf(entry.name);
    family.hasSamples = true;
    if (family.kept && this.keepSeries !== undefined && !this.cachedVerdict(entry, family.name)) {
      family.filtered = true;
      this.countSkipped();
      return this.checkValueTail(seriesEnd, end);
    }
    const lineEnd = this.readValueTail(skipBlanks(this.bytes, seriesEnd, end), end);
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
    // The usual tail first: one space, one number token, the newline. Kept small so that it is
    // inlined into finishSample (most lines of a decode end here); any other tail is read apart.
    if (seriesEnd < end && b[seriesEnd] === SPACE) {
      let q = seriesEnd + 1;
      while (q < end && CLASS[b[q]!]! & NUMBER_CHAR) q++;
      if (q > seriesEnd + 1 && q < end && b[q] === LF) return q;
    }
    return this.checkOtherValueTail(seriesEnd, end);
  }

  /** checkValueTail for any tail but the usual one: blanks, a timestamp, CR, or an error. */
  private checkOtherValueTail(seriesEnd: number, end: number): number {
    const b = this.bytes;
    const first = skipBlanks(b, seriesEnd, end);
    let p = first;
    for (let token = 0; token < 2 && p < end && !(CLASS[b[p]!]! & TOKEN_END); token++) {
      const start = p;
      while (p < end && CLASS[b[p]!]! & NUMBER_CHAR) p++;
      if (p === start || (p < end && !(CLASS[b[p]!]! & TOKEN_END))) return this.readValueTail(first, end);
      p = skipBlanks(b, p, end);
    }
    if (p === first) return this.readValueTail(p, end); // no value: the error
    return this.lineEndAt(p, end);
  }

  /** The value, the optional timestamp and the line's end, from p; the numbers land in lineValue and lineTimestampMs. */
  private readValueTail(p: number, end: number): number {
    const b = this.bytes;
    this.lineValue = readValue(this, p, end);
    p = skipBlanks(this.bytes, this.tokenEnd, end);
    this.lineTimestampMs = undefined;
    if (p < end && !(CLASS[b[p]!]! & TOKEN_END)) {
      this.lineTimestampMs = readTimestamp(this, p, end);
      p = skipBlanks(this.bytes, this.tokenEnd, end);
    }
    return this.lineEndAt(p, end);
  }

  /** The family of a cached name, resolved once per name while the families do not change. */
  private familyOf(memo: NameMemo): FamilyState {
    if (memo.familyEpoch === this.families.epoch && memo.family !== undefined) return memo.family as FamilyState;
    const family = this.families.forSample(memo.name, -1);
    memo.family = family;
    memo.familyEpoch = this.families.epoch;
    this.memos.push(memo);
    return family;
  }

  private addCachedSample(entry: CachedSeries, family: FamilyState, value: number, timestampMs: number | undefined): void {
    const name = entry.name.name;
    const freeSlot = entry.seenInParse === this.parseId ? -1 : this.series.freeSlot(entry.seriesHash, name, entry.labels);
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

  /** A series seen before in this parse: counted, and returned only for `keepRepeatsOf` names. */
  private addRepeat(
    family: FamilyState,
    name: string,
    labels: Readonly<Record<string, string>>,
    value: number,
    timestampMs: number | undefined,
  ): void {
    this.duplicates++;
    if (this.keepRepeatsOf?.has(name) !== true) return;
    family.samples.push(timestampMs === undefined ? { name, labels, value } : { name, labels, value, timestampMs });
  }

  private addSample(name: string, nameSlot: number, hash: number, value: number, timestampMs: number | undefined): void {
    const family = this.families.forSample(name, nameSlot);
    family.hasSamples = true;
    if (!family.kept) return;
    if (this.keepSeries !== undefined && !this.keepSeries(family.name, this)) {
      family.filtered = true;
      this.countSkipped();
      return;
    }
    const labels = this.lineLabels.build();
    const freeSlot = this.series.freeSlot(hash, name, labels);
    if (freeSlot < 0) {
      this.addRepeat(family, name, labels, value, timestampMs);
      return;
    }
    this.countKept();
    const sample: PromSample = timestampMs === undefined ? { name, labels, value } : { name, labels, value, timestampMs };
    family.samples.push(sample);
    this.series.add(freeSlot, hash, sample);
  }

  /**
   * At each line start of the main loop, and at the end. The runs of skipped and guessed lines do
   * not check (a check there cost the hot loops their inlining): they are linear and cheap, and
   * the end check catches what they overspent. Whether a parse fails on budget is a function of
   * the input alone (units do not depend on the cache); the line it fails at, or whether another
   * error in the input is met first, may.
   */
  private checkBudget(pos: number): void {
    if (pos + this.extraWork <= this.limits.maxWork) return;
    this.scanned = pos;
    this.fail('budget', `decoding spent more than its budget of ${this.limits.maxWork} work units`);
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

  /** SeriesLabels over the current line's labels (for keepSeries). */
  get(name: string): string | undefined {
    // Cached label sets inherit from a frozen empty object: a missing name reads undefined.
    if (this.cachedLabels !== undefined) return this.cachedLabels[name];
    return this.lineLabels.get(name);
  }

  private result(): ParseResult {
    return { families: this.families.result(), duplicates: this.duplicates, seriesCount: this.seriesCount };
  }

  // ---- keep prefixes -----------------------------------------------------------------------

  /**
   * Walks the name at p down the keep-prefix trie, one byte per step and without decoding
   * anything: a line of a skipped family costs the bytes it shares with some prefix. A rejection
   * is remembered (startsLikeRejected).
   */
  private walkPrefix(p: number, end: number): number {
    const b = this.bytes;
    const at = walkTrie(this.prefixes!, b, p, end);
    if (at >= 0) {
      this.acceptedStart = p;
      this.acceptedLength = at - p + 1;
      return PREFIX_MATCH;
    }
    const i = ~at;
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

  syntax(message: string): never {
    return this.fail('syntax', message);
  }

  /** A line over the length bound reports that, whatever else went wrong in it. */
  fail(kind: PromParseErrorKind, message: string): never {
    const b = this.bytes;
    const nl = b.indexOf(LF, this.lineStart);
    if (kind !== 'too_many_series' && kind !== 'budget' && (nl < 0 ? b.length : nl) - this.lineStart > this.limits.maxLineBytes) {
      throw new PromParseError('line_too_long', this.line, `line longer than ${this.limits.maxLineBytes} bytes`);
    }
    throw new PromParseError(kind, this.line, message);
  }
}
