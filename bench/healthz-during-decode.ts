/**
 * How long /healthz waits while the exporter decodes hostile shim payloads (docs/security.md,
 * "A hostile decode never blinds the node"): `npx tsx bench/healthz-during-decode.ts [--hostile=1]`.
 * A simulated node of six pods, `--hostile` of them served a 4 MiB payload (the default
 * --shim.max-bytes) of distinct series with 32 labels each, which the decoder reads in full; a
 * client in another process asks /healthz every 5 ms while /metrics is scraped 20 times. Prints
 * the /healthz latencies with no hostile payload, then with the hostile ones decoded on the main
 * thread and on the decode thread, side by side in one run. Never part of npm test.
 */
import { fork } from 'node:child_process';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { startFakeShim, wideSeriesPayload } from '../src/lab/fake-shim.ts';
import { NodeLab } from '../src/lab/node-lab.ts';
import { parseCommandLine } from '../src/config.ts';
import { Exporter } from '../src/exporter.ts';
import { silentLogger } from '../src/log.ts';
import { inlineShimDecoder } from '../src/shim-decoder.ts';

const MAX_BYTES = 4 * 1024 * 1024;
const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const HOSTILE = Number(args.get('hostile') ?? 1);
const SCRAPES = 20;

/** The poller: another process, so its own timers are never held by the exporter's event loop. */
const POLLER = `
const url = process.argv[1];
const latencies = [];
let stop = false;
process.on('message', () => { stop = true; });
(async () => {
  while (!stop) {
    const started = performance.now();
    const response = await fetch(url);
    await response.arrayBuffer();
    latencies.push(performance.now() - started);
    await new Promise((r) => setTimeout(r, 5));
  }
  process.send(latencies, () => process.exit(0));
})();
`;

async function measure(hostile: number, onMainThread: boolean): Promise<number[]> {
  const pods = Array.from({ length: 6 }, (_, i) => ({ name: `pod-${i}`, hypervisor: 'qemu' as const }));
  const lab = await NodeLab.start({ pods });
  for (let i = 0; i < hostile; i++) {
    const state = lab.pods.get(`ci/pod-${i}`)!;
    const payload = wideSeriesPayload(lab.shimPayload(state), MAX_BYTES);
    const socketPath = state.shim!.socketPath;
    await state.shim!.close();
    const bindPath = join(lab.dir, `hostile-${i}.sock`);
    state.shim = await startFakeShim({ socketPath: bindPath, payload: () => payload });
    await rename(bindPath, socketPath);
  }
  const parsed = parseCommandLine(
    [...lab.flags(), '--collect.min-interval=0s', '--shim.interval=0s', '--web.listen-address=127.0.0.1:0'],
    {},
  );
  if (parsed.kind !== 'run') throw new Error('no configuration');
  const exporter = new Exporter({
    config: parsed.config,
    logger: silentLogger,
    build: { version: 'bench', revision: 'bench', nodeVersion: process.version },
    ...(onMainThread ? { shimDecoder: inlineShimDecoder } : {}),
  });
  await exporter.startSources(30_000);
  const { port } = await exporter.listen();
  const poller = fork('-e', [POLLER, `http://127.0.0.1:${port}/healthz`], { execArgv: [] });
  const latencies = new Promise<number[]>((resolve) => poller.once('message', (m) => resolve(m as number[])));
  try {
    for (let i = 0; i < SCRAPES; i++) await (await fetch(`http://127.0.0.1:${port}/metrics`)).arrayBuffer();
    poller.send('stop');
    return await latencies;
  } finally {
    await exporter.close();
    await lab.close();
  }
}

function summary(label: string, latencies: number[]): string {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(1);
  return `${label.padEnd(34)} ${String(sorted.length).padStart(5)} requests   median ${at(0.5)} ms   p99 ${at(0.99)} ms   max ${sorted.at(-1)!.toFixed(1)} ms`;
}

const runs: [string, number, boolean][] = [
  ['honest node', 0, false],
  [`${HOSTILE} hostile, main thread`, HOSTILE, true],
  [`${HOSTILE} hostile, decode thread`, HOSTILE, false],
];
for (const [label, hostile, onMainThread] of runs) console.log(summary(`/healthz, ${label}`, await measure(hostile, onMainThread)));
