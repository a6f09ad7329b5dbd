/** The keep prefixes of a parse as a byte trie, built once per prefix list. */
import { LF } from './bytes.ts';

// Result of comparing a name in the input against keepPrefixes.
export const NO_MATCH = 0;
/** The name is a proper prefix of a keep prefix: its TYPE can own kept-looking sample names. */
export const NAME_INSIDE_PREFIX = 1;
export const PREFIX_MATCH = 2;

/**
 * Keep prefixes as a byte trie, node 0 the root. A row per node with a slot per byte that occurs
 * in some prefix (`column`; column 0, every other byte, has no child): a few dozen slots, not 256,
 * so the rows a walk touches stay in cache.
 */
export interface PrefixTrie {
  /** Child of node n for column c at n * width + c (0 = none). */
  next: Int32Array;
  column: Uint16Array;
  width: number;
  /** 1 where a keep prefix ends. */
  terminal: Uint8Array;
  /** Family names already tested against the prefixes (the same few dozen on every scrape). */
  keptNames: Map<string, boolean>;
  /** No keep prefix holds a newline: the bytes a walk went through are not the end of the line. */
  newlineFree: boolean;
}

const KEPT_NAMES_MAX = 4096;

/** Whether a family name starts with one of the keep prefixes, remembered per prefix list. */
export function keptByPrefixes(trie: PrefixTrie, prefixes: readonly string[], name: string): boolean {
  let kept = trie.keptNames.get(name);
  if (kept === undefined) {
    kept = prefixes.some((p) => name.startsWith(p));
    if (trie.keptNames.size >= KEPT_NAMES_MAX) trie.keptNames.clear();
    trie.keptNames.set(name, kept);
  }
  return kept;
}

const TRIE_CACHE_MAX = 16;
/** Built once per prefix list: the decoder passes the same few lists on every scrape. */
const trieCache = new Map<string, PrefixTrie>();

/** The same list object (a decoder's constant) skips building the key. */
const trieByList = new WeakMap<readonly string[], PrefixTrie>();

export function prefixTrie(prefixes: readonly string[]): PrefixTrie {
  const known = trieByList.get(prefixes);
  if (known !== undefined) return known;
  const trie = prefixTrieByContent(prefixes);
  trieByList.set(prefixes, trie);
  return trie;
}

function prefixTrieByContent(prefixes: readonly string[]): PrefixTrie {
  const key = `${prefixes.length}\n${prefixes.join('\n')}`;
  const cached = trieCache.get(key);
  if (cached !== undefined) return cached;
  const encoded = prefixes.map((p) => Buffer.from(p, 'utf8'));
  const capacity = 2 + encoded.reduce((sum, p) => sum + p.length, 0);
  const column = new Uint16Array(256);
  let width = 1;
  for (const prefix of encoded) for (const byte of prefix) if (column[byte] === 0) column[byte] = width++;
  const next = new Int32Array(capacity * width);
  const terminal = new Uint8Array(capacity);
  let nodes = 1;
  let emptyPrefix = false;
  for (const prefix of encoded) {
    if (prefix.length === 0) emptyPrefix = true;
    let node = 0;
    for (const byte of prefix) {
      const slot = node * width + column[byte]!;
      if (next[slot] === 0) next[slot] = nodes++;
      node = next[slot]!;
    }
    terminal[node] = 1;
  }
  // An empty prefix keeps every name: every first byte leads to a terminal node.
  if (emptyPrefix) {
    const all = nodes++;
    terminal[all] = 1;
    for (let c = 0; c < width; c++) next[c] = all;
  }
  const trie: PrefixTrie = {
    next: next.slice(0, Math.max(1, nodes) * width),
    column,
    width,
    terminal: terminal.slice(0, nodes),
    keptNames: new Map<string, boolean>(),
    newlineFree: encoded.every((p) => !p.includes(LF)),
  };
  if (trieCache.size >= TRIE_CACHE_MAX) trieCache.delete(trieCache.keys().next().value!);
  trieCache.set(key, trie);
  return trie;
}

/**
 * Walks the name at p down the trie, one byte per step and without decoding anything: the index
 * of the byte that completed a keep prefix, or ~i for the index i the walk stopped at.
 */
export function walkTrie(trie: PrefixTrie, b: Buffer, p: number, end: number): number {
  const next = trie.next;
  const terminal = trie.terminal;
  const column = trie.column;
  const width = trie.width;
  let node = 0;
  let i = p;
  for (; i < end; i++) {
    const child = next[node * width + column[b[i]!]!]!;
    if (child === 0) break;
    node = child;
    if (terminal[node] === 1) return i;
  }
  return ~i;
}
