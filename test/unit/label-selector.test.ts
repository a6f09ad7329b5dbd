import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  keyProblem,
  matchesLabels,
  matchesRequirement,
  parseLabelSelector,
  SelectorError,
  valueProblem,
  type Requirement,
} from '../../src/translate/label-selector.ts';

function requirements(text: string): Requirement[] {
  return parseLabelSelector(text).requirements;
}

function problem(text: string): string {
  try {
    parseLabelSelector(text);
  } catch (error) {
    expect(error).toBeInstanceOf(SelectorError);
    return (error as Error).message;
  }
  throw new Error(`"${text}" was accepted`);
}

describe('parsing', () => {
  test.each<[string, Requirement[]]>([
    ['a=b', [{ key: 'a', operator: 'in', values: ['b'] }]],
    ['a==b', [{ key: 'a', operator: 'in', values: ['b'] }]],
    ['a!=b', [{ key: 'a', operator: 'notin', values: ['b'] }]],
    ['a=', [{ key: 'a', operator: 'in', values: [''] }]],
    ['a in (x, y)', [{ key: 'a', operator: 'in', values: ['x', 'y'] }]],
    ['a notin (x)', [{ key: 'a', operator: 'notin', values: ['x'] }]],
    ['a in (x,,y)', [{ key: 'a', operator: 'in', values: ['x', '', 'y'] }]],
    ['a', [{ key: 'a', operator: 'exists', values: [] }]],
    ['!a', [{ key: 'a', operator: 'notexists', values: [] }]],
    ['a>3', [{ key: 'a', operator: 'gt', values: ['3'] }]],
    ['a < -2', [{ key: 'a', operator: 'lt', values: ['-2'] }]],
    [
      ' kata-bridge.io/untrusted = true , tier notin (infra,system), !legacy,team ',
      [
        { key: 'kata-bridge.io/untrusted', operator: 'in', values: ['true'] },
        { key: 'tier', operator: 'notin', values: ['infra', 'system'] },
        { key: 'legacy', operator: 'notexists', values: [] },
        { key: 'team', operator: 'exists', values: [] },
      ],
    ],
    ['kubernetes.io/metadata.name in (ci,builds)', [{ key: 'kubernetes.io/metadata.name', operator: 'in', values: ['ci', 'builds'] }]],
  ])('%s', (text, expected) => {
    expect(requirements(text)).toEqual(expected);
  });

  test('blank text has no requirement', () => {
    expect(requirements('')).toEqual([]);
    expect(requirements('   ')).toEqual([]);
  });

  test.each([
    [',', 'expected a label key'],
    ['a=b,', 'expected a label key'],
    ['a=b c', "expected ',' or the end"],
    ['a in ()', 'is empty'],
    ['a in (x', "expected ',' or ')'"],
    ['a in x', "expected '('"],
    ['a > b', 'must be an integer'],
    ['a >', 'expected a value'],
    ['a b', "expected =, ==, !=, in, notin, >, <, ',' or the end"],
    ['a=(b)', 'expected a value'],
    ['-a=b', 'starting and ending with a letter or digit'],
    ['Example.com/a=b', 'lowercase DNS subdomain'],
    ['/a=b', 'lowercase DNS subdomain'],
    [`a=${'v'.repeat(64)}`, 'at most 63 characters'],
    [`${'k'.repeat(64)}=v`, 'at most 63 characters'],
    ['a=b_', 'starting and ending with a letter or digit'],
    ['in=x', 'expected a label key'],
  ])('%s is refused: %s', (text, message) => {
    expect(problem(text)).toContain(message);
  });

  test('key and value validation as Kubernetes does it', () => {
    expect(keyProblem('app.kubernetes.io/name')).toBeUndefined();
    expect(keyProblem(`${'a'.repeat(253)}/n`)).toBeUndefined();
    expect(keyProblem(`${'a'.repeat(254)}/n`)).toContain('DNS subdomain');
    expect(keyProblem('a/b/c')).toContain('key "a/b/c" must be at most 63 characters');
    expect(valueProblem('')).toBeUndefined();
    expect(valueProblem('v1.2_3-x')).toBeUndefined();
    expect(valueProblem('a b')).toContain('value "a b" must be at most 63 characters');
  });
});

describe('matching', () => {
  const labels = { tier: 'build', 'kata-bridge.io/untrusted': 'true', replicas: '5' };

  test.each<[string, boolean]>([
    ['tier=build', true],
    ['tier=web', false],
    ['tier!=web', true],
    ['absent!=web', true], // != also matches objects without the label
    ['absent notin (x)', true],
    ['absent in (x)', false],
    ['tier in (web,build)', true],
    ['tier notin (web,build)', false],
    ['tier', true],
    ['!tier', false],
    ['!absent', true],
    ['replicas>4', true],
    ['replicas>5', false],
    ['replicas<6', true],
    ['tier>1', false], // not an integer: never matches
    ['absent<1', false],
    ['tier=build,kata-bridge.io/untrusted=true', true],
    ['tier=build,kata-bridge.io/untrusted=false', false],
    ['', true],
  ])('%s → %s', (text, expected) => {
    expect(matchesLabels(parseLabelSelector(text), labels)).toBe(expected);
  });

  test('an inherited property is not a label', () => {
    expect(matchesLabels(parseLabelSelector('constructor'), {})).toBe(false);
    expect(matchesLabels(parseLabelSelector('toString!=x'), {})).toBe(true);
  });
});

// ─── properties ──────────────────────────────────────────────────────────────

const word = fc.stringMatching(/^[a-z0-9]([a-z0-9._-]{0,8}[a-z0-9])?$/).filter((w) => w !== 'in' && w !== 'notin');
const key = fc.oneof(
  word,
  fc.tuple(fc.stringMatching(/^[a-z0-9]{1,6}(\.[a-z0-9]{1,6}){0,2}$/), word).map(([p, n]) => `${p}/${n}`),
);
const requirement: fc.Arbitrary<Requirement> = fc.oneof(
  fc.record({
    key,
    operator: fc.constantFrom('in' as const, 'notin' as const),
    values: fc.uniqueArray(word, { minLength: 1, maxLength: 3 }),
  }),
  fc.record({ key, operator: fc.constantFrom('exists' as const, 'notexists' as const), values: fc.constant<string[]>([]) }),
  fc.record({
    key,
    operator: fc.constantFrom('gt' as const, 'lt' as const),
    values: fc.integer({ min: -99, max: 99 }).map((n) => [String(n)]),
  }),
);
const space = fc.constantFrom('', ' ', '  ', '\t');

/** Writes a requirement in one of the spellings Kubernetes accepts for it. */
function render(r: Requirement, s: string, spelling: number): string {
  switch (r.operator) {
    case 'exists':
      return `${s}${r.key}${s}`;
    case 'notexists':
      return `${s}!${s}${r.key}${s}`;
    case 'gt':
      return `${r.key}${s}>${s}${r.values[0]}`;
    case 'lt':
      return `${r.key}${s}<${s}${r.values[0]}`;
    case 'in':
      if (r.values.length === 1 && spelling % 3 !== 0) return `${r.key}${s}${spelling % 3 === 1 ? '=' : '=='}${s}${r.values[0]}`;
      return `${r.key} in${s}(${r.values.join(`${s},${s}`)})`;
    case 'notin':
      if (r.values.length === 1 && spelling % 2 === 1) return `${r.key}${s}!=${s}${r.values[0]}`;
      return `${r.key} notin${s}(${r.values.join(`,${s}`)})`;
  }
}

const labelsArb = fc.dictionary(
  fc.oneof(key, fc.constantFrom('a', 'b', 'tier')),
  fc.oneof(word, fc.integer({ min: -100, max: 100 }).map(String)),
  {
    maxKeys: 5,
  },
);

describe('properties', () => {
  test('any rendering of requirements parses back to the same requirements', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(requirement, space, fc.nat(5)), { minLength: 1, maxLength: 5 }), (parts) => {
        const text = parts.map(([r, s, spelling]) => render(r, s, spelling)).join(',');
        expect(requirements(text)).toEqual(parts.map(([r]) => r));
      }),
    );
  });

  test('a selector matches exactly when every requirement does (AND)', () => {
    fc.assert(
      fc.property(fc.array(requirement, { minLength: 1, maxLength: 4 }), labelsArb, (reqs, labels) => {
        const text = reqs.map((r) => render(r, '', 0)).join(',');
        expect(matchesLabels(parseLabelSelector(text), labels)).toBe(reqs.every((r) => matchesRequirement(r, labels)));
      }),
    );
  });

  test('!= is the negation of =, notin of in, !k of k', () => {
    fc.assert(
      fc.property(key, word, labelsArb, (k, v, labels) => {
        const match = (text: string) => matchesLabels(parseLabelSelector(text), labels);
        expect(match(`${k}!=${v}`)).toBe(!match(`${k}=${v}`));
        expect(match(`${k} notin (${v})`)).toBe(!match(`${k} in (${v})`));
        expect(match(`!${k}`)).toBe(!match(k));
        // = is about the value: a present label with that value, nothing else.
        expect(match(`${k}=${v}`)).toBe(Object.hasOwn(labels, k) && labels[k] === v);
      }),
    );
  });

  test('arbitrary text either parses or fails with a SelectorError, never anything else', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...'ab=!,() <>in/.-_x9 '.split('')), maxLength: 30 }), (text) => {
        try {
          const parsed = parseLabelSelector(text);
          // What parses is a list of valid requirements.
          for (const r of parsed.requirements) expect(keyProblem(r.key)).toBeUndefined();
        } catch (error) {
          expect(error).toBeInstanceOf(SelectorError);
        }
      }),
    );
  });
});
