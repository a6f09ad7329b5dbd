/**
 * Bytes of the text format: the byte values the parser tests, one class table that makes every
 * scan loop one load and one test per byte, and the scans and comparisons over byte ranges.
 */

export const TAB = 9;
export const LF = 10;
export const CR = 13;
export const SPACE = 32;
export const QUOTE = 34;
export const HASH = 35;
export const PLUS = 43;
export const COMMA = 44;
export const MINUS = 45;
export const DOT = 46;
export const ZERO = 48;
export const NINE = 57;
export const EQUALS = 61;
export const BACKSLASH = 92;
export const LOWER_E = 101;
export const LOWER_N = 110;
export const LBRACE = 123;
export const RBRACE = 125;

// Byte classes.
export const LABEL_START = 1;
export const LABEL_CONT = 2;
export const METRIC_START = 4;
export const METRIC_CONT = 8;
export const BLANK = 16;
/** Ends a value or timestamp token. */
export const TOKEN_END = 32;
/** Bytes a label value scan must look at: the closing quote, escapes, newline, non-ASCII. */
export const VALUE_SPECIAL = 64;
/** Bytes a sample value or timestamp can be made of (digits, sign, point, exponent, Inf, NaN). */
export const NUMBER_CHAR = 128;
export const CLASS = buildClassTable();

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

export const EMPTY_BYTES = Buffer.alloc(0);
export const EMPTY_VIEW = new DataView(new ArrayBuffer(0));

type Latin1Slicer = (this: Buffer, start: number, end: number) => string;
const nativeLatin1Slice = (Buffer.prototype as unknown as { latin1Slice?: Latin1Slicer }).latin1Slice;

/** Buffer's undocumented latin1Slice skips toString's argument handling; fall back if it goes. */
export const latin1Slice: (bytes: Buffer, start: number, end: number) => string =
  typeof nativeLatin1Slice === 'function'
    ? (bytes, start, end) => nativeLatin1Slice.call(bytes, start, end)
    : (bytes, start, end) => bytes.toString('latin1', start, end);

export function isDigit(c: number): boolean {
  return c >= ZERO && c <= NINE;
}

export function skipBlanks(b: Buffer, p: number, end: number): number {
  while (p < end && CLASS[b[p]!]! & BLANK) p++;
  return p;
}

export function trimBlanksEnd(b: Buffer, start: number, end: number): number {
  while (end > start && CLASS[b[end - 1]!]! & BLANK) end--;
  return end;
}

/** To the next blank, CR or newline. */
export function scanToken(b: Buffer, p: number, end: number): number {
  while (p < end && !(CLASS[b[p]!]! & TOKEN_END)) p++;
  return p;
}

/** End of the metric name at `start`, or `start` when none starts there. */
export function scanMetricName(b: Buffer, start: number, end: number): number {
  if (start >= end || !(CLASS[b[start]!]! & METRIC_START)) return start;
  let p = start + 1;
  while (p < end && CLASS[b[p]!]! & METRIC_CONT) p++;
  return p;
}

/** What a newline search reads: the input, as bytes and through a DataView of them. */
export interface ByteSource {
  readonly bytes: Buffer;
  readonly view: DataView;
}

/**
 * The first LF from p to `limit`, else `limit`: four bytes a step, without a call into native
 * code (a Buffer.indexOf call costs more than the search on ~70-byte lines).
 */
export function findNewline(source: ByteSource, p: number, limit: number): number {
  const view = source.view;
  for (; p + 4 <= limit; p += 4) {
    const x = view.getInt32(p, true) ^ 0x0a0a0a0a;
    // A flag per byte of x that is zero; a borrow may flag bytes above the first zero byte too,
    // never below it, so the lowest flag (the first in memory) is exact.
    const zero = (x - 0x01010101) & ~x & 0x80808080;
    if (zero !== 0) return p + ((31 - Math.clz32(zero & -zero)) >> 3);
  }
  const b = source.bytes;
  while (p < limit && b[p] !== LF) p++;
  return p;
}

/**
 * True when `length` bytes at `a` in `viewA` equal those at `b` in `viewB`. Four bytes a step:
 * the parser's byte verifications (cached series, interned strings, rejected names) all run here.
 */
export function sameBytes(viewA: DataView, a: number, viewB: DataView, b: number, length: number): boolean {
  if (length < 4) {
    for (let i = 0; i < length; i++) if (viewA.getUint8(a + i) !== viewB.getUint8(b + i)) return false;
    return true;
  }
  // The last four bytes are one more step, overlapping the previous one, instead of up to three byte steps.
  const last = length - 4;
  for (let i = 0; i < last; i += 4) if (viewA.getInt32(a + i, true) !== viewB.getInt32(b + i, true)) return false;
  return viewA.getInt32(a + last, true) === viewB.getInt32(b + last, true);
}
