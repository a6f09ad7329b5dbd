/**
 * Pod metadata from the API server: list then watch this node's pods (`spec.nodeName=<node>`) and
 * the cluster's RuntimeClasses (and, when the isolation audit selects namespaces, the namespaces
 * and their labels), kept in memory and joined on read.
 *
 * Why not the client's informer (ListWatch / makeInformer, @kubernetes/client-node 2.0.1), tried
 * against the lab's fake API server: its 410 handling is right (an ERROR 410 event relists), but
 * after any other error (connection refused at start, an HTTP 500) it reports once and never
 * retries; an event whose object lacks metadata makes its async handler reject (an unhandled
 * rejection); it keys objects by namespace/name rather than uid; and a list in flight cannot be
 * aborted. Its `Watch` helper is closer, but it cannot be aborted while connecting, drops the
 * API server's Status body (the RBAC message an operator needs), and never closes the undici Agent
 * that KubeConfig creates for every request once any TLS setting (CA, client cert, skip-verify) is
 * present.
 *
 * So this file drives the protocol itself and takes from the library what it does well: loading
 * a kubeconfig and authenticating each request (bearer token, client certificates, exec plugins,
 * CA) through KubeConfig.applySecurityAuthentication. The in-cluster config (service account
 * token and CA) is read without the library, which is then never loaded: api-credentials.ts.
 * Every request has its own dispatcher, destroyed when the request ends, and one AbortSignal reaches
 * every await, so stop() leaves nothing open.
 *
 * Reflector rules (as client-go's reflector):
 * - first list with resourceVersion=0 (served from the API server's watch cache: cheap on a large
 *   cluster with a DaemonSet on every node), then watch from the list's resourceVersion;
 * - every event moves resourceVersion forward; allowWatchBookmarks keeps it fresh on a quiet node;
 * - a watch that ends (timeoutSeconds, a dropped connection, an error) reconnects from the last
 *   resourceVersion, without a relist;
 * - 410 Gone (HTTP status, or an ERROR event with code 410) means the history is gone: relist
 *   without resourceVersion (a consistent read) and replace the whole store, so objects deleted
 *   while disconnected disappear;
 * - failures back off exponentially with jitter, bounded; a healthy watch resets the backoff.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeConfig } from '@kubernetes/client-node';
import {
  inClusterCredentials,
  kubeConfigCredentials,
  kubeconfigFileCredentials,
  type ApiCredentials,
  type PreparedRequest,
} from './api-credentials.ts';
import { fetch, type Dispatcher } from 'undici';
import { silentLogger, type Logger } from '../log.ts';
import {
  isNamespaceJson,
  isPodJson,
  isRuntimeClassJson,
  joinRuntimeClass,
  record,
  toBasePodRecord,
  toNamespaceRecord,
  toRuntimeClassRecord,
} from '../translate/pod-records.ts';
import type { NamespaceRecord, PodRecord, RuntimeClassRecord } from '../translate/records.ts';
import { SourceError, errorCode, type SourceErrorReason } from './source-error.ts';

export interface BackoffOptions {
  /** First retry delay; default 500 ms. */
  initialMs?: number;
  /** Upper bound; default 30 s. */
  maxMs?: number;
}

export interface PodWatcherOptions {
  /** This node: only pods with spec.nodeName equal to it are watched. */
  nodeName: string;
  /** A kubeconfig file; in-cluster config (service account) when absent. */
  kubeconfigPath?: string;
  /** The in-cluster service account files (token, ca.crt); default the standard mount. */
  serviceAccountDir?: string;
  /** Where KUBERNETES_SERVICE_HOST/PORT are read; default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** A ready KubeConfig (tests, the lab); wins over kubeconfigPath. */
  kubeConfig?: KubeConfig;
  /** Also list/watch namespaces, whose labels the isolation audit's namespace selector reads. */
  watchNamespaces?: boolean;
  logger?: Logger;
  backoff?: BackoffOptions;
  /** Server-side watch timeout; default a random 300–600 s per watch, as client-go, to spread reconnects. */
  watchTimeoutSeconds?: number;
  /** Deadline for a list and for a watch's response headers; default 60 s. */
  requestTimeoutMs?: number;
  /** For deterministic jitter in tests; default Math.random. */
  random?: () => number;
}

export interface WatchErrorInfo {
  reason: SourceErrorReason;
  message: string;
  /** The request URL. */
  target: string;
  /** Milliseconds since epoch. */
  atMs: number;
}

export interface ResourceWatchStats {
  /** Successful lists, the first one included. */
  lists: number;
  /** Lists after the first one (410 Gone). */
  relists: number;
  /** Watch requests after the first one. */
  watchRestarts: number;
  /** Events applied (ADDED, MODIFIED, DELETED, BOOKMARK). */
  events: number;
  /** Events and list items skipped: unknown event type, malformed line or object. */
  ignoredEvents: number;
  /** Failures since the last success; drives the backoff. */
  consecutiveFailures: number;
  /** A watch stream is open right now. */
  watching: boolean;
  resourceVersion?: string;
  lastError?: WatchErrorInfo;
}

export interface PodWatcherStats {
  pods: ResourceWatchStats;
  runtimeClasses: ResourceWatchStats;
  /** Only with watchNamespaces. */
  namespaces?: ResourceWatchStats;
  /** The most recent of them. */
  lastError?: WatchErrorInfo;
}

const MAX_LINE_CHARS = 16 * 1024 * 1024;
const MAX_LIST_CHARS = 256 * 1024 * 1024;
/** A watch that lasted this long without an event still counts as healthy (a quiet node). */
const HEALTHY_WATCH_MS = 10_000;

/** 410 Gone: the resourceVersion we hold is no longer in the API server's history. */
class GoneError extends SourceError {}

// ─── one authenticated request ───────────────────────────────────────────────

interface OpenRequest {
  url: string;
  body: ReadableStream<Uint8Array>;
  /** Arms (or re-arms) the deadline that aborts this request. */
  deadline(ms: number): void;
  /** The SourceError for an error thrown while reading the body. */
  fail(error: unknown): SourceError;
  close(): Promise<void>;
}

interface Target {
  resource: string;
  group: string;
}

class ApiClient {
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
        throw new SourceError('unauthorized', href, `credentials could not be prepared: ${errorMessage(error)}`, this.hint('unauthorized', target));
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
      const fail = (error: unknown) =>
        error instanceof SourceError ? error : this.transportError(error, href, target, timedOut);
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
    const reason: SourceErrorReason =
      code === 401 || code === 403 ? 'unauthorized' : code === 404 ? 'not_found' : 'http_status';
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

function errorMessage(error: unknown): string {
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  const own = error instanceof Error ? error.message : String(error);
  return cause instanceof Error && cause.message !== own ? `${own} (${cause.message})` : own;
}

/** Yields the stream's lines (without the newline), refusing a line longer than the cap. */
async function* lines(body: ReadableStream<Uint8Array>, href: string, onChunk: () => void): AsyncGenerator<string> {
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

async function readAll(body: ReadableStream<Uint8Array> | null, cap: number, href: string): Promise<string> {
  if (!body) return '';
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of body) {
    text += decoder.decode(chunk, { stream: true });
    if (text.length > cap) throw new SourceError('oversize', href, `the response passed ${cap} characters`);
  }
  return text + decoder.decode();
}

function resourceVersionOf(object: unknown): string | undefined {
  const rv = record(record(object)?.metadata)?.resourceVersion;
  return typeof rv === 'string' && rv !== '' ? rv : undefined;
}

// ─── one resource: list, watch, relist ───────────────────────────────────────

/**
 * The wait before the next attempt after this many consecutive failures: none after a success,
 * then doubling from initialMs up to maxMs, with equal jitter (somewhere in [ceiling/2, ceiling])
 * so a fleet of nodes does not retry in step after an API server restart.
 */
export function backoffDelayMs(
  failures: number,
  { initialMs, maxMs, random }: { initialMs: number; maxMs: number; random: () => number },
): number {
  if (failures <= 0) return 0;
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(failures - 1, 30));
  return ceiling / 2 + (ceiling / 2) * random();
}

interface ResourceKind<T> {
  target: Target;
  path: string;
  query: Record<string, string>;
  /** Key and value of a valid object, undefined for a malformed one. */
  decode(object: unknown): { key: string; value: T } | undefined;
}

/** What both resource loops share. */
interface WatchDeps {
  client: ApiClient;
  backoff: { initialMs: number; maxMs: number; random: () => number };
  watchTimeoutSeconds: () => number;
  logger: Logger;
  onChange: () => void;
}

class ResourceWatch<T> {
  items = new Map<string, T>();
  readonly stats: ResourceWatchStats = {
    lists: 0,
    relists: 0,
    watchRestarts: 0,
    events: 0,
    ignoredEvents: 0,
    consecutiveFailures: 0,
    watching: false,
  };
  private resourceVersion: string | undefined;
  private watchesStarted = 0;
  private lastReason: SourceErrorReason | undefined;

  private readonly client: ApiClient;
  private readonly logger: Logger;

  constructor(
    private readonly kind: ResourceKind<T>,
    private readonly deps: WatchDeps,
  ) {
    this.client = deps.client;
    this.logger = deps.logger;
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        if (this.resourceVersion === undefined) await this.list(signal);
        const healthy = await this.watch(signal);
        if (healthy) this.succeeded();
        else this.stats.consecutiveFailures += 1;
      } catch (error) {
        if (signal.aborted) break;
        this.failed(error);
      } finally {
        this.stats.watching = false;
      }
      const delayMs = this.delayMs();
      if (delayMs > 0) {
        try {
          await sleep(delayMs, undefined, { signal });
        } catch {
          break; // stopped
        }
      }
    }
  }

  private delayMs(): number {
    return backoffDelayMs(this.stats.consecutiveFailures, this.deps.backoff);
  }

  private async list(signal: AbortSignal): Promise<void> {
    // resourceVersion=0 on the first list reads the watch cache; after a 410 read consistently.
    const query = { ...this.kind.query, resourceVersion: this.stats.lists === 0 ? '0' : undefined };
    const request = await this.client.open(this.kind.path, query, this.kind.target, signal);
    let text: string;
    try {
      text = await readAll(request.body, MAX_LIST_CHARS, request.url);
    } catch (error) {
      throw request.fail(error);
    } finally {
      await request.close();
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new SourceError('malformed', request.url, 'the list is not JSON');
    }
    const items = record(parsed)?.items;
    const resourceVersion = resourceVersionOf(parsed);
    if (!(Array.isArray(items) || items === null) || resourceVersion === undefined) {
      throw new SourceError('malformed', request.url, 'the list has no items or no metadata.resourceVersion');
    }
    const next = new Map<string, T>();
    for (const item of items ?? []) {
      const decoded = this.kind.decode(item);
      if (decoded) next.set(decoded.key, decoded.value);
      else this.stats.ignoredEvents += 1;
    }
    // Replacing the store is what removes objects deleted while we were not watching.
    this.items = next;
    this.resourceVersion = resourceVersion;
    this.stats.resourceVersion = resourceVersion;
    if (this.stats.lists > 0) this.stats.relists += 1;
    this.stats.lists += 1;
    this.succeeded();
    this.deps.onChange();
  }

  /** One watch stream until it ends; true when it was healthy (events, or long enough). */
  private async watch(signal: AbortSignal): Promise<boolean> {
    if (this.watchesStarted++ > 0) this.stats.watchRestarts += 1;
    const timeoutSeconds = this.deps.watchTimeoutSeconds();
    const query = {
      ...this.kind.query,
      watch: 'true',
      resourceVersion: this.resourceVersion,
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(timeoutSeconds),
    };
    const request = await this.client.open(this.kind.path, query, this.kind.target, signal);
    const started = performance.now();
    let sawEvent = false;
    this.stats.watching = true;
    // Past the server's own timeout plus a margin, silence means a dead connection.
    const idleMs = (timeoutSeconds + 60) * 1000;
    try {
      request.deadline(idleMs);
      for await (const line of lines(request.body, request.url, () => request.deadline(idleMs))) {
        if (line.trim() === '') continue;
        if (this.apply(line, request.url)) sawEvent = true;
      }
    } catch (error) {
      throw signal.aborted ? error : request.fail(error);
    } finally {
      await request.close();
    }
    return sawEvent || performance.now() - started >= HEALTHY_WATCH_MS;
  }

  /** Applies one event line; true when it was a valid event. Throws GoneError on a 410 ERROR. */
  private apply(line: string, href: string): boolean {
    let event: Record<string, unknown> | undefined;
    try {
      event = record(JSON.parse(line));
    } catch {
      event = undefined;
    }
    const type = event?.type;
    const object = event?.object;
    if (type === 'ERROR') {
      const status = record(object);
      const message = typeof status?.message === 'string' ? status.message : 'watch ERROR event';
      if (status?.code === 410) throw new GoneError('http_status', href, `410 in the watch stream: ${message}`);
      throw new SourceError('http_status', href, `ERROR event${typeof status?.code === 'number' ? ` ${status.code}` : ''}: ${message}`);
    }
    const decoded = type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED' ? this.kind.decode(object) : undefined;
    if (decoded) {
      if (type === 'DELETED') this.items.delete(decoded.key);
      else this.items.set(decoded.key, decoded.value);
      this.deps.onChange();
    } else if (type !== 'BOOKMARK') {
      // Unknown type or malformed object: skip it, as a newer server may send what we do not know.
      this.stats.ignoredEvents += 1;
      this.logger.debug({ source: 'apiserver', resource: this.kind.target.resource, type }, 'ignored a watch event');
      return false;
    }
    const resourceVersion = resourceVersionOf(object);
    if (resourceVersion !== undefined) {
      this.resourceVersion = resourceVersion;
      this.stats.resourceVersion = resourceVersion;
    }
    this.stats.events += 1;
    return true;
  }

  private succeeded(): void {
    if (this.stats.consecutiveFailures > 0 && this.lastReason !== undefined) {
      this.logger.info(
        { source: 'apiserver', resource: this.kind.target.resource, server: this.client.server, failures: this.stats.consecutiveFailures },
        `${this.kind.target.resource}: the API server answers again`,
      );
    }
    this.stats.consecutiveFailures = 0;
    this.lastReason = undefined;
  }

  private failed(error: unknown): void {
    if (error instanceof GoneError) {
      // Expected now and then (compaction, long disconnect): relist, and do not call it a failure
      // unless it keeps happening.
      this.resourceVersion = undefined;
      this.stats.consecutiveFailures += 1;
      this.logger.info({ source: 'apiserver', resource: this.kind.target.resource, url: error.target }, `${this.kind.target.resource}: resourceVersion expired (410), relisting`);
      return;
    }
    const sourceError =
      error instanceof SourceError ? error : new SourceError('malformed', this.client.server, errorMessage(error));
    this.stats.consecutiveFailures += 1;
    this.stats.lastError = {
      reason: sourceError.reason,
      message: sourceError.message,
      target: sourceError.target,
      atMs: Date.now(),
    };
    const failures = this.stats.consecutiveFailures;
    // Loud on the first failure of a streak and when the cause changes, then every tenth retry.
    const loud = failures === 1 || sourceError.reason !== this.lastReason || failures % 10 === 0;
    this.lastReason = sourceError.reason;
    this.logger[loud ? 'error' : 'debug'](
      {
        source: 'apiserver',
        resource: this.kind.target.resource,
        server: this.client.server,
        url: sourceError.target,
        reason: sourceError.reason,
        failures,
        hint: sourceError.hint,
        err: sourceError.message,
      },
      `${this.kind.target.resource}: cannot list/watch through the API server at ${this.client.server}; retrying with backoff`,
    );
  }
}

// ─── the watcher ─────────────────────────────────────────────────────────────

/** A cluster-scoped kind, kept by name. */
function byName<J, R extends { name: string }>(
  target: Target,
  path: string,
  isJson: (object: unknown) => object is J,
  toRecord: (json: J) => R,
): ResourceKind<R> {
  return {
    target,
    path,
    query: {},
    decode: (object) => {
      if (!isJson(object)) return undefined;
      const value = toRecord(object);
      return { key: value.name, value };
    },
  };
}

/** The API server's address and credentials: --kubeconfig or a supplied KubeConfig, else in-cluster. */
function loadCredentials(options: PodWatcherOptions): ApiCredentials {
  if (options.kubeConfig) return kubeConfigCredentials(options.kubeConfig, 'the supplied kubeconfig');
  if (options.kubeconfigPath !== undefined) return kubeconfigFileCredentials(options.kubeconfigPath);
  return inClusterCredentials(options.env ?? process.env, options.serviceAccountDir);
}

export class PodWatcher {
  private readonly podWatch: ResourceWatch<PodRecord>;
  private readonly classWatch: ResourceWatch<RuntimeClassRecord>;
  private readonly namespaceWatch: ResourceWatch<NamespaceRecord> | undefined;
  private controller: AbortController | undefined;
  private runs: Promise<void>[] = [];
  private version = 0;
  private cached:
    | {
        version: number;
        pods: ReadonlyMap<string, PodRecord>;
        classes: ReadonlyMap<string, RuntimeClassRecord>;
        namespaces: ReadonlyMap<string, NamespaceRecord>;
      }
    | undefined;

  /** Throws a SourceError when no configuration can be loaded (a startup error, not retried). */
  constructor(private readonly options: PodWatcherOptions) {
    const credentials = loadCredentials(options);
    const random = options.random ?? Math.random;
    const deps: WatchDeps = {
      client: new ApiClient(credentials, options.requestTimeoutMs ?? 60_000),
      backoff: { initialMs: options.backoff?.initialMs ?? 500, maxMs: options.backoff?.maxMs ?? 30_000, random },
      watchTimeoutSeconds: () => options.watchTimeoutSeconds ?? Math.floor(300 * (1 + random())),
      logger: options.logger ?? silentLogger,
      onChange: () => {
        this.version += 1;
      },
    };
    this.podWatch = new ResourceWatch<PodRecord>(
      {
        target: { resource: 'pods', group: '' },
        path: '/api/v1/pods',
        query: { fieldSelector: `spec.nodeName=${options.nodeName}` },
        decode: (object) => {
          if (!isPodJson(object)) return undefined;
          const base = toBasePodRecord(object);
          return { key: base.uid, value: base };
        },
      },
      deps,
    );
    this.classWatch = new ResourceWatch(
      byName({ resource: 'runtimeclasses', group: 'node.k8s.io' }, '/apis/node.k8s.io/v1/runtimeclasses', isRuntimeClassJson, toRuntimeClassRecord),
      deps,
    );
    this.namespaceWatch = options.watchNamespaces
      ? new ResourceWatch(byName({ resource: 'namespaces', group: '' }, '/api/v1/namespaces', isNamespaceJson, toNamespaceRecord), deps)
      : undefined;
  }

  private watches(): Pick<ResourceWatch<unknown>, 'stats' | 'run'>[] {
    return [this.podWatch, this.classWatch, ...(this.namespaceWatch ? [this.namespaceWatch] : [])];
  }

  /** Starts every list/watch loop in the background; they retry until stop(). */
  start(): void {
    if (this.controller) return;
    const controller = new AbortController();
    this.controller = controller;
    const logger = this.options.logger ?? silentLogger;
    this.runs = this.watches().map((watch) =>
      watch.run(controller.signal).catch((error: unknown) => {
        // A bug, not an API server problem: say so instead of an unhandled rejection.
        logger.error({ source: 'apiserver', err: errorMessage(error) }, 'the pod watch loop stopped unexpectedly');
      }),
    );
  }

  /** Aborts every request and timer and resolves once nothing is left open. */
  async stop(): Promise<void> {
    const controller = this.controller;
    if (!controller) return;
    controller.abort();
    await Promise.all(this.runs);
    this.runs = [];
    this.controller = undefined;
  }

  /**
   * True once this node's pods, the RuntimeClasses (and the namespaces, when watched) have been
   * listed; stays true while later watches recover.
   */
  isReady(): boolean {
    // Every list: before the RuntimeClasses are known a pod's handler (and with it its scope and
    // pod_info labels) would change under a running series; before the namespaces are known, which
    // pods are untrusted would.
    return this.watches().every((watch) => watch.stats.lists > 0);
  }

  /** This node's pods by uid, joined with their RuntimeClass (handler, overhead). */
  pods(): ReadonlyMap<string, PodRecord> {
    return this.snapshot().pods;
  }

  runtimeClasses(): ReadonlyMap<string, RuntimeClassRecord> {
    return this.snapshot().classes;
  }

  /** Namespaces by name (empty unless watchNamespaces). */
  namespaces(): ReadonlyMap<string, NamespaceRecord> {
    return this.snapshot().namespaces;
  }

  stats(): PodWatcherStats {
    const pods = { ...this.podWatch.stats };
    const runtimeClasses = { ...this.classWatch.stats };
    const namespaces = this.namespaceWatch ? { ...this.namespaceWatch.stats } : undefined;
    const lastError = [pods.lastError, runtimeClasses.lastError, namespaces?.lastError]
      .filter((e): e is WatchErrorInfo => e !== undefined)
      .sort((a, b) => b.atMs - a.atMs)[0];
    return { pods, runtimeClasses, ...(namespaces ? { namespaces } : {}), ...(lastError ? { lastError } : {}) };
  }

  private snapshot() {
    if (this.cached?.version !== this.version) {
      const classes: ReadonlyMap<string, RuntimeClassRecord> = new Map(this.classWatch.items);
      const pods = new Map<string, PodRecord>();
      for (const [uid, base] of this.podWatch.items) pods.set(uid, joinRuntimeClass(base, classes));
      const namespaces: ReadonlyMap<string, NamespaceRecord> = new Map(this.namespaceWatch?.items);
      this.cached = { version: this.version, pods, classes, namespaces };
    }
    return this.cached;
  }
}
