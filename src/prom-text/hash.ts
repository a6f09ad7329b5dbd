/**
 * The hashes of guest text: series identity, interned strings, cached series parts. Every
 * structure keyed by them compares in full on equal hashes.
 */

/** FNV-1a over UTF-16 code units, for strings that have no intern slot. */
export function hashString(s: string): number {
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}

/** FNV-1a over a byte range: the lookup key of a series part. */
export function hashBytes(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5 | 0;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h;
}

/** hashString(''). */
export const EMPTY_HASH = hashString('');

/** Two hashes into one (a label's name and value; a series' name and label set). */
export function mixHash(a: number, b: number): number {
  const h = Math.imul(a ^ Math.imul(b, 0x9e3779b1), 0x85ebca6b);
  return h ^ (h >>> 15);
}
