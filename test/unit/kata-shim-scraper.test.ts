/**
 * Shim scraper against real unix sockets (node:http on a socket path in a temp dir), served by the
 * lab's fake shim. No assertion on wall time beyond generous bounds on deadlines.
 */
import diagnostics from 'node:diagnostics_channel';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeShim, type FakeShim, type ShimBehaviour } from '../../src/lab/fake-shim.ts';
import { scrapeShim, type ShimScrapeResult } from '../../src/scrapers/kata-shim.ts';
import { createShimPool } from '../../src/scrapers/shim-pool.ts';
import { SourceError } from '../../src/scrapers/source-error.ts';
import { decodeShimMetrics } from '../../src/translate/kata-decode.ts';
import { PromParseError } from '../../src/prom-text/index.ts';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/kata');
const LIMITS = { deadlineMs: 2_000, maxBytes: 1024 * 1024 };

let dir: string;
const shims: FakeShim[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kata-shim-'));
});

afterEach(async () => {
  await Promise.all(shims.splice(0).map((shim) => shim.close()));
  await rm(dir, { recursive: true, force: true });
});

async function shim(name: string, behaviour: ShimBehaviour, payload = 'kata_shim_threads 1\n', delayMs?: number): Promise<FakeShim> {
  const started = await startFakeShim({ socketPath: join(dir, name), payload: () => payload, behaviour, ...(delayMs ? { delayMs } : {}) });
  shims.push(started);
  return started;
}

async function failure(promise: Promise<unknown>): Promise<SourceError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SourceError);
  return error as SourceError;
}

describe('createShimPool over real sockets', () => {
  it('scrapes a server per fixture kind and the bodies decode', async () => {
    const kinds = [
      ['go-qemu', 'go'],
      ['go-clh', 'go'],
      ['go-firecracker', 'go'],
      ['rs-dragonball', 'rs'],
      ['rs-clh', 'rs'],
    ] as const;
    const targets = [];
    for (const [kind] of kinds) {
      const payload = await readFile(join(fixtures, `${kind}.prom`), 'utf8');
      const started = await shim(`${kind}.sock`, { kind: 'normal' }, payload);
      targets.push({ id: kind, socketPath: started.socketPath });
    }
    const pool = createShimPool({ concurrency: 3, ...LIMITS });
    const results = await pool.scrapeAll(targets);
    for (const [kind, runtime] of kinds) {
      const result = results.get(kind);
      expect(result?.ok, kind).toBe(true);
      if (!result?.ok) continue;
      expect(result.body.equals(await readFile(join(fixtures, `${kind}.prom`)))).toBe(true);
      expect(decodeShimMetrics(result.body, runtime).guest.cpu).toBeDefined();
    }
    expect(decodeShimMetrics((results.get('rs-dragonball') as { body: Buffer }).body, 'rs').vmmInShim).toBe(true);
    for (const target of targets) expect(pool.callCounts().get(target.socketPath)).toBe(1);
  });

  it('never rejects: failures come back as results, per id, once per id', async () => {
    const good = await shim('good.sock', { kind: 'normal' });
    const pool = createShimPool({ concurrency: 2, ...LIMITS });
    const results = await pool.scrapeAll([
      { id: 'a', socketPath: good.socketPath },
      { id: 'b', socketPath: join(dir, 'missing.sock') },
      { id: 'a', socketPath: good.socketPath },
    ]);
    expect(results.get('a')?.ok).toBe(true);
    const b = results.get('b') as Extract<ShimScrapeResult, { ok: false }>;
    expect(b.ok).toBe(false);
    expect(b.error.reason).toBe('unreachable');
    expect(good.stats.calls).toBe(1);
    expect(pool.callCounts().get(good.socketPath)).toBe(1);
  });

  it('honours the concurrency bound (2 at once for 8 targets)', async () => {
    const targets = [];
    const started: FakeShim[] = [];
    for (let i = 0; i < 8; i++) {
      const s = await shim(`c${i}.sock`, { kind: 'normal' }, 'kata_shim_threads 1\n', 150);
      started.push(s);
      targets.push({ id: `s${i}`, socketPath: s.socketPath });
    }
    // One counter across all servers: the most requests in flight at once, anywhere.
    let inFlight = 0;
    let maxInFlight = 0;
    const timer = setInterval(() => {
      inFlight = started.reduce((sum, s) => sum + s.stats.inFlight, 0);
      maxInFlight = Math.max(maxInFlight, inFlight);
    }, 5);
    const results = await createShimPool({ concurrency: 2, ...LIMITS }).scrapeAll(targets);
    clearInterval(timer);
    expect([...results.values()].every((r) => r.ok)).toBe(true);
    expect(maxInFlight).toBeGreaterThan(0);
    expect(maxInFlight).toBeLessThanOrEqual(2);
    expect(started.every((s) => s.stats.calls === 1)).toBe(true);
  });
});

describe('scrapeAll with a body handler', () => {
  it('hands each body to the handler and keeps only what it returns; failures stay results', async () => {
    const payload = await readFile(join(fixtures, 'go-qemu.prom'), 'utf8');
    const targets = [];
    for (let i = 0; i < 5; i++) {
      const s = await shim(`b${i}.sock`, { kind: 'normal' }, payload, 30);
      targets.push({ id: `s${i}`, socketPath: s.socketPath });
    }
    targets.push({ id: 'gone', socketPath: join(dir, 'missing.sock') });
    let live = 0;
    let maxLive = 0;
    const results = await createShimPool({ concurrency: 2, ...LIMITS }).scrapeAll(targets, {
      handle: (body: Buffer, target) => {
        live++;
        maxLive = Math.max(maxLive, live);
        const decoded = { id: target.id, bytes: body.length, cpu: decodeShimMetrics(body, 'go').guest.cpu?.user };
        live--;
        return decoded;
      },
    });
    for (let i = 0; i < 5; i++) {
      const result = results.get(`s${i}`);
      expect(result?.ok).toBe(true);
      if (result?.ok) expect(result.body).toEqual({ id: `s${i}`, bytes: Buffer.byteLength(payload), cpu: expect.any(Number) });
    }
    const gone = results.get('gone');
    expect(gone?.ok === false && gone.error.reason).toBe('unreachable');
    expect(maxLive).toBe(1);
  });
});

describe('scrapeAll with a body handler: the slot goes on before the handler runs', () => {
  it('sends the next request of a slot before the body just read is handled', async () => {
    const order: string[] = [];
    const onSend = (message: unknown): void => {
      order.push(`send ${(message as { request: { path: string } }).request.path}`);
    };
    const targets = [];
    for (let i = 0; i < 3; i++) {
      const s = await shim(`o${i}.sock`, { kind: 'normal' }, `kata_shim_threads ${i}\n`);
      targets.push({ id: `o${i}`, socketPath: s.socketPath });
    }
    const pool = createShimPool({ concurrency: 1, ...LIMITS });
    // Connections are kept across rounds: on a kept one, a request leaves as soon as it is made.
    await pool.scrapeAll(targets);
    const channel = diagnostics.channel('undici:client:sendHeaders');
    channel.subscribe(onSend);
    try {
      const results = await pool.scrapeAll(targets, {
        handle: (body: Buffer, target) => {
          order.push(`handle ${target.id}`);
          return body.toString();
        },
      });
      expect([...results.values()].map((r) => r.ok && r.body)).toEqual([
        'kata_shim_threads 0\n',
        'kata_shim_threads 1\n',
        'kata_shim_threads 2\n',
      ]);
    } finally {
      channel.unsubscribe(onSend);
    }
    // One slot: the second request leaves before the first body is handled, and so on.
    expect(order).toEqual(['send /metrics', 'send /metrics', 'handle o0', 'send /metrics', 'handle o1', 'handle o2']);
  });

  it('a body waiting for its handler keeps its buffer while the slots read the next ones', async () => {
    // Distinct bodies of one length, so that a buffer handed on too early would show another's bytes.
    const payloads = Array.from({ length: 9 }, (_, i) => `kata_shim_threads ${i}\n`.repeat(400));
    const targets = [];
    for (const [i, payload] of payloads.entries()) {
      const s = await shim(`k${i}.sock`, { kind: 'normal' }, payload, (i % 3) * 5);
      targets.push({ id: `k${i}`, socketPath: s.socketPath });
    }
    const pool = createShimPool({ concurrency: 3, ...LIMITS });
    const intact: boolean[] = [];
    for (let round = 0; round < 4; round++) {
      const results = await pool.scrapeAll(targets, {
        handle: (body: Buffer, target) => body.equals(Buffer.from(payloads[Number(target.id.slice(1))]!)),
      });
      intact.push(...[...results.values()].map((r) => r.ok && r.body));
    }
    expect(intact).toEqual(Array.from({ length: 36 }, () => true));
  });
});

describe('scrapeAll with a handler that answers with a promise (a decode on another thread)', () => {
  it('a slot does not start a read while 2 × concurrency bodies are being read or handled', async () => {
    const started: FakeShim[] = [];
    for (let i = 0; i < 5; i++) started.push(await shim(`p${i}.sock`, { kind: 'normal' }, `kata_shim_threads ${i}\n`));
    const waiting: (() => void)[] = [];
    const pool = createShimPool({ concurrency: 1, ...LIMITS });
    const all = pool.scrapeAll(
      started.map((s, i) => ({ id: `p${i}`, socketPath: s.socketPath })),
      {
        handle: (body: Buffer) => {
          // Read in the synchronous part: the body's buffer is the pool's again afterwards.
          const text = body.toString();
          return new Promise<string>((resolve) => waiting.push(() => resolve(text)));
        },
      },
    );
    // Two bodies in: both handlers are waiting, and no third read starts.
    await expect.poll(() => waiting.length).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(started.map((s) => s.stats.calls)).toEqual([1, 1, 0, 0, 0]);
    // Each settled handler lets one more read start.
    waiting.shift()!();
    await expect.poll(() => started[2]!.stats.calls).toBe(1);
    expect(started.map((s) => s.stats.calls)).toEqual([1, 1, 1, 0, 0]);
    const releasing = setInterval(() => waiting.shift()?.(), 5);
    const results = await all;
    clearInterval(releasing);
    expect([...results.values()].map((r) => r.ok && r.body)).toEqual([0, 1, 2, 3, 4].map((i) => `kata_shim_threads ${i}\n`));
    await pool.close();
  });
});

describe('bodies of unknown length (chunked, as the Go shim sends them)', () => {
  it('arrive whole through the pool, in a reused buffer that grows to the largest body', async () => {
    const line = (i: number): string => `kata_guest_meminfo{item="x${i}"} ${i}\n`;
    const text = (lines: number): string => Array.from({ length: lines }, (_, i) => line(i)).join('');
    // 40 KiB, then ~300 KiB (past the 64 KiB start and a doubling), then 40 KiB again.
    const sizes = [1200, 9000, 1200];
    let call = 0;
    const started = await startFakeShim({
      socketPath: join(dir, 'chunked.sock'),
      payload: () => text(sizes[call++]!),
      behaviour: { kind: 'normal', chunked: true },
    });
    shims.push(started);
    const pool = createShimPool({ concurrency: 1, ...LIMITS });
    const seen: { equal: boolean; bytes: number; buffer: ArrayBufferLike }[] = [];
    for (const lines of sizes) {
      const expected = Buffer.from(text(lines));
      const results = await pool.scrapeAll([{ id: 'c', socketPath: started.socketPath }], {
        handle: (body: Buffer) => ({ equal: body.equals(expected), bytes: body.length, buffer: body.buffer }),
      });
      const result = results.get('c');
      expect(result?.ok).toBe(true);
      if (result?.ok) seen.push(result.body);
    }
    expect(seen.map((s) => s.equal)).toEqual([true, true, true]);
    expect(seen.map((s) => s.bytes)).toEqual(sizes.map((lines) => Buffer.byteLength(text(lines))));
    // The third body reuses the buffer the second one grew.
    expect(seen[2]!.buffer).toBe(seen[1]!.buffer);
    await pool.close();
  });

  it('a chunked body past the cap → oversize', async () => {
    const big = await shim('chunked-big.sock', { kind: 'normal', chunked: true }, 'kata_shim_threads 1\n'.repeat(20_000));
    const error = await failure(scrapeShim(big.socketPath, { deadlineMs: 2000, maxBytes: 100_000 }));
    expect(error.reason).toBe('oversize');
    expect(error.message).toContain(big.socketPath);
  });
});

describe('the collection deadline', () => {
  it('hanging shims cannot hold the pool past it: queued targets fail as timeouts without a call', async () => {
    const targets = [];
    const hanging: FakeShim[] = [];
    for (let i = 0; i < 4; i++) {
      const s = await shim(`h${i}.sock`, { kind: 'hang' });
      hanging.push(s);
      targets.push({ id: `h${i}`, socketPath: s.socketPath });
    }
    // Per-scrape deadline 2 s, one at a time, but the whole pool has 300 ms.
    const pool = createShimPool({ concurrency: 1, ...LIMITS });
    const results = await pool.scrapeAll(targets, { deadlineAtMs: performance.now() + 300 });
    const reasons = [...results.values()].map((r) => (r.ok ? 'ok' : r.error.reason));
    expect(reasons).toEqual(['timeout', 'timeout', 'timeout', 'timeout']);
    // The first one was asked and cut at the pool deadline; the others were never called.
    expect(hanging.map((s) => s.stats.calls)).toEqual([1, 0, 0, 0]);
  });
});

describe('kept connections (one client per shim socket in the pool)', () => {
  const one = async (pool: ReturnType<typeof createShimPool>, s: FakeShim, id = 'x'): Promise<ShimScrapeResult> =>
    (await pool.scrapeAll([{ id, socketPath: s.socketPath }])).get(id)!;
  const reason = (r: ShimScrapeResult): string => (r.ok ? 'ok' : r.error.reason);

  it('two scrapes of the same socket use one connection, and close() ends it', async () => {
    let n = 0;
    const s = await startFakeShim({ socketPath: join(dir, 'kept.sock'), payload: () => `kata_shim_threads ${++n}\n` });
    shims.push(s);
    const pool = createShimPool({ concurrency: 2, ...LIMITS });
    const first = await one(pool, s);
    const second = await one(pool, s);
    expect(first.ok && first.body.toString()).toBe('kata_shim_threads 1\n');
    expect(second.ok && second.body.toString()).toBe('kata_shim_threads 2\n');
    expect(s.stats.calls).toBe(2);
    expect(s.stats.connections).toBe(1);
    expect(s.stats.openConnections).toBe(1);
    await pool.close();
    await expect.poll(() => s.stats.openConnections).toBe(0);
  });

  it.each([
    ['http_status', { kind: 'status', status: 500 }, LIMITS.deadlineMs],
    ['timeout', { kind: 'trickle', intervalMs: 20 }, 300],
    ['timeout', { kind: 'hang' }, 300],
    ['oversize', { kind: 'oversize', bytes: 100 * 1024 * 1024 }, LIMITS.deadlineMs],
    ['oversize', { kind: 'oversize', bytes: 100 * 1024 * 1024, declareLength: true }, LIMITS.deadlineMs],
    ['unreachable', { kind: 'close_mid_response' }, LIMITS.deadlineMs],
  ] as const)(
    'a failure (%s, %o) destroys the client: the next scrape opens a new connection and gets a clean body',
    async (expected, behaviour, deadlineMs) => {
      const payload = await readFile(join(fixtures, 'go-qemu.prom'), 'utf8');
      const s = await shim('fail.sock', { kind: 'normal' }, payload);
      const pool = createShimPool({ concurrency: 1, deadlineMs, maxBytes: LIMITS.maxBytes });
      expect(reason(await one(pool, s))).toBe('ok');
      await s.setBehaviour(behaviour);
      expect(reason(await one(pool, s))).toBe(expected);
      await expect.poll(() => s.stats.openConnections).toBe(0);
      await s.setBehaviour({ kind: 'normal' });
      const after = await one(pool, s);
      expect(after.ok && after.body.equals(Buffer.from(payload))).toBe(true);
      expect(s.stats.connections).toBe(2);
      await pool.close();
    },
  );

  it('closes, at the end of scrapeAll, the client of a socket that call did not scrape', async () => {
    const a = await shim('a.sock', { kind: 'normal' });
    const b = await shim('b.sock', { kind: 'normal' });
    const pool = createShimPool({ concurrency: 2, ...LIMITS });
    const both = await pool.scrapeAll([
      { id: 'a', socketPath: a.socketPath },
      { id: 'b', socketPath: b.socketPath },
    ]);
    expect([...both.values()].every((r) => r.ok)).toBe(true);
    expect([a.stats.openConnections, b.stats.openConnections]).toEqual([1, 1]);
    expect((await pool.scrapeAll([{ id: 'a', socketPath: a.socketPath }])).get('a')?.ok).toBe(true);
    await expect.poll(() => b.stats.openConnections).toBe(0);
    expect(a.stats.openConnections).toBe(1);
    expect(a.stats.connections).toBe(1);
    // b comes back: a new connection, which works.
    expect((await pool.scrapeAll([{ id: 'b', socketPath: b.socketPath }])).get('b')?.ok).toBe(true);
    expect(b.stats.connections).toBe(2);
    await expect.poll(() => a.stats.openConnections).toBe(0);
    await pool.close();
  });

  it('overlapping scrapeAll calls (the collector makes one per sandbox) form one round: no eviction mid-round', async () => {
    const fast = await shim('fast.sock', { kind: 'normal' });
    const slow = await shim('slow.sock', { kind: 'normal' }, 'kata_shim_threads 1\n', 100);
    const pool = createShimPool({ concurrency: 2, ...LIMITS });
    const round = async (): Promise<void> => {
      const results = await Promise.all([
        pool.scrapeAll([{ id: 's', socketPath: slow.socketPath }]),
        pool.scrapeAll([{ id: 'f', socketPath: fast.socketPath }]),
      ]);
      expect(results.every((r) => [...r.values()].every((x) => x.ok))).toBe(true);
    };
    await round();
    await round();
    expect([fast.stats.connections, slow.stats.connections]).toEqual([1, 1]);
    await pool.close();
  });

  it('a reused connection the shim closed as the request went out: retried once, on a new connection, within the deadline', async () => {
    const s = await shim('stale.sock', { kind: 'normal' });
    const pool = createShimPool({ concurrency: 1, ...LIMITS });
    expect(reason(await one(pool, s))).toBe('ok');
    await s.setBehaviour({ kind: 'drop', onlyReused: true });
    expect(reason(await one(pool, s))).toBe('ok');
    expect(s.stats.calls).toBe(3);
    expect(s.stats.connections).toBe(2);
    await pool.close();
  });

  it('only once: a shim that drops every request → unreachable after two attempts; a new connection is never retried', async () => {
    const s = await shim('drop.sock', { kind: 'normal' });
    const pool = createShimPool({ concurrency: 1, ...LIMITS });
    expect(reason(await one(pool, s))).toBe('ok');
    await s.setBehaviour({ kind: 'drop' });
    const dropped = await one(pool, s);
    expect(reason(dropped)).toBe('unreachable');
    expect(!dropped.ok && dropped.error.message).toMatch(/other side closed|ECONNRESET|EPIPE/);
    expect(s.stats.calls).toBe(3);
    // On a fresh connection (the failure retired the client) there is no retry.
    expect(reason(await one(pool, s))).toBe('unreachable');
    expect(s.stats.calls).toBe(4);
    await s.setBehaviour({ kind: 'normal' });
    expect(reason(await one(pool, s))).toBe('ok');
    await pool.close();
  });

  it('a shim that closes idle connections: the next scrape reconnects without an error', async () => {
    const s = await startFakeShim({ socketPath: join(dir, 'idle.sock'), payload: () => 'kata_shim_threads 1\n', idleTimeoutMs: 100 });
    shims.push(s);
    const pool = createShimPool({ concurrency: 1, ...LIMITS });
    expect(reason(await one(pool, s))).toBe('ok');
    await expect.poll(() => s.stats.openConnections).toBe(0);
    expect(reason(await one(pool, s))).toBe('ok');
    expect(s.stats.connections).toBe(2);
    await pool.close();
  });

  it('a new socket file at the path (a replaced shim) gets a new connection, even if the old one is still open', async () => {
    const path = join(dir, 'swap.sock');
    const old = await startFakeShim({ socketPath: path, payload: () => 'kata_shim_threads 1\n' });
    shims.push(old);
    const pool = createShimPool({ concurrency: 1, ...LIMITS });
    expect(reason(await one(pool, old))).toBe('ok');
    const replacement = await startFakeShim({
      socketPath: path,
      bindPath: join(dir, 'swap-new.sock'),
      payload: () => 'kata_shim_threads 2\n',
    });
    shims.push(replacement);
    const after = await one(pool, replacement);
    expect(after.ok && after.body.toString()).toBe('kata_shim_threads 2\n');
    expect([old.stats.calls, replacement.stats.calls]).toEqual([1, 1]);
    await expect.poll(() => old.stats.openConnections).toBe(0);
    await pool.close();
  });

  it('the same socket under two ids at once, and scrapes after close(), still work', async () => {
    const s = await shim('twice.sock', { kind: 'normal' }, 'kata_shim_threads 1\n', 50);
    const pool = createShimPool({ concurrency: 2, ...LIMITS });
    const results = await pool.scrapeAll([
      { id: 'p', socketPath: s.socketPath },
      { id: 'q', socketPath: s.socketPath },
    ]);
    expect([...results.values()].map(reason)).toEqual(['ok', 'ok']);
    await pool.close();
    expect(reason(await one(pool, s))).toBe('ok');
    await expect.poll(() => s.stats.openConnections).toBe(0);
  });
});

describe('scrapeShim failures', () => {
  it('missing socket → unreachable, naming the path', async () => {
    const path = join(dir, 'nope.sock');
    const error = await failure(scrapeShim(path, LIMITS));
    expect(error.reason).toBe('unreachable');
    expect(error.message).toContain(path);
  });

  it('a socket file nobody listens on → unreachable (connection refused)', async () => {
    const dead = await shim('dead.sock', { kind: 'refuse' });
    const error = await failure(scrapeShim(dead.socketPath, LIMITS));
    expect(error.reason).toBe('unreachable');
    expect(error.message).toMatch(/refused/);
  });

  it('a plain file at the socket path → unreachable', async () => {
    const path = join(dir, 'plain.sock');
    await writeFile(path, 'not a socket');
    expect((await failure(scrapeShim(path, LIMITS))).reason).toBe('unreachable');
  });

  it('hanging server → timeout', async () => {
    const hung = await shim('hang.sock', { kind: 'hang' });
    expect((await failure(scrapeShim(hung.socketPath, { ...LIMITS, deadlineMs: 300 }))).reason).toBe('timeout');
    expect(hung.stats.calls).toBe(1);
  });

  it('trickling server (a byte every 50 ms, forever) → timeout at the deadline', async () => {
    const slow = await shim('trickle.sock', { kind: 'trickle', intervalMs: 50 });
    // Idle timeouts would never fire here; only the whole-exchange deadline ends it.
    const result = await createShimPool({ concurrency: 1, deadlineMs: 400, maxBytes: LIMITS.maxBytes }).scrapeAll([
      { id: 't', socketPath: slow.socketPath },
    ]);
    const t = result.get('t') as Extract<ShimScrapeResult, { ok: false }>;
    expect(t.ok).toBe(false);
    expect(t.error.reason).toBe('timeout');
    expect(t.durationMs).toBeLessThan(30_000);
  });

  it('100 MB response → oversize, aborted early (the server saw the close before it finished)', async () => {
    const big = await shim('big.sock', { kind: 'oversize', bytes: 100 * 1024 * 1024 });
    const error = await failure(scrapeShim(big.socketPath, { deadlineMs: 20_000, maxBytes: 1024 * 1024 }));
    expect(error.reason).toBe('oversize');
    await expect.poll(() => big.stats.oversizeClientClosedEarly, { timeout: 10_000 }).toBe(true);
    expect(big.stats.oversizeWritten).toBeLessThan(100 * 1024 * 1024);
  });

  it('a Content-Length above the cap → oversize before reading the body', async () => {
    const declared = await shim('declared.sock', { kind: 'oversize', bytes: 100 * 1024 * 1024, declareLength: true });
    const error = await failure(scrapeShim(declared.socketPath, { deadlineMs: 20_000, maxBytes: 1024 * 1024 }));
    expect(error.reason).toBe('oversize');
    expect(error.message).toContain('declared');
  });

  it('garbage bytes → body returned; the decoder raises PromParseError', async () => {
    const junk = await shim('junk.sock', { kind: 'garbage' });
    const body = await scrapeShim(junk.socketPath, LIMITS);
    expect(body.length).toBeGreaterThan(0);
    expect(() => decodeShimMetrics(body, 'go')).toThrow(PromParseError);
  });

  it('connection closed mid-response → unreachable', async () => {
    const payload = await readFile(join(fixtures, 'go-qemu.prom'), 'utf8');
    const cut = await shim('cut.sock', { kind: 'close_mid_response' }, payload);
    expect((await failure(scrapeShim(cut.socketPath, LIMITS))).reason).toBe('unreachable');
  });

  it('non-200 → http_status', async () => {
    const broken = await shim('500.sock', { kind: 'status', status: 500 });
    const error = await failure(scrapeShim(broken.socketPath, LIMITS));
    expect(error.reason).toBe('http_status');
    expect(error.message).toContain('500');
  });
});

describe('fake shim lab', () => {
  it('serves a fresh payload per call, counts calls, and can switch behaviour', async () => {
    let n = 0;
    const lab = await startFakeShim({ socketPath: join(dir, 'lab.sock'), payload: () => `kata_shim_threads ${++n}\n` });
    shims.push(lab);
    expect((await scrapeShim(lab.socketPath, LIMITS)).toString()).toBe('kata_shim_threads 1\n');
    expect((await scrapeShim(lab.socketPath, LIMITS)).toString()).toBe('kata_shim_threads 2\n');
    await lab.setBehaviour({ kind: 'refuse' });
    expect((await failure(scrapeShim(lab.socketPath, LIMITS))).reason).toBe('unreachable');
    await lab.setBehaviour({ kind: 'normal' });
    expect((await scrapeShim(lab.socketPath, LIMITS)).toString()).toBe('kata_shim_threads 3\n');
    expect(lab.stats.calls).toBe(3);
  });
});
