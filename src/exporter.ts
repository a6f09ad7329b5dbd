/**
 * Wires the sources, the collector and the renderer into a running exporter, for a Config.
 * main.ts handles the process (flags, signals, exit codes); this module is what tests start.
 */

import type { AddressInfo } from 'node:net';
import { Collector, type PodSource } from './collector.ts';
import { isAuditEnabled, type Config } from './config.ts';
import type { Logger } from './log.ts';
import { SnapshotRenderer, type BuildInfo } from './publish/snapshot-renderer.ts';
import { SelfStats } from './translate/self-stats.ts';
import { closableServer, type ClosableServer } from './publish/connections.ts';
import { createApp, type ExporterCore } from './publish/server.ts';
import { BasicAuthenticator, createWebServer, webMiddleware } from './publish/listener.ts';
import type { WebConfigSource } from './publish/web-config.ts';
import { createShimPool, type ShimPool } from './scrapers/shim-pool.ts';
import { WorkerShimDecoder, type ShimDecoder } from './shim-decoder.ts';
import { KubeletClient } from './scrapers/kubelet.ts';
import { PodWatcher } from './scrapers/pods.ts';
import { RuntimeConfigSource } from './scrapers/runtime-config.ts';
import { SingleFlight } from './single-flight.ts';
import { UsageRecorder } from './usage-recorder.ts';
import type { NodeSnapshot } from './translate/snapshot.ts';
import type { KubeConfig } from '@kubernetes/client-node';

export interface ExporterOptions {
  config: Config;
  logger: Logger;
  build: BuildInfo;
  /** A ready KubeConfig (the demo's simulated API server); else --kubeconfig or in-cluster. */
  kubeConfig?: KubeConfig;
  /** Include the client library's process metrics (off in tests that compare whole expositions). */
  processMetrics?: boolean;
  /** The collection clock; a simulated node with its own clock passes the same one. */
  now?: () => number;
  /** Where shim bodies are decoded: by default a worker thread of the exporter's own. */
  shimDecoder?: ShimDecoder;
}

/** Adapts the watcher to what the collector needs. */
function podSource(watcher: PodWatcher): PodSource {
  return {
    pods: () => watcher.pods(),
    namespaces: () => watcher.namespaces(),
    isReady: () => watcher.isReady(),
    isHealthy: () => {
      // A watch that reconnected is healthy as soon as it is open, though its failure count only
      // resets when it ends (minutes later).
      const { pods, runtimeClasses, namespaces } = watcher.stats();
      return [pods, runtimeClasses, ...(namespaces ? [namespaces] : [])].every((w) => w.watching || w.consecutiveFailures === 0);
    },
  };
}

const LISTEN_HINTS: Record<string, string> = {
  EADDRINUSE: 'another process already listens there: stop it, or choose another --web.listen-address',
  EACCES: 'permission denied: choose a port above 1023, or another --web.listen-address',
  EADDRNOTAVAIL: 'no interface of this host has that address: choose another --web.listen-address',
};

/** The metrics port cannot be bound; the message names the address and what to do. */
export class ListenError extends Error {
  override name = 'ListenError';

  constructor(host: string | undefined, port: number, cause: NodeJS.ErrnoException) {
    const address = `${host === undefined ? '*' : host.includes(':') ? `[${host}]` : host}:${port}`;
    super(
      `cannot listen on ${address}: ${(cause.code !== undefined ? LISTEN_HINTS[cause.code] : undefined) ?? `${cause.message}; choose another --web.listen-address`}`,
      { cause },
    );
  }
}

export class Exporter implements ExporterCore {
  readonly watcher: PodWatcher;
  readonly shims: ShimPool;
  readonly self = new SelfStats();
  readonly renderer: SnapshotRenderer;
  private readonly kubelet: KubeletClient;
  private readonly collector: Collector;
  private readonly shimDecoder: ShimDecoder;
  private readonly flight: SingleFlight<NodeSnapshot>;
  private server: ClosableServer | undefined;
  private auth: BasicAuthenticator | undefined;
  /** Usage records of ended pods; opened by startSources (not with --once or --usage.output=off). */
  private usage: UsageRecorder | undefined;

  constructor(private readonly options: ExporterOptions) {
    const { config, logger } = options;
    this.kubelet = new KubeletClient({
      baseUrl: config.kubeletUrl,
      tokenFile: config.kubeletTokenFile,
      caFile: config.kubeletCaFile,
      insecureSkipTlsVerify: config.kubeletInsecureSkipTlsVerify,
      timeoutMs: config.kubeletTimeoutMs,
      maxBytes: 64 * 1024 * 1024,
      logger,
    });
    this.watcher = new PodWatcher({
      nodeName: config.nodeName,
      kubeconfigPath: config.kubeconfig,
      serviceAccountDir: config.serviceAccountDir,
      kubeConfig: options.kubeConfig,
      watchNamespaces: config.auditNamespaceSelector !== undefined,
      labelsAllowlist: config.podLabelsAllowlist,
      logger,
    });
    this.shims = createShimPool({ concurrency: config.shimConcurrency, deadlineMs: config.shimTimeoutMs, maxBytes: config.shimMaxBytes });
    this.shimDecoder = options.shimDecoder ?? new WorkerShimDecoder();
    this.collector = new Collector({
      config,
      logger,
      kubelet: this.kubelet,
      pods: podSource(this.watcher),
      shims: this.shims,
      decoder: this.shimDecoder,
      self: this.self,
      ...(isAuditEnabled(config)
        ? {
            runtimeConfigs: new RuntimeConfigSource({
              containerdConfigPath: config.containerdConfigPath,
              crioConfigPath: config.crioConfigPath,
              logger,
            }),
          }
        : {}),
      now: options.now,
    });
    // The reuse window is about real load on the shims, so it runs on real time even when the
    // collection clock is simulated.
    this.flight = new SingleFlight(async () => {
      const snapshot = await this.collector.collect();
      this.usage?.observe(snapshot);
      return snapshot;
    }, config.collectMinIntervalMs);
    this.renderer = new SnapshotRenderer(this.self, options.build, { processMetrics: options.processMetrics ?? true });
  }

  snapshot(): Promise<NodeSnapshot> {
    return this.flight.get();
  }

  latest(): NodeSnapshot | undefined {
    return this.flight.latest;
  }

  isReady(): boolean {
    return this.watcher.isReady();
  }

  /** Resolves once every usage record under way is written (tests; close() waits for them too). */
  async usageSettled(): Promise<void> {
    await this.usage?.settled();
  }

  /** Collections started so far (single-flight: one per min-interval under any load). */
  get collections(): number {
    return this.flight.runCount;
  }

  /** Starts the pod watch; waits for the first pod list up to `readyTimeoutMs`. */
  async startSources(readyTimeoutMs = 0): Promise<boolean> {
    const { config, logger } = this.options;
    if (!config.once && this.usage === undefined) {
      this.usage = await UsageRecorder.open(config, logger, this.self, this.options.now ?? Date.now);
      const usage = this.usage;
      if (usage !== undefined) this.watcher.onPodEnd((pod, reason) => usage.podEnded(pod, reason));
    }
    this.watcher.start();
    const deadline = Date.now() + readyTimeoutMs;
    while (!this.watcher.isReady() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    return this.watcher.isReady();
  }

  /**
   * Serves the endpoints, over HTTPS and behind basic auth when --web.config.file says so;
   * resolves with the bound address. A bad web config rejects with a ConfigError naming the file.
   */
  async listen(): Promise<AddressInfo & { tls: boolean }> {
    const { config, logger } = this.options;
    // The web config's parser (YAML, schema) is loaded only when there is one to read.
    const web: WebConfigSource | undefined =
      config.webConfigFile === undefined ? undefined : new (await import('./publish/web-config.ts')).WebConfigSource(config.webConfigFile);
    const app = createApp({
      core: this,
      renderer: this.renderer,
      telemetryPath: config.telemetryPath,
      nodeName: config.nodeName,
      version: this.options.build.version,
      logger,
      middleware: web === undefined ? [] : webMiddleware(() => web.current.config, logger, this.authenticator()),
    });
    const { server, tls } = createWebServer(app, web, logger);
    this.server = closableServer(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => reject(new ListenError(config.listenHost, config.listenPort, error)));
      server.listen(config.listenPort, config.listenHost, resolve);
    });
    return { ...(server.address() as AddressInfo), tls };
  }

  /** Basic auth's verifier threads, started with the first check and stopped by close(). */
  private authenticator(): BasicAuthenticator {
    this.auth ??= new BasicAuthenticator();
    return this.auth;
  }

  /** Stops serving and watching; answers in flight get a bounded grace (connections.ts). */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await server?.close();
    await this.auth?.close();
    this.auth = undefined;
    await this.watcher.stop();
    await this.usage?.close();
    this.usage = undefined;
    await this.kubelet.close();
    await this.shims.close();
    await this.shimDecoder.close();
  }
}
