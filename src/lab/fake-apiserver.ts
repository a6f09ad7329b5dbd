/**
 * An in-process Kubernetes API server that speaks the list/watch protocol for pods, RuntimeClasses
 * and namespaces, with the failure modes a watcher must survive: watches that end, 410 Gone
 * (as an ERROR event or as an HTTP status), compacted history, dropped connections, an outage on
 * the same port, and refused credentials.
 *
 * Protocol points it reproduces (k8s.io/apiserver, "Efficient detection of changes"):
 * - one global resourceVersion counter across kinds; lists carry metadata.resourceVersion;
 * - a watch from resourceVersion N replays every change after N, then streams live changes as
 *   newline-delimited `{"type","object"}` JSON; a watch without one (or "0") first sends a
 *   synthetic ADDED per existing object;
 * - a watch from before the compacted history gets HTTP 200 and one ERROR event with a 410
 *   Status, then the stream ends;
 * - with a field selector, an object that starts or stops matching arrives as ADDED or DELETED
 *   (how a pod bound to this node shows up in a `spec.nodeName=` watch);
 * - BOOKMARK events only when the client sent allowWatchBookmarks=true;
 * - timeoutSeconds ends the stream normally;
 * - every namespace carries the immutable label `kubernetes.io/metadata.name: <name>`, which the
 *   real server sets on create and update (Kubernetes 1.21+).
 * It listens on 127.0.0.1 over plain HTTP: the kubeconfig it hands out sets
 * insecure-skip-tls-verify, which @kubernetes/client-node requires for an http:// server.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { NamespaceJson, PodJson, RuntimeClassJson } from '../translate/pod-records.ts';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
export type FakeResource = 'pods' | 'runtimeclasses' | 'namespaces';

/** The label the API server puts on every namespace. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  resource: FakeResource | 'other';
  watch: boolean;
  status: number;
}

export interface FakeApiServerOptions {
  /** Bearer token the server accepts; a random one by default. */
  token?: string;
  /** Port to bind on 127.0.0.1; 0 (any free port) by default. */
  port?: number;
  /** Send a BOOKMARK to bookmark-enabled watches at this interval; off by default. */
  bookmarkIntervalMs?: number;
  /** Serve HTTPS with this certificate (as a real API server does); plain HTTP by default. */
  tls?: { certPem: string; keyPem: string };
}

type KubeObject = {
  metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string; labels?: Record<string, string> };
};

interface Change {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: KubeObject;
  /** The object before a MODIFIED, to compute selector transitions. */
  previous?: KubeObject;
}

type Predicate = (object: KubeObject) => boolean;

interface OpenWatch {
  resource: FakeResource;
  matches: Predicate;
  bookmarks: boolean;
  response: ServerResponse;
  timers: NodeJS.Timeout[];
}

const KINDS: Record<FakeResource, { kind: string; apiVersion: string }> = {
  pods: { kind: 'Pod', apiVersion: 'v1' },
  runtimeclasses: { kind: 'RuntimeClass', apiVersion: 'node.k8s.io/v1' },
  namespaces: { kind: 'Namespace', apiVersion: 'v1' },
};

/** Field labels the real server supports for these kinds (a subset; others get 400 as there). */
const FIELD_GETTERS: Record<FakeResource, Record<string, (o: Record<string, any>) => unknown>> = {
  pods: {
    'metadata.name': (o) => o.metadata?.name,
    'metadata.namespace': (o) => o.metadata?.namespace,
    'spec.nodeName': (o) => o.spec?.nodeName ?? '',
    'spec.restartPolicy': (o) => o.spec?.restartPolicy,
    'spec.schedulerName': (o) => o.spec?.schedulerName,
    'spec.serviceAccountName': (o) => o.spec?.serviceAccountName,
    'status.phase': (o) => o.status?.phase,
    'status.podIP': (o) => o.status?.podIP,
  },
  runtimeclasses: {
    'metadata.name': (o) => o.metadata?.name,
  },
  namespaces: {
    'metadata.name': (o) => o.metadata?.name,
    'status.phase': (o) => o.status?.phase,
  },
};

class BadRequest extends Error {}

/** `a=b,c!=d` (also `==`), the equality-based selector syntax shared by fields and labels. */
function parseSelector(selector: string, lookup: (key: string) => ((o: KubeObject) => unknown) | undefined): Predicate {
  const terms = selector
    .split(',')
    .filter((term) => term.trim() !== '')
    .map((term) => {
      const match = /^\s*([^!=\s]+)\s*(==|=|!=)\s*([^\s]*)\s*$/.exec(term);
      if (!match) throw new BadRequest(`invalid selector: '${selector}'`);
      const [, key = '', op, value = ''] = match;
      const get = lookup(key);
      if (!get) throw new BadRequest(`field label not supported: ${key}`);
      return (o: KubeObject) => {
        const actual = String(get(o) ?? '');
        return op === '!=' ? actual !== value : actual === value;
      };
    });
  return (o) => terms.every((test) => test(o));
}

function status(code: number, reason: string, message: string) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

export class FakeApiServer {
  readonly token: string;
  /** Every request, in arrival order. */
  readonly requests: RecordedRequest[] = [];

  private server: Server | undefined;
  private boundPort: number;
  private readonly sockets = new Set<Socket>();
  private readonly watches = new Set<OpenWatch>();
  private readonly store: Record<FakeResource, Map<string, KubeObject>> = {
    pods: new Map(),
    runtimeclasses: new Map(),
    namespaces: new Map(),
  };
  private readonly history: Change[] = [];
  private rv = 1;
  /** Watches from a resourceVersion below this get 410 Gone. */
  private oldestWatchable = 0;
  private expireNext: 'event' | 'status' | undefined;
  private deny: { code: number; resource?: FakeResource } | undefined;

  private constructor(private readonly options: FakeApiServerOptions) {
    this.token = options.token ?? `fake-${Math.random().toString(36).slice(2)}`;
    this.boundPort = options.port ?? 0;
  }

  static async start(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const fake = new FakeApiServer(options);
    await fake.comeUp();
    return fake;
  }

  get port(): number {
    return this.boundPort;
  }

  get url(): string {
    return `${this.options.tls ? 'https' : 'http'}://127.0.0.1:${this.boundPort}`;
  }

  get isUp(): boolean {
    return this.server !== undefined;
  }

  /** The current global resourceVersion. */
  get resourceVersion(): string {
    return String(this.rv);
  }

  // ─── objects ─────────────────────────────────────────────────────────────

  addPod(pod: PodJson): PodJson {
    return this.create('pods', pod) as PodJson;
  }

  /** `update` edits a copy in place or returns a replacement. */
  modifyPod(namespace: string, name: string, update: (pod: PodJson) => PodJson | void): PodJson {
    return this.modify('pods', `${namespace}/${name}`, update as (o: KubeObject) => KubeObject | void) as PodJson;
  }

  deletePod(namespace: string, name: string): void {
    this.remove('pods', `${namespace}/${name}`);
  }

  pods(): PodJson[] {
    return [...this.store.pods.values()].map((p) => clone(p) as PodJson);
  }

  addRuntimeClass(runtimeClass: RuntimeClassJson): RuntimeClassJson {
    return this.create('runtimeclasses', runtimeClass) as RuntimeClassJson;
  }

  modifyRuntimeClass(name: string, update: (rc: RuntimeClassJson) => RuntimeClassJson | void): RuntimeClassJson {
    return this.modify('runtimeclasses', name, update as (o: KubeObject) => KubeObject | void) as RuntimeClassJson;
  }

  deleteRuntimeClass(name: string): void {
    this.remove('runtimeclasses', name);
  }

  addNamespace(namespace: NamespaceJson): NamespaceJson {
    return this.create('namespaces', namespace) as NamespaceJson;
  }

  modifyNamespace(name: string, update: (namespace: NamespaceJson) => NamespaceJson | void): NamespaceJson {
    return this.modify('namespaces', name, update as (o: KubeObject) => KubeObject | void) as NamespaceJson;
  }

  deleteNamespace(name: string): void {
    this.remove('namespaces', name);
  }

  hasNamespace(name: string): boolean {
    return this.store.namespaces.has(name);
  }

  private key(resource: FakeResource, object: KubeObject): string {
    return resource === 'pods' ? `${object.metadata.namespace ?? 'default'}/${object.metadata.name}` : object.metadata.name;
  }

  private create(resource: FakeResource, input: KubeObject): KubeObject {
    const object = clone(input);
    if (resource === 'pods') object.metadata.namespace ??= 'default';
    object.metadata.uid ??= randomUUID(); // the API server assigns one on create
    const key = this.key(resource, object);
    if (this.store[resource].has(key)) throw new Error(`${resource} ${key} already exists`);
    this.commit(resource, key, 'ADDED', object);
    return clone(object);
  }

  private modify(resource: FakeResource, key: string, update: (o: KubeObject) => KubeObject | void): KubeObject {
    const previous = this.store[resource].get(key);
    if (!previous) throw new Error(`${resource} ${key} not found`);
    const draft = clone(previous);
    const next = update(draft) ?? draft;
    if (this.key(resource, next) !== key) throw new Error('name and namespace cannot change');
    this.commit(resource, key, 'MODIFIED', next, previous);
    return clone(next);
  }

  private remove(resource: FakeResource, key: string): void {
    const previous = this.store[resource].get(key);
    if (!previous) throw new Error(`${resource} ${key} not found`);
    // The DELETED event carries the last state with a new resourceVersion, as etcd3 watch does.
    this.commit(resource, key, 'DELETED', clone(previous));
  }

  private commit(resource: FakeResource, key: string, type: Change['type'], object: KubeObject, previous?: KubeObject) {
    // The namespace strategy sets this label on create and update; a client cannot remove it.
    if (resource === 'namespaces') object.metadata.labels = { ...object.metadata.labels, [NAMESPACE_NAME_LABEL]: object.metadata.name };
    this.rv += 1;
    object.metadata.resourceVersion = String(this.rv);
    if (type === 'DELETED') this.store[resource].delete(key);
    else this.store[resource].set(key, object);
    const change: Change = { rv: this.rv, type, object, ...(previous ? { previous } : {}) };
    this.history.push(change);
    for (const watch of this.watches) {
      if (watch.resource === resource) this.deliver(watch, change);
    }
  }

  // ─── faults ──────────────────────────────────────────────────────────────

  /** The next watch request gets 410 Gone: an ERROR event in a 200 stream (default) or an HTTP 410. */
  expireNextWatch(as: 'event' | 'status' = 'event'): void {
    this.expireNext = as;
  }

  /** Every open watch gets an ERROR event with a 410 Status, then its stream ends. */
  expireWatches(): void {
    for (const watch of this.watches) this.sendGone(watch.response, this.rv - 1);
  }

  /** Drop all history: a watch from any resourceVersion older than the current one gets 410. */
  compact(): void {
    this.history.length = 0;
    this.oldestWatchable = this.rv;
  }

  /** End every open watch normally, as when its timeoutSeconds runs out. */
  endWatches(): void {
    for (const watch of this.watches) watch.response.end();
  }

  /** Send a BOOKMARK with the current resourceVersion to watches that asked for bookmarks. */
  bookmark(): void {
    for (const watch of this.watches) this.sendBookmark(watch);
  }

  /** Write one raw line (malformed JSON, an unknown event type…) to every open watch of a resource. */
  injectRawEvent(resource: FakeResource, line: string): void {
    for (const watch of this.watches) {
      if (watch.resource === resource && !watch.response.writableEnded) watch.response.write(`${line}\n`);
    }
  }

  /** Cut every TCP connection without a word; the server keeps listening. */
  dropConnections(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  /** Answer every request (or those for one resource) with this status (401, 403, 500…) until called with undefined. */
  denyRequests(code: number | undefined, resource?: FakeResource): void {
    this.deny = code === undefined ? undefined : { code, ...(resource ? { resource } : {}) };
  }

  openWatches(resource?: FakeResource): number {
    return [...this.watches].filter((w) => resource === undefined || w.resource === resource).length;
  }

  openConnections(): number {
    return this.sockets.size;
  }

  countRequests(filter: Partial<Pick<RecordedRequest, 'resource' | 'watch' | 'status'>> = {}): number {
    return this.requests.filter((r) => Object.entries(filter).every(([key, value]) => r[key as keyof RecordedRequest] === value)).length;
  }

  /** Stop listening and cut every connection; state and history are kept for comeUp(). */
  async goDown(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const watch of this.watches) this.closeWatch(watch);
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  /** Listen again on the same port (the first call picks the port). */
  async comeUp(): Promise<void> {
    if (this.server) return;
    const handler = (req: IncomingMessage, res: ServerResponse): void => this.handle(req, res);
    const tls = this.options.tls;
    const server: Server = tls ? createHttpsServer({ cert: tls.certPem, key: tls.keyPem }, handler) : createServer(handler);
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.boundPort, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.boundPort = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async close(): Promise<void> {
    await this.goDown();
  }

  // ─── client configuration ────────────────────────────────────────────────

  kubeconfigYaml(): string {
    return [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: fake',
      '  cluster:',
      `    server: ${this.url}`,
      '    insecure-skip-tls-verify: true',
      'users:',
      '- name: fake',
      '  user:',
      `    token: ${this.token}`,
      'contexts:',
      '- name: fake',
      '  context:',
      '    cluster: fake',
      '    user: fake',
      'current-context: fake',
      '',
    ].join('\n');
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromString(this.kubeconfigYaml());
    return kc;
  }

  /** Writes `kubeconfig` into dir and returns its path. */
  async writeKubeconfig(dir: string): Promise<string> {
    const file = join(dir, 'kubeconfig');
    await writeFile(file, this.kubeconfigYaml(), { mode: 0o600 });
    return file;
  }

  // ─── HTTP ────────────────────────────────────────────────────────────────

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams);
    const route = this.route(url.pathname);
    const watch = query.watch === 'true' || query.watch === '1';
    const entry: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query,
      resource: route?.resource ?? 'other',
      watch,
      status: 200,
    };
    this.requests.push(entry);
    const reply = (code: number, body: unknown) => {
      entry.status = code;
      res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };

    if (req.headers.authorization !== `Bearer ${this.token}`) {
      return reply(401, status(401, 'Unauthorized', 'Unauthorized'));
    }
    const deny =
      this.deny !== undefined && (this.deny.resource === undefined || this.deny.resource === route?.resource) ? this.deny.code : undefined;
    if (deny !== undefined) {
      const resource = route?.resource ?? url.pathname;
      const verb = watch ? 'watch' : 'list';
      return reply(
        deny,
        deny === 403
          ? status(
              403,
              'Forbidden',
              `${resource} is forbidden: User "system:serviceaccount:monitoring:kata-metrics-bridge" cannot ${verb} resource "${resource}" at the cluster scope`,
            )
          : status(deny, 'InternalError', 'injected failure'),
      );
    }
    if (!route || req.method !== 'GET') {
      return reply(404, status(404, 'NotFound', 'the server could not find the requested resource'));
    }

    let matches: Predicate;
    try {
      const fieldMatch = parseSelector(query.fieldSelector ?? '', (key) => FIELD_GETTERS[route.resource][key]);
      const labelMatch = parseSelector(query.labelSelector ?? '', (key) => (o) => (o as PodJson).metadata.labels?.[key]);
      matches = (o) => (route.namespace === undefined || o.metadata.namespace === route.namespace) && fieldMatch(o) && labelMatch(o);
    } catch (error) {
      if (!(error instanceof BadRequest)) throw error;
      return reply(400, status(400, 'BadRequest', error.message));
    }

    if (!watch) {
      const { kind, apiVersion } = KINDS[route.resource];
      return reply(200, {
        kind: `${kind}List`,
        apiVersion,
        metadata: { resourceVersion: String(this.rv) },
        items: [...this.store[route.resource].values()].filter(matches),
      });
    }
    this.startWatch(route.resource, matches, query, res, entry);
  }

  private route(pathname: string): { resource: FakeResource; namespace?: string } | undefined {
    const path = pathname.replace(/\/+$/, '');
    if (path === '/api/v1/pods') return { resource: 'pods' };
    const namespaced = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(path);
    if (namespaced?.[1]) return { resource: 'pods', namespace: decodeURIComponent(namespaced[1]) };
    if (path === '/apis/node.k8s.io/v1/runtimeclasses') return { resource: 'runtimeclasses' };
    if (path === '/api/v1/namespaces') return { resource: 'namespaces' };
    return undefined;
  }

  private startWatch(
    resource: FakeResource,
    matches: Predicate,
    query: Record<string, string>,
    res: ServerResponse,
    entry: RecordedRequest,
  ): void {
    const requested = query.resourceVersion ?? '';
    const from = requested === '' || requested === '0' ? undefined : Number(requested);
    if (from !== undefined && !Number.isSafeInteger(from)) {
      entry.status = 400;
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify(status(400, 'BadRequest', `invalid resource version: ${requested}`)));
      return;
    }
    const expired = this.expireNext ?? (from !== undefined && from < this.oldestWatchable ? 'event' : undefined);
    this.expireNext = undefined;
    if (expired === 'status') {
      entry.status = 410;
      res.writeHead(410, { 'content-type': 'application/json' });
      res.end(JSON.stringify(status(410, 'Expired', `too old resource version: ${requested} (${this.oldestWatchable})`)));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    if (expired === 'event') {
      this.sendGone(res, from ?? 0);
      return;
    }

    const watch: OpenWatch = {
      resource,
      matches,
      bookmarks: query.allowWatchBookmarks === 'true' || query.allowWatchBookmarks === '1',
      response: res,
      timers: [],
    };
    if (from === undefined) {
      // "Get state and start at most recent": synthetic ADDED for what exists now.
      for (const object of this.store[resource].values()) {
        if (matches(object)) this.write(res, 'ADDED', this.withKind(resource, object));
      }
    } else {
      for (const change of this.history) if (change.rv > from) this.deliver(watch, change);
    }
    const timeout = Number(query.timeoutSeconds);
    if (Number.isFinite(timeout) && timeout > 0) {
      watch.timers.push(setTimeout(() => res.end(), timeout * 1000));
    }
    if (watch.bookmarks && this.options.bookmarkIntervalMs) {
      watch.timers.push(setInterval(() => this.sendBookmark(watch), this.options.bookmarkIntervalMs));
    }
    this.watches.add(watch);
    res.on('close', () => this.closeWatch(watch));
  }

  private closeWatch(watch: OpenWatch): void {
    for (const timer of watch.timers) clearTimeout(timer);
    this.watches.delete(watch);
    if (!watch.response.writableEnded) watch.response.end();
  }

  private deliver(watch: OpenWatch, change: Change): void {
    let type: WatchEventType | undefined;
    const now = watch.matches(change.object);
    if (change.type === 'MODIFIED') {
      const before = change.previous !== undefined && watch.matches(change.previous);
      type = before && now ? 'MODIFIED' : now ? 'ADDED' : before ? 'DELETED' : undefined;
    } else if (now) {
      type = change.type;
    }
    if (type) this.write(watch.response, type, this.withKind(watch.resource, change.object));
  }

  private sendBookmark(watch: OpenWatch): void {
    if (!watch.bookmarks) return;
    const { kind, apiVersion } = KINDS[watch.resource];
    this.write(watch.response, 'BOOKMARK', { kind, apiVersion, metadata: { resourceVersion: String(this.rv) } });
  }

  private sendGone(res: ServerResponse, requested: number): void {
    this.write(
      res,
      'ERROR',
      status(410, 'Expired', `too old resource version: ${requested} (${Math.max(this.oldestWatchable, requested + 1)})`),
    );
    res.end();
  }

  private withKind(resource: FakeResource, object: KubeObject): unknown {
    return { ...KINDS[resource], ...object };
  }

  private write(res: ServerResponse, type: WatchEventType, object: unknown): void {
    if (!res.writableEnded && !res.destroyed) res.write(`${JSON.stringify({ type, object })}\n`);
  }
}
