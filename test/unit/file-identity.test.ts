/** "Has this file changed?" on real files: each way a file changes gives a new identity, a stat alone does not. */
import { chmod, mkdir, mkdtemp, rename, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { identityOf, type FileIdentity } from '../../src/file-identity.ts';
import { pastCtimeTick } from '../support/file-times.ts';

let dir: string;
let seq = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kmb-identity-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function identity(path: string): Promise<FileIdentity> {
  return identityOf(await stat(path, { bigint: true }));
}

/** A fresh file with an mtime well in the past, so any later write or touch moves it. */
async function oldFile(content: string): Promise<string> {
  const path = join(dir, `f${seq++}`);
  await writeFile(path, content);
  await utimes(path, 1_000_000, 1_000_000);
  return path;
}

describe('identityOf', () => {
  test('the same, untouched file: the same identity, however often it is read', async () => {
    const path = await oldFile('token-a');
    const before = await identity(path);
    await stat(path);
    expect(await identity(path)).toBe(before);
  });

  test('replaced by rename with the same content and times: new inode, new identity', async () => {
    const path = await oldFile('token-a');
    const before = await identity(path);
    const next = await oldFile('token-a');
    await rename(next, path);
    const after = await stat(path, { bigint: true });
    expect(after.size).toBe(BigInt('token-a'.length));
    expect(after.mtimeNs).toBe(1_000_000n * 1_000_000_000n);
    expect(identityOf(after)).not.toBe(before);
  });

  test('a projected-volume symlink swap (..data -> new version): the path follows to a new file', async () => {
    const volume = join(dir, `vol${seq++}`);
    const v1 = join(volume, '..v1');
    const v2 = join(volume, '..v2');
    await mkdir(v1, { recursive: true });
    await mkdir(v2, { recursive: true });
    await writeFile(join(v1, 'token'), 'same');
    await writeFile(join(v2, 'token'), 'same');
    await symlink('..v1', join(volume, '..data'));
    await symlink(join('..data', 'token'), join(volume, 'token'));
    const before = await identity(join(volume, 'token'));
    await symlink('..v2', join(volume, '..data_tmp'));
    await rename(join(volume, '..data_tmp'), join(volume, '..data'));
    expect(await identity(join(volume, 'token'))).not.toBe(before);
  });

  test('rewritten in place with the same size and its mtime put back: ctime still tells', async () => {
    const path = await oldFile('token-a');
    const before = await identity(path);
    await pastCtimeTick(path);
    await writeFile(path, 'token-b');
    await utimes(path, 1_000_000, 1_000_000);
    const after = await stat(path, { bigint: true });
    expect(after.size).toBe(BigInt('token-b'.length));
    expect(after.mtimeNs).toBe(1_000_000n * 1_000_000_000n);
    expect(identityOf(after)).not.toBe(before);
  });

  test('touched (content unchanged, new mtime): a new identity', async () => {
    const path = await oldFile('token-a');
    const before = await identity(path);
    await utimes(path, 2_000_000, 2_000_000);
    expect(await identity(path)).not.toBe(before);
  });

  test('a rewrite of another length: a new identity', async () => {
    const path = await oldFile('token-a');
    const before = await identity(path);
    await writeFile(path, 'a longer token');
    expect(await identity(path)).not.toBe(before);
  });

  test('a chmod (the file may have become unreadable): a new identity', async () => {
    const path = await oldFile('token-a');
    const before = await identity(path);
    await pastCtimeTick(path);
    await chmod(path, 0o600);
    expect(await identity(path)).not.toBe(before);
  });

  test('two files with the same content, size and times are told apart', async () => {
    const a = await oldFile('same');
    const b = await oldFile('same');
    expect(await identity(a)).not.toBe(await identity(b));
  });
});
