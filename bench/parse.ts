/**
 * Part (a): the same bytes parsed four ways, side by side: each run times every way in turn, so a
 * noisy neighbour hits all of them alike and each run yields its own ratios.
 */
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { decodeShimMetrics } from '../src/translate/kata-decode.ts';
import { parsePromText } from '../src/prom-text/index.ts';
import { FNV1A_32, multicollision } from '../test/fuzz/collisions.ts';
import { benchShimPayload } from './payload.ts';

const require = createRequire(import.meta.url);
const parsePeer = require('parse-prometheus-text-format') as (text: string) => unknown;

/**
 * The floor: every newline found and counted, nothing else, four bytes a step (a word holds a
 * newline when some byte of it XOR 0x0a is zero). Faster than a Buffer.indexOf call per line, whose
 * call costs more than the search on ~70-byte lines; the parser's skip path uses the same step.
 * Written out here rather than shared with the parser: one function called from both measured
 * ~2× slower as the floor and ~25% slower in the decoder.
 */
export function newlineScan(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.length;
  let lines = 0;
  for (let p = 0; p < n; lines++, p++) {
    for (; p + 4 <= n; p += 4) {
      const x = view.getInt32(p, true) ^ 0x0a0a0a0a;
      if (((x - 0x01010101) & ~x & 0x80808080) !== 0) break;
    }
    while (p < n && bytes[p] !== 10) p++;
  }
  return lines;
}

/** The same count with one Buffer.indexOf per line: the floor of earlier rounds, kept for comparison. */
export function indexOfScan(bytes: Uint8Array): number {
  let lines = 0;
  for (let pos = 0; pos < bytes.length; lines++) {
    const nl = bytes.indexOf(10, pos);
    pos = nl < 0 ? bytes.length : nl + 1;
  }
  return lines;
}

export interface ParseRun {
  /** Microseconds per call. */
  scan: number;
  indexOfScan: number;
  full: number;
  decode: number;
  peer: number;
}

export interface ParseBench {
  bytes: number;
  lines: number;
  series: number;
  runs: ParseRun[];
}

/** Short batches, many runs: the four ways of one run are measured within ~100 ms of each other. */
const BATCH_MS = 25;
const WARMUP_ROUNDS = 50;

function calibrate(fn: () => unknown): number {
  let iterations = 1;
  for (;;) {
    const start = performance.now();
    for (let i = 0; i < iterations; i++) fn();
    if (performance.now() - start >= BATCH_MS) return iterations;
    iterations *= 2;
  }
}

/**
 * Microseconds of this process's CPU per call (user + system, GC threads included): on a shared
 * machine, time slices lost to neighbours do not count against any of the four ways.
 */
function timeBatch(fn: () => unknown, iterations: number): number {
  const start = process.cpuUsage();
  for (let i = 0; i < iterations; i++) fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / iterations;
}

export function runParseBench(runs: number): ParseBench {
  const text = benchShimPayload(7);
  const bytes = Buffer.from(text, 'utf8');
  const ways: Record<keyof ParseRun, () => unknown> = {
    scan: () => newlineScan(bytes),
    indexOfScan: () => indexOfScan(bytes),
    full: () => parsePromText(bytes),
    decode: () => decodeShimMetrics(bytes, 'go'),
    // The peer takes a string; decoding the bytes to it is not charged to the peer.
    peer: () => parsePeer(text),
  };
  const keys = Object.keys(ways) as (keyof ParseRun)[];
  // Warm-up, not timed: the four ways interleaved from the first call, as in the exporter, where
  // the kubelet's parse and the shims' decoding share the parser's code. (Warming one way alone
  // first lets the compiler specialise shared code for it; measured, that left the full parse
  // ~1.6× slower for the whole run than it is in steady state.)
  for (let round = 0; round < WARMUP_ROUNDS; round++) for (const k of keys) ways[k]();
  const iterations = Object.fromEntries(keys.map((k) => [k, calibrate(ways[k])])) as Record<keyof ParseRun, number>;
  const result: ParseRun[] = [];
  for (let run = 0; run < runs; run++) {
    const row = {} as ParseRun;
    // A different order each run, so no way always follows the same one (GC debt, caches).
    for (let j = 0; j < keys.length; j++) {
      const k = keys[(j + run) % keys.length]!;
      row[k] = timeBatch(ways[k], iterations[k]);
    }
    result.push(row);
  }
  return { bytes: bytes.length, lines: newlineScan(bytes), series: parsePromText(bytes).seriesCount, runs: result };
}

/**
 * The hash-flooding attack of the issue "One guest must never blind the node": the honest
 * payload, then `lines` kata_guest_netdev_stat lines whose interface values all hash alike in
 * FNV-1a 32-bit (~2.4 MB for 18,000 lines, inside every bound).
 */
export function collidingNetdevPayload(lines = 18_000): Buffer {
  return netdevPayload(multicollision(FNV1A_32, lines, { blockLength: 5 }));
}

/** The same shape with interface values that collide in nothing (each the same length): the control. */
export function distinctNetdevPayload(lines = 18_000): Buffer {
  return netdevPayload(Array.from({ length: lines }, (_, i) => `if${String(i).padStart(73, '0')}`));
}

function netdevPayload(values: readonly string[]): Buffer {
  const attack = values.map((v, i) => `kata_guest_netdev_stat{interface="${v}",item="recv_bytes"} ${i}\n`).join('');
  return Buffer.from(benchShimPayload(7) + attack, 'utf8');
}

/** Milliseconds of this process's CPU for one call. */
function cpuMs(fn: () => unknown): number {
  const start = process.cpuUsage();
  fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

/**
 * `npx tsx bench/parse.ts [--runs=N] [--attack-runs=N]`: the parse alone, without the exporter
 * benchmark: the honest payload's parse and decode (µs, median of N side-by-side runs), then the
 * colliding payload's decode and that of a control of the same shape (ms of CPU per payload, median).
 */
function main(): void {
  const flag = (name: string, fallback: number): number => {
    const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
    return arg === undefined ? fallback : Number(arg.slice(name.length + 3));
  };
  const honest = runParseBench(flag('runs', 21));
  console.log(`honest payload: ${(honest.bytes / 1024).toFixed(1)} KiB, ${honest.series} series`);
  for (const k of ['scan', 'full', 'decode'] as const) {
    console.log(`  ${k}: ${median(honest.runs.map((r) => r[k])).toFixed(1)} µs (median of ${honest.runs.length})`);
  }
  console.log(
    `  full / scan: ${median(honest.runs.map((r) => r.full / r.scan)).toFixed(2)}×, decode / scan: ${median(honest.runs.map((r) => r.decode / r.scan)).toFixed(2)}×`,
  );
  const attackRuns = flag('attack-runs', 3);
  if (attackRuns === 0) return;
  const limits = { maxSeries: 20_000 }; // --shim.max-series default
  for (const [name, payload] of [
    ['colliding', collidingNetdevPayload()],
    ['distinct (control)', distinctNetdevPayload()],
  ] as const) {
    const times: number[] = [];
    let outcome = '';
    for (let run = 0; run < attackRuns; run++) {
      times.push(
        cpuMs(() => {
          try {
            outcome = `decoded, guest receive bytes ${decodeShimMetrics(payload, 'go', { limits }).guest.networkReceiveBytes}`;
          } catch (error) {
            outcome = `rejected: ${(error as Error).message}`;
          }
        }),
      );
    }
    console.log(
      `${name} payload: ${(payload.length / 1024 / 1024).toFixed(2)} MiB; decode ${median(times).toFixed(1)} ms CPU per payload (runs: ${times.map((t) => t.toFixed(0)).join(', ')}); ${outcome}`,
    );
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
