/**
 * Benchmark child for the node-cost table (bench/node-cost.ts): the whole Exporter on the simulated
 * node's flags, with its collection clock injected, so minutes of 15 s scrapes run back to back.
 * Each collection is rendered as a scrape would render it.
 *
 * Protocol (IPC): { kind: 'start', flags, env, pods } → { kind: 'started' };
 * { kind: 'collect', atMs } → { kind: 'collected', cpuMs, calls, sandboxesWithGuestData };
 * { kind: 'stop' } → exits.
 */
import type { Exporter } from '../src/exporter.ts';
import { startBenchExporter } from './start-exporter.ts';

export interface NodeCostCollect {
  kind: 'collected';
  /** This process's CPU (every thread: the decode worker too) for the collection and its rendering. */
  cpuMs: number;
  /** Shim calls the collection made. */
  calls: number;
  /** Pods whose guest series were published (fresh or re-used). */
  podsWithGuestData: number;
}

let exporter: Exporter | undefined;
let clockMs = 0;
let callsBefore = 0;

function totalCalls(e: Exporter): number {
  let sum = 0;
  for (const calls of e.shims.callCounts().values()) sum += calls;
  return sum;
}

async function collect(atMs: number): Promise<NodeCostCollect> {
  const e = exporter!;
  clockMs = atMs;
  const cpu0 = process.cpuUsage();
  const snapshot = await e.snapshot();
  await e.renderer.render(snapshot, 'text');
  const cpu = process.cpuUsage(cpu0);
  const calls = totalCalls(e);
  const made = calls - callsBefore;
  callsBefore = calls;
  return {
    kind: 'collected',
    cpuMs: (cpu.user + cpu.system) / 1000,
    calls: made,
    podsWithGuestData: snapshot.pods.filter((p) => p.guestSampleAgeSeconds !== undefined).length,
  };
}

process.on('message', (message: { kind: string; flags?: string[]; env?: Record<string, string>; pods?: number; atMs?: number }) => {
  const reply = (value: unknown): void => void process.send?.(value);
  const fail = (error: unknown): void => reply({ kind: 'error', message: error instanceof Error ? error.stack : String(error) });
  if (message.kind === 'start') {
    clockMs = Date.now();
    startBenchExporter(message.flags ?? [], message.env ?? {}, message.pods ?? 0, () => clockMs).then((started) => {
      exporter = started;
      reply({ kind: 'started' });
    }, fail);
  } else if (message.kind === 'collect') collect(message.atMs ?? Date.now()).then(reply, fail);
  else if (message.kind === 'stop') void (exporter?.close() ?? Promise.resolve()).finally(() => process.exit(0));
});
