/**
 * Pod metadata from the API server: list then watch this node's pods (`spec.nodeName=<node>`) and
 * the cluster's RuntimeClasses (and, when the isolation audit selects namespaces, the namespaces
 * and their labels), each through its own reflector (reflector.ts), kept in memory and joined on
 * read.
 *
 * The API server's address and credentials come from --kubeconfig (through the library's
 * KubeConfig: bearer token, client certificates, exec plugins, CA) or from the in-cluster service
 * account, read without the library: api-credentials.ts. One AbortSignal reaches every request
 * and timer, so stop() leaves nothing open.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { inClusterCredentials, kubeConfigCredentials, kubeconfigFileCredentials, type ApiCredentials } from './api-credentials.ts';
import { ApiClient, errorMessage, type Target } from './api-client.ts';
import {
  Reflector,
  type BackoffOptions,
  type ReflectorDeps,
  type ResourceKind,
  type ResourceWatchStats,
  type WatchErrorInfo,
} from './reflector.ts';
import { silentLogger, type Logger } from '../log.ts';
import {
  isNamespaceJson,
  isPodJson,
  isRuntimeClassJson,
  joinRuntimeClass,
  toBasePodRecord,
  toNamespaceRecord,
  toRuntimeClassRecord,
} from '../translate/pod-records.ts';
import type { NamespaceRecord, PodRecord, RuntimeClassRecord } from '../translate/records.ts';
import type { LabelsAllowlist } from '../translate/pod-labels.ts';

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
  /** `--pods.labels-allowlist`: the pod labels kept for kata_bridge_pod_labels (none when absent). */
  labelsAllowlist?: LabelsAllowlist;
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

export interface PodWatcherStats {
  pods: ResourceWatchStats;
  runtimeClasses: ResourceWatchStats;
  /** Only with watchNamespaces. */
  namespaces?: ResourceWatchStats;
  /** The most recent of them. */
  lastError?: WatchErrorInfo;
}

/** How a pod ended, as the watch saw it: its phase became final, or it was deleted (or gone at a relist). */
export type PodEndReason = 'succeeded' | 'failed' | 'deleted';

/** Told each pod's end as soon as the watch sees it, once per reason; must not throw. */
export type PodEndListener = (pod: PodRecord, reason: PodEndReason) => void;

const FINAL_PHASES: Readonly<Record<string, PodEndReason>> = { Succeeded: 'succeeded', Failed: 'failed' };

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
  private readonly podWatch: Reflector<PodRecord>;
  private readonly classWatch: Reflector<RuntimeClassRecord>;
  private readonly namespaceWatch: Reflector<NamespaceRecord> | undefined;
  private controller: AbortController | undefined;
  private runs: Promise<void>[] = [];
  private version = 0;
  private endListener: PodEndListener | undefined;
  /** The pods as the end listener last saw them, to tell what changed. */
  private seenPods: ReadonlyMap<string, PodRecord> = new Map();
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
    const deps: ReflectorDeps = {
      client: new ApiClient(credentials, options.requestTimeoutMs ?? 60_000),
      backoff: { initialMs: options.backoff?.initialMs ?? 500, maxMs: options.backoff?.maxMs ?? 30_000, random },
      watchTimeoutSeconds: () => options.watchTimeoutSeconds ?? Math.floor(300 * (1 + random())),
      logger: options.logger ?? silentLogger,
      onChange: () => {
        this.version += 1;
      },
    };
    const podDeps: ReflectorDeps = {
      ...deps,
      onChange: () => {
        deps.onChange();
        this.tellEnds();
      },
    };
    this.podWatch = new Reflector<PodRecord>(
      {
        target: { resource: 'pods', group: '' },
        path: '/api/v1/pods',
        query: { fieldSelector: `spec.nodeName=${options.nodeName}` },
        decode: (object) => {
          if (!isPodJson(object)) return undefined;
          const base = toBasePodRecord(object, options.labelsAllowlist);
          return { key: base.uid, value: base };
        },
      },
      podDeps,
    );
    this.classWatch = new Reflector(
      byName(
        { resource: 'runtimeclasses', group: 'node.k8s.io' },
        '/apis/node.k8s.io/v1/runtimeclasses',
        isRuntimeClassJson,
        toRuntimeClassRecord,
      ),
      deps,
    );
    this.namespaceWatch = options.watchNamespaces
      ? new Reflector(byName({ resource: 'namespaces', group: '' }, '/api/v1/namespaces', isNamespaceJson, toNamespaceRecord), deps)
      : undefined;
  }

  private watches(): Pick<Reflector<unknown>, 'stats' | 'run'>[] {
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

  /**
   * Calls `listener` for every pod whose phase becomes Succeeded or Failed and every pod deleted
   * (a DELETED event, or gone from a relist), from now on; the pods of the first list that have
   * already finished are told too.
   */
  onPodEnd(listener: PodEndListener): void {
    this.endListener = listener;
  }

  /** Compares the pod store with the last one seen (one pass over this node's pods per change). */
  private tellEnds(): void {
    const listener = this.endListener;
    if (listener === undefined) return;
    const current = this.podWatch.items;
    const previous = this.seenPods;
    this.seenPods = new Map(current);
    const tell = (pod: PodRecord, reason: PodEndReason) => {
      try {
        listener(joinRuntimeClass(pod, this.classWatch.items), reason);
      } catch (error) {
        (this.options.logger ?? silentLogger).error({ source: 'apiserver', err: errorMessage(error) }, 'a pod end listener failed');
      }
    };
    for (const [uid, pod] of previous) if (!current.has(uid)) tell(pod, 'deleted');
    for (const [uid, pod] of current) {
      const reason = FINAL_PHASES[pod.phase ?? ''];
      const before = previous.get(uid);
      if (reason !== undefined && (before === undefined || FINAL_PHASES[before.phase ?? ''] === undefined)) tell(pod, reason);
    }
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
