/**
 * Property checks of the kubelet and Kata shim decoders on hostile input: arbitrary bytes, and
 * real fixtures with random bytes changed, cut or repeated. Shared by the unit property test
 * (moderate runs) and `npm run fuzz` (≥100,000 runs).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { decodeKubeletMetrics } from '../../src/translate/kubelet-decode.ts';
import { decodeShimMetrics } from '../../src/translate/kata-decode.ts';
import { PromParseError } from '../../src/prom-text/index.ts';
import type { ProcessStats } from '../../src/translate/records.ts';

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

export const decoderProperties: Record<'kubelet' | 'shim', () => fc.IPropertyWithHooks<any>> = {
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
};

export function fuzzDecoders(numRuns: number): void {
  for (const [name, property] of Object.entries(decoderProperties)) {
    fc.assert(property(), { numRuns });
    process.stdout.write(`decoders/${name}: ${numRuns} cases passed\n`);
  }
}
