/**
 * Benchmark child: the whole Exporter (pod watch, kubelet client, shim pool, collector, renderer)
 * alone in its process, pointed at the simulated node through its flags like on a real node.
 *
 * Protocol (IPC): { kind: 'start', flags, pods } → { kind: 'started', idle: ProcessMemory } once
 * it serves and the pod list is in; { kind: 'collect' } → one CollectSample (a collection, its
 * text rendering, timed, then its gzip compression as a scrape is served, untimed); { kind: 'series' } →
 * { kind: 'series', series } (the last collection's series, counted apart so that parsing it never
 * adds to the measured peak); { kind: 'mappings' } → the largest resident mappings now, then the V8
 * heap spaces (physical size) and external memory;
 * { kind: 'stop' } → { kind: 'stopped', maxRssBytes }.
 */
import { performance } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { Exporter } from '../src/exporter.ts';
import { parsePromText } from '../src/prom-text/index.ts';
import { processMemory, residentByMapping, type ProcessMemory } from './process-memory.ts';
import { startBenchExporter } from './start-exporter.ts';

const gzipAsync = promisify(gzip);

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
}

export type SeriesCount = { total: number; maxPerContainer: number; maxPerPod: number; containers: number; pods: number };

let exporter: Exporter | undefined;

function cpuMs(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1000;
}

/** Series of the exporter's own families per container and per pod (identity labels only). */
function countSeries(text: string): SeriesCount {
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
  // Served as a Prometheus scrape is (gzip, src/publish/server.ts): that flattens the text and
  // compresses it, as in production. Untimed; the bytes are dropped.
  await gzipAsync(text);
  const memory = processMemory();
  return {
    kind: 'collected',
    wallMs,
    cpuMs: collectCpu,
    renderWallMs,
    renderCpuMs,
    rssBytes: memory.rssBytes,
    maxRssBytes: memory.peakRssBytes,
    heapUsedBytes: heap.heapUsed,
    heapTotalBytes: heap.heapTotal,
    shimsOk: snapshot.sandboxes.filter((s) => s.state === 'scraped').length,
    sandboxes: snapshot.sandboxes.length,
    sourcesDown: Object.entries(snapshot.sources).flatMap(([name, s]) => (s.up ? [] : [name])),
  };
}

process.on('message', (message: { kind: string; flags?: string[]; env?: Record<string, string>; pods?: number }) => {
  const reply = (value: unknown): void => void process.send?.(value);
  const fail = (error: unknown): void => reply({ kind: 'error', message: error instanceof Error ? error.stack : String(error) });
  if (message.kind === 'start') {
    // RSS once everything is loaded, the port served and the pod list in, before any collection: the floor.
    startBenchExporter(message.flags ?? [], message.env ?? {}, message.pods ?? 0).then((started) => {
      exporter = started;
      const idle: ProcessMemory = processMemory();
      reply({ kind: 'started', idle });
    }, fail);
  } else if (message.kind === 'collect') collect().then(reply, fail);
  else if (message.kind === 'mappings') {
    const spaces = getHeapSpaceStatistics().map((s) => ({
      mapping: `V8 ${s.space_name} (used ${(s.space_used_size / 2 ** 20).toFixed(1)} MiB)`,
      rssBytes: s.physical_space_size,
    }));
    const { external, arrayBuffers } = process.memoryUsage();
    const native = [
      { mapping: 'V8 external memory (of which array buffers ' + (arrayBuffers / 2 ** 20).toFixed(1) + ' MiB)', rssBytes: external },
    ];
    reply({ kind: 'mappings', mappings: [...residentByMapping().slice(0, 6), ...spaces, ...native] });
  } else if (message.kind === 'series') {
    const latest = exporter?.latest();
    if (latest === undefined) fail(new Error('no collection yet'));
    else exporter!.renderer.render(latest, 'text').then((text) => reply({ kind: 'series', series: countSeries(text) }), fail);
  } else if (message.kind === 'stop') {
    void (exporter?.close() ?? Promise.resolve()).finally(() => {
      reply({ kind: 'stopped', maxRssBytes: processMemory().peakRssBytes });
      setTimeout(() => process.exit(0), 50);
    });
  }
});
