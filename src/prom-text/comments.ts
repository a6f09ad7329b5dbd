/** The words of HELP and TYPE comment lines, read from the bytes without building strings. */
import * as bytesModule from './bytes.ts';
import type { MetricType } from './types.ts';

const { BLANK, CLASS } = bytesModule;

const TYPE_WORDS: ReadonlyArray<readonly [MetricType, Uint8Array]> = (['counter', 'gauge', 'histogram', 'summary', 'untyped'] as const).map(
  (type) => [type, Buffer.from(type, 'latin1')] as const,
);

/** HELP or TYPE when the comment text at p starts with that word followed by a blank. */
export function commentKeyword(b: Buffer, p: number, end: number): 'HELP' | 'TYPE' | undefined {
  if (p + 4 >= end || !(CLASS[b[p + 4]!]! & BLANK)) return undefined;
  if (b[p] === 0x48 && b[p + 1] === 0x45 && b[p + 2] === 0x4c && b[p + 3] === 0x50) return 'HELP';
  if (b[p] === 0x54 && b[p + 1] === 0x59 && b[p + 2] === 0x50 && b[p + 3] === 0x45) return 'TYPE';
  return undefined;
}

/** The metric type a token spells, in any case. */
export function typeWord(b: Buffer, start: number, end: number): MetricType | undefined {
  for (const [type, word] of TYPE_WORDS) {
    if (word.length !== end - start) continue;
    let i = 0;
    // `| 0x20` lowercases A-Z and maps no other byte onto a-z.
    while (i < word.length && (b[start + i]! | 0x20) === word[i]) i++;
    if (i === word.length) return type;
  }
  return undefined;
}
