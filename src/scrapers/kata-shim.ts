/**
 * Kata shim metrics scraper: `GET /metrics` over each sandbox's shim-monitor.sock. I/O only.
 *
 * Each call makes the shim ask its guest agent for metrics (CPU in the shim, ~144 KB), so calls
 * are bounded three ways: a deadline over the whole exchange, a byte cap, and a concurrency limit.
 */
import { statSync, type BigIntStats } from 'node:fs';
import { performance } from 'node:perf_hooks';
import pLimit from 'p-limit';
import { Client, type Dispatcher } from 'undici';
import { SourceError, errorCode } from './source-error.ts';

export interface ShimScrapeOptions {
  /** Deadline for connect + headers + body, in milliseconds. */
  deadlineMs: number;
  /** The body is abandoned as soon as it passes this many bytes. */
  maxBytes: number;
}

export interface ShimTarget {
  id: string;
  socketPath: string;
  /**
   * Device and inode of the socket file when discovery saw it, which saves a stat per scrape;
   * without it the pool stats the path itself.
   */
  socketIdentity?: string;
}

export type ShimScrapeResult<T = Buffer> =
  | { ok: true; body: T; durationMs: number }
  | { ok: false; error: SourceError; durationMs: number };

export interface ShimPoolOptions extends ShimScrapeOptions {
  concurrency: number;
}

/**
 * Turns one body into what the caller keeps, on a turn of the event loop after the body is in
 * (its pool slot has gone on to the next scrape by then). The body is a view of a buffer the pool
 * reuses: valid only during the call, never to be kept.
 */
export type ShimBodyHandler<T> = (body: Buffer, target: ShimTarget) => T;

export interface ScrapeAllOptions {
  /** performance.now() time after which nothing is scraped and queued targets fail as timeouts. */
  deadlineAtMs?: number;
}

export interface ShimPool {
  /**
   * Scrapes every target (once per id, first wins), at most `concurrency` at a time. Never rejects.
   * With `deadlineAtMs` (performance.now() time), no scrape outlives it and targets still queued
   * then fail as timeouts, so hanging shims cannot hold the whole collection.
   */
  scrapeAll(targets: readonly ShimTarget[], options?: ScrapeAllOptions): Promise<Map<string, ShimScrapeResult>>;
  /**
   * The same, handing each body to `handle` and keeping only what it returns: at most
   * 2 × `concurrency` bodies are in memory at once (being read, or waiting for the handler's turn),
   * however many targets. An exception thrown by `handle` rejects the whole call.
   */
  scrapeAll<T>(
    targets: readonly ShimTarget[],
    options: ScrapeAllOptions & { handle: ShimBodyHandler<T> },
  ): Promise<Map<string, ShimScrapeResult<T>>>;
  /** Calls started per socket path since the pool was created. */
  callCounts(): ReadonlyMap<string, number>;
  /** Closes every kept connection. Scrapes after this still work, each on a connection of its own. */
  close(): Promise<void>;
}

const RUN_AS_ROOT = 'shim sockets are mode 0600: run the exporter as uid 0';

/** One exchange's outcome in the pool; `release` gives back the buffer the body was read into. */
type ShimRead =
  | { ok: true; body: Buffer; durationMs: number; release: () => void }
  | { ok: false; error: SourceError; durationMs: number };

/** A read without a handler: its body is a fresh buffer, the caller's to keep. */
function withoutRelease<T>(read: ShimRead): ShimScrapeResult<T> {
  return read.ok ? { ok: true, body: read.body as T, durationMs: read.durationMs } : read;
}

/** Where a body is assembled: a fresh buffer, or one the pool reuses across scrapes. */
type BodySink = (length: number) => Buffer;

const freshBuffer: BodySink = (length) => Buffer.allocUnsafe(length);

/**
 * A client for one exchange. `reused`: its connection was already open (kept alive) when it was
 * handed out. `done(ok)` gives it back: after a failure the client must not serve another request.
 */
interface ClientLease {
  client: Client;
  reused: boolean;
  done(ok: boolean): Promise<void>;
}

/** The host name is ignored by the shim; undici needs an origin to build the request line. */
const ORIGIN = 'http://shim';

/** A client for one call, closed after it (pipelining 0: no keep-alive). */
function oneShotLease(socketPath: string, deadlineMs: number): ClientLease {
  const client = new Client(ORIGIN, { socketPath, pipelining: 0, connect: { timeout: deadlineMs } });
  return {
    client,
    reused: false,
    // After a complete exchange, close: destroy() would build (and stack-trace) an error per call.
    done: (ok) => (ok ? client.close() : client.destroy()).catch(() => undefined),
  };
}

/** One `GET /metrics` on a shim socket; resolves with the body or throws SourceError. */
export async function scrapeShim(socketPath: string, options: ShimScrapeOptions): Promise<Buffer> {
  return readShimBody(socketPath, options, freshBuffer, () => oneShotLease(socketPath, options.deadlineMs));
}

/**
 * The exchange under one deadline (connect if needed, headers, body). A request on a kept-alive
 * connection that the shim closed while it was idle fails before any response byte ("other side
 * closed", a reset, a broken pipe): that one is retried once, on a fresh connection, within the
 * same deadline. Every other failure is final, and every failure retires its client.
 */
async function readShimBody(socketPath: string, options: ShimScrapeOptions, sink: BodySink, lease: () => ClientLease | Promise<ClientLease>): Promise<Buffer> {
  const deadline: Deadline = { passed: false };
  const timer = setTimeout(() => {
    deadline.passed = true;
    deadline.abort?.();
  }, options.deadlineMs);
  try {
    for (let attempt = 0; ; attempt++) {
      const current = await lease();
      const progress = { headers: false };
      let body: Buffer;
      try {
        body = await exchange(current.client, socketPath, options, sink, deadline, progress);
      } catch (error) {
        await current.done(false);
        if (attempt === 0 && current.reused && !progress.headers && !deadline.passed && isStaleConnection(error)) continue;
        throw toSourceError(error, socketPath, options.deadlineMs, deadline.passed);
      }
      await current.done(true);
      return body;
    }
  } finally {
    clearTimeout(timer);
  }
}

/** The deadline of one scrape; `abort` ends the exchange in flight, if any, when it passes. */
interface Deadline {
  passed: boolean;
  abort?: () => void;
}

const REQUEST: Dispatcher.DispatchOptions = { method: 'GET', path: '/metrics', headers: { host: 'shim', accept: 'text/plain' } };

/** Where a body of unknown length (chunked, as the Go shim sends it) starts; it grows by doubling. */
const UNKNOWN_LENGTH_START_BYTES = 64 * 1024;

const EMPTY_BODY = Buffer.alloc(0);

/** Ends an exchange whose deadline passed; the caller reports a timeout. */
class DeadlinePassed extends Error {
  override name = 'DeadlinePassed';
}

/**
 * One `GET /metrics` through undici's dispatch API: each body chunk is copied into the sink's
 * buffer as it arrives and dropped, with no stream, async iterator or chunk list per call.
 * Rejects with SourceError (status, size) or the transport's error.
 */
function exchange(
  client: Client,
  socketPath: string,
  options: ShimScrapeOptions,
  sink: BodySink,
  deadline: Deadline,
  progress: { headers: boolean },
): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    let settled = false;
    let controller: Dispatcher.DispatchController | undefined;
    let body: Buffer = EMPTY_BODY;
    let length = 0;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      deadline.abort = undefined;
      return true;
    };
    const fail = (error: Error): void => {
      if (!settle()) return;
      reject(error);
      // Stops the transfer; the caller then retires the client.
      if (controller !== undefined && !controller.aborted) controller.abort(error);
    };
    if (deadline.passed) {
      fail(new DeadlinePassed());
      return;
    }
    deadline.abort = () => fail(new DeadlinePassed());
    client.dispatch(REQUEST, {
      onRequestStart(started) {
        controller = started;
        if (settled) started.abort(new DeadlinePassed());
      },
      onResponseStart(_controller, statusCode, headers) {
        progress.headers = true;
        if (statusCode !== 200) {
          const hint = 'check the shim log (journalctl -t kata) for this sandbox';
          fail(new SourceError('http_status', socketPath, `GET /metrics answered HTTP ${statusCode}`, hint));
          return;
        }
        const declared = Number(headers['content-length']);
        if (Number.isFinite(declared) && declared > options.maxBytes) {
          fail(oversize(socketPath, options.maxBytes, `declared ${declared} bytes`));
          return;
        }
        body = sink(Number.isFinite(declared) && declared >= 0 ? declared : Math.min(UNKNOWN_LENGTH_START_BYTES, options.maxBytes));
      },
      onResponseData(_controller, chunk) {
        if (settled) return;
        const end = length + chunk.length;
        if (end > options.maxBytes) {
          fail(oversize(socketPath, options.maxBytes, `passed ${options.maxBytes} bytes`));
          return;
        }
        if (end > body.length) {
          const grown = sink(Math.min(options.maxBytes, Math.max(end, body.length * 2)));
          body.copy(grown, 0, 0, length);
          body = grown;
        }
        chunk.copy(body, length);
        length = end;
      },
      onResponseEnd() {
        if (settle()) resolve(body.subarray(0, length));
      },
      onResponseError(_controller, error) {
        fail(error);
      },
    });
  });
}

/** What a request on a connection the shim closed while idle fails with, before any response byte. */
function isStaleConnection(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE';
}

function oversize(socketPath: string, maxBytes: number, detail: string): SourceError {
  return new SourceError(
    'oversize',
    socketPath,
    `metrics response ${detail}, over the ${maxBytes}-byte cap`,
    'raise --shim.max-bytes if this sandbox is legitimately large',
  );
}

function toSourceError(error: unknown, socketPath: string, deadlineMs: number, timedOut: boolean): SourceError {
  if (error instanceof SourceError) return error;
  if (timedOut) {
    return new SourceError(
      'timeout',
      socketPath,
      `no complete metrics response within ${deadlineMs} ms`,
      'the shim or its guest agent is stuck or overloaded; raise --shim.timeout only if it is merely slow',
    );
  }
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  switch (code) {
    case 'ENOENT':
      return new SourceError('unreachable', socketPath, 'no such socket', 'the sandbox is gone or its shim did not start its monitor socket');
    case 'ECONNREFUSED':
      return new SourceError('unreachable', socketPath, 'connection refused: nothing listens on the socket', 'the shim has exited; the sandbox directory is stale');
    case 'EACCES':
    case 'EPERM':
      return new SourceError('unreachable', socketPath, 'permission denied', RUN_AS_ROOT);
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return new SourceError('timeout', socketPath, `timed out (${code})`, 'the shim or its guest agent is stuck or overloaded');
    default:
      return new SourceError(
        'unreachable',
        socketPath,
        `connection failed or closed mid-response (${code ?? 'no code'}: ${message})`,
        'the shim may have crashed or restarted; check the sandbox',
      );
  }
}

/** Most bytes a reused body buffer keeps between scrapes; a larger body gets a buffer of its own. */
const MAX_REUSED_BODY_BYTES = 1024 * 1024;

/**
 * How long a kept connection may sit idle, when the shim sends no Keep-Alive hint (the Go shim's
 * server has no idle timeout and sends none). Longer than any sane scrape interval, so connections
 * survive from one collection to the next; eviction, not this timer, closes those of gone sandboxes.
 * A shim that announces a shorter idle timeout is believed (undici closes 2 s before it does).
 */
const KEEP_ALIVE_MS = 10 * 60 * 1000;

/** The pool's client for one shim socket, kept across collections. */
interface KeptClient {
  /** Undefined after a failure: the next scrape builds a fresh client (and connection). */
  client: Client | undefined;
  /** A scrape is using it; a second concurrent scrape of the same socket gets a one-shot client. */
  busy: boolean;
  /** The last round (see createShimPool) in which this socket was scraped. */
  round: number;
  /** Device and inode of the socket file when the client's connection was made. */
  identity: string | undefined;
}

/**
 * The identity of a socket file (ShimTarget.socketIdentity): its device and inode. Discovery and
 * the pool both make it here, so the two compare.
 */
export function socketIdentityOf(stats: BigIntStats): string {
  return `${stats.dev}:${stats.ino}`;
}

/**
 * Which socket file the path names now (a new shim at the same path is a new file). Synchronous on
 * purpose: the sockets live on a local tmpfs (/run), a stat there takes microseconds, and the async
 * form queued behind discovery's and the cgroup reads' file I/O on libuv's 4 threads, which cost
 * more wall time than the kept connection saved (see docs/performance.md).
 */
function socketIdentity(socketPath: string): string | undefined {
  try {
    const found = statSync(socketPath, { bigint: true, throwIfNoEntry: false });
    return found === undefined ? undefined : socketIdentityOf(found);
  } catch {
    return undefined;
  }
}

export function createShimPool(options: ShimPoolOptions): ShimPool {
  const concurrency = Math.max(1, options.concurrency);
  const limit = pLimit(concurrency);
  const calls = new Map<string, number>();
  // Body buffers for handled scrapes: one per slot at most, grown to the largest body seen.
  const spare: Buffer[] = [];
  // One client per socket path, kept alive across collections. A round is a stretch of time in
  // which some scrapeAll call is running; when the last one ends, the clients of sockets not
  // scraped in that round are closed (their sandboxes are gone, or out of scope).
  const kept = new Map<string, KeptClient>();
  let round = 0;
  let running = 0;
  let closed = false;

  function keptLease(socketPath: string, knownIdentity: string | undefined, deadlineMs: number): () => ClientLease | Promise<ClientLease> {
    let entry = kept.get(socketPath);
    if (closed || entry?.busy === true) return () => oneShotLease(socketPath, deadlineMs);
    if (entry === undefined) {
      entry = { client: undefined, busy: false, round, identity: undefined };
      kept.set(socketPath, entry);
    }
    const slot = entry;
    slot.round = round;
    return async () => {
      slot.busy = true;
      // An open connection is only reused while the path still names the socket it was made to:
      // a shim that was replaced (or a socket file swapped for a dead one) is connected afresh.
      const identity = knownIdentity ?? socketIdentity(socketPath);
      if (slot.client !== undefined && slot.client.stats.connected && identity !== slot.identity) {
        const stale = slot.client;
        slot.client = undefined;
        await stale.destroy().catch(() => undefined);
      }
      if (slot.client === undefined || !slot.client.stats.connected) slot.identity = identity;
      const client =
        slot.client ??
        new Client(ORIGIN, {
          socketPath,
          pipelining: 1,
          keepAliveTimeout: KEEP_ALIVE_MS,
          keepAliveMaxTimeout: KEEP_ALIVE_MS,
          connect: { timeout: options.deadlineMs },
        });
      slot.client = client;
      return {
        client,
        reused: client.stats.connected,
        done: async (ok) => {
          slot.busy = false;
          if (ok && !closed && kept.get(socketPath) === slot) return;
          // A failed exchange may have left a half-read response behind: never reuse its client.
          if (slot.client === client) slot.client = undefined;
          await (ok ? client.close() : client.destroy()).catch(() => undefined);
        },
      };
    };
  }

  /** At the end of a round: close the clients of sockets it did not scrape. */
  function evict(): void {
    for (const [socketPath, entry] of kept) {
      if (entry.round === round || entry.busy) continue;
      kept.delete(socketPath);
      entry.client?.close().catch(() => undefined);
    }
  }

  /** Gives a lent body buffer back: one per body being read or waiting for its handler, at most. */
  function giveBack(buffer: Buffer | undefined): void {
    if (buffer !== undefined && spare.length < 2 * concurrency) spare.push(buffer);
  }

  /** One exchange in a pool slot. With `lend`, the body is read into a reused buffer, given back by `release`. */
  async function readOne(target: ShimTarget, deadlineAtMs: number, lend: boolean): Promise<ShimRead> {
    const started = performance.now();
    const remainingMs = Math.min(options.deadlineMs, deadlineAtMs - started);
    if (remainingMs <= 0) {
      const error = new SourceError('timeout', target.socketPath, 'not scraped: the collection deadline passed while it was queued', 'raise --shim.concurrency or --collect.deadline, or look for hanging shims');
      return { ok: false, error, durationMs: 0 };
    }
    calls.set(target.socketPath, (calls.get(target.socketPath) ?? 0) + 1);
    let lent: Buffer | undefined;
    const sink: BodySink = !lend
      ? freshBuffer
      : (length) => {
          if (length > MAX_REUSED_BODY_BYTES) return Buffer.allocUnsafe(length);
          // A body of unknown length asks again as it grows: it keeps the buffer it was lent.
          let buffer = lent ?? spare.pop();
          if (buffer === undefined || buffer.length < length) buffer = Buffer.allocUnsafe(Math.max(length, buffer?.length ?? 0));
          lent = buffer;
          return buffer;
        };
    try {
      const body = await readShimBody(target.socketPath, { ...options, deadlineMs: remainingMs }, sink, keptLease(target.socketPath, target.socketIdentity, options.deadlineMs));
      return { ok: true, body, durationMs: performance.now() - started, release: () => giveBack(lent) };
    } catch (error) {
      giveBack(lent);
      const sourceError =
        error instanceof SourceError ? error : toSourceError(error, target.socketPath, options.deadlineMs, false);
      return { ok: false, error: sourceError, durationMs: performance.now() - started };
    }
  }

  /**
   * Hands a body to its handler on a later turn of the event loop, out of its pool slot: the slot
   * has sent its next request by then, so decoding the bodies that came in together no longer
   * holds back the requests that follow them. Two immediates: undici writes a request on a kept
   * connection from an immediate of its own (queued when the slot moves on, after this one), once
   * bytes pending on the idle socket have been read; immediates queued while immediates run wait
   * for the next turn.
   */
  async function handled<T>(read: ShimRead, target: ShimTarget, handle: ShimBodyHandler<T>): Promise<ShimScrapeResult<T>> {
    if (!read.ok) return read;
    await new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
    try {
      return { ok: true, body: handle(read.body, target), durationMs: read.durationMs };
    } finally {
      read.release();
    }
  }

  async function scrapeAll<T>(
    targets: readonly ShimTarget[],
    scrapeOptions: ScrapeAllOptions & { handle?: ShimBodyHandler<T> } = {},
  ): Promise<Map<string, ShimScrapeResult<T>>> {
    const unique = new Map<string, ShimTarget>();
    for (const target of targets) if (!unique.has(target.id)) unique.set(target.id, target);
    const deadlineAtMs = scrapeOptions.deadlineAtMs ?? Number.POSITIVE_INFINITY;
    const handle = scrapeOptions.handle;
    if (running++ === 0) round++;
    // A target of this round keeps its client even if the deadline passes before it is scraped.
    for (const target of unique.values()) {
      const entry = kept.get(target.socketPath);
      if (entry !== undefined) entry.round = round;
    }
    try {
      const entries = await Promise.all(
        [...unique.values()].map(async (target) => {
          const read = await limit(() => readOne(target, deadlineAtMs, handle !== undefined));
          const result = handle !== undefined ? await handled(read, target, handle) : withoutRelease<T>(read);
          return [target.id, result] as const;
        }),
      );
      return new Map(entries);
    } finally {
      if (--running === 0) evict();
    }
  }

  async function close(): Promise<void> {
    closed = true;
    const clients = [...kept.values()].flatMap((entry) => (entry.client === undefined ? [] : [entry.client]));
    kept.clear();
    // close() lets a scrape still running finish (it is bounded by its deadline).
    await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
  }

  return {
    scrapeAll: scrapeAll as ShimPool['scrapeAll'],
    callCounts: () => calls,
    close,
  };
}
