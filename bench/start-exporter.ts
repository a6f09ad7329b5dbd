/**
 * The whole Exporter started on the simulated node's flags and environment (bench/node-child.ts),
 * shared by the exporter child and the in-process profiling harness. It imports only what the
 * exporter child ships with, so the child's RSS stays the product's.
 */
import { parseCommandLine } from '../src/config.ts';
import { Exporter } from '../src/exporter.ts';
import { silentLogger } from '../src/log.ts';

/**
 * Starts the exporter as main.ts does (pod watch, then the metrics port on a loopback port) and
 * waits (up to 30 s) until its pod watch holds `pods` pods; `now`: its collection clock.
 */
export async function startBenchExporter(
  flags: readonly string[],
  env: Record<string, string>,
  pods: number,
  now?: () => number,
): Promise<Exporter> {
  // KUBERNETES_SERVICE_HOST/PORT, as the kubelet sets them in a pod.
  Object.assign(process.env, env);
  const parsed = parseCommandLine([...flags, '--collect.min-interval=0s', '--web.listen-address=127.0.0.1:0'], process.env);
  if (parsed.kind !== 'run') throw new Error('no exporter configuration');
  const exporter = new Exporter({
    config: parsed.config,
    logger: silentLogger,
    build: { version: 'bench', revision: 'bench', nodeVersion: process.version },
    now,
  });
  await exporter.startSources(30_000);
  await exporter.listen();
  const deadline = Date.now() + 30_000;
  while (exporter.watcher.pods().size < pods && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return exporter;
}
