import { describe, expect, test } from 'vitest';
import { hashBytes } from '../../src/prom-text/hash.ts';
import { MAX_CHAIN, MAX_COLLISIONS_PER_PARSE, SeriesCache, type SeriesCacheLimits } from '../../src/prom-text/series-cache.ts';
import { WORK } from '../../src/prom-text/work.ts';

const LIMITS: SeriesCacheLimits = { maxEntries: 3, maxArenaBytes: 64 * 1024, maxNewPerParse: 100 };

/** A series part as the parser hands it over: the bytes, their hash, what parsing them gave. */
function part(text: string) {
  const bytes = Buffer.from(text, 'latin1');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { bytes, view, hash: hashBytes(bytes, 0, bytes.length) };
}

function add(cache: SeriesCache, text: string) {
  const p = part(text);
  return cache.add(p.bytes, 0, p.bytes.length, p.hash, {
    name: text.split('{')[0]!,
    seriesHash: p.hash,
    labels: {},
    labelCount: 0,
    longestLabelName: 0,
    longestLabelValue: 0,
  });
}

function find(cache: SeriesCache, text: string) {
  const p = part(text);
  return cache.find(p.hash, p.bytes, p.view, 0, p.bytes.length);
}

describe('SeriesCache bounds', () => {
  test('full: the next entry empties it, and entries of before no longer match even through a guess', () => {
    const cache = new SeriesCache(LIMITS);
    cache.beginParse();
    const first = add(cache, 'a{x="1"}')!;
    add(cache, 'b{x="2"}');
    add(cache, 'c{x="3"}');
    expect(cache.size).toBe(3);
    expect(find(cache, 'a{x="1"}')).toBe(first);
    // The fourth overwrites the arena from offset 0: an old entry reached through `next` must not match it.
    const fourth = add(cache, 'd{x="4"}')!;
    expect(cache.size).toBe(1);
    expect(fourth.offset).toBe(first.offset);
    const p = part('d{x="4"}');
    expect(cache.matches(fourth, p.bytes, p.view, 0)).toBe(true);
    expect(cache.matches(first, p.bytes, p.view, 0)).toBe(false);
    expect(find(cache, 'a{x="1"}')).toBeUndefined();
  });

  test('one parse adds at most maxNewPerParse entries; the next parse may add again', () => {
    const cache = new SeriesCache({ ...LIMITS, maxEntries: 100, maxNewPerParse: 2 });
    cache.beginParse();
    expect(add(cache, 'a')).toBeDefined();
    expect(add(cache, 'b')).toBeDefined();
    expect(add(cache, 'c')).toBeUndefined();
    expect(cache.size).toBe(2);
    cache.beginParse();
    expect(add(cache, 'c')).toBeDefined();
    expect(cache.size).toBe(3);
  });

  test('a series part over 1/64 of the arena bound is not kept', () => {
    const cache = new SeriesCache({ ...LIMITS, maxArenaBytes: 6400 });
    cache.beginParse();
    expect(add(cache, `a{x="${'y'.repeat(200)}"}`)).toBeUndefined();
    expect(add(cache, `a{x="${'y'.repeat(80)}"}`)).toBeDefined();
  });

  test('the arena grows past its first 64 KiB and earlier entries still match their bytes', () => {
    const cache = new SeriesCache({ maxEntries: 10_000, maxArenaBytes: 1024 * 1024, maxNewPerParse: 10_000 });
    cache.beginParse();
    const texts = Array.from({ length: 2000 }, (_, i) => `m{i="${String(i).padStart(40, '0')}"}`);
    const entries = texts.map((t) => add(cache, t)!);
    expect(entries.at(-1)!.offset).toBeGreaterThan(64 * 1024);
    for (const i of [0, 1, 999, 1999]) expect(find(cache, texts[i]!)).toBe(entries[i]);
  });

  test('at most MAX_CHAIN parts share one byte hash, and a parse that meets too many collisions stops using the cache', () => {
    const cache = new SeriesCache({ maxEntries: 1000, maxArenaBytes: 64 * 1024, maxNewPerParse: 1000 });
    cache.beginParse();
    const sameHash = (text: string) => {
      const p = part(text);
      return { ...p, hash: 42 };
    };
    const added = Array.from({ length: MAX_CHAIN + 1 }, (_, i) => {
      const p = sameHash(`m{v="${i}"}`);
      return cache.add(p.bytes, 0, p.bytes.length, p.hash, {
        name: 'm',
        seriesHash: 0,
        labels: {},
        labelCount: 1,
        longestLabelName: 1,
        longestLabelValue: 1,
      });
    });
    expect(added.map((e) => e !== undefined)).toEqual([...Array<boolean>(MAX_CHAIN).fill(true), false]);
    const known = sameHash('m{v="0"}');
    expect(cache.find(known.hash, known.bytes, known.view, 0, known.bytes.length)).toBe(added[0]);
    const before = WORK.collisions;
    const stranger = sameHash('m{v="x"}');
    expect(cache.find(stranger.hash, stranger.bytes, stranger.view, 0, stranger.bytes.length)).toBeUndefined();
    expect(WORK.collisions - before).toBe(MAX_CHAIN);
    for (let i = 0; i < MAX_COLLISIONS_PER_PARSE; i++) cache.find(stranger.hash, stranger.bytes, stranger.view, 0, stranger.bytes.length);
    // Over the cap: even a part the cache holds is not looked up for the rest of the parse.
    expect(cache.find(known.hash, known.bytes, known.view, 0, known.bytes.length)).toBeUndefined();
    cache.beginParse();
    expect(cache.find(known.hash, known.bytes, known.view, 0, known.bytes.length)).toBe(added[0]);
  });
});
