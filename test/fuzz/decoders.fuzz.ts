/**
 * Property checks of the kubelet and Kata shim decoders on hostile input: arbitrary bytes, real
 * fixtures with random bytes changed, cut or repeated, and well-formed payloads with adversarial
 * values where the decoders must choose (kubelet duplicate candidates, the guest CPU unit). Shared
 * by the unit property test (moderate runs) and `npm run fuzz` (≥100,000 runs).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { MAX_CPU_CANDIDATES, decodeKubeletMetrics } from '../../src/translate/kubelet-decode.ts';
import { MAX_PLAUSIBLE_VALUE, PER_CPU_UNIT_ITEMS, decodeShimMetrics } from '../../src/translate/kata-decode.ts';
import { PromParseError } from '../../src/prom-text/index.ts';
import type { GuestCpuSeconds, ProcessStats } from '../../src/translate/records.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

function fixtureBytes(dir: string, suffix: string): Uint8Array[] {
  return readdirSync(join(FIXTURES, dir))
    .filter((name) => name.endsWith(suffix))
    .map((name) => readFileSync(join(FIXTURES, dir, name)));
}

/** A real payload with a few bytes replaced, a slice cut out, or a slice repeated. */
function mutated(payloads: Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc
    .record({
      index: fc.nat(payloads.length - 1),
      edits: fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
      cut: fc.option(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.nat(400))),
      repeat: fc.option(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.nat(200), fc.integer({ min: 1, max: 20 }))),
    })
    .map(({ index, edits, cut, repeat }) => {
      let bytes = Buffer.from(payloads[index]!);
      for (const [at, value] of edits) bytes[Math.floor(at * (bytes.length - 1))] = value;
      if (cut) {
        const start = Math.floor(cut[0] * bytes.length);
        bytes = Buffer.concat([bytes.subarray(0, start), bytes.subarray(start + cut[1])]);
      }
      if (repeat) {
        const start = Math.floor(repeat[0] * bytes.length);
        const slice = bytes.subarray(start, start + repeat[1]);
        bytes = Buffer.concat([bytes.subarray(0, start), ...Array.from({ length: repeat[2] }, () => slice), bytes.subarray(start)]);
      }
      return bytes;
    });
}

const anyInput = (payloads: Uint8Array[]) => fc.oneof(fc.uint8Array({ maxLength: 4096 }), mutated(payloads));

/** A decoded number that reached a record: finite and not negative. */
function isSane(value: number | undefined): boolean {
  return value === undefined || (Number.isFinite(value) && value >= 0);
}

function saneProcess(p: ProcessStats | undefined): boolean {
  return p === undefined || Object.values(p).every((v) => typeof v !== 'number' || isSane(v));
}

/** Runs `decode`; only PromParseError may escape, and whatever comes out satisfies `check`. */
function decodesOrRejects<T>(decode: () => T, check: (result: T) => boolean): boolean {
  let result: T;
  try {
    result = decode();
  } catch (error) {
    if (error instanceof PromParseError) return true;
    throw error;
  }
  return check(result);
}

/** A sample value as the text format writes it. */
function promNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? '+Inf' : '-Inf';
  return String(value);
}

/** Anything a hostile source can write: NaN, ±Inf, negative, wrapped uint64, beyond 2^53, fractions. */
const hostileNumber = fc.oneof(
  fc.double(),
  fc.integer({ min: 0, max: 10_000_000 }).map((ms) => ms / 1000),
  fc.constantFrom(0, -1, 1.8446744073709552e19, 2 ** 53, 2 ** 53 + 2, 2 ** 40, 2 ** 40 + 1),
);

/** One container CPU series written several times (kubernetes#134518), under either CPU name (1.18.0 dropped `_total`). */
const repeatedCpuSeries = fc.array(
  fc.record({
    name: fc.constantFrom('container_cpu_usage_seconds_total', 'container_cpu_usage_seconds'),
    value: fc.oneof(hostileNumber, fc.constantFrom(1000, 1010)), // repeats of one value too
    timestampMs: fc.option(
      fc.oneof(fc.integer({ min: -62135596800000, max: 2 ** 42 }), fc.constantFrom(1_700_000_000_000, 1_700_000_001_000)),
    ),
  }),
  { minLength: 1, maxLength: 40 },
);

const CPU_ITEMS = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal', 'guest', 'guest_nice'] as const;
const CPU_FIELDS: Record<(typeof CPU_ITEMS)[number], keyof GuestCpuSeconds> = {
  user: 'user',
  nice: 'nice',
  system: 'system',
  idle: 'idle',
  iowait: 'iowait',
  irq: 'irq',
  softirq: 'softirq',
  steal: 'steal',
  guest: 'guest',
  guest_nice: 'guestNice',
};

/** Clock ticks of a guest's cpu="total" row and of up to 128 per-CPU rows (10 items each), many of them zero or small. */
const guestTicks = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 128 })).chain((cpus) => {
  const tick = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 2 ** 31 }));
  const rows = (cpus + 1) * CPU_ITEMS.length;
  return fc.array(tick, { minLength: rows, maxLength: rows });
});

/** kata_guest_cpu_time with the given value per row: row 0 is cpu="total", row i is cpu="i-1". */
function guestCpuPayload(values: readonly string[]): Buffer {
  let text = '# TYPE kata_guest_cpu_time gauge\n';
  values.forEach((value, i) => {
    const row = Math.floor(i / CPU_ITEMS.length);
    text += `kata_guest_cpu_time{cpu="${row === 0 ? 'total' : row - 1}",item="${CPU_ITEMS[i % CPU_ITEMS.length]}"} ${value}\n`;
  });
  return Buffer.from(text);
}

/** The same ticks as each Kata 2.x agent wrote them: seconds (2.2–2.3), ticks (2.4), milliseconds (2.5.0 on; USER_HZ 100). */
const AS_WRITTEN = {
  seconds: (ticks: number) => String(ticks / 100),
  ticks: (ticks: number) => String(ticks),
  milliseconds: (ticks: number) => String(ticks * 10),
} as const;

/** The guest CPU of the total row agrees with the ticks it was written from (to float precision). */
function cpuMatchesTicks(cpu: GuestCpuSeconds | undefined, ticks: readonly number[]): boolean {
  return (
    cpu !== undefined &&
    CPU_ITEMS.every((item, i) => Math.abs(cpu[CPU_FIELDS[item]] - ticks[i]! / 100) <= 1e-9 * Math.max(1, ticks[i]! / 100))
  );
}

export const decoderProperties: Record<
  'kubelet' | 'shim' | 'kubeletDuplicates' | 'guestCpuUnit' | 'guestCpuHostile',
  () => fc.IPropertyWithHooks<any>
> = {
  kubelet: () => {
    const payloads = fixtureBytes('kubelet', '.txt');
    return fc.property(anyInput(payloads), (bytes) =>
      decodesOrRejects(
        () => decodeKubeletMetrics(bytes),
        (stats) =>
          [...stats.containers.values()].every((c) => isSane(c.cpuSeconds) && isSane(c.memoryWorkingSetBytes) && isSane(c.swapBytes)) &&
          [...stats.pods.values()].every((p) => isSane(p.cpuSeconds) && isSane(p.memoryWorkingSetBytes)) &&
          isSane(stats.node.cpuSeconds),
      ),
    );
  },
  shim: () => {
    const payloads = fixtureBytes('kata', '.prom');
    return fc.property(anyInput(payloads), fc.constantFrom('go' as const, 'rs' as const), (bytes, runtime) =>
      decodesOrRejects(
        () => decodeShimMetrics(bytes, runtime),
        (m) =>
          Object.values(m.guest).every((v) => typeof v !== 'number' || isSane(v)) &&
          (m.guest.cpu === undefined || Object.values(m.guest.cpu).every(isSane)) &&
          [m.shim, m.hypervisor, m.virtiofsd, m.agent].every(saneProcess) &&
          m.rejectedSamples >= 0,
      ),
    );
  },
  // Duplicate candidates: well-formed text never throws; at most MAX_CPU_CANDIDATES, distinct, sane,
  // the first being the published sample, each one a sample that was written.
  kubeletDuplicates: () =>
    fc.property(repeatedCpuSeries, (series) => {
      const lines = series.map(
        (s) => `${s.name}{container="c",namespace="ns",pod="p"} ${promNumber(s.value)}${s.timestampMs === null ? '' : ` ${s.timestampMs}`}`,
      );
      const entry = decodeKubeletMetrics(`${lines.join('\n')}\n`).containers.get('ns/p/c');
      const candidates = entry?.cpuCandidates;
      if (candidates === undefined) return true;
      const written = candidates.every((c) => series.some((s) => s.value === c.value && (s.timestampMs ?? undefined) === c.timestampMs));
      const distinct = new Set(candidates.map((c) => `${c.value}/${c.timestampMs}`)).size === candidates.length;
      return (
        candidates.length >= 2 &&
        candidates.length <= MAX_CPU_CANDIDATES &&
        distinct &&
        written &&
        candidates.every((c) => isSane(c.value)) &&
        candidates[0]!.value === entry!.cpuSeconds &&
        candidates[0]!.timestampMs === entry!.cpuTimestampMs
      );
    }),
  // The unit claims of guestCpuUnit, on the same ticks written as each Kata 2.x agent did: among
  // the rows the decoder reads (the total row, the per-CPU PER_CPU_UNIT_ITEMS), a fraction anywhere
  // is seconds, a whole number not a multiple of 10 is ticks, whole multiples of 10 with three
  // non-zero are milliseconds; scaled by 1000 (seconds → ms) or 10 (ticks → ms), the guest CPU
  // decoded is the same.
  guestCpuUnit: () =>
    fc.property(guestTicks, (ticks) => {
      const decoded = (unit: keyof typeof AS_WRITTEN) => decodeShimMetrics(guestCpuPayload(ticks.map(AS_WRITTEN[unit])), 'rs').guest;
      const [seconds, asTicks, ms] = [decoded('seconds'), decoded('ticks'), decoded('milliseconds')];
      const total = ticks.slice(0, CPU_ITEMS.length);
      const read = ticks.filter((_, i) => i < CPU_ITEMS.length || PER_CPU_UNIT_ITEMS.has(CPU_ITEMS[i % CPU_ITEMS.length]!));
      const nonZero = read.filter((t) => t > 0).length;
      const fraction = read.some((t) => t % 100 !== 0);
      const notTen = read.some((t) => t % 10 !== 0);
      const msUnit = nonZero >= 3 ? 'milliseconds' : 'unknown';
      return (
        ms.cpuUnit === msUnit &&
        (msUnit === 'unknown' ? ms.cpu === undefined : cpuMatchesTicks(ms.cpu, total)) &&
        (!notTen || (asTicks.cpuUnit === 'ticks' && cpuMatchesTicks(asTicks.cpu, total))) &&
        (!fraction || (seconds.cpuUnit === 'seconds' && cpuMatchesTicks(seconds.cpu, total)))
      );
    }),
  // Hostile values among the rows: never a throw, a unit always named, and a guest CPU only when the
  // unit is known and every value of the total row was accepted, then finite and not negative.
  guestCpuHostile: () =>
    fc.property(
      guestTicks,
      fc.array(fc.tuple(fc.nat(), hostileNumber), { minLength: 1, maxLength: 8 }),
      fc.constantFrom(...(Object.keys(AS_WRITTEN) as (keyof typeof AS_WRITTEN)[])),
      (ticks, hostile, unit) => {
        const values: (number | string)[] = ticks.map(AS_WRITTEN[unit]);
        for (const [at, value] of hostile) values[at % values.length] = value;
        const guest = decodeShimMetrics(guestCpuPayload(values.map((v) => (typeof v === 'number' ? promNumber(v) : v))), 'go').guest;
        const totalRefused = values
          .slice(0, CPU_ITEMS.length)
          .some((v) => typeof v === 'number' && (!Number.isFinite(v) || v < 0 || v > MAX_PLAUSIBLE_VALUE));
        return (
          ['seconds', 'ticks', 'milliseconds', 'unknown'].includes(guest.cpuUnit!) &&
          (guest.cpu === undefined || (guest.cpuUnit !== 'unknown' && !totalRefused && Object.values(guest.cpu).every(isSane)))
        );
      },
    ),
};

export function fuzzDecoders(numRuns: number): void {
  for (const [name, property] of Object.entries(decoderProperties)) {
    fc.assert(property(), { numRuns });
    process.stdout.write(`decoders/${name}: ${numRuns} cases passed\n`);
  }
}
