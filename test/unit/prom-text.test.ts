import { describe, expect, test } from 'vitest';
import {
  DEFAULT_PARSE_LIMITS,
  parsePromText,
  PromParseError,
  type ParseOptions,
  type ParseResult,
  type PromFamily,
  type SeriesLabels,
  type PromParseErrorKind,
} from '../../src/prom-text/index.ts';

/** The one family of a payload that must produce exactly one. */
function onlyFamily(text: string | Uint8Array, options?: ParseOptions): PromFamily {
  const result = parsePromText(text, options);
  expect(result.families).toHaveLength(1);
  return result.families[0]!;
}

function onlySample(text: string) {
  const samples = onlyFamily(text).samples;
  expect(samples).toHaveLength(1);
  return samples[0]!;
}

function parseError(text: string | Uint8Array, options?: ParseOptions): PromParseError {
  try {
    parsePromText(text, options);
  } catch (error) {
    expect(error).toBeInstanceOf(PromParseError);
    return error as PromParseError;
  }
  throw new Error('expected a PromParseError');
}

function names(result: ParseResult): string[] {
  return result.families.map((f) => f.name);
}

describe('values', () => {
  test.each([
    ['0', 0],
    ['42', 42],
    ['-7', -7],
    ['+3', 3],
    ['3.25', 3.25],
    ['-0.5', -0.5],
    ['.5', 0.5],
    ['5.', 5],
    ['1e3', 1000],
    ['1E-3', 0.001],
    ['2.5e+2', 250],
    ['1.8446743709127774e+19', 1.8446743709127774e19],
    ['-1.8446743709127774e+19', -1.8446743709127774e19],
    ['-5e-324', -5e-324],
    ['123456789012345678901234', 1.2345678901234568e23],
    ['4.3119e-05', 0.000043119],
    ['1e400', Infinity],
    ['+Inf', Infinity],
    ['-Inf', -Infinity],
    ['Inf', Infinity],
    ['inf', Infinity],
    ['+Infinity', Infinity],
  ])('%s reads as %d', (text, expected) => {
    expect(onlySample(`m ${text}\n`).value).toBe(expected);
  });

  test('NaN', () => {
    expect(onlySample('m NaN\n').value).toBeNaN();
    expect(onlySample('m nan\n').value).toBeNaN();
  });

  test('-0 keeps its sign', () => {
    expect(Object.is(onlySample('m -0\n').value, -0)).toBe(true);
  });

  test.each(['1x', '0x10', '--1', '+', '.', 'e5', '1e', '1e+', '+NaN', 'Infx', '1_000', '1..2', '١'])(
    'value %s is a syntax error',
    (text) => {
      expect(parseError(`m ${text}\n`).kind).toBe('syntax');
    },
  );
});

describe('timestamps', () => {
  test.each([
    ['m 1 1700000000000', 1700000000000],
    ['m 1 -62135596800000', -62135596800000],
    ['m 1 0', 0],
    ['m 1 +5', 5],
    ['m{a="b"} 1\t1700000000123', 1700000000123],
  ])('%s', (line, expected) => {
    expect(onlySample(`${line}\n`).timestampMs).toBe(expected);
  });

  test('absent timestamp leaves the key out', () => {
    expect('timestampMs' in onlySample('m 1\n')).toBe(false);
  });

  test.each(['m 1 1.5', 'm 1 1e3', 'm 1 abc', 'm 1 2 3', 'm 1 99999999999999999999', 'm 1 9223372036854775808'])(
    '%s is a syntax error',
    (line) => {
      expect(parseError(`${line}\n`).kind).toBe('syntax');
    },
  );

  test('int64 bounds are accepted', () => {
    expect(onlySample('m 1 9223372036854775807\n').timestampMs).toBe(9223372036854775807);
    expect(onlySample('m 1 -9223372036854775808\n').timestampMs).toBe(-9223372036854775808);
  });
});

describe('labels', () => {
  test.each([
    ['m{a="b"} 1', { a: 'b' }],
    ['m{a="b",} 1', { a: 'b' }],
    ['m{} 1', {}],
    ['m{ a = "b" , c="d" } 1', { a: 'b', c: 'd' }],
    ['m\t{\ta="b"\t}\t1', { a: 'b' }],
    ['m{a=""} 1', { a: '' }],
    ['m{a="x y}{,="} 1', { a: 'x y}{,=' }],
    ['m{a="back\\\\slash"} 1', { a: 'back\\slash' }],
    ['m{a="say \\"hi\\""} 1', { a: 'say "hi"' }],
    ['m{a="two\\nlines"} 1', { a: 'two\nlines' }],
    ['m{a="ünïcødé ✓"} 1', { a: 'ünïcødé ✓' }],
    ['m{_x="1",A9_b="2"} 1', { _x: '1', A9_b: '2' }],
  ])('%s', (line, expected) => {
    expect(onlySample(`${line}\n`).labels).toEqual(expected);
  });

  test('labels keep wire order', () => {
    expect(Object.keys(onlySample('m{z="1",a="2",m="3"} 1\n').labels)).toEqual(['z', 'a', 'm']);
  });

  test('invalid UTF-8 in a label value becomes replacement characters', () => {
    const bytes = Buffer.concat([Buffer.from('m{a="x'), Buffer.from([0xff, 0xc3]), Buffer.from('y"} 1\n')]);
    expect(onlySample(bytes as unknown as string).labels.a).toBe('x\uFFFD\uFFFDy');
  });

  test.each([
    ['__proto__', 'x'],
    ['constructor', 'y'],
    ['toString', 'z'],
    ['hasOwnProperty', 'w'],
  ])('a %s label is an ordinary own key', (name, value) => {
    const labels = onlySample(`m{${name}="${value}"} 1\n`).labels;
    expect(Object.keys(labels)).toEqual([name]);
    expect(Object.getOwnPropertyDescriptor(labels, name)?.value).toBe(value);
    expect(({} as Record<string, unknown>)[name]).not.toBe(value);
    expect(Object.prototype).not.toHaveProperty('x');
  });

  test('labels inherit nothing', () => {
    const labels = onlySample('m{a="b"} 1\n').labels;
    expect(labels.toString).toBeUndefined();
    expect(labels.constructor).toBeUndefined();
    expect('hasOwnProperty' in labels).toBe(false);
  });

  test.each([
    'm{a="b"c="d"} 1',
    'm{a="b" 1',
    'm{a="b} 1',
    'm{a=b} 1',
    'm{a} 1',
    'm{="b"} 1',
    'm{1a="b"} 1',
    'm{a-b="c"} 1',
    'm{a="b",,} 1',
    'm{,} 1',
    'm{a="\\t"} 1',
    'm{a="b",a="c"} 1',
  ])('%s is a syntax error', (line) => {
    expect(parseError(`${line}\n`).kind).toBe('syntax');
  });

  test('a raw newline inside a label value is a syntax error', () => {
    expect(parseError('m{a="b\nc"} 1\n').kind).toBe('syntax');
  });
});

describe('names and line shape', () => {
  test.each(['m', 'M_1', ':colon:name', '_u', 'a:b_c9'])('metric name %s', (name) => {
    expect(onlySample(`${name} 1\n`).name).toBe(name);
  });

  test.each(['1m 1', '-m 1', 'm-x 1', 'm.x 1', 'm', 'm{a="b"}', 'ü 1', 'm 1 2 3'])('%s is a syntax error', (line) => {
    expect(parseError(`${line}\n`).kind).toBe('syntax');
  });

  test('blank lines, leading/trailing blanks, CRLF and a last line without newline', () => {
    const result = parsePromText('\n  \n\t a 1 \r\n\r\nb{x="y"}\t2\t\r\n\nc 3');
    expect(result.families.map((f) => [f.name, f.samples[0]!.value])).toEqual([
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ]);
  });

  test('no blank needed between "}" and the value', () => {
    expect(onlySample('m{a="b"}7\n').value).toBe(7);
  });

  test('empty input', () => {
    expect(parsePromText('')).toEqual({ families: [], duplicates: 0, seriesCount: 0 });
    expect(parsePromText(new Uint8Array(0))).toEqual({ families: [], duplicates: 0, seriesCount: 0 });
  });

  test('a Uint8Array view into a larger buffer reads only its own bytes', () => {
    const whole = Buffer.from('junk{ m 1\nokay 2\n');
    const view = new Uint8Array(whole.buffer, whole.byteOffset + 10, whole.length - 10);
    expect(onlyFamily(view).name).toBe('okay');
  });
});

describe('HELP, TYPE and comments', () => {
  test('HELP then TYPE', () => {
    const family = onlyFamily('# HELP m Some help.\n# TYPE m counter\nm 1\n');
    expect(family).toEqual({ name: 'm', type: 'counter', help: 'Some help.', samples: [{ name: 'm', labels: {}, value: 1 }] });
  });

  test('TYPE then HELP', () => {
    const family = onlyFamily('# TYPE m gauge\n# HELP m h\nm 1\n');
    expect([family.type, family.help]).toEqual(['gauge', 'h']);
  });

  test('TYPE without HELP has no help key', () => {
    const family = onlyFamily('# TYPE m summary\nm 1\n');
    expect(family.type).toBe('summary');
    expect('help' in family).toBe(false);
  });

  test.each(['counter', 'gauge', 'histogram', 'summary', 'untyped'] as const)('type %s', (type) => {
    expect(onlyFamily(`# TYPE m ${type}\nm 1\n`).type).toBe(type);
  });

  test('type keywords are case-insensitive, as in the Go parser', () => {
    expect(onlyFamily('# TYPE m COUNTER\nm 1\n').type).toBe('counter');
  });

  test('HELP escapes: backslash-backslash and backslash-n', () => {
    expect(onlyFamily('# HELP m a\\\\b\\nc\nm 1\n').help).toBe('a\\b\nc');
  });

  test('HELP keeps inner blanks and UTF-8, drops surrounding blanks and CR', () => {
    expect(onlyFamily('# HELP m \t  Résumé  of   it \t\r\nm 1\n').help).toBe('Résumé  of   it');
  });

  test.each(['# HELP m bad \\t escape', '# HELP m trailing \\', '# HELP m a\\"b'])('%s is a syntax error', (line) => {
    expect(parseError(`${line}\nm 1\n`).kind).toBe('syntax');
  });

  test('other comments and keyword-only lines are ignored', () => {
    const text = '#\n# just words\n#HELPX m y\n# HELP\n# TYPE m\n# TYPE\tm   \n  # indented comment\n# type m counter\nm 1\n';
    expect(onlyFamily(text)).toEqual({ name: 'm', type: 'untyped', samples: [{ name: 'm', labels: {}, value: 1 }] });
  });

  test.each([
    ['second HELP', '# HELP m a\n# HELP m b\nm 1\n'],
    ['second TYPE', '# TYPE m gauge\n# TYPE m gauge\nm 1\n'],
    ['TYPE after samples', 'm 1\n# TYPE m gauge\n'],
    ['unknown type', '# TYPE m meter\nm 1\n'],
    ['text after the type', '# TYPE m gauge extra\nm 1\n'],
    ['invalid name in HELP', '# HELP 1m help\n'],
    ['invalid name in TYPE', '# TYPE m-x gauge\n'],
    ['prototype key as type', '# TYPE m constructor\nm 1\n'],
  ])('%s is a syntax error', (_, text) => {
    expect(parseError(text).kind).toBe('syntax');
  });

  test('omitHelp leaves help out and nothing else', () => {
    const text = '# HELP m Some \\\\ help.\\n\n# TYPE m counter\nm 1\n# HELP n Résumé\nn 2\n';
    const full = parsePromText(text);
    expect(full.families[0]!.help).toBe('Some \\ help.\n');
    expect(parsePromText(text, { omitHelp: true }).families).toEqual(full.families.map(({ help: _, ...rest }) => rest));
  });

  test.each([
    ['second HELP', '# HELP m a\n# HELP m b\nm 1\n'],
    ['second HELP after an empty-looking one', '# HELP m \\\\\n# HELP m b\n'],
    ['bad escape', '# HELP m bad \\t escape\nm 1\n'],
    ['trailing backslash', '# HELP m trailing \\  \nm 1\n'],
    ['escaped quote', '# HELP m a\\"b\nm 1\n'],
    ['bad escape on a long line', `# HELP m ${'x'.repeat(80)}\\q\nm 1\n`],
  ])('omitHelp reports the same error: %s', (_, text) => {
    for (const options of [{}, { keepPrefixes: ['m'] }, { limits: { maxLineBytes: 40 } }]) {
      const expected = parseError(text, options);
      const actual = parseError(text, { ...options, omitHelp: true });
      expect([actual.kind, actual.line, actual.message]).toEqual([expected.kind, expected.line, expected.message]);
    }
  });

  test('families without samples are dropped; first-seen order is kept', () => {
    const text = '# HELP empty nothing\n# TYPE b gauge\n# TYPE a gauge\na 1\nb 2\n';
    expect(names(parsePromText(text))).toEqual(['b', 'a']);
  });

  test('samples of one family may be interleaved with another', () => {
    const result = parsePromText('a{x="1"} 1\nb 2\na{x="2"} 3\n');
    expect(result.families.map((f) => [f.name, f.samples.length])).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
  });
});

describe('histogram and summary families', () => {
  const histogram = [
    '# HELP h Latency.',
    '# TYPE h histogram',
    'h_bucket{le="0.5"} 1',
    'h_bucket{le="+Inf"} 3',
    'h_sum 4.5',
    'h_count 3',
    '',
  ].join('\n');

  test('_bucket, _sum and _count belong to the histogram family', () => {
    const family = onlyFamily(histogram);
    expect(family.name).toBe('h');
    expect(family.type).toBe('histogram');
    expect(family.samples.map((s) => [s.name, s.labels.le, s.value])).toEqual([
      ['h_bucket', '0.5', 1],
      ['h_bucket', '+Inf', 3],
      ['h_sum', undefined, 4.5],
      ['h_count', undefined, 3],
    ]);
  });

  test('_sum and _count belong to the summary family, _bucket does not', () => {
    const text = '# TYPE s summary\ns{quantile="0.5"} 1\ns_sum 2\ns_count 3\ns_bucket 4\n';
    const result = parsePromText(text);
    expect(result.families.map((f) => [f.name, f.type, f.samples.map((x) => x.name)])).toEqual([
      ['s', 'summary', ['s', 's_sum', 's_count']],
      ['s_bucket', 'untyped', ['s_bucket']],
    ]);
  });

  test('suffixed samples without a histogram/summary TYPE form their own untyped families', () => {
    const result = parsePromText('# TYPE g gauge\ng_count 1\nu_sum 2\nu_bucket{le="1"} 3\n');
    expect(result.families.map((f) => [f.name, f.type])).toEqual([
      ['g_count', 'untyped'],
      ['u_sum', 'untyped'],
      ['u_bucket', 'untyped'],
    ]);
  });

  test('an exact TYPE wins over the histogram parent', () => {
    const result = parsePromText('# TYPE h histogram\n# TYPE h_count gauge\nh_count 1\nh_sum 2\n');
    expect(result.families.map((f) => [f.name, f.type, f.samples.length])).toEqual([
      ['h', 'histogram', 1],
      ['h_count', 'gauge', 1],
    ]);
  });
});

describe('duplicates', () => {
  test('same name and label set: counted, first kept, never fatal', () => {
    const result = parsePromText('m{a="1",b="2"} 1\nm{b="2",a="1"} 2\nm{a="1",b="2"} 3\nm{a="1"} 4\n');
    expect(result.duplicates).toBe(2);
    expect(result.seriesCount).toBe(2);
    expect(result.families[0]!.samples.map((s) => s.value)).toEqual([1, 4]);
  });

  test('different sample names in one family are different series', () => {
    const result = parsePromText('# TYPE h histogram\nh_sum 1\nh_count 1\n');
    expect([result.duplicates, result.seriesCount]).toEqual([0, 2]);
  });

  test('values that differ only in escaping are the same series', () => {
    const result = parsePromText('m{a="x\\\\"} 1\nm{a="x\\\\"} 2\nm{a="x\\n"} 3\n');
    expect([result.duplicates, result.seriesCount]).toEqual([1, 2]);
  });

  test('many distinct series with similar names are all kept', () => {
    const lines = Array.from({ length: 5000 }, (_, i) => `m{item="item_${i}",cpu="${i % 7}"} ${i}`);
    const result = parsePromText(`${lines.join('\n')}\n`);
    expect([result.seriesCount, result.duplicates]).toEqual([5000, 0]);
    expect(result.families[0]!.samples[4999]!.labels).toEqual({ item: 'item_4999', cpu: '1' });
  });
});

describe('keepPrefixes', () => {
  const payload = [
    '# HELP go_goroutines Goroutines.',
    '# TYPE go_goroutines gauge',
    'go_goroutines 31',
    '# HELP kata_guest_load Load.',
    '# TYPE kata_guest_load gauge',
    'kata_guest_load{item="load1"} 0.5',
    '# HELP kata_shim_threads Threads.',
    '# TYPE kata_shim_threads gauge',
    'kata_shim_threads 20',
    'kata_guest_tasks{item="cur"} 12',
    '',
  ].join('\n');

  test('keeps only matching families, with their HELP and TYPE', () => {
    const result = parsePromText(payload, { keepPrefixes: ['kata_guest_'] });
    expect(result.families).toEqual([
      {
        name: 'kata_guest_load',
        type: 'gauge',
        help: 'Load.',
        samples: [{ name: 'kata_guest_load', labels: { item: 'load1' }, value: 0.5 }],
      },
      { name: 'kata_guest_tasks', type: 'untyped', samples: [{ name: 'kata_guest_tasks', labels: { item: 'cur' }, value: 12 }] },
    ]);
    expect(result.seriesCount).toBe(2);
  });

  test('skipped lines are not decoded: their syntax errors and duplicates go unseen', () => {
    const text = '# HELP skip_me bad \\q escape\n# TYPE skip_me nonsense\nskip_me{=broken\nskip_me 1\nskip_me 1\nkeep_me 1\n';
    const result = parsePromText(text, { keepPrefixes: ['keep_'] });
    expect(names(result)).toEqual(['keep_me']);
    expect(result.duplicates).toBe(0);
    expect(parseError(text).kind).toBe('syntax');
  });

  test('several prefixes; an empty list keeps nothing; an empty prefix keeps all', () => {
    expect(names(parsePromText(payload, { keepPrefixes: ['go_', 'kata_shim_'] }))).toEqual(['go_goroutines', 'kata_shim_threads']);
    expect(parsePromText(payload, { keepPrefixes: [] }).families).toEqual([]);
    expect(names(parsePromText(payload, { keepPrefixes: [''] }))).toHaveLength(4);
  });

  test('a prefix ending inside a histogram suffix does not keep the parent family', () => {
    const text = '# TYPE foo histogram\nfoo_bucket{le="1"} 1\nfoo_count 1\nfoo_countless 2\n';
    const full = parsePromText(text);
    expect(names(full)).toEqual(['foo', 'foo_countless']);
    expect(names(parsePromText(text, { keepPrefixes: ['foo_c'] }))).toEqual(['foo_countless']);
  });

  test('a name starting like a rejected one is rejected alike, comments included', () => {
    // The walk rejects kata_guest_vm_stat at its `v`, and kata_guest_lo at the blank after it.
    const text = [
      '# HELP kata_guest_vm_stat VM.',
      '# TYPE kata_guest_vm_stat gauge',
      'kata_guest_vm_stat{item="a"} 1',
      'kata_guest_vm_stat{item="b"} 2',
      'kata_guest_vmx 3',
      'kata_guest_cpu_time{item="user"} 4',
      'kata_guest_vm_stat{item="c"} 5',
      'kata_guest_lo 6',
      'kata_guest_load 7',
      'kata_guest_l 8',
      '# TYPE kata_guest histogram',
      'kata_guest_bucket{le="1"} 9',
      '',
    ].join('\n');
    const kept = parsePromText(text, { keepPrefixes: ['kata_guest_cpu', 'kata_guest_load', 'kata_guest_bucket'] });
    expect(kept.families.map((f) => [f.name, f.samples.map((s) => s.value)])).toEqual([
      ['kata_guest_cpu_time', [4]],
      ['kata_guest_load', [7]],
    ]);
  });

  test('a line starting like a rejected name that is not a name is still an error', () => {
    // The HELP's walk rejects at `9` (not a name byte); a sample line starting with it is invalid.
    const text = '# HELP 9abc text\nkata_x 1\n9abc 2\n';
    const error = parseError(text, { keepPrefixes: ['kata_y'] });
    expect([error.kind, error.line, error.message]).toEqual(['syntax', 3, 'line 3: invalid metric name']);
  });

  test('runs of skipped lines keep their line numbers for a later error', () => {
    const lines = ['# TYPE kept gauge', 'kept{item="a"} 1', 'kept{item="b"} 2'];
    for (let i = 0; i < 5; i++) lines.push(`skipped_family{i="${i}"} ${i}`);
    lines.push('kept{item="a"} 3', 'kept{item="b"} x', '');
    const text = lines.join('\n');
    const options: ParseOptions = { keepPrefixes: ['kept'], keepSeries: (_, labels) => labels.get('item') === 'a' };
    for (let round = 0; round < 3; round++) {
      // Later rounds take the guessed path for every kept line.
      const error = parseError(text, options);
      expect([error.kind, error.line, error.message]).toEqual(['syntax', 10, 'line 10: invalid sample value']);
    }
  });

  test('a keep prefix holding a newline does not let the skip search start past it', () => {
    // The walk of line 1 goes through its newline (`ab\nc`) and stops at the blank after `c`.
    const text = 'ab\nc 1\nab 2\nkept 3\nkept x\n';
    const error = parseError(text, { keepPrefixes: ['ab\ncd', 'kept'] });
    expect([error.kind, error.line, error.message]).toEqual(['syntax', 5, 'line 5: invalid sample value']);
  });

  test('a skipped line or comment is not searched past the line length bound', () => {
    const text = `skipped 1\nskipped ${'1'.repeat(100)}\n# ${'x'.repeat(120)}\nkept 1\n`;
    for (const [maxLineBytes, line] of [
      [50, 2],
      [108, 3],
    ] as const) {
      const error = parseError(text, { keepPrefixes: ['kept'], limits: { maxLineBytes } });
      expect([error.kind, error.line]).toEqual(['line_too_long', line]);
    }
    expect(names(parsePromText(text, { keepPrefixes: ['kept'], limits: { maxLineBytes: 122 } }))).toEqual(['kept']);
  });

  test('skipped lines still obey the line length bound', () => {
    const text = `skipped_${'x'.repeat(100)} 1\nkept 1\n`;
    expect(parseError(text, { keepPrefixes: ['kept'], limits: { maxLineBytes: 50 } }).kind).toBe('line_too_long');
  });
});

describe('limits', () => {
  const cases: [string, string, Partial<typeof DEFAULT_PARSE_LIMITS>, PromParseErrorKind][] = [
    ['line', `m{a="${'x'.repeat(40)}"} 1\n`, { maxLineBytes: 30 }, 'line_too_long'],
    ['line with a syntax error in it', `m{a=${'x'.repeat(40)}\n`, { maxLineBytes: 30 }, 'line_too_long'],
    ['last line without newline', `m ${'1'.repeat(40)}`, { maxLineBytes: 30 }, 'line_too_long'],
    ['comment line', `# ${'x'.repeat(40)}\n`, { maxLineBytes: 30 }, 'line_too_long'],
    ['series', 'a 1\nb 1\nc 1\n', { maxSeries: 2 }, 'too_many_series'],
    ['labels per series', 'm{a="1",b="2",c="3"} 1\n', { maxLabelsPerSeries: 2 }, 'too_many_labels'],
    ['label name', 'm{abcdef="1"} 1\n', { maxLabelNameBytes: 5 }, 'label_too_long'],
    ['label value', 'm{a="abcdef"} 1\n', { maxLabelValueBytes: 5 }, 'label_too_long'],
    ['escaped label value', 'm{a="\\\\\\\\\\\\"} 1\n', { maxLabelValueBytes: 2 }, 'label_too_long'],
    ['non-ASCII label value', 'm{a="ééé"} 1\n', { maxLabelValueBytes: 5 }, 'label_too_long'],
  ];

  test.each(cases)('too long/many: %s', (_, text, limits, kind) => {
    expect(parseError(text, { limits }).kind).toBe(kind);
  });

  test.each([
    ['line exactly at the bound', 'm 12345\n', { maxLineBytes: 7 }, 1],
    ['CRLF line at the bound', 'm 1234\r\n', { maxLineBytes: 7 }, 1],
    ['series at the bound', 'a 1\nb 1\n', { maxSeries: 2 }, 2],
    ['duplicates do not count as series', 'a 1\na 1\na 1\n', { maxSeries: 1 }, 1],
    ['labels at the bound', 'm{a="1",b="2"} 1\n', { maxLabelsPerSeries: 2 }, 1],
    ['label name at the bound', 'm{abcde="1"} 1\n', { maxLabelNameBytes: 5 }, 1],
    ['label value at the bound (escapes count once)', 'm{a="\\\\\\"xyz"} 1\n', { maxLabelValueBytes: 5 }, 1],
  ])('within bounds: %s', (_, text, limits, series) => {
    expect(parsePromText(text, { limits }).seriesCount).toBe(series);
  });

  test('errors carry the 1-based line number', () => {
    const error = parseError('a 1\n\n# c\nb{ 1\n');
    expect([error.kind, error.line, error.name]).toEqual(['syntax', 4, 'PromParseError']);
    expect(error.message).toMatch(/^line 4: /);
  });

  test('defaults are the documented ones', () => {
    expect(DEFAULT_PARSE_LIMITS).toEqual({
      maxLineBytes: 65536,
      maxSeries: 100000,
      maxLabelsPerSeries: 32,
      maxLabelNameBytes: 128,
      maxLabelValueBytes: 1024,
      maxWork: 64 * 1024 * 1024,
    });
  });
});

describe('string and byte input agree', () => {
  test('the same payload as string, Buffer and plain Uint8Array', () => {
    const text = '# TYPE m gauge\nm{a="é\\n"} 1.5 -1\n';
    const expected = parsePromText(text);
    expect(parsePromText(Buffer.from(text))).toEqual(expected);
    expect(parsePromText(new Uint8Array(Buffer.from(text)))).toEqual(expected);
    expect(expected.families[0]!.samples[0]).toEqual({ name: 'm', labels: { a: 'é\n' }, value: 1.5, timestampMs: -1 });
  });
});

describe('keepSeries', () => {
  const text = [
    '# TYPE m gauge',
    'm{item="a",cpu="total"} 1',
    'm{item="b",cpu="0"} 2',
    'm{item="a",cpu="total"} 9',
    '# TYPE n gauge',
    'n{item="x"} 3',
    'o 4',
    '',
  ].join('\n');

  test('skipped series build nothing; kept ones, duplicates and other families are as without it', () => {
    const seen: string[] = [];
    const result = parsePromText(text, {
      keepSeries: (family, labels) => {
        seen.push(`${family}:${labels.get('item') ?? '-'}:${labels.get('missing') ?? '-'}`);
        return family !== 'n' && labels.get('cpu') !== '0';
      },
    });
    // Asked once per distinct series: the repeated m{item="a"} line reuses the answer.
    expect(seen).toEqual(['m:a:-', 'm:b:-', 'n:x:-', 'o:-:-']);
    expect(result.families.map((f) => [f.name, f.samples.map((s) => s.value)])).toEqual([
      ['m', [1]],
      ['n', []],
      ['o', [4]],
    ]);
    expect(result.seriesCount).toBe(2);
    expect(result.duplicates).toBe(1);
  });

  test('a filter is pure: its answers are reused by later parses, a different filter is asked afresh', () => {
    const askedBy = (label: string, seen: string[]) => (family: string, labels: SeriesLabels) => {
      seen.push(`${label}:${family}:${labels.get('item') ?? '-'}`);
      return labels.get('cpu') !== '0';
    };
    const firstSeen: string[] = [];
    const first = askedBy('first', firstSeen);
    const once = parsePromText(text, { keepSeries: first });
    const again = parsePromText(text, { keepSeries: first });
    // Four questions over both parses: the second parse asked nothing and got the same result.
    expect(firstSeen).toEqual(['first:m:a', 'first:m:b', 'first:n:x', 'first:o:-']);
    expect(again).toEqual(once);
    const otherSeen: string[] = [];
    parsePromText(text, { keepSeries: askedBy('other', otherSeen) });
    expect(otherSeen).toEqual(['other:m:a', 'other:m:b', 'other:n:x', 'other:o:-']);
  });

  test('a family whose every series is skipped is returned empty; families outside keepPrefixes are never asked about', () => {
    const asked = new Set<string>();
    const result = parsePromText(text, {
      keepPrefixes: ['n', 'o'],
      keepSeries: (family) => {
        asked.add(family);
        return false;
      },
    });
    expect([...asked]).toEqual(['n', 'o']);
    expect(result.families.map((f) => [f.name, f.type, f.samples.length])).toEqual([
      ['n', 'gauge', 0],
      ['o', 'untyped', 0],
    ]);
  });

  test('skipped series count toward maxSeries; skipped lines are checked up to their labels and in length', () => {
    const many = `${Array.from({ length: 20 }, (_, i) => `m{i="${i}"} 1`).join('\n')}\n`;
    expect(() => parsePromText(many, { keepSeries: () => false, limits: { maxSeries: 10 } })).toThrow(PromParseError);
    expect(parsePromText(many, { keepSeries: () => false, limits: { maxSeries: 20 } }).seriesCount).toBe(0);
    const skipAll = () => false;
    expect(() => parsePromText('m{i=1} 2\n', { keepSeries: skipAll })).toThrow(/quoted label value/);
    expect(() => parsePromText(`m{i="1"} ${'9'.repeat(100)}\n`, { keepSeries: skipAll, limits: { maxLineBytes: 64 } })).toThrow(/line/);
    // The value of a skipped series must be made of number characters (so injected text fails)
    // but is not converted; a kept one is read in full.
    expect(() => parsePromText('m{i="1"} nope\n', { keepSeries: skipAll })).toThrow(/invalid sample value/);
    expect(() => parsePromText('m{i="1"} x{a="b"} 1\n', { keepSeries: skipAll })).toThrow(PromParseError);
    expect(parsePromText('m{i="1"} 1.2.3 -5\n', { keepSeries: skipAll }).seriesCount).toBe(0);
    expect(() => parsePromText('m{i="1"} 1.2.3\n', { keepSeries: () => true })).toThrow(/invalid sample value/);
    expect(() => parsePromText('m{i="1"}\n', { keepSeries: skipAll })).toThrow(/missing sample value/);
  });
});
