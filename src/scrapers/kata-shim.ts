/**
 * Kata shim metrics scraper: `GET /metrics` over each sandbox's shim-monitor.sock. I/O only.
 *
 * Each call makes the shim ask its guest agent for metrics (CPU in the shim, ~144 KB), so calls
 * are bounded three ways: a deadline over the whole exchange, a byte cap, and a concurrency limit.
 */
import { statSync, type BigIntStats } from 'node:fs';
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
  /** `notStarted`: never asked, the collection deadline passed while it was queued. */
  | { ok: false; error: SourceError; durationMs: number; notStarted?: true };

const RUN_AS_ROOT = 'shim sockets are mode 0600: run the exporter as uid 0';

/** Where a body is assembled: a fresh buffer, or one the pool reuses across scrapes. */
export type BodySink = (length: number) => Buffer;

export const freshBuffer: BodySink = (length) => Buffer.allocUnsafe(length);

/**
 * A client for one exchange. `reused`: its connection was already open (kept alive) when it was
 * handed out. `done(ok)` gives it back: after a failure the client must not serve another request.
 */
export interface ClientLease {
  client: Client;
  reused: boolean;
  done(ok: boolean): Promise<void>;
}

/** The host name is ignored by the shim; undici needs an origin to build the request line. */
export const ORIGIN = 'http://shim';

/** A client for one call, closed after it (pipelining 0: no keep-alive). */
export function oneShotLease(socketPath: string, deadlineMs: number): ClientLease {
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
export async function readShimBody(
  socketPath: string,
  options: ShimScrapeOptions,
  sink: BodySink,
  lease: () => ClientLease | Promise<ClientLease>,
): Promise<Buffer> {
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

export function toSourceError(error: unknown, socketPath: string, deadlineMs: number, timedOut: boolean): SourceError {
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
      return new SourceError(
        'unreachable',
        socketPath,
        'no such socket',
        'the sandbox is gone or its shim did not start its monitor socket',
      );
    case 'ECONNREFUSED':
      return new SourceError(
        'unreachable',
        socketPath,
        'connection refused: nothing listens on the socket',
        'the shim has exited; the sandbox directory is stale',
      );
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
export function socketIdentity(socketPath: string): string | undefined {
  try {
    const found = statSync(socketPath, { bigint: true, throwIfNoEntry: false });
    return found === undefined ? undefined : socketIdentityOf(found);
  } catch {
    return undefined;
  }
}
