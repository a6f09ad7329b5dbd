/**
 * The label set of one sample line: scanned from `{` to `}` into scratch arrays reused across
 * lines, hashed independently of label order, and built into an object only for a kept series.
 */
import * as bytesModule from './bytes.ts';
import * as formatModule from './format.ts';
import * as hashModule from './hash.ts';
import * as internModule from './intern-table.ts';
import type { InternTable } from './intern-table.ts';
import type { ParseLimits, PromParseErrorKind, SeriesLabels } from './types.ts';

const { BACKSLASH, CLASS, COMMA, EQUALS, LABEL_CONT, LABEL_START, latin1Slice, LF, QUOTE, RBRACE, skipBlanks, VALUE_SPECIAL } = bytesModule;
const { LABEL_VALUE_ESCAPES } = formatModule;
const { hashString, mixHash } = hashModule;
const { INTERN_MAX_BYTES } = internModule;

/**
 * Labels objects inherit from a frozen, empty, null-prototype object: a guest's `__proto__` or
 * `constructor` label becomes an ordinary own key (no accessor on the chain), nothing inherited
 * can shadow a lookup, and unlike `Object.create(null)` the objects stay in V8's fast mode.
 */
const LabelSet = function LabelSet() {} as unknown as new () => Record<string, string>;
LabelSet.prototype = Object.freeze(Object.create(null) as object);

/** What label scanning needs of the parser: the input, its strings, its bounds, how to fail. */
export interface LabelSource {
  readonly bytes: Buffer;
  readonly strings: InternTable;
  readonly limits: ParseLimits;
  fail(kind: PromParseErrorKind, message: string): never;
  syntax(message: string): never;
  /** A byte range with backslash escapes, decoded (the parser's HELP and label value decoding). */
  unescape(start: number, end: number, escapes: string, what: string): string;
}

export class LineLabels implements SeriesLabels {
  private readonly names: string[] = [];
  private readonly values: string[] = [];
  count = 0;
  /** Sum of the labels' hashes: the series hash must not depend on label order. */
  hashSum = 0;
  /** Longest label name and decoded value of the line (what a cache entry must re-check). */
  longestName = 0;
  longestValue = 0;

  constructor(private readonly source: LabelSource) {}

  /** Forgets the previous line's labels. */
  clear(): void {
    this.count = 0;
    this.hashSum = 0;
    this.longestName = 0;
    this.longestValue = 0;
  }

  /** From just after `{` to just after `}`. */
  scan(start: number, end: number): number {
    const source = this.source;
    const b = source.bytes;
    const limits = source.limits;
    let p = skipBlanks(b, start, end);
    while (p >= end || b[p] !== RBRACE) {
      const nameStart = p;
      if (p >= end || !(CLASS[b[p]!]! & LABEL_START)) source.syntax('invalid label name');
      do p++;
      while (p < end && CLASS[b[p]!]! & LABEL_CONT);
      if (p - nameStart > limits.maxLabelNameBytes) {
        source.fail('label_too_long', `label name longer than ${limits.maxLabelNameBytes} bytes`);
      }
      if (this.count === limits.maxLabelsPerSeries) {
        source.fail('too_many_labels', `more than ${limits.maxLabelsPerSeries} labels`);
      }
      const labelName = source.strings.intern(nameStart, p);
      const nameId = source.strings.lastHash;
      if (p - nameStart > this.longestName) this.longestName = p - nameStart;
      p = skipBlanks(b, p, end);
      if (p >= end || b[p] !== EQUALS) source.syntax('expected "=" after the label name');
      p = skipBlanks(b, p + 1, end);
      if (p >= end || b[p] !== QUOTE) source.syntax('expected a quoted label value');
      p = this.scanValue(labelName, nameId, p + 1, end);
      p = skipBlanks(b, p, end);
      if (p < end && b[p] === COMMA) p = skipBlanks(b, p + 1, end);
      else if (p >= end || b[p] !== RBRACE) source.syntax('expected "," or "}" after the label value');
    }
    return p + 1;
  }

  /** From just after the opening quote to just after the closing one; stores the pair. */
  private scanValue(labelName: string, nameId: number, start: number, end: number): number {
    const source = this.source;
    const b = source.bytes;
    let p = start;
    let plainAscii = true;
    let escapes = 0;
    for (;;) {
      if (p >= end) source.syntax('unterminated label value');
      const c = b[p]!;
      if (CLASS[c]! & VALUE_SPECIAL) {
        if (c === QUOTE) break;
        if (c === LF) source.syntax('newline in label value');
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
    if (decodedBytes > source.limits.maxLabelValueBytes) {
      source.fail('label_too_long', `label value longer than ${source.limits.maxLabelValueBytes} bytes`);
    }
    if (decodedBytes > this.longestValue) this.longestValue = decodedBytes;
    let value: string;
    let valueId: number;
    if (plainAscii && p - start <= INTERN_MAX_BYTES) {
      value = source.strings.intern(start, p);
      valueId = source.strings.lastHash;
    } else {
      value = plainAscii ? latin1Slice(b, start, p) : source.unescape(start, p, LABEL_VALUE_ESCAPES, 'label value');
      valueId = hashString(value);
    }
    this.store(labelName, nameId, value, valueId);
    return p + 1;
  }

  private store(name: string, nameId: number, value: string, valueId: number): void {
    const count = this.count;
    const names = this.names;
    for (let i = 0; i < count; i++) if (names[i] === name) this.source.syntax(`duplicate label name ${name}`);
    names[count] = name;
    this.values[count] = value;
    this.count = count + 1;
    this.hashSum = (this.hashSum + mixHash(nameId, valueId)) | 0;
  }

  /** The value of a label of the line, or undefined when it has none of that name. */
  get(name: string): string | undefined {
    const names = this.names;
    for (let i = 0; i < this.count; i++) if (names[i] === name) return this.values[i];
    return undefined;
  }

  /** The line's labels as a new object. */
  build(): Record<string, string> {
    const labels = new LabelSet();
    const names = this.names;
    const values = this.values;
    for (let i = 0; i < this.count; i++) labels[names[i]!] = values[i]!;
    return labels;
  }
}
