/**
 * The whole Exporter in the calling process, against the simulated node (bench/node-child.ts) in
 * a child: what the profiling scripts (heap-profile.ts, cpu-profile.ts) measure.
 */
import { fork } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Exporter } from '../src/exporter.ts';
import { startBenchExporter } from './start-exporter.ts';

const here = dirname(fileURLToPath(import.meta.url));

export interface InProcessExporter {
  exporter: Exporter;
  /** One collection and its text rendering. */
  collect(): Promise<void>;
  close(): Promise<void>;
}

/** Starts the node of `n` sandboxes and an exporter on it, warmed up with two collections. */
export async function startInProcessExporter(n: number): Promise<InProcessExporter> {
  const node = fork(join(here, 'node-child.ts'), [String(n)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: process.execArgv.filter((a) => a !== '--expose-gc'),
  });
  const ready = await new Promise<{ flags: string[]; env: Record<string, string> }>((resolve) =>
    node.once('message', resolve as (m: unknown) => void),
  );
  const exporter = await startBenchExporter(ready.flags, ready.env, n);
  // A profile of fewer pods than asked for would measure another node.
  if (exporter.watcher.pods().size < n) throw new Error(`the pod list never reached ${n} pods`);
  const collect = async (): Promise<void> => {
    await exporter.renderer.render(await exporter.snapshot(), 'text');
  };
  for (let i = 0; i < 2; i++) await collect();
  return {
    exporter,
    collect,
    close: async () => {
      await exporter.close();
      node.send({ kind: 'stop' });
    },
  };
}
