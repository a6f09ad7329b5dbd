/**
 * The bounded synchronous readers of /run, cgroupfs and procfs, on real files: whole contents at
 * every size around their buffer, the byte cap, and how many calls a file costs.
 */

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, test, vi } from 'vitest';
import { FileTooLarge, readCgroupFileSync, readTextSync } from '../../src/scrapers/pseudo-fs.ts';

const readCalls: number[] = [];
let fstatCalls = 0;

vi.mock('node:fs', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:fs')>();
  return {
    ...original,
    readSync: (...args: Parameters<typeof original.readSync>) => {
      const read = original.readSync(...args);
      readCalls.push(read);
      return read;
    },
    fstatSync: (...args: Parameters<typeof original.fstatSync>) => {
      fstatCalls++;
      return original.fstatSync(...args);
    },
  };
});

const dir = mkdtempSync(join(tmpdir(), 'pseudo-fs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => {
  readCalls.length = 0;
  fstatCalls = 0;
});

/** A file of `bytes` bytes of varied text, and that text. */
function fileOf(bytes: number): { path: string; text: string } {
  const text = Array.from({ length: bytes }, (_, i) => String.fromCharCode(97 + ((i * 7) % 26))).join('');
  const path = join(dir, `f${bytes}`);
  writeFileSync(path, text);
  return { path, text };
}

/** The size of the readers' scratch buffer: files around it take the multi-read path. */
const BUFFER = 64 * 1024;

describe.each([
  ['readTextSync', readTextSync],
  ['readCgroupFileSync', readCgroupFileSync],
] as const)('%s', (_name, read) => {
  test.each([0, 1, 617, BUFFER - 1, BUFFER, BUFFER + 1, 3 * BUFFER + 5])('a regular file of %i bytes is read whole', (bytes) => {
    const { path, text } = fileOf(bytes);
    expect(read(path, 4 * BUFFER)).toBe(text);
  });

  test('exactly the cap is allowed; one byte more is refused, whether the file fits the buffer or not', () => {
    for (const cap of [100, BUFFER + 100]) {
      expect(read(fileOf(cap).path, cap)).toHaveLength(cap);
      expect(() => read(fileOf(cap + 1).path, cap)).toThrow(FileTooLarge);
    }
  });
});

describe('readTextSync', () => {
  test('a regular file that fits the buffer costs one read: the size it reports says it is complete', () => {
    const { path, text } = fileOf(2000);
    expect(readTextSync(path, 1024 * 1024)).toBe(text);
    expect(readCalls).toEqual([2000]);
  });

  test('a procfs file reports size 0, so it is read until a read returns nothing', () => {
    const path = '/proc/self/status';
    const text = readTextSync(path, 1024 * 1024);
    expect(text).toMatch(/^Name:\t/);
    expect(text.endsWith('\n')).toBe(true);
    expect(text.split('\n').length).toBe(readFileSync(path, 'utf8').split('\n').length);
    expect(readCalls.length).toBeGreaterThanOrEqual(2);
    expect(readCalls.at(-1)).toBe(0);
  });

  test('a missing file throws the fs error, for the caller to call churn', () => {
    expect(() => readTextSync(join(dir, 'gone'), 100)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  test('a directory is refused as not a regular file', () => {
    expect(() => readTextSync(dir, 100)).toThrow(expect.objectContaining({ code: 'ENOTREG' }));
  });
});

describe('readCgroupFileSync', () => {
  test('a real cgroupfs file costs one read and no fstat, where readTextSync takes an fstat and a read of 0', () => {
    // The root's own counters: on a v2 host, a hybrid one, or a v1 one.
    const path = ['/sys/fs/cgroup/cgroup.stat', '/sys/fs/cgroup/unified/cgroup.stat', '/sys/fs/cgroup/memory/memory.stat'].find((p) =>
      existsSync(p),
    );
    if (path === undefined) throw new Error('no cgroupfs mounted under /sys/fs/cgroup');
    const text = readCgroupFileSync(path, 1024 * 1024);
    expect(readCalls).toHaveLength(1);
    expect(fstatCalls).toBe(0);
    expect(text.split('\n')[0]).toBe(readFileSync(path, 'utf8').split('\n')[0]);
    readCalls.length = 0;
    readTextSync(path, 1024 * 1024);
    expect(readCalls).toHaveLength(2);
    expect(readCalls.at(-1)).toBe(0);
    expect(fstatCalls).toBe(1);
  });

  test('a regular file costs one read (short at EOF) and no fstat', () => {
    const { path, text } = fileOf(2000);
    expect(readCgroupFileSync(path, 1024 * 1024)).toBe(text);
    expect(readCalls).toEqual([2000]);
    expect(fstatCalls).toBe(0);
  });

  test('a FIFO with no writer never blocks: it reads as empty', () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(readCgroupFileSync(fifo, 100)).toBe('');
  });

  test('a device that never ends meets the bound', () => {
    expect(() => readCgroupFileSync('/dev/zero', 100_000)).toThrow(FileTooLarge);
  });

  test('a missing file or a directory throws the fs error', () => {
    expect(() => readCgroupFileSync(join(dir, 'gone'), 100)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => readCgroupFileSync(dir, 100)).toThrow(expect.objectContaining({ code: 'EISDIR' }));
  });
});
