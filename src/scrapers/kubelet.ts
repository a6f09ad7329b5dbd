/**
 * Reads the kubelet's resource metrics over HTTPS (domain.md §1). I/O only: the bytes go to
 * translate/kubelet-decode.ts. Every failure is a SourceError that names the URL or file and says
 * what to do.
 */
import { open, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip as gunzipCb } from 'node:zlib';
import { Agent, request, type Dispatcher } from 'undici';
import type { Logger } from '../log.ts';
import type { KubeletEndpoint } from '../translate/records.ts';
import { identityOf, type FileIdentity } from '../file-identity.ts';
import { SourceError, type SourceErrorReason } from './source-error.ts';

const gunzip = promisify(gunzipCb);

export const KUBELET_PATHS: Readonly<Record<KubeletEndpoint, string>> = {
  resource: '/metrics/resource',
  v1alpha1: '/metrics/resource/v1alpha1',
};

export interface KubeletClientOptions {
  /** e.g. https://10.0.0.5:10250 (a path prefix, such as an API-server node proxy, is kept). */
  baseUrl: string;
  /** Bearer token file (the ServiceAccount token); re-read whenever it changes. */
  tokenFile?: string;
  /** PEM bundle of the CA that signed the kubelet serving certificate. */
  caFile?: string;
  insecureSkipTlsVerify: boolean;
  /** Deadline for the whole exchange, fallback included. */
  timeoutMs: number;
  /** Cap on the body, both as received and after gunzip. */
  maxBytes: number;
  logger: Logger;
  /** While only v1alpha1 answers, try /metrics/resource again every this many scrapes. Default 20. */
  reprobeEvery?: number;
}

export interface KubeletScrape {
  body: Buffer;
  endpoint: KubeletEndpoint;
  url: string;
}

/** A token or CA file is larger than this only by mistake. */
const MAX_CREDENTIAL_FILE_BYTES = 1024 * 1024;
/** How much of an error body goes into the message (the kubelet explains 403s there). */
const ERROR_SNIPPET_BYTES = 512;

const HINTS: Record<SourceErrorReason, string> = {
  unreachable: 'check --kubelet.url (the node IP from status.hostIP, port 10250) and that no firewall or NetworkPolicy blocks it',
  timeout: 'the kubelet did not answer in time: check the node load and that --kubelet.url reaches the kubelet itself',
  oversize: 'the body passed the byte cap: check that --kubelet.url points at the kubelet, or raise the cap',
  unauthorized: 'check the ServiceAccount token (--kubelet.token-file) and that its ClusterRole grants get on nodes/metrics',
  not_found:
    'neither /metrics/resource nor /metrics/resource/v1alpha1 exists: check that --kubelet.url is the kubelet (port 10250) and that it runs Kubernetes 1.14 or newer',
  http_status: 'check the kubelet logs on this node',
  tls: 'set --kubelet.ca-file to the CA that signed the kubelet serving certificate, or --kubelet.insecure-skip-tls-verify (kubelet serving certificates often lack IP SANs)',
  malformed: 'the kubelet answered something other than Prometheus text: check that --kubelet.url points at the kubelet',
  io: 'check the file exists and is readable by the exporter',
};

function sourceError(reason: SourceErrorReason, target: string, detail: string, hint = HINTS[reason]): SourceError {
  return new SourceError(reason, target, detail, hint);
}

/**
 * A file re-read only when its identity changed (file-identity.ts). stat() follows symlinks, so
 * the atomic `..data` symlink swap Kubernetes does for projected tokens shows up as a new inode.
 */
class WatchedFile {
  private identity: FileIdentity | undefined;
  private content: Buffer | undefined;

  constructor(
    readonly path: string,
    private readonly what: string,
    private readonly hint: string,
  ) {}

  /** The current content, and whether it differs from the last read. */
  async read(): Promise<{ content: Buffer; changed: boolean }> {
    try {
      const st = await stat(this.path, { bigint: true });
      if (this.content !== undefined && identityOf(st) === this.identity) {
        return { content: this.content, changed: false };
      }
      // Read through one descriptor so the identity matches the bytes read.
      const fh = await open(this.path, 'r');
      try {
        const fst = await fh.stat({ bigint: true });
        if (fst.size > MAX_CREDENTIAL_FILE_BYTES) {
          throw sourceError('io', this.path, `${this.what} is ${fst.size} bytes, not a credential file`, this.hint);
        }
        const content = await fh.readFile();
        const changed = this.content === undefined || !content.equals(this.content);
        this.identity = identityOf(fst);
        this.content = content;
        return { content, changed };
      } finally {
        await fh.close();
      }
    } catch (err) {
      if (err instanceof SourceError) throw err;
      throw sourceError('io', this.path, `cannot read ${this.what}: ${errorText(err)}`, this.hint);
    }
  }

  /** Force a re-read next time (e.g. after the kubelet refused the token). */
  invalidate(): void {
    this.identity = undefined;
  }
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

/** Network error codes along the cause chain (undici wraps the socket's error). */
function errorCodes(err: unknown): string[] {
  const codes: string[] = [];
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
  }
  return codes;
}

function classifyNetworkError(err: unknown): SourceErrorReason {
  const codes = errorCodes(err);
  if (codes.some((c) => /TIMEOUT|ETIMEDOUT/.test(c))) return 'timeout';
  if (codes.some((c) => /CERT|SSL|TLS|EPROTO|UNABLE_TO_|SELF_SIGNED|HOSTNAME_MISMATCH/.test(c))) return 'tls';
  return 'unreachable';
}

function headerValue(headers: Record<string, string | string[] | undefined>, name: string): string {
  const v = headers[name];
  return (Array.isArray(v) ? v[0] : v)?.trim() ?? '';
}

/** Read a body, destroying it as soon as it passes `max` bytes. */
async function readCapped(body: Dispatcher.ResponseData['body'], max: number, url: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > max) {
      body.destroy();
      throw sourceError('oversize', url, `response body passed ${max} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

async function errorSnippet(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      total += chunk.length;
      if (total >= ERROR_SNIPPET_BYTES) break; // leaving the loop destroys the body
    }
  } catch {
    // The status already says what went wrong; the body is a bonus.
  }
  const text = Buffer.concat(chunks).subarray(0, ERROR_SNIPPET_BYTES).toString('utf8');
  return text.replace(/\s+/g, ' ').trim();
}

type Attempt = { ok: true; scrape: KubeletScrape } | { ok: false; notFound: true; url: string };

/**
 * One client per kubelet. Not safe for concurrent scrape() calls on its own: the collector's
 * single-flight serialises them.
 */
export class KubeletClient {
  private readonly base: string;
  private readonly token: WatchedFile | undefined;
  private readonly ca: WatchedFile | undefined;
  private agent: Agent | undefined;
  private preferred: KubeletEndpoint = 'resource';
  private scrapesOnLegacy = 0;
  private readonly reprobeEvery: number;

  constructor(private readonly opts: KubeletClientOptions) {
    let url: URL;
    try {
      url = new URL(opts.baseUrl);
    } catch {
      throw new Error(`invalid --kubelet.url ${JSON.stringify(opts.baseUrl)}: expected e.g. https://10.0.0.5:10250`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new Error(`invalid --kubelet.url ${JSON.stringify(opts.baseUrl)}: the scheme must be https`);
    }
    this.base = url.href.replace(/\/+$/, '');
    this.reprobeEvery = Math.max(1, opts.reprobeEvery ?? 20);
    this.token = opts.tokenFile
      ? new WatchedFile(
          opts.tokenFile,
          'the kubelet bearer token',
          'check --kubelet.token-file and that the ServiceAccount token is mounted (automountServiceAccountToken)',
        )
      : undefined;
    this.ca = opts.caFile ? new WatchedFile(opts.caFile, 'the kubelet CA bundle', 'check --kubelet.ca-file') : undefined;
    if (opts.insecureSkipTlsVerify && opts.caFile) {
      opts.logger.warn({ caFile: opts.caFile }, 'kubelet TLS verification is off: --kubelet.ca-file is ignored');
    }
  }

  /** The endpoint that answered last (or will be tried first). */
  get endpoint(): KubeletEndpoint {
    return this.preferred;
  }

  urlOf(endpoint: KubeletEndpoint): string {
    return `${this.base}${KUBELET_PATHS[endpoint]}`;
  }

  async scrape(): Promise<KubeletScrape> {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.opts.timeoutMs);
    const order = this.endpointOrder();
    let current = this.urlOf(order[0]);
    try {
      const dispatcher = await this.dispatcher();
      const headers = await this.headers();
      const first = await this.attempt(order[0], dispatcher, headers, controller.signal);
      if (first.ok) return this.answered(first.scrape);
      current = this.urlOf(order[1]);
      const second = await this.attempt(order[1], dispatcher, headers, controller.signal);
      if (second.ok) return this.answered(second.scrape);
      throw sourceError('not_found', `${this.urlOf('resource')} and ${this.urlOf('v1alpha1')}`, 'both answered 404');
    } catch (err) {
      if (timedOut) {
        throw sourceError('timeout', current, `no complete answer within ${this.opts.timeoutMs} ms`);
      }
      if (err instanceof SourceError) throw err;
      const reason = classifyNetworkError(err);
      throw sourceError(reason, current, errorText(err));
    } finally {
      clearTimeout(timer);
    }
  }

  /** Release the connection pool. */
  async close(): Promise<void> {
    const agent = this.agent;
    this.agent = undefined;
    await agent?.close();
  }

  private endpointOrder(): [KubeletEndpoint, KubeletEndpoint] {
    if (this.preferred === 'v1alpha1' && ++this.scrapesOnLegacy < this.reprobeEvery) {
      return ['v1alpha1', 'resource'];
    }
    this.scrapesOnLegacy = 0;
    return ['resource', 'v1alpha1'];
  }

  private answered(scrape: KubeletScrape): KubeletScrape {
    if (scrape.endpoint !== this.preferred) {
      this.opts.logger.info(
        { url: scrape.url, endpoint: scrape.endpoint, previous: this.preferred },
        'kubelet resource metrics endpoint changed',
      );
      this.preferred = scrape.endpoint;
      this.scrapesOnLegacy = 0;
    }
    return scrape;
  }

  private async dispatcher(): Promise<Agent> {
    const ca = this.ca && !this.opts.insecureSkipTlsVerify ? await this.ca.read() : undefined;
    if (this.agent && !ca?.changed) return this.agent;
    const previous = this.agent;
    this.agent = new Agent({
      connect: this.opts.insecureSkipTlsVerify
        ? { rejectUnauthorized: false }
        : ca
          ? { ca: ca.content.toString('utf8'), rejectUnauthorized: true }
          : { rejectUnauthorized: true },
      // undici's own timers as a second line behind the whole-exchange deadline.
      connectTimeout: this.opts.timeoutMs,
      headersTimeout: this.opts.timeoutMs,
      bodyTimeout: this.opts.timeoutMs,
    });
    if (previous) {
      this.opts.logger.info({ caFile: this.opts.caFile }, 'kubelet CA bundle changed: new connections use it');
      previous.close().catch(() => undefined);
    }
    return this.agent;
  }

  private async headers(): Promise<Record<string, string>> {
    const headers: Record<string, string> = {
      accept: 'text/plain;version=0.0.4;q=1,*/*;q=0.1',
      'accept-encoding': 'gzip',
      'user-agent': 'kata-metrics-bridge',
    };
    if (this.token) {
      const { content, changed } = await this.token.read();
      const token = content.toString('utf8').trim();
      if (token === '') {
        throw sourceError('io', this.token.path, 'the kubelet bearer token file is empty', 'check --kubelet.token-file');
      }
      if (changed) this.opts.logger.debug({ tokenFile: this.token.path }, 'kubelet bearer token (re)loaded');
      headers.authorization = `Bearer ${token}`;
    }
    return headers;
  }

  private async attempt(
    endpoint: KubeletEndpoint,
    dispatcher: Agent,
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<Attempt> {
    const url = this.urlOf(endpoint);
    const res = await request(url, { method: 'GET', headers, dispatcher, signal });
    const status = res.statusCode;
    if (status === 404) {
      await res.body.dump();
      this.opts.logger.debug({ url }, 'kubelet answered 404');
      return { ok: false, notFound: true, url };
    }
    if (status < 200 || status > 299) {
      const snippet = await errorSnippet(res.body);
      const detail = `HTTP ${status}${snippet ? `: ${snippet}` : ''}`;
      if (status === 401 || status === 403) {
        this.token?.invalidate();
        throw sourceError('unauthorized', url, detail);
      }
      throw sourceError('http_status', url, detail);
    }

    const contentType = headerValue(res.headers, 'content-type');
    // Parameters such as version=0.0.4, charset and escaping=underscores are all fine.
    const mediaType = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
    if (mediaType !== '' && mediaType !== 'text/plain') {
      await res.body.dump();
      throw sourceError('malformed', url, `unexpected content type ${JSON.stringify(contentType)}`);
    }
    const length = Number(headerValue(res.headers, 'content-length'));
    if (Number.isFinite(length) && length > this.opts.maxBytes) {
      await res.body.dump();
      throw sourceError('oversize', url, `Content-Length ${length} passes the ${this.opts.maxBytes}-byte cap`);
    }
    const raw = await readCapped(res.body, this.opts.maxBytes, url);
    const body = await this.decode(raw, headerValue(res.headers, 'content-encoding').toLowerCase(), url);
    this.opts.logger.debug({ url, endpoint, bytes: body.length, wireBytes: raw.length }, 'kubelet scraped');
    return { ok: true, scrape: { body, endpoint, url } };
  }

  private async decode(raw: Buffer, encoding: string, url: string): Promise<Buffer> {
    if (encoding === '' || encoding === 'identity') return raw;
    if (encoding !== 'gzip' && encoding !== 'x-gzip') {
      throw sourceError('malformed', url, `unsupported Content-Encoding ${JSON.stringify(encoding)}`);
    }
    try {
      // maxOutputLength stops inflating at the cap, so a gzip bomb costs at most maxBytes.
      return await gunzip(raw, { maxOutputLength: this.opts.maxBytes });
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
        throw sourceError('oversize', url, `gzip body inflates past ${this.opts.maxBytes} bytes`);
      }
      throw sourceError('malformed', url, `invalid gzip body: ${errorText(err)}`);
    }
  }
}
