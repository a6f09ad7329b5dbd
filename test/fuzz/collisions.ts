/**
 * Inputs built to collide in the hashes a parser could use, for the complexity tests, the fuzz
 * and the attack benchmark.
 *
 * Iterated xor-multiply hashes (FNV-1a 32-bit, and the parser's seeded variant of it) are broken
 * by a multicollision (Joux, 2004): from a state s a birthday search finds two blocks that lead to
 * the same state; k such pairs, each searched from the state the previous pair leads to, give 2^k
 * strings of one length and one hash, with only k searches of ~2^16 blocks each.
 */

export interface XorMultiplyHash {
  /** The state before the first character. */
  basis: number;
  /** An odd multiplier: h = (h ^ c) * multiplier per character (UTF-16 unit or byte). */
  multiplier: number;
}

/** The unseeded FNV-1a 32-bit the parser used before its hashes were seeded. */
export const FNV1A_32: XorMultiplyHash = { basis: 0x811c9dc5 | 0, multiplier: 0x01000193 };

/** Characters valid anywhere: in metric names, label names and unescaped label values. */
export const NAME_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_';

/** The hash's state after `text` from `state` (ASCII text: bytes and UTF-16 units agree). */
export function stateAfter(hash: XorMultiplyHash, text: string, state = hash.basis): number {
  let h = state;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), hash.multiplier);
  return h;
}

/** xorshift32: the same strings on every run of a test. */
function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

export interface MulticollisionOptions {
  /** The state the strings start from: the hash of what precedes them (default the basis). */
  from?: number;
  alphabet?: string;
  /** Characters per block; the strings are blocks × log2(count) long. */
  blockLength?: number;
  /** Appended to every string (it keeps them colliding). */
  suffix?: string;
  seed?: number;
}

/** Two blocks from `state` to one state, found by a birthday search. */
function collidingPair(
  hash: XorMultiplyHash,
  state: number,
  next: () => number,
  alphabet: string,
  blockLength: number,
): [string, string, number] {
  const seen = new Map<number, string>();
  for (;;) {
    let block = '';
    let h = state;
    for (let i = 0; i < blockLength; i++) {
      const c = alphabet[next() % alphabet.length]!;
      block += c;
      h = Math.imul(h ^ c.charCodeAt(0), hash.multiplier);
    }
    const other = seen.get(h);
    if (other !== undefined && other !== block) return [other, block, h];
    seen.set(h, block);
  }
}

/** `count` distinct strings of one length whose hash from `from` is one value. */
export function multicollision(hash: XorMultiplyHash, count: number, options: MulticollisionOptions = {}): string[] {
  const alphabet = options.alphabet ?? NAME_ALPHABET;
  const blockLength = options.blockLength ?? 6;
  const next = rng(options.seed ?? 0x5eed);
  const pairs: [string, string][] = [];
  let state = options.from ?? hash.basis;
  while (2 ** pairs.length < count) {
    const [a, b, after] = collidingPair(hash, state, next, alphabet, blockLength);
    pairs.push([a, b]);
    state = after;
  }
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    let text = '';
    for (let k = 0; k < pairs.length; k++) text += pairs[k]![(i >> k) & 1];
    out.push(text + (options.suffix ?? ''));
  }
  return out;
}

/**
 * Label values of one length that agree at every byte a sampling hash could read first (the
 * first, last, middle and near-end bytes) and differ only in between: they share any hash of a
 * few sampled bytes, whatever its seed.
 */
export function sampledTwins(count: number, length = 64): string[] {
  const width = Math.max(1, Math.ceil(Math.log(count) / Math.log(NAME_ALPHABET.length)));
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    let digits = '';
    for (let n = i, d = 0; d < width; d++, n = Math.floor(n / NAME_ALPHABET.length)) digits += NAME_ALPHABET[n % NAME_ALPHABET.length];
    // The varying digits sit at a quarter of the length, away from every sampled position.
    const at = length >> 2;
    out.push('a'.repeat(at) + digits + 'a'.repeat(length - at - width));
  }
  return out;
}
