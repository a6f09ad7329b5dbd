/**
 * The pool's kept connections with shims called on a cadence of their own (--shim.interval): a
 * socket the collector retains keeps its connection through rounds that do not scrape it; one it
 * no longer retains is closed. Real unix sockets served by the lab's fake shim.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeShim, type FakeShim } from '../../src/lab/fake-shim.ts';
import { createShimPool } from '../../src/scrapers/shim-pool.ts';

const LIMITS = { deadlineMs: 2_000, maxBytes: 1024 * 1024 };

let dir: string;
const shims: FakeShim[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shim-retain-'));
});

afterEach(async () => {
  await Promise.all(shims.splice(0).map((shim) => shim.close()));
  await rm(dir, { recursive: true, force: true });
});

async function shim(name: string): Promise<FakeShim> {
  const started = await startFakeShim({ socketPath: join(dir, name), payload: () => 'kata_shim_threads 1\n' });
  shims.push(started);
  return started;
}

describe('ShimPool.retain', () => {
  it('a retained socket keeps its connection through rounds that scrape only others; one let go is closed', async () => {
    const a = await shim('a.sock');
    const b = await shim('b.sock');
    const pool = createShimPool({ concurrency: 2, ...LIMITS });
    const target = (s: FakeShim, id: string) => [{ id, socketPath: s.socketPath }];
    pool.retain([a.socketPath, b.socketPath]);
    expect((await pool.scrapeAll([...target(a, 'a'), ...target(b, 'b')])).size).toBe(2);
    // Three rounds that call only a: b's connection stays open and is reused when b is due again.
    for (let round = 0; round < 3; round++) await pool.scrapeAll(target(a, 'a'));
    expect(b.stats.openConnections).toBe(1);
    expect((await pool.scrapeAll(target(b, 'b'))).get('b')?.ok).toBe(true);
    expect([a.stats.connections, b.stats.connections]).toEqual([1, 1]);
    // b's sandbox is gone: no longer retained, its connection is closed at once (no round running).
    pool.retain([a.socketPath]);
    await expect.poll(() => b.stats.openConnections).toBe(0);
    expect(a.stats.openConnections).toBe(1);
    await pool.close();
  });
});
