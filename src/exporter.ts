/**
 * Wires the sources, the collector and the renderer into a running exporter, for a Config.
 * main.ts handles the process (flags, signals, exit codes); this module is what tests start.
 */

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Collector, type PodSource } from './collector.ts';
import { isAuditEnabled, type Config } from './config.ts';
import type { Logger } from './log.ts';
import { SelfStats, SnapshotRenderer, type BuildInfo } from './publish/registry.ts';
import { createApp, type ExporterCore } from './publish/server.ts';
import { createWebServer, webMiddleware } from './publish/listener.ts';
import type { WebConfigSource } from './publish/web-config.ts';
import { createShimPool, type ShimPool } from './scrapers/kata-shim.ts';
import { KubeletClient } from './scrapers/kubelet.ts';
import { PodWatcher } from './scrapers/pods.ts';
import { RuntimeConfigSource } from './scrapers/runtime-config.ts';
import { SingleFlight } from './single-flight.ts';
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

export class Exporter implements ExporterCore {
  readonly watcher: PodWatcher;
  readonly shims: ShimPool;
  readonly self = new SelfStats();
  readonly renderer: SnapshotRenderer;
  private readonly kubelet: KubeletClient;
  private readonly collector: Collector;
  private readonly flight: SingleFlight<NodeSnapshot>;
  private server: Server | undefined;

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
    this.collector = new Collector({
      config,
      logger,
      kubelet: this.kubelet,
      pods: podSource(this.watcher),
      shims: this.shims,
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
    this.flight = new SingleFlight(() => this.collector.collect(), config.collectMinIntervalMs);
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

  /** Collections started so far (single-flight: one per min-interval under any load). */
  get collections(): number {
    return this.flight.runCount;
  }

  /** Starts the pod watch; waits for the first pod list up to `readyTimeoutMs`. */
  async startSources(readyTimeoutMs = 0): Promise<boolean> {
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
      middleware: web === undefined ? [] : webMiddleware(() => web.current.config, logger),
    });
    const { server, tls } = createWebServer(app, web, logger);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error) =>
        reject(new Error(`cannot listen on ${config.listenHost ?? '*'}:${config.listenPort}: ${error.message} (choose another --web.listen-address)`)),
      );
      server.listen(config.listenPort, config.listenHost, resolve);
    });
    return { ...(server.address() as AddressInfo), tls };
  }

  /** Stops serving and watching; in-flight requests finish first. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server !== undefined) {
      server.closeIdleConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await this.watcher.stop();
    await this.kubelet.close();
    await this.shims.close();
  }
}
