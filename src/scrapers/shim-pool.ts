/**
 * The shim pool: every shim scrape of a collection goes through it. It bounds how many run at
 * once, keeps one connection per shim socket across collections, reads bodies into buffers it
 * reuses, and hands each body to its handler once the slot has moved on. I/O only.
 */
import { performance } from 'node:perf_hooks';
import pLimit from 'p-limit';
import { Client } from 'undici';
import {
  ORIGIN,
  freshBuffer,
  oneShotLease,
  readShimBody,
  socketIdentity,
  toSourceError,
  type BodySink,
  type ClientLease,
  type ShimScrapeOptions,
  type ShimScrapeResult,
  type ShimTarget,
} from './kata-shim.ts';
import { SourceError } from './source-error.ts';

export interface ShimPoolOptions extends ShimScrapeOptions {
  concurrency: number;
}

/**
 * Turns one body into what the caller keeps, on a turn of the event loop after the body is in
 * (its pool slot has gone on to the next scrape by then). The body is a view of a buffer the pool
 * reuses: valid only during the synchronous part of the call, never to be kept. A handler may
 * answer with a promise (a decode on another thread): the body counts as in memory until it settles.
 */
export type ShimBodyHandler<T> = (body: Buffer, target: ShimTarget) => T | Promise<T>;

export interface ScrapeAllOptions {
  /** performance.now() time after which nothing is scraped and queued targets fail as timeouts. */
  deadlineAtMs?: number;
}

export interface ShimPool {
  /**
   * Scrapes every target (once per id, first wins), at most `concurrency` at a time, in the order
   * given and after every target of earlier calls. Never rejects. With `deadlineAtMs`
   * (performance.now() time), no scrape outlives it and targets still queued then fail as
   * timeouts, so hanging shims cannot hold the whole collection.
   */
  scrapeAll(targets: readonly ShimTarget[], options?: ScrapeAllOptions): Promise<Map<string, ShimScrapeResult>>;
  /**
   * The same, handing each body to `handle` and keeping only what it returns: at most
   * 2 × `concurrency` bodies are in memory at once (being read, or waiting for the handler or its
   * promise), however many targets: a slot does not start a read while that many are. An exception thrown by `handle` rejects the whole call.
   */
  scrapeAll<T>(
    targets: readonly ShimTarget[],
    options: ScrapeAllOptions & { handle: ShimBodyHandler<T> },
  ): Promise<Map<string, ShimScrapeResult<T>>>;
  /** Calls started per socket path since the pool was created. */
  callCounts(): ReadonlyMap<string, number>;
  /**
   * The sockets of the sandboxes present, each called on a cadence of its own (--shim.interval):
   * their kept connections outlive rounds that do not scrape them. Replaces the previous set; the
   * connections of sockets neither in it nor being scraped are closed.
   */
  retain(socketPaths: Iterable<string>): void;
  /** Closes every kept connection. Scrapes after this still work, each on a connection of its own. */
  close(): Promise<void>;
}

export function createShimPool(options: ShimPoolOptions): ShimPool {
  return new PooledShims(options);
}

/** One exchange's outcome in the pool; `release` gives back the buffer the body was read into. */
type ShimRead =
  | { ok: true; body: Buffer; durationMs: number; release: () => void }
  | { ok: false; error: SourceError; durationMs: number; notStarted?: true };

class PooledShims implements ShimPool {
  private readonly limit: ReturnType<typeof pLimit>;
  /** Bodies being read or handled; see ShimPool.scrapeAll. */
  private readonly bodies: ReturnType<typeof pLimit>;
  private readonly calls = new Map<string, number>();
  private readonly clients: KeptClients;
  private readonly buffers: BodyBuffers;

  constructor(private readonly options: ShimPoolOptions) {
    const concurrency = Math.max(1, options.concurrency);
    this.limit = pLimit(concurrency);
    this.bodies = pLimit(2 * concurrency);
    this.clients = new KeptClients(options.deadlineMs);
    // One body being read per slot, and one waiting for its handler.
    this.buffers = new BodyBuffers(2 * concurrency);
  }

  scrapeAll(targets: readonly ShimTarget[], options?: ScrapeAllOptions): Promise<Map<string, ShimScrapeResult>>;
  scrapeAll<T>(
    targets: readonly ShimTarget[],
    options: ScrapeAllOptions & { handle: ShimBodyHandler<T> },
  ): Promise<Map<string, ShimScrapeResult<T>>>;
  async scrapeAll<T>(
    targets: readonly ShimTarget[],
    options: ScrapeAllOptions & { handle?: ShimBodyHandler<T> } = {},
  ): Promise<Map<string, ShimScrapeResult<T>>> {
    const unique = new Map<string, ShimTarget>();
    for (const target of targets) if (!unique.has(target.id)) unique.set(target.id, target);
    const deadlineAtMs = options.deadlineAtMs ?? Number.POSITIVE_INFINITY;
    const handle = options.handle;
    this.clients.beginRound([...unique.values()].map((target) => target.socketPath));
    try {
      const entries = await Promise.all(
        [...unique.values()].map(async (target) => {
          const result =
            handle === undefined
              ? withoutRelease<T>(await this.limit(() => this.readOne(target, deadlineAtMs, false)))
              : await this.bodies(async () => handled(await this.limit(() => this.readOne(target, deadlineAtMs, true)), target, handle));
          return [target.id, result] as const;
        }),
      );
      return new Map(entries);
    } finally {
      this.clients.endRound();
    }
  }

  callCounts(): ReadonlyMap<string, number> {
    return this.calls;
  }

  retain(socketPaths: Iterable<string>): void {
    this.clients.retain(socketPaths);
  }

  close(): Promise<void> {
    return this.clients.close();
  }

  /** One exchange in a pool slot. With `lend`, the body is read into a reused buffer, given back by `release`. */
  private async readOne(target: ShimTarget, deadlineAtMs: number, lend: boolean): Promise<ShimRead> {
    const started = performance.now();
    const remainingMs = Math.min(this.options.deadlineMs, deadlineAtMs - started);
    if (remainingMs <= 0) return { ok: false, error: queuedPastDeadline(target.socketPath), durationMs: 0, notStarted: true };
    this.calls.set(target.socketPath, (this.calls.get(target.socketPath) ?? 0) + 1);
    const loan = lend ? this.buffers.lend() : undefined;
    try {
      const lease = this.clients.lease(target.socketPath, target.socketIdentity);
      const body = await readShimBody(target.socketPath, { ...this.options, deadlineMs: remainingMs }, loan?.sink ?? freshBuffer, lease);
      return { ok: true, body, durationMs: performance.now() - started, release: () => loan?.release() };
    } catch (error) {
      loan?.release();
      const sourceError = error instanceof SourceError ? error : toSourceError(error, target.socketPath, this.options.deadlineMs, false);
      return { ok: false, error: sourceError, durationMs: performance.now() - started };
    }
  }
}

function queuedPastDeadline(socketPath: string): SourceError {
  return new SourceError(
    'timeout',
    socketPath,
    'not scraped: the collection deadline passed while it was queued',
    'raise --shim.concurrency or --collect.deadline, or look for hanging shims',
  );
}

/** A read without a handler: its body is a fresh buffer, the caller's to keep. */
function withoutRelease<T>(read: ShimRead): ShimScrapeResult<T> {
  return read.ok ? { ok: true, body: read.body as T, durationMs: read.durationMs } : read;
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
  let kept: T | Promise<T>;
  try {
    kept = handle(read.body, target);
  } finally {
    read.release();
  }
  return { ok: true, body: await kept, durationMs: read.durationMs };
}

/** Most bytes a reused body buffer keeps between scrapes; a larger body gets a buffer of its own. */
const MAX_REUSED_BODY_BYTES = 1024 * 1024;

/** Body buffers for handled scrapes, reused across scrapes: `keep` at most, each grown to the largest body it held. */
class BodyBuffers {
  private readonly spare: Buffer[] = [];

  constructor(private readonly keep: number) {}

  /** A sink that lends one buffer to one body, and the release that gives it back. */
  lend(): { sink: BodySink; release: () => void } {
    let lent: Buffer | undefined;
    const sink: BodySink = (length) => {
      if (length > MAX_REUSED_BODY_BYTES) return Buffer.allocUnsafe(length);
      // A body of unknown length asks again as it grows: it keeps the buffer it was lent.
      let buffer = lent ?? this.spare.pop();
      if (buffer === undefined || buffer.length < length) buffer = Buffer.allocUnsafe(Math.max(length, buffer?.length ?? 0));
      lent = buffer;
      return buffer;
    };
    const release = (): void => {
      if (lent !== undefined && this.spare.length < this.keep) this.spare.push(lent);
      lent = undefined;
    };
    return { sink, release };
  }
}

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
  /** The last round (see KeptClients) in which this socket was scraped. */
  round: number;
  /** Device and inode of the socket file when the client's connection was made. */
  identity: string | undefined;
}

/**
 * One client per socket path, kept alive across collections. A round is a stretch of time in
 * which some scrapeAll call is running; when the last one ends, the clients of sockets not
 * scraped in that round and not retained are closed (their sandboxes are gone, or out of scope).
 */
class KeptClients {
  private readonly kept = new Map<string, KeptClient>();
  /** Sockets whose clients survive rounds that do not scrape them; see ShimPool.retain. */
  private retained = new Set<string>();
  private round = 0;
  private running = 0;
  private closed = false;

  constructor(private readonly connectTimeoutMs: number) {}

  /** A scrapeAll call starts: a target of this round keeps its client even if the deadline passes before it is scraped. */
  beginRound(socketPaths: readonly string[]): void {
    if (this.running++ === 0) this.round++;
    for (const socketPath of socketPaths) {
      const entry = this.kept.get(socketPath);
      if (entry !== undefined) entry.round = this.round;
    }
  }

  /** A scrapeAll call ends; after the last one, the clients of sockets the round did not scrape are closed. */
  endRound(): void {
    if (--this.running > 0) return;
    this.evict(this.round);
  }

  retain(socketPaths: Iterable<string>): void {
    this.retained = new Set(socketPaths);
    if (this.running === 0) this.evict(undefined);
  }

  /** Closes the clients of sockets not retained, not in use, and not scraped in `spared` (a round). */
  private evict(spared: number | undefined): void {
    for (const [socketPath, entry] of this.kept) {
      if (entry.round === spared || entry.busy || this.retained.has(socketPath)) continue;
      this.kept.delete(socketPath);
      entry.client?.close().catch(() => undefined);
    }
  }

  /** The lease of one exchange: the socket's kept client, or a one-shot one while it is busy or after close(). */
  lease(socketPath: string, knownIdentity: string | undefined): () => ClientLease | Promise<ClientLease> {
    let entry = this.kept.get(socketPath);
    if (this.closed || entry?.busy === true) return () => oneShotLease(socketPath, this.connectTimeoutMs);
    if (entry === undefined) {
      entry = { client: undefined, busy: false, round: this.round, identity: undefined };
      this.kept.set(socketPath, entry);
    }
    const slot = entry;
    slot.round = this.round;
    return () => this.take(slot, socketPath, knownIdentity);
  }

  async close(): Promise<void> {
    this.closed = true;
    const clients = [...this.kept.values()].flatMap((entry) => (entry.client === undefined ? [] : [entry.client]));
    this.kept.clear();
    // close() lets a scrape still running finish (it is bounded by its deadline).
    await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
  }

  private async take(slot: KeptClient, socketPath: string, knownIdentity: string | undefined): Promise<ClientLease> {
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
    const client = slot.client ?? this.keptClient(socketPath);
    slot.client = client;
    return { client, reused: client.stats.connected, done: (ok) => this.giveBack(slot, socketPath, client, ok) };
  }

  private keptClient(socketPath: string): Client {
    return new Client(ORIGIN, {
      socketPath,
      pipelining: 1,
      keepAliveTimeout: KEEP_ALIVE_MS,
      keepAliveMaxTimeout: KEEP_ALIVE_MS,
      connect: { timeout: this.connectTimeoutMs },
    });
  }

  private async giveBack(slot: KeptClient, socketPath: string, client: Client, ok: boolean): Promise<void> {
    slot.busy = false;
    if (ok && !this.closed && this.kept.get(socketPath) === slot) return;
    // A failed exchange may have left a half-read response behind: never reuse its client.
    if (slot.client === client) slot.client = undefined;
    await (ok ? client.close() : client.destroy()).catch(() => undefined);
  }
}
