/**
 * Complexity of the parser on adversarial payloads: doubling an input at most doubles its decode
 * work. The work counter (lastParseWork: units and equal-hash collisions) is the measure the unit
 * suite asserts on; `npm run fuzz` also times the CPU, median of several runs, with a generous
 * margin for noise.
 *
 * Generators: many distinct family names, many labels, values at every cap, escapes, and label
 * values that collide in every hash the parser could use: unseeded FNV-1a (the old hash), the
 * process's own seeded hash (as an attacker who knew the seed), the byte hash of whole series
 * parts (the series cache's key), and the intern table's sampled bytes.
 */
import fc from 'fast-check';
import { parsePromText, PromParseError, type ParseLimits } from '../../src/prom-text/index.ts';
import { hashParametersForTests } from '../../src/prom-text/hash.ts';
import { clearSeriesCache, lastParseWork } from '../../src/prom-text/parser.ts';
import type { ParseWork } from '../../src/prom-text/work.ts';
import { FNV1A_32, multicollision, sampledTwins, stateAfter, type XorMultiplyHash } from './collisions.ts';

/** Limits as the shim decoder sees them, with room for every generator's largest input. */
export const COMPLEXITY_LIMITS: Partial<ParseLimits> = { maxSeries: 20_000 };

const NETDEV = 'kata_guest_netdev_stat{interface="';
const NETDEV_END = '",item="recv_bytes"}';

/** One generator: the lines of a payload of n lines (the first n of 2n are the n-line payload). */
interface Adversary {
  /** Largest n the property draws (inputs stay within the shim's 4 MiB). */
  maxN: number;
  lines: (n: number) => string[];
}

const seeded = (): XorMultiplyHash => hashParametersForTests();
const memo = new Map<string, string[]>();
/** Collision sets are costly to build (a birthday search per bit): built once per process and sliced. */
function collisions(key: string, build: () => string[]): string[] {
  let set = memo.get(key);
  if (set === undefined) memo.set(key, (set = build()));
  return set;
}
const COLLISION_SET = 8192;

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const netdev = (values: string[], n: number): string[] => values.slice(0, n).map((v, i) => `${NETDEV}${v}${NETDEV_END} ${i}`);

export const ADVERSARIES: Record<string, Adversary> = {
  'many distinct names': {
    maxN: 4096,
    lines: (n) => range(n).flatMap((i) => [`# HELP kata_m${i} h${i}`, `# TYPE kata_m${i} gauge`, `kata_m${i}{a="${i}"} ${i}`]),
  },
  'many labels': {
    maxN: 2048,
    lines: (n) =>
      range(n).map(
        (i) =>
          `kata_many{${range(32)
            .map((l) => `l${l}="${i}_${l}"`)
            .join(',')}} ${i}`,
      ),
  },
  'values near every cap': {
    maxN: 64,
    lines: (n) =>
      range(n).map((i) => {
        const labels = range(32).map((l) => `${`n${l}_`.padEnd(128, 'x')}="${String(i).padStart(1024, 'v')}"`);
        return `kata_caps{${labels.join(',')}} ${i} ${i}`;
      }),
  },
  escapes: {
    maxN: 2048,
    lines: (n) => range(n).map((i) => `kata_esc{a="\\\\${i}\\n\\"é✓${i}\\\\",b="${'\\n'.repeat(100)}${i}"} ${i}`),
  },
  'FNV-1a 32 collisions (the unseeded hash)': {
    maxN: 4096,
    lines: (n) =>
      netdev(
        collisions('fnv', () => multicollision(FNV1A_32, COLLISION_SET, { blockLength: 5 })),
        n,
      ),
  },
  "collisions of this process's seeded string hash": {
    maxN: 4096,
    lines: (n) =>
      netdev(
        collisions('seeded', () => multicollision(seeded(), COLLISION_SET, { blockLength: 5 })),
        n,
      ),
  },
  "collisions of this process's seeded series-part byte hash": {
    maxN: 4096,
    lines: (n) =>
      netdev(
        collisions('bytes', () => multicollision(seeded(), COLLISION_SET, { blockLength: 5, from: stateAfter(seeded(), NETDEV) })),
        n,
      ),
  },
  'intern sampled-byte twins': {
    maxN: 4096,
    lines: (n) =>
      netdev(
        collisions('twins', () => sampledTwins(COLLISION_SET)),
        n,
      ),
  },
};

export function payload(adversary: Adversary, n: number): Buffer {
  return Buffer.from(`${adversary.lines(n).join('\n')}\n`, 'utf8');
}

/** The work of parsing `input` twice (cold, then with what the first parse cached): the second figures. */
export function workOf(input: Buffer, limits: Partial<ParseLimits> = COMPLEXITY_LIMITS): ParseWork {
  clearSeriesCache();
  const first = parseCounted(input, limits);
  const second = parseCounted(input, limits);
  return { units: Math.max(first.units, second.units), collisions: Math.max(first.collisions, second.collisions) };
}

function parseCounted(input: Buffer, limits: Partial<ParseLimits>): ParseWork {
  try {
    parsePromText(input, { limits });
  } catch (error) {
    if (!(error instanceof PromParseError)) throw error;
    throw new Error(`a generator made an input the parser rejects: ${error.message}`);
  }
  return lastParseWork();
}

/** Collisions a parse may meet whatever the input: the intern, series-table and series-cache caps. */
export const COLLISION_CEILING = 2048 + 256 + 64;

/**
 * Doubling the input at most doubles the work: units per byte do not grow (2n lines are not
 * exactly twice the bytes of n, their numbers have more digits), and collisions never pass the caps.
 */
export function doublingHolds(adversary: Adversary, n: number): boolean {
  const small = payload(adversary, n);
  const large = payload(adversary, 2 * n);
  const once = workOf(small);
  const twice = workOf(large);
  return (
    twice.units / large.length <= (once.units / small.length) * 1.05 &&
    once.collisions <= COLLISION_CEILING &&
    twice.collisions <= COLLISION_CEILING
  );
}

export const complexityProperties: Record<string, () => fc.IProperty<unknown>> = Object.fromEntries(
  Object.entries(ADVERSARIES).map(([name, adversary]) => [
    `doubling the input at most doubles the work: ${name}`,
    () => fc.property(fc.integer({ min: 1, max: adversary.maxN >> 1 }), (n) => doublingHolds(adversary, n)),
  ]),
);

/** CPU milliseconds of one cold parse, median of `runs`. */
function medianCpuMs(input: Buffer, runs: number): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    clearSeriesCache();
    const start = process.cpuUsage();
    parsePromText(input, { limits: COMPLEXITY_LIMITS });
    const used = process.cpuUsage(start);
    times.push((used.user + used.system) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1]!;
}

/** Largest ratio of CPU time tolerated for twice the input: 2, plus noise on a shared machine. */
export const CPU_RATIO_MAX = 2.6;

/**
 * `npm run fuzz`: the properties, then each generator timed at its
 * largest size and half of it (CPU, median of 9 cold parses each, interleaved).
 */
export function fuzzComplexity(numRuns: number): void {
  // Each case parses up to ~600 KB four times: a thousandth of the cheap properties' runs.
  const runs = Math.max(10, Math.ceil(numRuns / 1000));
  for (const [name, property] of Object.entries(complexityProperties)) {
    fc.assert(property(), { numRuns: runs });
    console.log(`ok  ${name} (${runs} runs)`);
  }
  for (const [name, adversary] of Object.entries(ADVERSARIES)) {
    const half = payload(adversary, adversary.maxN >> 1);
    const full = payload(adversary, adversary.maxN);
    medianCpuMs(full, 3); // warm-up
    const ratios: number[] = [];
    for (let round = 0; round < 5; round++) ratios.push(medianCpuMs(full, 9) / medianCpuMs(half, 9));
    ratios.sort((a, b) => a - b);
    const ratio = ratios[ratios.length >> 1]!;
    const line = `${name}: ${(full.length / 1024).toFixed(0)} KiB, CPU ×${ratio.toFixed(2)} for twice the input`;
    if (ratio > CPU_RATIO_MAX) throw new Error(`${line}, over ${CPU_RATIO_MAX}`);
    console.log(`ok  ${line}`);
  }
}
