/**
 * Requests to the Kubernetes API server, one at a time: an authenticated GET that answers 200 or
 * a SourceError saying what to check, and bounded readers for its body (a whole list, or a watch
 * stream line by line).
 *
 * Why not the client's own Watch helper (@kubernetes/client-node 2.0.1): it cannot be aborted
 * while connecting, drops the API server's Status body (the RBAC message an operator needs), and
 * never closes the undici Agent that KubeConfig creates for every request once any TLS setting (CA,
 * client cert, skip-verify) is present. What the library does well, loading a kubeconfig and
 * authenticating each request, is used through api-credentials.ts. Every request has its own
 * dispatcher, destroyed when the request ends, and the caller's AbortSignal reaches every await.
 */
import { fetch, type Dispatcher } from 'undici';
import type { ApiCredentials, PreparedRequest } from './api-credentials.ts';
import { SourceError, errorCode, type SourceErrorReason } from './source-error.ts';

const MAX_LINE_CHARS = 16 * 1024 * 1024;

/** 410 Gone: the resourceVersion we hold is no longer in the API server's history. */
export class GoneError extends SourceError {}

export interface OpenRequest {
  url: string;
  body: ReadableStream<Uint8Array>;
  /** Arms (or re-arms) the deadline that aborts this request. */
  deadline(ms: number): void;
  /** The SourceError for an error thrown while reading the body. */
  fail(error: unknown): SourceError;
  close(): Promise<void>;
}

/** What a request reads, for the hints: the resource and its API group. */
export interface Target {
  resource: string;
  group: string;
}

export class ApiClient {
  readonly server: string;

  constructor(
    private readonly credentials: ApiCredentials,
    private readonly requestTimeoutMs: number,
  ) {
    this.server = credentials.server;
  }

  /** GET with a 200 answer, or a SourceError that says what to check. */
  async open(path: string, query: Record<string, string | undefined>, target: Target, signal: AbortSignal): Promise<OpenRequest> {
    const url = new URL(this.server + path);
    for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, value);
    const href = url.toString();

    const local = new AbortController();
    const onStop = () => local.abort(signal.reason);
    if (signal.aborted) local.abort(signal.reason);
    signal.addEventListener('abort', onStop, { once: true });
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const deadline = (ms: number) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        local.abort();
      }, ms);
    };
    let baseDispatcher: Dispatcher | undefined;
    const close = async () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onStop);
      local.abort();
      await baseDispatcher?.destroy().catch(() => undefined);
    };

    try {
      let prepared: PreparedRequest;
      try {
        prepared = await this.credentials.prepare(href);
      } catch (error) {
        if (error instanceof SourceError) throw error;
        throw new SourceError(
          'unauthorized',
          href,
          `credentials could not be prepared: ${errorMessage(error)}`,
          this.hint('unauthorized', target),
        );
      }
      baseDispatcher = prepared.dispatcher;
      // Our own deadlines bound every request (a list's request timeout, a watch's idle limit);
      // undici's default 300 s body timeout would cut a watch that is merely quiet.
      const dispatcher = baseDispatcher.compose((dispatch) => (opts, handler) => dispatch({ ...opts, bodyTimeout: 0 }, handler));
      deadline(this.requestTimeoutMs);
      const response = await fetch(href, {
        headers: { ...prepared.headers, accept: 'application/json' },
        dispatcher,
        signal: local.signal,
      });
      if (response.status !== 200 || !response.body) {
        const text = await readAll(response.body, 64 * 1024, href).catch(() => '');
        throw this.statusError(response.status, text, href, target);
      }
      const fail = (error: unknown) => (error instanceof SourceError ? error : this.transportError(error, href, target, timedOut));
      return { url: href, body: response.body, deadline, fail, close };
    } catch (error) {
      await close();
      if (error instanceof SourceError) throw error;
      throw this.transportError(error, href, target, timedOut);
    }
  }

  private transportError(error: unknown, href: string, target: Target, timedOut: boolean): SourceError {
    if (timedOut) return new SourceError('timeout', href, 'no answer before the deadline', this.hint('unreachable', target));
    const code = errorCode(error) ?? '';
    const tls = /CERT|TLS|SSL|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code);
    const timeout = ['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'].includes(code);
    const reason: SourceErrorReason = tls ? 'tls' : timeout ? 'timeout' : 'unreachable';
    return new SourceError(reason, href, `${code || 'request failed'}: ${errorMessage(error)}`, this.hint(reason, target));
  }

  private statusError(code: number, body: string, href: string, target: Target): SourceError {
    let message = body.slice(0, 500);
    try {
      const parsed = JSON.parse(body) as { message?: unknown };
      if (typeof parsed.message === 'string') message = parsed.message;
    } catch {
      // Not a Status object (a proxy's HTML page, say): keep the raw start.
    }
    const detail = `HTTP ${code}${message ? `: ${message}` : ''}`;
    if (code === 410) return new GoneError('http_status', href, detail);
    const reason: SourceErrorReason = code === 401 || code === 403 ? 'unauthorized' : code === 404 ? 'not_found' : 'http_status';
    return new SourceError(reason, href, detail, this.hint(reason, target, code));
  }

  private hint(reason: SourceErrorReason, target: Target, code?: number): string {
    const rbac = `grant list and watch on ${target.resource} (apiGroups: ["${target.group}"]) to this identity`;
    switch (reason) {
      case 'unreachable':
      case 'timeout':
        return `check that the API server at ${this.server} is reachable from this node and that ${this.credentials.source} points at this cluster; the identity also needs RBAC to ${rbac.replace(/^grant /, '')}`;
      case 'tls':
        return `check the cluster CA (certificate-authority) in ${this.credentials.source}`;
      case 'unauthorized':
        return code === 403 ? rbac : `the credentials were refused: check the user or token in ${this.credentials.source}`;
      case 'not_found':
        return `the API server does not serve ${target.resource}${target.group ? ` in ${target.group}/v1` : ''}; runtime handlers stay unknown`;
      default:
        return `check the API server at ${this.server}; ${rbac} if it is an RBAC denial`;
    }
  }
}

export function errorMessage(error: unknown): string {
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  const own = error instanceof Error ? error.message : String(error);
  return cause instanceof Error && cause.message !== own ? `${own} (${cause.message})` : own;
}

/** Yields the stream's lines (without the newline), refusing a line longer than the cap. */
export async function* lines(body: ReadableStream<Uint8Array>, href: string, onChunk: () => void): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = '';
  for await (const chunk of body) {
    onChunk();
    pending += decoder.decode(chunk, { stream: true });
    let start = 0;
    let newline: number;
    while ((newline = pending.indexOf('\n', start)) >= 0) {
      yield pending.slice(start, newline);
      start = newline + 1;
    }
    pending = pending.slice(start);
    if (pending.length > MAX_LINE_CHARS) throw new SourceError('oversize', href, `a watch event passed ${MAX_LINE_CHARS} characters`);
  }
  pending += decoder.decode();
  if (pending.trim() !== '') yield pending;
}

export async function readAll(body: ReadableStream<Uint8Array> | null, cap: number, href: string): Promise<string> {
  if (!body) return '';
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of body) {
    text += decoder.decode(chunk, { stream: true });
    if (text.length > cap) throw new SourceError('oversize', href, `the response passed ${cap} characters`);
  }
  return text + decoder.decode();
}
