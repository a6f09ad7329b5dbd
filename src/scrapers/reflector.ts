/**
 * A generic list/watch loop for one kind of object, kept in memory by key: client-go's reflector
 * and store, over api-client.ts.
 *
 * Why not the client's informer (ListWatch / makeInformer, @kubernetes/client-node 2.0.1), tried
 * against the lab's fake API server: its 410 handling is right (an ERROR 410 event relists), but
 * after any other error (connection refused at start, an HTTP 500) it reports once and never
 * retries; an event whose object lacks metadata makes its async handler reject (an unhandled
 * rejection); it keys objects by namespace/name rather than uid; and a list in flight cannot be
 * aborted.
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
import type { Logger } from '../log.ts';
import { record } from '../translate/pod-records.ts';
import { ApiClient, GoneError, errorMessage, lines, readAll, type Target } from './api-client.ts';
import { SourceError, type SourceErrorReason } from './source-error.ts';

export interface BackoffOptions {
  /** First retry delay; default 500 ms. */
  initialMs?: number;
  /** Upper bound; default 30 s. */
  maxMs?: number;
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

const MAX_LIST_CHARS = 256 * 1024 * 1024;
/** A watch that lasted this long without an event still counts as healthy (a quiet node). */
const HEALTHY_WATCH_MS = 10_000;

function resourceVersionOf(object: unknown): string | undefined {
  const rv = record(record(object)?.metadata)?.resourceVersion;
  return typeof rv === 'string' && rv !== '' ? rv : undefined;
}

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

export interface ResourceKind<T> {
  target: Target;
  path: string;
  query: Record<string, string>;
  /** Key and value of a valid object, undefined for a malformed one. */
  decode(object: unknown): { key: string; value: T } | undefined;
}

/** What every reflector of one watcher shares. */
export interface ReflectorDeps {
  client: ApiClient;
  backoff: { initialMs: number; maxMs: number; random: () => number };
  watchTimeoutSeconds: () => number;
  logger: Logger;
  onChange: () => void;
}

export class Reflector<T> {
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
    private readonly deps: ReflectorDeps,
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
      this.logger.info(
        { source: 'apiserver', resource: this.kind.target.resource, url: error.target },
        `${this.kind.target.resource}: resourceVersion expired (410), relisting`,
      );
      return;
    }
    const sourceError = error instanceof SourceError ? error : new SourceError('malformed', this.client.server, errorMessage(error));
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
