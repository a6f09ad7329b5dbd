/**
 * Benchmark child: the whole Exporter (pod watch, kubelet client, shim pool, collector, renderer)
 * alone in its process, pointed at the simulated node through its flags like on a real node.
 *
 * Protocol (IPC): { kind: 'start', flags, pods } → { kind: 'started' } once the pod list is in;
 * { kind: 'collect' } → one CollectSample; { kind: 'stop' } → { kind: 'stopped', maxRssBytes }.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Exporter } from '../src/exporter.ts';
import { parsePromText } from '../src/prom-text/index.ts';
import { startBenchExporter } from './start-exporter.ts';

export interface CollectSample {
  kind: 'collected';
  wallMs: number;
  cpuMs: number;
  renderWallMs: number;
  renderCpuMs: number;
  rssBytes: number;
  maxRssBytes: number;
  /** V8 heap right after the collection (before rendering): used, and reserved by V8. */
  heapUsedBytes: number;
  heapTotalBytes: number;
  shimsOk: number;
  sandboxes: number;
  sourcesDown: string[];
  series: { total: number; maxPerContainer: number; maxPerPod: number; containers: number; pods: number };
}

let exporter: Exporter | undefined;

function cpuMs(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1000;
}

/** Series of the exporter's own families per container and per pod (identity labels only). */
function countSeries(text: string): CollectSample['series'] {
  const parsed = parsePromText(text, { keepPrefixes: ['kata_bridge_'] });
  const perContainer = new Map<string, number>();
  const perPod = new Map<string, number>();
  let total = 0;
  for (const family of parsed.families) {
    for (const sample of family.samples) {
      total++;
      const { namespace, pod, container } = sample.labels;
      if (pod === undefined || namespace === undefined) continue;
      if (container !== undefined) {
        const key = `${namespace}/${pod}/${container}`;
        perContainer.set(key, (perContainer.get(key) ?? 0) + 1);
      } else {
        const key = `${namespace}/${pod}`;
        perPod.set(key, (perPod.get(key) ?? 0) + 1);
      }
    }
  }
  return {
    total,
    maxPerContainer: Math.max(0, ...perContainer.values()),
    maxPerPod: Math.max(0, ...perPod.values()),
    containers: perContainer.size,
    pods: perPod.size,
  };
}

async function collect(): Promise<CollectSample> {
  const e = exporter!;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const snapshot = await e.snapshot();
  const wallMs = performance.now() - t0;
  const collectCpu = cpuMs(process.cpuUsage(cpu0));
  const heap = process.memoryUsage();
  const r0 = process.cpuUsage();
  const rt0 = performance.now();
  const text = await e.renderer.render(snapshot, 'text');
  const renderWallMs = performance.now() - rt0;
  const renderCpuMs = cpuMs(process.cpuUsage(r0));
  return {
    kind: 'collected',
    wallMs,
    cpuMs: collectCpu,
    renderWallMs,
    renderCpuMs,
    rssBytes: process.memoryUsage.rss(),
    maxRssBytes: peakRssBytes(),
    heapUsedBytes: heap.heapUsed,
    heapTotalBytes: heap.heapTotal,
    shimsOk: snapshot.sandboxes.filter((s) => s.state === 'scraped').length,
    sandboxes: snapshot.sandboxes.length,
    sourcesDown: Object.entries(snapshot.sources).flatMap(([name, s]) => (s.up ? [] : [name])),
    series: countSeries(text),
  };
}

process.on('message', (message: { kind: string; flags?: string[]; env?: Record<string, string>; pods?: number }) => {
  const reply = (value: unknown): void => void process.send?.(value);
  const fail = (error: unknown): void => reply({ kind: 'error', message: error instanceof Error ? error.stack : String(error) });
  if (message.kind === 'start') {
    // RSS once everything is loaded and the pod list is in, before any collection: the floor.
    startBenchExporter(message.flags ?? [], message.env ?? {}, message.pods ?? 0).then((started) => {
      exporter = started;
      reply({ kind: 'started', idleRssBytes: process.memoryUsage.rss() });
    }, fail);
  }
  else if (message.kind === 'collect') collect().then(reply, fail);
  else if (message.kind === 'stop') {
    void (exporter?.close() ?? Promise.resolve()).finally(() => {
      reply({ kind: 'stopped', maxRssBytes: peakRssBytes() });
      setTimeout(() => process.exit(0), 50);
    });
  }
});

/**
 * This process's own RSS high-water mark (VmHWM). Not getrusage's maxRSS: on Linux that survives
 * execve, so a forked child would report its parent's peak.
 */
function peakRssBytes(): number {
  const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) * 1024 : process.memoryUsage.rss();
}
