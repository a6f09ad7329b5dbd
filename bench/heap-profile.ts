/**
 * Where a collection's memory goes (never part of npm test):
 * `npx tsx --expose-gc bench/heap-profile.ts [N=250] [collections=3]`.
 *
 * Runs the whole Exporter in this process against the simulated node (bench/node-child.ts in a
 * child), warms it up with two collections, then for a few more collections:
 * - V8's sampling heap profiler with the objects collected by minor and major GCs included, so
 *   it shows everything allocated (garbage too), by function and by source file;
 * - heap used before / after each collection (after a forced GC when --expose-gc is given: what a
 *   collection retains), and the GC pauses it caused (count and time, by kind).
 */
import { Session } from 'node:inspector/promises';
import { dirname, join, relative } from 'node:path';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { getHeapSpaceStatistics } from 'node:v8';
import { startInProcessExporter } from './in-process.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const MIB = 2 ** 20;
const n = Number(process.argv[2] ?? 250);
const collections = Number(process.argv[3] ?? 3);
const gc = (globalThis as { gc?: () => void }).gc;

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

function where(url: string): string {
  if (url === '') return '(native)';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const rel = relative(root, path);
  const nm = rel.lastIndexOf('node_modules/');
  if (nm >= 0)
    return rel
      .slice(nm + 'node_modules/'.length)
      .split('/')
      .slice(0, rel.includes('/@', nm) ? 2 : 1)
      .join('/');
  return rel.startsWith('..') ? path : rel;
}

async function main(): Promise<void> {
  const { collect, close } = await startInProcessExporter(n);

  const gcs = new Map<string, { count: number; ms: number }>();
  const kinds: Record<number, string> = { 1: 'scavenge', 2: 'mark-compact', 4: 'incremental', 8: 'weak-callbacks', 16: 'minor-mark-sweep' };
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = kinds[(entry as unknown as { detail: { kind: number } }).detail.kind] ?? 'other';
      const g = gcs.get(kind) ?? { count: 0, ms: 0 };
      g.count++;
      g.ms += entry.duration;
      gcs.set(kind, g);
    }
  });
  observer.observe({ entryTypes: ['gc'] });

  for (let i = 0; i < collections; i++) {
    gc?.();
    const before = process.memoryUsage();
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    await collect();
    const cpu = process.cpuUsage(cpu0);
    const after = process.memoryUsage();
    const spaces = getHeapSpaceStatistics()
      .filter((s) => s.space_size > MIB)
      .map((s) => `${s.space_name.replace(/_space$/, '')} ${(s.space_used_size / MIB).toFixed(0)}/${(s.space_size / MIB).toFixed(0)}`)
      .join(', ');
    gc?.();
    const retained = process.memoryUsage();
    console.log(
      `collection ${i + 1}: ${(performance.now() - t0).toFixed(0)} ms wall, ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms CPU; heap used ${(before.heapUsed / MIB).toFixed(1)} → ${(after.heapUsed / MIB).toFixed(1)} MiB (reserved ${(after.heapTotal / MIB).toFixed(0)}), external+buffers ${(after.external / MIB).toFixed(1)} MiB; after GC ${(retained.heapUsed / MIB).toFixed(1)} MiB; spaces used/size MiB: ${spaces}`,
    );
  }
  await new Promise((r) => setTimeout(r, 100));
  observer.disconnect();
  console.log('\nGC during those collections:', [...gcs].map(([k, v]) => `${k} ${v.count}× ${v.ms.toFixed(0)} ms`).join(', '));

  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 16 * 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  for (let i = 0; i < collections; i++) await collect();
  const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: ProfileNode } };
  session.disconnect();

  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  /** Attributes each allocation to its innermost frame in the project (or the frame itself). */
  const walk = (node: ProfileNode, projectFrame: string | undefined): void => {
    const file = where(node.callFrame.url);
    const own = `${node.callFrame.functionName || '(anonymous)'} ${file}:${node.callFrame.lineNumber + 1}`;
    const inProject = file.startsWith('src/') || file.startsWith('bench/');
    const frame = inProject ? own : projectFrame;
    if (node.selfSize > 0) {
      const key = `${own}${!inProject && projectFrame ? `  ← ${projectFrame}` : ''}`;
      byFunction.set(key, (byFunction.get(key) ?? 0) + node.selfSize);
      byFile.set(file, (byFile.get(file) ?? 0) + node.selfSize);
    }
    for (const child of node.children) walk(child, frame);
  };
  walk(profile.head, undefined);
  const total = [...byFile.values()].reduce((a, b) => a + b, 0);
  const top = (map: Map<string, number>, count: number): string =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, count)
      .map(([k, v]) => `${(v / MIB / collections).toFixed(1).padStart(7)} MiB  ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`)
      .join('\n');
  console.log(`\nAllocated per collection (sampled, garbage included): ${(total / MIB / collections).toFixed(1)} MiB`);
  console.log('\nBy file:\n' + top(byFile, 15));
  console.log('\nBy allocating function (with its innermost project caller):\n' + top(byFunction, 30));

  await close();
}

await main();
