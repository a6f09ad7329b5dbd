/**
 * Sample values and timestamps, read from the bytes without building strings in the common case,
 * with Go's ParseFloat and ParseInt(…, 10, 64) syntax.
 */
import * as bytesModule from './bytes.ts';

const { CLASS, DOT, isDigit, latin1Slice, LOWER_E, MINUS, PLUS, scanToken, TOKEN_END, ZERO } = bytesModule;

/** What number reading needs of the parser: the bytes, where a token ended, how to fail. */
export interface TokenReader {
  readonly bytes: Buffer;
  /** End of the token the last readValue/readTimestamp read. */
  tokenEnd: number;
  syntax(message: string): never;
}

/** Powers of ten that are exact doubles: the range of the exact fast path for decimals. */
const EXACT_POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);
const MAX_EXACT_MANTISSA = 2 ** 53;

const INT64_MAX_DIGITS = '9223372036854775807';
const INT64_MIN_DIGITS = '9223372036854775808';

/** The sample value token at `start`; sets `reader.tokenEnd`. */
export function readValue(reader: TokenReader, start: number, end: number): number {
  const fast = plainDecimal(reader, start, end);
  if (fast === fast) return fast; // not NaN: read (tokenEnd is set)
  const tokenEnd = scanToken(reader.bytes, start, end);
  if (tokenEnd === start) reader.syntax('missing sample value');
  reader.tokenEnd = tokenEnd;
  return parseFloatToken(reader, start, tokenEnd);
}

/**
 * The common value token in one pass: unsigned digits with an optional fraction and exponent,
 * ending at a token end, whose value exactDecimal gives. NaN for anything else (readValue then
 * reads the token in full): the same digits give the same value as parseFloatToken.
 */
function plainDecimal(reader: TokenReader, start: number, end: number): number {
  const b = reader.bytes;
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
  reader.tokenEnd = p;
  return value;
}

/** Go ParseFloat syntax (decimal forms): digits with optional fraction and exponent, Inf, NaN. */
function parseFloatToken(reader: TokenReader, start: number, end: number): number {
  const b = reader.bytes;
  let p = start;
  const negative = b[p] === MINUS;
  if (negative || b[p] === PLUS) p++;
  if (p < end && !isDigit(b[p]!) && b[p] !== DOT) return parseSpecialFloat(reader, p, end, negative, p !== start);
  let mantissa = 0;
  const digitsStart = p;
  while (p < end && isDigit(b[p]!)) mantissa = mantissa * 10 + (b[p++]! - ZERO);
  let fractionDigits = 0;
  if (p < end && b[p] === DOT) {
    const fractionStart = ++p;
    while (p < end && isDigit(b[p]!)) mantissa = mantissa * 10 + (b[p++]! - ZERO);
    fractionDigits = p - fractionStart;
  }
  if (p - digitsStart - (fractionDigits > 0 || b[p - 1] === DOT ? 1 : 0) === 0) reader.syntax('invalid sample value');
  let exponent = 0;
  if (p < end && (b[p]! | 0x20) === LOWER_E) {
    const exponentStart = p + 1;
    p = scanExponent(reader, exponentStart, end);
    exponent = exponentValue(b, exponentStart, p);
  }
  if (p !== end) reader.syntax('invalid sample value');
  // The sign is applied once, below, so the fallback reads the unsigned part.
  const value = exactDecimal(mantissa, exponent - fractionDigits) ?? Number(latin1Slice(b, digitsStart, end));
  return negative ? -value : value;
}

/** End of the exponent after `e` (an optional sign, then at least one digit). */
function scanExponent(reader: TokenReader, start: number, end: number): number {
  const b = reader.bytes;
  let p = start;
  if (b[p] === MINUS || b[p] === PLUS) p++;
  const digitsStart = p;
  while (p < end && isDigit(b[p]!)) p++;
  if (p === digitsStart) reader.syntax('invalid exponent in sample value');
  return p;
}

/** The exponent scanExponent found; it saturates (beyond ±10000 the float is 0 or Inf anyway). */
function exponentValue(b: Buffer, start: number, end: number): number {
  let p = start;
  const negative = b[p] === MINUS;
  if (negative || b[p] === PLUS) p++;
  let exponent = 0;
  for (; p < end; p++) if (exponent < 10_000) exponent = exponent * 10 + (b[p]! - ZERO);
  return negative ? -exponent : exponent;
}

/** Inf, Infinity (signed or not) and NaN (unsigned), case-insensitive, as Go accepts them. */
function parseSpecialFloat(reader: TokenReader, start: number, end: number, negative: boolean, signed: boolean): number {
  const word = latin1Slice(reader.bytes, start, end).toLowerCase();
  if (word === 'inf' || word === 'infinity') return negative ? -Infinity : Infinity;
  if (word === 'nan' && !signed) return NaN;
  return reader.syntax('invalid sample value');
}

/** An int64 in decimal, as Go's ParseInt(token, 10, 64); sets `reader.tokenEnd`. */
export function readTimestamp(reader: TokenReader, start: number, end: number): number {
  const b = reader.bytes;
  const tokenEnd = scanToken(b, start, end);
  reader.tokenEnd = tokenEnd;
  let p = start;
  const negative = b[p] === MINUS;
  if (negative || b[p] === PLUS) p++;
  const digitsStart = p;
  let value = 0;
  while (p < tokenEnd && isDigit(b[p]!)) value = value * 10 + (b[p++]! - ZERO);
  const digits = p - digitsStart;
  if (digits === 0 || p !== tokenEnd || digits > 19) reader.syntax('invalid timestamp');
  if (digits < 16) return negative ? -value : value;
  const text = latin1Slice(b, digitsStart, tokenEnd);
  if (digits === 19 && text > (negative ? INT64_MIN_DIGITS : INT64_MAX_DIGITS)) reader.syntax('timestamp out of int64 range');
  return negative ? -Number(text) : Number(text);
}

/** Correctly rounded when both the mantissa and the power of ten are exact doubles. */
function exactDecimal(mantissa: number, exponent10: number): number | undefined {
  if (mantissa > MAX_EXACT_MANTISSA) return undefined;
  if (exponent10 === 0) return mantissa;
  if (exponent10 > 0 && exponent10 <= 22) return mantissa * EXACT_POW10[exponent10]!;
  if (exponent10 < 0 && exponent10 >= -22) return mantissa / EXACT_POW10[-exponent10]!;
  return undefined;
}
