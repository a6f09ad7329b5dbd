/**
 * The hashes of guest text: series identity, interned strings, cached series parts. Seeded per
 * process (crypto.randomBytes at module load): the multiplier and starting state of the
 * xor-multiply string hash and the label mix are unknown outside this process, so no set of
 * colliding label values can be computed offline (with unseeded FNV-1a, 18,000 colliding
 * interface names made one shim payload's duplicate detection quadratic). Every structure keyed
 * by these hashes also compares in full on equal hashes and caps that work (see work.ts).
 */
import { randomBytes } from 'node:crypto';

const SEED = randomBytes(16);
/** The state before the first character. */
const BASIS = SEED.readInt32LE(0);
/** Odd, with FNV's low byte (it spreads low bits upward); the other 24 bits are random. */
const MULTIPLIER = (SEED.readInt32LE(4) & ~0xff) | 0x93;
const MIX = SEED.readInt32LE(8);
const INDEX = SEED.readInt32LE(12);

/** An invertible avalanche (murmur3's finaliser, one round): tables index by the low bits. */
function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  return h ^ (h >>> 13);
}

/** Over UTF-16 code units, for strings that have no intern slot. */
export function hashString(s: string): number {
  let h = BASIS;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), MULTIPLIER);
  return finish(h);
}

/** Over a byte range: the lookup key of a series part. */
export function hashBytes(bytes: Uint8Array, start: number, end: number): number {
  let h = BASIS;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, MULTIPLIER);
  return finish(h);
}

/** hashString(''). */
export const EMPTY_HASH = hashString('');

/** Two hashes into one (a label's name and value; a series' name and label set). */
export function mixHash(a: number, b: number): number {
  const h = Math.imul(a ^ Math.imul(b ^ MIX, 0x9e3779b1), 0x85ebca6b);
  return h ^ (h >>> 15);
}

/** A table index from a few sampled bytes (the intern table's cheap lookup), seeded alike. */
export function seededIndex(sampled: number): number {
  return Math.imul(sampled ^ INDEX, 0x9e3779b1);
}

/**
 * This process's string hash parameters, for tests and the fuzz only: they build collisions as an
 * attacker who knew the seed would, to check that the caps alone keep the parse linear.
 */
export function hashParametersForTests(): { basis: number; multiplier: number } {
  return { basis: BASIS, multiplier: MULTIPLIER };
}
