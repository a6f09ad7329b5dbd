/**
 * Property-based checks of the Prometheus text parser, shared by the unit property test
 * (moderate runs) and `npm run fuzz` (fuzzPromText with ≥100,000 runs).
 *
 * The renderer below is written from the format spec, independently of the parser.
 */
import fc from 'fast-check';
import {
  clearSeriesCache,
  DEFAULT_PARSE_LIMITS,
  parsePromText,
  PromParseError,
  type MetricType,
  type ParseLimits,
  type ParseOptions,
  type ParseResult,
  type SeriesFilter,
} from '../../src/prom-text/index.ts';

interface ModelSample {
  name: string;
  labels: [string, string][];
  value: number;
  timestampMs?: number;
}

interface ModelFamily {
  name: string;
  /** Undefined: no TYPE line is written. */
  type?: MetricType;
  help?: string;
  samples: ModelSample[];
}

/** How one sample line is spelled: blanks, trailing comma, empty braces, line end. */
interface Spelling {
  blank: string;
  trailingComma: boolean;
  emptyBraces: boolean;
  crlf: boolean;
}

const ERROR_KINDS = new Set(['syntax', 'line_too_long', 'too_many_series', 'too_many_labels', 'label_too_long', 'budget']);

// Family names without `_`, so none can end in a histogram/summary suffix of another.
const familyName = fc.stringMatching(/^[a-zA-Z:][a-zA-Z0-9:]{0,8}$/);
const labelName = fc.oneof(
  fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,10}$/),
  fc.constantFrom('__proto__', 'constructor', 'toString', 'le', 'quantile'),
);
/** Any Unicode text (no lone surrogates: they cannot round-trip through UTF-8). */
const text = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constantFrom('', '"', '\\', '\n', '\\n', '\\"', 'a"b\\c\nd', 'é✓😀', '}{,= ', '\r', '\t'),
);
const value = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(NaN, Infinity, -Infinity, -0, 1.8446743709127774e19, 5e-324));
const timestamp = fc.option(fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }), { nil: undefined });
const spelling: fc.Arbitrary<Spelling> = fc.record({
  blank: fc.constantFrom(' ', '\t', '  ', ' \t'),
  trailingComma: fc.boolean(),
  emptyBraces: fc.boolean(),
  crlf: fc.boolean(),
});

const labelSet = fc.uniqueArray(fc.tuple(labelName, text), { maxLength: 4, selector: ([name]) => name });

function sampleNames(name: string, type: MetricType | undefined): string[] {
  if (type === 'histogram') return [`${name}_bucket`, `${name}_sum`, `${name}_count`];
  if (type === 'summary') return [name, `${name}_sum`, `${name}_count`];
  return [name];
}

const family: fc.Arbitrary<ModelFamily> = fc
  .record({
    name: familyName,
    type: fc.option(fc.constantFrom<MetricType>('counter', 'gauge', 'histogram', 'summary', 'untyped'), { nil: undefined }),
    help: fc.option(text, { nil: undefined }),
    picks: fc.array(fc.record({ which: fc.nat(2), labels: labelSet, value, timestampMs: timestamp }), {
      minLength: 1,
      maxLength: 6,
    }),
  })
  .map(({ name, type, help, picks }) => {
    const names = sampleNames(name, type);
    const samples = picks.map(({ which, labels, value: v, timestampMs }) => ({
      name: names[which % names.length]!,
      labels,
      value: v,
      ...(timestampMs === undefined ? {} : { timestampMs }),
    }));
    return { name, ...(type === undefined ? {} : { type }), ...(help === undefined ? {} : { help }), samples };
  });

const families = fc.uniqueArray(family, { maxLength: 6, selector: (f) => f.name });

function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabelValue(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function renderValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return Object.is(v, -0) ? '-0' : String(v);
}

function renderSample(s: ModelSample, how: Spelling): string {
  const { blank } = how;
  const pairs = s.labels.map(([k, v]) => `${k}${blank}=${blank}"${escapeLabelValue(v)}"`);
  const comma = how.trailingComma && pairs.length > 0 ? ',' : '';
  const braces = pairs.length > 0 || how.emptyBraces ? `{${blank}${pairs.join(`,${blank}`)}${comma}}` : '';
  const ts = s.timestampMs === undefined ? '' : `${blank}${s.timestampMs}`;
  return `${s.name}${braces}${blank}${renderValue(s.value)}${ts}${how.crlf ? '\r\n' : '\n'}`;
}

export function renderFamilies(model: readonly ModelFamily[], how: Spelling): string {
  let out = '';
  for (const f of model) {
    if (f.help !== undefined) out += `# HELP ${f.name} ${escapeHelp(f.help)}\n`;
    if (f.type !== undefined) out += `# TYPE ${f.name} ${f.type}\n`;
    for (const s of f.samples) out += renderSample(s, how);
  }
  return out;
}

/** What the spec says the parser must return for a rendered model: first of each series kept. */
function expectedResult(model: readonly ModelFamily[]) {
  const seen = new Set<string>();
  let duplicates = 0;
  const isFirst = (s: ModelSample): boolean => {
    const key = JSON.stringify([s.name, [...s.labels].sort(([a], [b]) => (a < b ? -1 : 1))]);
    if (seen.has(key)) {
      duplicates++;
      return false;
    }
    seen.add(key);
    return true;
  };
  const out = model.map((f) => ({
    name: f.name,
    type: f.type ?? 'untyped',
    help: expectedHelp(f.help),
    samples: f.samples.filter(isFirst),
  }));
  return { families: out, duplicates, seriesCount: seen.size };
}

/**
 * A CR right before the newline is a line end, and blanks around the docstring are not part of
 * it; an all-blank docstring makes the line a plain comment.
 */
function expectedHelp(help: string | undefined): string | undefined {
  const trimmed = help?.replace(/\r$/, '').replace(/^[ \t]+|[ \t]+$/g, '');
  return trimmed === '' ? undefined : trimmed;
}

function sameSeries(actual: ParseResult, model: readonly ModelFamily[]): void {
  const expected = expectedResult(model);
  const fail = (what: string): never => {
    throw new Error(`${what} differs`);
  };
  if (actual.duplicates !== expected.duplicates) fail('duplicates');
  if (actual.seriesCount !== expected.seriesCount) fail('seriesCount');
  if (actual.families.length !== expected.families.length) fail('family count');
  expected.families.forEach((want, i) => {
    const got = actual.families[i]!;
    if (got.name !== want.name || got.type !== want.type || got.help !== want.help) fail(`family ${want.name}`);
    if (got.samples.length !== want.samples.length) fail(`sample count of ${want.name}`);
    want.samples.forEach((w, j) => {
      const g = got.samples[j]!;
      if (g.name !== w.name || !Object.is(g.value, w.value) || g.timestampMs !== w.timestampMs) fail(`sample ${w.name}`);
      if (JSON.stringify(Object.entries(g.labels)) !== JSON.stringify(w.labels)) fail(`labels of ${w.name}`);
    });
  });
}

/** Parses, and accepts only a result or a PromParseError of a known kind. */
function parseOrKnownError(input: Uint8Array | string, options?: ParseOptions): ParseResult | PromParseError {
  try {
    return parsePromText(input, options);
  } catch (error) {
    if (error instanceof PromParseError && ERROR_KINDS.has(error.kind) && Number.isInteger(error.line)) return error;
    throw error;
  }
}

interface Mutation {
  kind: 'set' | 'insert' | 'cut' | 'repeat';
  at: number;
  byte: number;
}

/** Byte-level damage to a valid payload: flips, inserted delimiters, cuts, repeats. */
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    byte: fc.constantFrom(10, 13, 32, 34, 35, 44, 61, 92, 123, 125, 0xff, 0xc3),
  }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat(), byte: fc.nat(40) }),
  fc.record({ kind: fc.constant('repeat' as const), at: fc.nat(), byte: fc.nat(40) }),
);

function mutate(bytes: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let out = Buffer.from(bytes);
  for (const m of mutations) {
    const at = out.length === 0 ? 0 : m.at % out.length;
    if (m.kind === 'set' && out.length > 0) out[at] = m.byte;
    else if (m.kind === 'insert') out = Buffer.concat([out.subarray(0, at), Buffer.from([m.byte]), out.subarray(at)]);
    else if (m.kind === 'cut') out = Buffer.concat([out.subarray(0, at), out.subarray(at + m.byte)]);
    else if (m.kind === 'repeat') out = Buffer.concat([out.subarray(0, at + m.byte), out.subarray(at)]);
  }
  return out;
}

const mutatedPayload = fc
  .tuple(families, spelling, fc.array(mutation, { minLength: 1, maxLength: 8 }))
  .map(([model, how, mutations]) => mutate(Buffer.from(renderFamilies(model, how)), mutations));

const anyInput = fc.oneof(fc.uint8Array({ maxLength: 4096 }), mutatedPayload);

const smallLimits: fc.Arbitrary<ParseLimits> = fc.record({
  maxLineBytes: fc.integer({ min: 1, max: 120 }),
  maxSeries: fc.integer({ min: 0, max: 12 }),
  maxLabelsPerSeries: fc.integer({ min: 0, max: 4 }),
  maxLabelNameBytes: fc.integer({ min: 1, max: 8 }),
  maxLabelValueBytes: fc.integer({ min: 0, max: 8 }),
  maxWork: fc.oneof(fc.integer({ min: 0, max: 2048 }), fc.constant(DEFAULT_PARSE_LIMITS.maxWork)),
});

function lineLengths(bytes: Uint8Array): number[] {
  const lengths: number[] = [];
  for (let start = 0; start < bytes.length;) {
    const nl = bytes.indexOf(10, start);
    const end = nl < 0 ? bytes.length : nl;
    lengths.push(end - start);
    start = end + 1;
  }
  return lengths;
}

function withinLimits(input: Uint8Array, result: ParseResult, limits: ParseLimits): boolean {
  if (lineLengths(input).some((n) => n > limits.maxLineBytes)) return false;
  const samples = result.families.flatMap((f) => f.samples);
  if (result.seriesCount > limits.maxSeries || samples.length !== result.seriesCount) return false;
  return samples.every((s) => {
    const entries = Object.entries(s.labels);
    return (
      entries.length <= limits.maxLabelsPerSeries &&
      entries.every(([k, v]) => Buffer.byteLength(k) <= limits.maxLabelNameBytes && v.length <= limits.maxLabelValueBytes)
    );
  });
}

/** Each property, built fresh so callers choose the number of runs. */
export const promTextProperties: Record<string, () => fc.IProperty<unknown>> = {
  'render then parse gives back the same series': () =>
    fc.property(families, spelling, (model, how) => {
      sameSeries(parsePromText(renderFamilies(model, how)), model);
    }),

  'arbitrary bytes give a result or a PromParseError, nothing else': () =>
    fc.property(anyInput, fc.option(fc.array(familyName, { maxLength: 3 }), { nil: undefined }), (input, keepPrefixes) => {
      parseOrKnownError(input, keepPrefixes === undefined ? {} : { keepPrefixes });
    }),

  'with small limits the output never exceeds them': () =>
    fc.property(
      fc.oneof(
        anyInput,
        fc.tuple(families, spelling).map(([m, h]) => Buffer.from(renderFamilies(m, h))),
      ),
      smallLimits,
      (input, limits) => {
        const result = parseOrKnownError(input, { limits });
        return result instanceof PromParseError || withinLimits(input, result, limits);
      },
    ),

  'keepPrefixes gives the full result filtered by family name': () =>
    fc.property(
      families,
      spelling,
      fc.array(fc.string({ unit: 'grapheme-ascii', maxLength: 3 }), { maxLength: 3 }),
      (model, how, keepPrefixes) => {
        const input = renderFamilies(model, how);
        const full = parsePromText(input);
        const kept = parsePromText(input, { keepPrefixes });
        const filtered = full.families.filter((f) => keepPrefixes.some((p) => f.name.startsWith(p)));
        return (
          JSON.stringify(kept.families) === JSON.stringify(filtered) &&
          kept.seriesCount === filtered.reduce((n, f) => n + f.samples.length, 0)
        );
      },
    ),
};

/** A result or error as plain data, to compare two parses of the same input. */
function outcome(input: Uint8Array | string, options: ParseOptions): unknown {
  const result = parseOrKnownError(input, options);
  return result instanceof PromParseError
    ? { kind: result.kind, line: result.line, message: result.message }
    : JSON.parse(JSON.stringify(result, (_, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)));
}

/** A pure filter, as keepSeries must be: keeps series whose label values have an even total length. */
const evenLabelText: SeriesFilter = (_, labels) =>
  ['a', 'b', 'k', 'le', 'quantile'].reduce((n, name) => n + (labels.get(name)?.length ?? 0), 0) % 2 === 0;

const renderedPayload = fc.tuple(families, spelling).map(([m, h]) => Buffer.from(renderFamilies(m, h)));

promTextProperties['a cache warmed by other payloads, limits and filters never changes a result'] = () =>
  fc.property(
    fc.array(fc.oneof(renderedPayload, anyInput), { minLength: 1, maxLength: 4 }),
    // The default work budget: where a parse over budget stops, and so which error it meets first, may depend on the cache.
    fc.option(
      smallLimits.map((l) => ({ ...l, maxWork: DEFAULT_PARSE_LIMITS.maxWork })),
      { nil: undefined },
    ),
    fc.option(fc.array(familyName, { maxLength: 3 }), { nil: undefined }),
    fc.boolean(),
    (inputs, limits, keepPrefixes, filtered) => {
      const options: ParseOptions = {
        ...(limits ? { limits } : {}),
        ...(keepPrefixes ? { keepPrefixes } : {}),
        ...(filtered ? { keepSeries: evenLabelText } : {}),
      };
      const target = inputs[0]!;
      clearSeriesCache();
      const cold = outcome(target, options);
      // Warm it with every input under these options and under none, in both orders.
      for (const input of [...inputs, ...inputs.slice().reverse()]) {
        outcome(input, options);
        outcome(input, {});
      }
      const warm = outcome(target, options);
      return JSON.stringify(warm) === JSON.stringify(cold);
    },
  );

export function fuzzPromText(numRuns: number): void {
  for (const [name, property] of Object.entries(promTextProperties)) {
    fc.assert(property(), { numRuns });
    console.log(`ok  ${name} (${numRuns} runs)`);
  }
}

promTextProperties['whether a valid payload is over its work budget does not depend on the cache'] = () =>
  fc.property(
    fc.array(renderedPayload, { minLength: 1, maxLength: 3 }),
    fc.integer({ min: 0, max: 4096 }),
    fc.option(fc.array(familyName, { maxLength: 3 }), { nil: undefined }),
    (inputs, maxWork, keepPrefixes) => {
      const options: ParseOptions = { limits: { maxWork }, ...(keepPrefixes ? { keepPrefixes } : {}) };
      const verdict = (input: Uint8Array): string => {
        const result = parseOrKnownError(input, options);
        return result instanceof PromParseError ? result.kind : 'ok';
      };
      clearSeriesCache();
      const cold = verdict(inputs[0]!);
      for (const input of inputs) verdict(input);
      return verdict(inputs[0]!) === cold;
    },
  );
