/**
 * Escapes and numbers of the text exposition format, both ways: the one escaping used by every
 * writer (the bridge's, the raw re-exposition, the simulated node's) and the unescaping of the
 * parser. Pure.
 */
import { BACKSLASH, LF, LOWER_N } from './bytes.ts';

const NEEDS_ESCAPE = /[\\\n"]/;

/** Label values escape backslash, double quote and newline; a value that needs none is returned as is. */
export function escapeLabelValue(value: string): string {
  return NEEDS_ESCAPE.test(value) ? value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"') : value;
}

/** HELP text (and names, as client libraries write them) escapes backslash and newline. */
export function escapeHelp(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** The bytes a backslash may precede in a HELP text. */
export const HELP_ESCAPES = '\\n';
/** The bytes a backslash may precede in a label value. */
export const LABEL_VALUE_ESCAPES = '\\"n';

/**
 * Decodes a byte range with backslash escapes as UTF-8 (invalid sequences become U+FFFD, never
 * an error); undefined when a backslash is followed by a byte not in `escapes`.
 */
export function unescapeBytes(b: Buffer, start: number, end: number, escapes: string): string | undefined {
  const out = Buffer.allocUnsafe(end - start);
  let n = 0;
  for (let p = start; p < end; p++) {
    let c = b[p]!;
    if (c === BACKSLASH) {
      const next = p + 1 < end ? b[++p]! : -1;
      if (!escapes.includes(String.fromCharCode(next))) return undefined;
      c = next === LOWER_N ? LF : next;
    }
    out[n++] = c;
  }
  return out.toString('utf8', 0, n);
}

/** Whether unescapeBytes would accept the range, found without decoding anything. */
export function validEscapes(view: DataView, b: Buffer, start: number, end: number, escapes: string): boolean {
  // Four bytes a step to the first backslash (most texts have none).
  let first = start;
  for (; first + 4 <= end; first += 4) {
    const x = view.getInt32(first, true) ^ 0x5c5c5c5c;
    if (((x - 0x01010101) & ~x & 0x80808080) !== 0) break;
  }
  for (let p = first; p < end; p++) {
    if (b[p] !== BACKSLASH) continue;
    const next = p + 1 < end ? b[++p]! : -1;
    if (!escapes.includes(String.fromCharCode(next))) return false;
  }
  return true;
}

/**
 * Go's strconv.FormatFloat(v, 'g', -1, 64), as client_golang's text encoder writes values:
 * shortest round-trip digits; exponent form (at least two exponent digits) when the decimal
 * exponent is < -4 or >= 6, e.g. 12533760 → 1.253376e+07, 4.710169 → 4.710169.
 */
export function formatGoFloat(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  const [mantissa, exp] = v.toExponential().split('e') as [string, string];
  const exponent = Number(exp);
  if (exponent < -4 || exponent >= 6) {
    return `${mantissa}e${exponent < 0 ? '-' : '+'}${String(Math.abs(exponent)).padStart(2, '0')}`;
  }
  return String(v);
}

/** As @prometheus-io/client's getValueAsString, its `Nan` spelling included. */
export function formatSampleValue(value: number): string {
  if (Number.isFinite(value)) return `${value}`;
  if (Number.isNaN(value)) return 'Nan';
  return value < 0 ? '-Inf' : '+Inf';
}
