/**
 * A simulated kubelet for the node lab, `--demo` and tests: a real HTTPS server on 127.0.0.1 that
 * serves resource metrics produced by a callback (so a scenario can move values over time), checks
 * a bearer token, gzips on request, can play an old kubelet (404 on /metrics/resource) and can be
 * told to fail (status, delay, hang, garbage, arbitrary raw answer).
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gzipSync } from 'node:zlib';

export type FakeKubeletFault =
  /** Answer this status (and body) on every metrics path. */
  | { kind: 'status'; status: number; body?: string }
  /** Wait this long, then answer normally. */
  | { kind: 'delay'; ms: number }
  /** Accept the request and never answer (until close()). */
  | { kind: 'hang' }
  /** 200 with bytes that are not exposition text. */
  | { kind: 'garbage' }
  /** Exactly this answer (e.g. a gzip bomb with content-encoding: gzip). */
  | { kind: 'raw'; status?: number; headers?: Record<string, string>; body: Uint8Array | string };

export interface FakeKubeletOptions {
  /** Server certificate and key (PEM), e.g. from src/lab/tls.ts. */
  certPem: string;
  keyPem: string;
  /** The payload for each request; called per request so values can change over time. */
  payload: () => string | Uint8Array;
  /** Required bearer token; undefined accepts any request (like --authentication-token-webhook off). */
  token?: string;
  /** Serve only /metrics/resource/v1alpha1 and 404 /metrics/resource (Kubernetes 1.14–1.17). */
  legacyOnly?: boolean;
  /** Serve /metrics/resource/v1alpha1 too (1.18–1.19 served both). Default true. */
  serveV1alpha1?: boolean;
  /** Gzip when the client accepts it. Default true. */
  gzip?: boolean;
  /** Content-Type of successful answers. Default: the kubelet's text format with escaping=underscores. */
  contentType?: string;
  /** Require a client certificate signed by this CA (PEM). */
  clientCaPem?: string;
}

export interface FakeKubeletRequest {
  path: string;
  authorization?: string;
  acceptEncoding?: string;
  /** Common name of the client certificate, when mTLS is on. */
  clientCommonName?: string;
}

const DEFAULT_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8; escaping=underscores';
const RESOURCE_PATH = '/metrics/resource';
const V1ALPHA1_PATH = '/metrics/resource/v1alpha1';
/** Requests kept for inspection; older ones are dropped so a long demo does not grow memory. */
const MAX_RECORDED_REQUESTS = 100;

export class FakeKubelet {
  /** Requests seen, oldest first (the last MAX_RECORDED_REQUESTS). */
  readonly requests: FakeKubeletRequest[] = [];
  private fault: FakeKubeletFault | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  private constructor(
    private readonly server: Server,
    private readonly opts: FakeKubeletOptions,
    /** Base URL, e.g. https://127.0.0.1:40123 */
    readonly url: string,
  ) {}

  static async start(opts: FakeKubeletOptions): Promise<FakeKubelet> {
    let kubelet: FakeKubelet | undefined;
    const server = createServer(
      {
        cert: opts.certPem,
        key: opts.keyPem,
        ...(opts.clientCaPem ? { ca: opts.clientCaPem, requestCert: true, rejectUnauthorized: true } : {}),
      },
      (req, res) => kubelet?.handle(req, res),
    );
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;
    // A copy: setToken()/setLegacyOnly() must not write into the caller's object.
    kubelet = new FakeKubelet(server, { ...opts }, `https://127.0.0.1:${port}`);
    server.on('secureConnection', (socket: Socket) => kubelet?.track(socket));
    return kubelet;
  }

  /** The last request seen, if any. */
  get lastRequest(): FakeKubeletRequest | undefined {
    return this.requests[this.requests.length - 1];
  }

  /** Fail (or stop failing, with undefined) from the next request on. */
  setFault(fault: FakeKubeletFault | undefined): void {
    this.fault = fault;
  }

  setToken(token: string | undefined): void {
    this.opts.token = token;
  }

  setLegacyOnly(legacyOnly: boolean): void {
    this.opts.legacyOnly = legacyOnly;
  }

  /** Stop listening, drop open connections (hung requests included) and cancel pending delays. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const done = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    for (const s of this.sockets) s.destroy();
    await done;
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  private record(req: IncomingMessage, path: string): void {
    const peer = (req.socket as { getPeerCertificate?: () => { subject?: { CN?: string } } }).getPeerCertificate?.();
    this.requests.push({
      path,
      ...(req.headers.authorization === undefined ? {} : { authorization: req.headers.authorization }),
      ...(req.headers['accept-encoding'] === undefined ? {} : { acceptEncoding: String(req.headers['accept-encoding']) }),
      ...(peer?.subject?.CN === undefined ? {} : { clientCommonName: peer.subject.CN }),
    });
    if (this.requests.length > MAX_RECORDED_REQUESTS) this.requests.shift();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'https://kubelet.invalid').pathname;
    this.record(req, path);
    if (req.method !== 'GET') return this.plain(res, 405, 'Method Not Allowed');

    const servesPath =
      (path === RESOURCE_PATH && !this.opts.legacyOnly) ||
      (path === V1ALPHA1_PATH && (this.opts.legacyOnly || this.opts.serveV1alpha1 !== false));
    if (!servesPath) return this.plain(res, 404, '404 page not found');

    // The kubelet authenticates before anything else.
    if (this.opts.token !== undefined && req.headers.authorization !== `Bearer ${this.opts.token}`) {
      return this.plain(res, 401, 'Unauthorized');
    }

    const fault = this.fault;
    switch (fault?.kind) {
      case 'status':
        return this.plain(res, fault.status, fault.body ?? `fault: HTTP ${fault.status}`);
      case 'hang':
        return; // the socket stays open until the client gives up or close() runs
      case 'garbage':
        return this.send(req, res, Buffer.from('\u0000\u00ff<html>not metrics{{{\n', 'latin1'), 'text/plain');
      case 'raw': {
        res.writeHead(fault.status ?? 200, fault.headers ?? {});
        res.end(typeof fault.body === 'string' ? Buffer.from(fault.body) : fault.body);
        return;
      }
      case 'delay': {
        const t = setTimeout(() => {
          this.timers.delete(t);
          this.serve(req, res);
        }, fault.ms);
        this.timers.add(t);
        return;
      }
      default:
        return this.serve(req, res);
    }
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    let payload: string | Uint8Array;
    try {
      payload = this.opts.payload();
    } catch (err) {
      return this.plain(res, 500, `payload callback failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
    this.send(req, res, body, this.opts.contentType ?? DEFAULT_CONTENT_TYPE);
  }

  private send(req: IncomingMessage, res: ServerResponse, body: Uint8Array, contentType: string): void {
    const accepts = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    if (accepts && this.opts.gzip !== false) {
      const gz = gzipSync(body);
      res.writeHead(200, { 'content-type': contentType, 'content-encoding': 'gzip', 'content-length': gz.length });
      res.end(gz);
      return;
    }
    res.writeHead(200, { 'content-type': contentType, 'content-length': body.length });
    res.end(body);
  }

  private plain(res: ServerResponse, status: number, text: string): void {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`${text}\n`);
  }
}
