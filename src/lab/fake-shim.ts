/**
 * A fake Kata shim monitor socket: plain HTTP/1.1 on a filesystem unix socket (mode 0600, like
 * the real shim-monitor.sock) serving `GET /metrics` from a payload callback. It can be told to
 * misbehave the ways real shims and hostile guests do, and counts what it sees.
 */
import { chmod, link, rename, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';

export type ShimBehaviour =
  /** `chunked`: no Content-Length, the body in 16 KiB writes, as the Go shim's http server sends it. */
  | { kind: 'normal'; chunked?: boolean }
  /** Reads the request and never answers. */
  | { kind: 'hang' }
  /** Sends headers, then one body byte per interval, forever. */
  | { kind: 'trickle'; intervalMs?: number }
  /** Streams `bytes` of exposition-looking text (default 100 MB), honouring backpressure. */
  | { kind: 'oversize'; bytes?: number; declareLength?: boolean }
  /** HTTP 200 with bytes that are not exposition text. */
  | { kind: 'garbage' }
  /** Declares the full length, sends half, then destroys the connection. */
  | { kind: 'close_mid_response' }
  /** Any non-200 status. */
  | { kind: 'status'; status: number }
  /** Nothing listens any more, but the socket file stays (a shim that died): ECONNREFUSED. */
  | { kind: 'refuse' }
  /**
   * Reads the request and closes the connection without a byte of answer: what a client sees when
   * the shim closed an idle kept-alive connection just as a request went out on it. With
   * `onlyReused`, only requests on a connection that already served one are dropped.
   */
  | { kind: 'drop'; onlyReused?: boolean };

const CHUNKED_WRITE_BYTES = 16 * 1024;

export interface FakeShimOptions {
  socketPath: string;
  /**
   * Where to bind before the socket is moved to `socketPath`: a unix socket path is limited to
   * 108 bytes at bind time, and real sandbox paths are longer. The moved socket keeps working.
   */
  bindPath?: string;
  /**
   * Called per request: the simulated node moves values between calls. Bytes are sent uncopied:
   * never change them afterwards.
   */
  payload: () => string | Uint8Array;
  behaviour?: ShimBehaviour;
  /** Wait before answering (to make concurrency observable). */
  delayMs?: number;
  /**
   * Close connections idle this long (Node's server then announces `Keep-Alive: timeout=`). By
   * default idle connections are kept, like the Go shim's http.Server, which sets no idle timeout.
   */
  idleTimeoutMs?: number;
}

export interface FakeShimStats {
  /** GET /metrics requests received. */
  calls: number;
  /** Requests being handled right now, and the most seen at once. */
  inFlight: number;
  maxInFlight: number;
  /** Body bytes written for the most recent oversize response, and whether the client hung up first. */
  oversizeWritten: number;
  oversizeClientClosedEarly: boolean;
  /** Connections accepted, and connections open right now. */
  connections: number;
  openConnections: number;
}

export interface FakeShim {
  readonly socketPath: string;
  readonly stats: Readonly<FakeShimStats>;
  setBehaviour(behaviour: ShimBehaviour): Promise<void>;
  close(): Promise<void>;
}

const GARBAGE = Buffer.from('\u0000\u0001\u00ff{"not":"prometheus"}\n<html>\u0007 }}}{{{ \n');
const FILLER_LINE = Buffer.from('kata_guest_vm_stat{item="pgfault"} 123456789\n');

/**
 * A hostile guest's costliest answer to decode within the default bounds: `head` (a normal payload)
 * followed by distinct `kata_guest_netdev_stat` series with 32 labels each, up to `maxBytes`. The
 * decoder reads every byte of every line (docs/security.md, "A hostile decode never blinds the node").
 */
export function wideSeriesPayload(head: string, maxBytes: number): Buffer {
  const lines = [head];
  let bytes = Buffer.byteLength(head);
  for (let i = 0; ; i++) {
    const labels = Array.from({ length: 30 }, (_, k) => `l${k}="${k}-${i}"`).join(',');
    const line = `kata_guest_netdev_stat{interface="v${i}",item="recv_bytes",${labels}} 1\n`;
    if (bytes + line.length > maxBytes) break;
    lines.push(line);
    bytes += line.length;
  }
  return Buffer.from(lines.join(''));
}

export async function startFakeShim(options: FakeShimOptions): Promise<FakeShim> {
  const stats: FakeShimStats = {
    calls: 0,
    inFlight: 0,
    maxInFlight: 0,
    oversizeWritten: 0,
    oversizeClientClosedEarly: false,
    connections: 0,
    openConnections: 0,
  };
  let behaviour: ShimBehaviour = options.behaviour ?? { kind: 'normal' };
  const sockets = new Set<Socket>();
  // Requests seen per connection, for `drop` with `onlyReused`.
  const served = new WeakMap<Socket, number>();
  const timers = new Set<NodeJS.Timeout>();
  let server: Server | undefined;

  const later = (ms: number, fn: () => void): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };

  function handle(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'GET' || req.url !== '/metrics') {
      res.writeHead(404).end('URL NOT FOUND');
      return;
    }
    stats.calls++;
    const seen = served.get(req.socket) ?? 0;
    served.set(req.socket, seen + 1);
    if (behaviour.kind === 'drop' && (!behaviour.onlyReused || seen > 0)) {
      req.socket.destroy();
      return;
    }
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    res.on('close', () => stats.inFlight--);
    // A `drop` that spared this request (first on its connection) answers normally.
    const answer = (): void => respond(behaviour.kind === 'drop' ? { kind: 'normal' } : behaviour, res);
    if (options.delayMs) later(options.delayMs, answer);
    else answer();
  }

  /** A payload given as bytes is sent uncopied: the bench answers ~360 calls a second with one 144 KB buffer. */
  function payloadBytes(): Uint8Array {
    const payload = options.payload();
    return typeof payload === 'string' ? Buffer.from(payload) : payload;
  }

  function respond(current: ShimBehaviour, res: ServerResponse): void {
    switch (current.kind) {
      case 'normal': {
        const body = payloadBytes();
        if (current.chunked === true) {
          res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
          for (let at = 0; at < body.length; at += CHUNKED_WRITE_BYTES) res.write(body.subarray(at, at + CHUNKED_WRITE_BYTES));
          res.end();
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': body.length });
        res.end(body);
        return;
      }
      case 'hang':
        return;
      case 'trickle': {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        const interval = current.intervalMs ?? 1000;
        const tick = (): void => {
          if (res.destroyed) return;
          res.write('#');
          later(interval, tick);
        };
        tick();
        return;
      }
      case 'oversize':
        streamOversize(res, current.bytes ?? 100 * 1024 * 1024, current.declareLength ?? false);
        return;
      case 'garbage':
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': GARBAGE.length });
        res.end(GARBAGE);
        return;
      case 'close_mid_response': {
        const body = payloadBytes();
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4', 'content-length': body.length });
        res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.socket?.destroy());
        return;
      }
      case 'status':
        res.writeHead(current.status).end('failed to get metrics\n');
        return;
      case 'refuse':
      case 'drop':
        res.socket?.destroy();
        return;
    }
  }

  function streamOversize(res: ServerResponse, bytes: number, declareLength: boolean): void {
    stats.oversizeWritten = 0;
    stats.oversizeClientClosedEarly = false;
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4', ...(declareLength ? { 'content-length': bytes } : {}) });
    res.on('close', () => {
      if (stats.oversizeWritten < bytes) stats.oversizeClientClosedEarly = true;
    });
    const chunk = Buffer.concat(Array.from({ length: 1400 }, () => FILLER_LINE));
    const pump = (): void => {
      while (!res.destroyed && stats.oversizeWritten < bytes) {
        const piece = chunk.subarray(0, Math.min(chunk.length, bytes - stats.oversizeWritten));
        stats.oversizeWritten += piece.length;
        if (!res.write(piece)) {
          res.once('drain', pump);
          return;
        }
      }
      if (!res.destroyed) res.end();
    };
    pump();
  }

  async function listen(): Promise<void> {
    const created = createServer({ keepAliveTimeout: options.idleTimeoutMs ?? 0 }, handle);
    created.on('connection', (socket: Socket) => {
      stats.connections++;
      stats.openConnections++;
      sockets.add(socket);
      socket.on('close', () => {
        stats.openConnections--;
        sockets.delete(socket);
      });
    });
    await new Promise<void>((resolve, reject) => {
      created.once('error', reject);
      created.listen(options.bindPath ?? options.socketPath, () => {
        created.off('error', reject);
        resolve();
      });
    });
    if (options.bindPath !== undefined) await rename(options.bindPath, options.socketPath);
    await chmod(options.socketPath, 0o600);
    server = created;
  }

  async function stopListening(): Promise<void> {
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
    for (const socket of sockets) socket.destroy();
    const current = server;
    server = undefined;
    if (current) await new Promise<void>((resolve) => current.close(() => resolve()));
  }

  /** Node unlinks a unix socket on close; a hard link keeps a dead socket file in its place. */
  async function becomeDeadSocket(): Promise<void> {
    const keep = join(dirname(options.socketPath), `.dead-${process.pid}-${Date.now()}.sock`);
    await link(options.socketPath, keep);
    await stopListening();
    await rm(options.socketPath, { force: true });
    await link(keep, options.socketPath);
    await rm(keep, { force: true });
  }

  if (behaviour.kind === 'refuse') {
    await listen();
    await becomeDeadSocket();
  } else {
    await listen();
  }

  return {
    socketPath: options.socketPath,
    stats,
    async setBehaviour(next) {
      const wasDead = behaviour.kind === 'refuse';
      behaviour = next;
      if (next.kind === 'refuse' && !wasDead) await becomeDeadSocket();
      if (next.kind !== 'refuse' && wasDead) {
        await rm(options.socketPath, { force: true });
        await listen();
      }
    },
    async close() {
      await stopListening();
      await rm(options.socketPath, { force: true });
    },
  };
}
