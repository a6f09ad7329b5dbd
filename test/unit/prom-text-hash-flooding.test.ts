/**
 * Hash flooding ("One guest must never blind the node"): label values built to collide in a hash
 * the parser could use must not make a parse quadratic. Work is counted (lastParseWork), never
 * timed.
 */
import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { hashBytes, hashParametersForTests, hashString } from '../../src/prom-text/hash.ts';
import { DEFAULT_PARSE_LIMITS, parsePromText, PromParseError } from '../../src/prom-text/index.ts';
import { clearSeriesCache, lastParseWork } from '../../src/prom-text/parser.ts';
import { benchShimPayload } from '../../bench/payload.ts';
import { FNV1A_32, multicollision, sampledTwins, stateAfter } from '../fuzz/collisions.ts';
import { ADVERSARIES, COLLISION_CEILING, complexityProperties, payload } from '../fuzz/complexity.fuzz.ts';

const PREFIX = 'kata_guest_netdev_stat{interface="';
const SUFFIX = '",item="recv_bytes"}';
const LINES = 4096;

const lines = (values: readonly string[]): string => values.map((v, i) => `${PREFIX}${v}${SUFFIX} ${i}\n`).join('');

/** Parses cold, then warm (the second parse finds the first one's series parts in the cache). */
function parseTwice(text: string) {
  clearSeriesCache();
  const cold = parsePromText(text);
  const coldWork = lastParseWork();
  const warm = parsePromText(text);
  return { cold, warm, collisions: Math.max(coldWork.collisions, lastParseWork().collisions) };
}

describe('label values that collide in unseeded FNV-1a 32 (the old hash)', () => {
  const values = multicollision(FNV1A_32, LINES, { blockLength: 5 });

  test('the set does collide in FNV-1a 32', () => {
    expect(new Set(values).size).toBe(LINES);
    expect(new Set(values.map((v) => stateAfter(FNV1A_32, v))).size).toBe(1);
  });

  test('cost equal-hash comparisons linear in the lines, not quadratic', () => {
    const { cold, warm, collisions } = parseTwice(lines(values));
    expect(cold.seriesCount).toBe(LINES);
    expect(warm.seriesCount).toBe(LINES);
    expect(cold.duplicates).toBe(0);
    // Unseeded, every line compared against every earlier one: LINES²/2 ≈ 8.4 million.
    expect(collisions).toBeLessThanOrEqual(COLLISION_CEILING);
  });
});

describe("values that collide in this process's own seeded hashes (an attacker who knew the seed)", () => {
  const seeded = hashParametersForTests();
  const values = multicollision(seeded, LINES, { blockLength: 5 });

  test('the set collides in hashString, so every series hash is one value', () => {
    expect(new Set(values.map(hashString)).size).toBe(1);
  });

  test('the caps keep the comparisons bounded, and duplicates are still found exactly', () => {
    // The first 100 series again, their labels in the other order: duplicates all the same.
    const repeats = values.slice(0, 100).map((v) => `kata_guest_netdev_stat{item="recv_bytes",interface="${v}"} 7\n`);
    const { cold, warm, collisions } = parseTwice(lines(values) + repeats.join(''));
    for (const result of [cold, warm]) {
      expect(result.seriesCount).toBe(LINES);
      expect(result.duplicates).toBe(100);
      expect(result.families[0]!.samples[5]!.labels).toEqual({ interface: values[5], item: 'recv_bytes' });
    }
    expect(collisions).toBeLessThanOrEqual(COLLISION_CEILING);
  });

  test('series parts colliding in the series cache byte hash stay bounded too', () => {
    const parts = multicollision(seeded, LINES, { blockLength: 5, from: stateAfter(seeded, PREFIX) });
    const keys = parts.map((v) => Buffer.from(`${PREFIX}${v}${SUFFIX}`, 'latin1'));
    expect(new Set(keys.map((k) => hashBytes(k, 0, k.length))).size).toBe(1);
    const { cold, warm, collisions } = parseTwice(lines(parts));
    expect([cold.seriesCount, warm.seriesCount]).toEqual([LINES, LINES]);
    expect(collisions).toBeLessThanOrEqual(COLLISION_CEILING);
  });

  test('values that share the intern table sampled bytes stop being interned, not compared forever', () => {
    const twins = sampledTwins(LINES);
    const { cold, collisions } = parseTwice(lines(twins));
    expect(cold.seriesCount).toBe(LINES);
    expect(new Set(cold.families[0]!.samples.map((s) => s.labels.interface))).toEqual(new Set(twins));
    expect(collisions).toBeLessThanOrEqual(COLLISION_CEILING);
  });
});

test('the hash seed differs between processes', () => {
  const script =
    "import { hashString } from './src/prom-text/hash.ts'; process.stdout.write(String(hashString('kata_guest_netdev_stat')));";
  const run = (): string => execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  const [a, b] = [run(), run()];
  expect(a).toMatch(/^-?\d+$/);
  expect(a).not.toBe(b);
});

describe('the work budget', () => {
  const honest = Buffer.from(benchShimPayload(7), 'utf8');

  test('an honest payload spends under 2 units a byte: a 4 MiB one stays far below the default', () => {
    parsePromText(honest);
    const { units } = lastParseWork();
    expect(units).toBeGreaterThanOrEqual(honest.length);
    expect(units / honest.length).toBeLessThan(2);
    expect(2 * 4 * 1024 * 1024).toBeLessThan(DEFAULT_PARSE_LIMITS.maxWork / 4);
  });

  test("units are the bytes plus each sample line's charge, the same cold, warm and in every lane", () => {
    // 0, 1, 2 and 3 labels; a comment and a skipped family: bytes only.
    const text = '# HELP a_total A.\na_total 1\nb{x="1"} 2\nc{x="1",y="2"} 3\nd{x="1",y="2",z="3"} 4\nskipped{x="1"} 5\n';
    const charge = (labels: number): number => 16 * (labels + 1) + (labels * (labels - 1)) / 2;
    const full = Buffer.byteLength(text) + charge(0) + charge(1) + charge(2) + charge(3) + charge(1);
    const kept = Buffer.byteLength(text) + charge(0) + charge(1) + charge(2) + charge(3);
    clearSeriesCache();
    for (let parse = 0; parse < 3; parse++) {
      parsePromText(text);
      expect(lastParseWork().units).toBe(full);
      parsePromText(text, { keepPrefixes: ['a_', 'b', 'c', 'd'] });
      expect(lastParseWork().units).toBe(kept);
    }
  });

  test('past maxWork the parse fails with kind budget; at exactly its units it passes', () => {
    parsePromText(honest);
    const { units } = lastParseWork();
    expect(parsePromText(honest, { limits: { maxWork: units } }).seriesCount).toBeGreaterThan(0);
    const error = (() => {
      try {
        parsePromText(honest, { limits: { maxWork: units - 1 } });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(PromParseError);
    expect((error as PromParseError).kind).toBe('budget');
  });

  test('a small budget stops a long payload early, at a line of the main loop', () => {
    const error = (() => {
      try {
        clearSeriesCache();
        parsePromText(honest, { limits: { maxWork: 10_000 } });
      } catch (e) {
        return e as PromParseError;
      }
      return undefined;
    })();
    expect(error?.kind).toBe('budget');
    expect(error!.line).toBeLessThan(200);
  });
});

// A few cases of the fuzz's doubling property (npm run fuzz runs many more, and times the CPU).
test.each(Object.keys(complexityProperties))('%s', (name) => {
  fc.assert(complexityProperties[name]!(), { numRuns: 3 });
});

test('the complexity generators make inputs the parser accepts', () => {
  for (const adversary of Object.values(ADVERSARIES)) expect(parsePromText(payload(adversary, 4)).seriesCount).toBeGreaterThan(0);
});
