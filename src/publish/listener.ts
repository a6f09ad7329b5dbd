/**
 * Serving under a web config (docs/web-config.md): HTTP, or HTTPS with the client-certificate
 * policy of `client_auth_type`; response headers; basic auth. Certificates and the rest of the file
 * are re-read when they change on disk (checked on new connections, see WebConfigSource).
 */

import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { BlockList, isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from '../log.ts';
import { BcryptWorkerPool, type PasswordVerifier } from './bcrypt-pool.ts';
import { REQUEST_BOUNDS } from './connections.ts';
import { secureContextOptions, type TlsSettings } from './tls-context.ts';
import type { WebConfig, WebConfigSource } from './web-config.ts';

/**
 * Paths that answer without basic auth: the kubelet's liveness and readiness probes cannot send
 * credentials without putting the secret into the pod spec, and these answers carry nothing but
 * "ok" / "ready". TLS and client certificates still apply to them. Exact paths only.
 */
export const AUTH_EXEMPT_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

export type AuthResult = 'ok' | 'denied' | 'busy';

export interface BasicAuthOptions {
  /** How long a successful check is remembered (bcrypt costs ~0.5 s in pure JS at cost 10). */
  cacheTtlMs?: number;
  cacheMaxEntries?: number;
  /** Runs bcrypt; by default worker threads with a bounded queue (bcrypt-pool.ts). */
  verifier?: PasswordVerifier;
  now?: () => number;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** `Authorization: Basic …` → user and password, or undefined when absent or malformed. */
export function parseBasicAuth(header: string | undefined): { user: string; password: string } | undefined {
  const match = /^Basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i.exec(header ?? '');
  if (match === null) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Checks basic-auth credentials against bcrypt hashes. Only successes are cached, keyed by an
 * HMAC (per-process random key) over the user, the stored hash and the password, each length
 * prefixed: a guess cannot evict or poison an entry, and a changed hash invalidates its entries.
 * bcrypt runs on the verifier's worker threads; the same credentials checked concurrently share
 * one verification, and a full queue answers `busy` at once.
 */
export class BasicAuthenticator {
  private readonly cache = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<boolean>>();
  private readonly macKey = randomBytes(32);
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly verifier: PasswordVerifier;
  private readonly now: () => number;
  /** Verifications asked of the verifier so far (tests observe the cache through it). */
  bcryptRuns = 0;

  constructor(options: BasicAuthOptions = {}) {
    this.ttlMs = options.cacheTtlMs ?? 5 * 60_000;
    this.maxEntries = options.cacheMaxEntries ?? 256;
    this.verifier = options.verifier ?? new BcryptWorkerPool();
    this.now = options.now ?? Date.now;
  }

  close(): Promise<void> {
    return this.verifier.close();
  }

  private cacheKey(user: string, hash: string, password: string): string {
    const mac = createHmac('sha256', this.macKey);
    for (const part of [user, hash, password]) mac.update(`${Buffer.byteLength(part)}:`).update(part, 'utf8');
    return mac.digest('base64');
  }

  /** Finds the user's hash comparing every name in constant time (no early exit, equal lengths). */
  private lookup(users: ReadonlyMap<string, string>, user: string): string | undefined {
    const wanted = sha256(user);
    let found: string | undefined;
    for (const [name, hash] of users) {
      if (timingSafeEqual(sha256(name), wanted)) found = hash;
    }
    return found;
  }

  async check(users: ReadonlyMap<string, string>, header: string | undefined): Promise<AuthResult> {
    const credentials = parseBasicAuth(header);
    if (credentials === undefined || users.size === 0) return 'denied';
    const stored = this.lookup(users, credentials.user);
    // An unknown user still costs one bcrypt (against a configured hash), so timing does not tell
    // which user names exist.
    const hash = stored ?? users.values().next().value!;
    const key = this.cacheKey(credentials.user, hash, credentials.password);
    if (stored !== undefined && this.cached(key)) return 'ok';
    const matches = await (this.inFlight.get(key) ?? this.startVerification(key, credentials.password, hash));
    if (matches === undefined) return 'busy';
    if (!matches || stored === undefined) return 'denied';
    this.remember(key);
    return 'ok';
  }

  private startVerification(key: string, password: string, hash: string): Promise<boolean> | undefined {
    const run = this.verifier.verify(password, hash);
    if (run === undefined) return undefined;
    this.bcryptRuns += 1;
    const shared = run.finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, shared);
    return shared;
  }

  private cached(key: string): boolean {
    const expires = this.cache.get(key);
    if (expires === undefined) return false;
    if (expires > this.now()) return true;
    this.cache.delete(key);
    return false;
  }

  private remember(key: string): void {
    this.cache.delete(key);
    this.cache.set(key, this.now() + this.ttlMs);
    while (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value!);
  }
}

/** Response headers from `http_server_config.headers`, then basic auth on every other path. */
export function webMiddleware(current: () => WebConfig, logger: Logger, auth = new BasicAuthenticator()): RequestHandler[] {
  const headers: RequestHandler = (_req, res, next) => {
    for (const [name, value] of Object.entries(current().headers)) res.setHeader(name, value);
    next();
  };
  const basicAuth: RequestHandler = (req: Request, res: Response, next: NextFunction) => {
    const users = current().users;
    if (users.size === 0 || AUTH_EXEMPT_PATHS.has(req.path)) {
      next();
      return;
    }
    auth.check(users, req.headers.authorization).then(
      (result) => {
        if (result === 'ok') {
          next();
          return;
        }
        if (result === 'busy') {
          res.status(429).setHeader('Retry-After', '1');
          res.type('text/plain').send('too many authentication attempts in progress\n');
          return;
        }
        logger.debug({ path: req.path, remote: req.socket.remoteAddress }, 'basic auth failed');
        res.status(401).setHeader('WWW-Authenticate', 'Basic');
        res.type('text/plain').send('Unauthorized\n');
      },
      (error: unknown) => next(error),
    );
  };
  return [headers, basicAuth];
}

/** The values of a certificate's subjectaltname as Node prints it (values with `,` or `"` arrive JSON-quoted). */
export function parseSubjectAltNames(text: string | undefined): { type: string; value: string }[] {
  const out: { type: string; value: string }[] = [];
  if (text === undefined) return out;
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) break;
    const type = text.slice(i, colon);
    let j = colon + 1;
    let value: string;
    if (text[j] === '"') {
      let k = j + 1;
      while (k < text.length && text[k] !== '"') k += text[k] === '\\' ? 2 : 1;
      value = JSON.parse(text.slice(j, k + 1)) as string;
      j = k + 1;
    } else {
      const comma = text.indexOf(', ', j);
      const end = comma < 0 ? text.length : comma;
      value = text.slice(j, end);
      j = end;
    }
    out.push({ type, value });
    i = text.startsWith(', ', j) ? j + 2 : j;
  }
  return out;
}

/** True when one of the certificate's SANs (DNS, IP, email, URI) equals an allowed entry exactly (IPs by address). */
export function sanAllowed(subjectAltName: string | undefined, allowed: readonly string[]): boolean {
  for (const { type, value } of parseSubjectAltNames(subjectAltName)) {
    for (const entry of allowed) {
      if (type === 'IP Address') {
        const family = isIP(value);
        if (family === 0 || isIP(entry) !== family) continue;
        const list = new BlockList();
        list.addAddress(entry, family === 6 ? 'ipv6' : 'ipv4');
        if (list.check(value, family === 6 ? 'ipv6' : 'ipv4')) return true;
      } else if (value === entry) {
        return true;
      }
    }
  }
  return false;
}

/** Why a TLS connection breaks the client-certificate policy after the handshake, or undefined. */
export function clientCertificateProblem(
  tls: TlsSettings,
  socket: Pick<TLSSocket, 'getPeerCertificate' | 'authorized' | 'authorizationError'>,
): string | undefined {
  if (tls.clientAuthType === 'NoClientCert' || tls.clientAuthType === 'RequestClientCert') return undefined;
  const peer = socket.getPeerCertificate();
  const present = peer !== null && peer !== undefined && Object.keys(peer).length > 0;
  if (!present) {
    return tls.clientAuthType === 'VerifyClientCertIfGiven' ? undefined : 'no client certificate';
  }
  if ((tls.clientAuthType === 'VerifyClientCertIfGiven' || tls.clientAuthType === 'RequireAndVerifyClientCert') && !socket.authorized) {
    return `client certificate not verified: ${String(socket.authorizationError ?? 'unknown')}`;
  }
  if (tls.clientAllowedSans.length > 0 && !sanAllowed(peer.subjectaltname, tls.clientAllowedSans)) {
    return 'client certificate has no allowed subject alternative name';
  }
  return undefined;
}

export interface WebServer {
  server: Server;
  tls: boolean;
}

/**
 * An HTTP server for the app, or an HTTPS one when the web config has `tls_server_config`.
 * HTTP/1.1 only (ALPN http/1.1): express does not run on Node's HTTP/2 compatibility layer.
 */
export function createWebServer(app: Express, source: WebConfigSource | undefined, logger: Logger): WebServer {
  const tls = source?.current.config.tls;
  const material = source?.current.material;
  if (source === undefined || tls === undefined || material === undefined) {
    const server = createHttpServer(REQUEST_BOUNDS, app);
    if (source !== undefined) server.prependListener('connection', () => reload(source, logger));
    return { server, tls: false };
  }
  const server = createHttpsServer(
    {
      ...REQUEST_BOUNDS,
      ...secureContextOptions(tls, material),
      requestCert: tls.clientAuthType !== 'NoClientCert',
      rejectUnauthorized: tls.clientAuthType === 'RequireAndVerifyClientCert',
      ALPNProtocols: ['http/1.1'],
    },
    app,
  );
  // Before Node's own 'connection' listener builds the TLS socket, so a rotated certificate is
  // already used for the connection that noticed it.
  server.prependListener('connection', () => {
    if (reload(source, logger)) {
      const next = source.current;
      server.setSecureContext(secureContextOptions(next.config.tls!, next.material!));
    }
  });
  // Before the HTTP layer reads anything from the socket.
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    const problem = clientCertificateProblem(source.current.config.tls!, socket);
    if (problem !== undefined) {
      logger.debug({ remote: socket.remoteAddress, problem }, 'TLS client refused');
      socket.destroy();
    }
  });
  server.on('tlsClientError', (error: Error & { code?: string }, socket: TLSSocket) => {
    logger.debug({ remote: socket.remoteAddress, code: error.code, err: error.message }, 'TLS handshake failed');
  });
  return { server, tls: true };
}

function reload(source: WebConfigSource, logger: Logger): boolean {
  const outcome = source.refresh();
  if (outcome.error !== undefined) logger.error({ file: source.current.config.file }, `web config not reloaded: ${outcome.error}`);
  else if (outcome.changed) logger.info({ file: source.current.config.file }, 'web config and certificates reloaded');
  return outcome.changed;
}
