/**
 * Benchmark child: the read-only baseline. It reads the same shim sockets at the same concurrency
 * with the same transport as the exporter (one undici Client per socket, its connection kept
 * across reads, GET /metrics through the dispatch API) and the same kubelet endpoint with the
 * exporter's kubelet client, and discards the bytes: the cost of the I/O alone, against which the exporter's collection CPU
 * is compared.
 *
 * Protocol (IPC): { kind: 'start', sockets, concurrency, kubelet } → { kind: 'started' };
 * { kind: 'read' } → { kind: 'read', wallMs, cpuMs, kubeletMs, bytes }; { kind: 'stop' }.
 */
import { performance } from 'node:perf_hooks';
import pLimit from 'p-limit';
import { Client } from 'undici';
import { silentLogger } from '../src/log.ts';
import { processMemory } from './process-memory.ts';
import { KubeletClient } from '../src/scrapers/kubelet.ts';

interface Start {
  kind: 'start';
  sockets: string[];
  concurrency: number;
  kubelet: { url: string; tokenFile: string; caFile: string };
}

let sockets: string[] = [];
let limit: ReturnType<typeof pLimit> | undefined;
let kubelet: KubeletClient | undefined;

/** One client per socket, kept across reads: the exporter keeps its shim connections too. */
const clients = new Map<string, Client>();

/** One GET /metrics through undici's dispatch API, as the exporter reads: the chunks are counted and dropped. */
async function readSocket(socketPath: string): Promise<number> {
  let client = clients.get(socketPath);
  if (client === undefined) {
    client = new Client('http://shim', { socketPath, pipelining: 1, keepAliveTimeout: 600_000 });
    clients.set(socketPath, client);
  }
  const reading = client;
  return new Promise<number>((resolve, reject) => {
    let bytes = 0;
    reading.dispatch(
      { method: 'GET', path: '/metrics', headers: { host: 'shim', accept: 'text/plain' } },
      {
        onRequestStart() {},
        onResponseStart() {},
        onResponseData(_controller, chunk) {
          bytes += chunk.length;
        },
        onResponseEnd() {
          resolve(bytes);
        },
        onResponseError(_controller, error) {
          reject(error);
        },
      },
    );
  });
}

async function read(): Promise<unknown> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const kubeletRun = (async () => {
    const k0 = performance.now();
    const scrape = await kubelet!.scrape();
    return { ms: performance.now() - k0, bytes: scrape.body.length };
  })();
  const sizes = await Promise.all(sockets.map((s) => limit!(() => readSocket(s))));
  const k = await kubeletRun;
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return {
    kind: 'read',
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    kubeletMs: k.ms,
    bytes: sizes.reduce((a, b) => a + b, 0) + k.bytes,
  };
}

process.on('message', (message: { kind: string } & Partial<Start>) => {
  const reply = (value: unknown): void => void process.send?.(value);
  const fail = (error: unknown): void => reply({ kind: 'error', message: error instanceof Error ? error.stack : String(error) });
  if (message.kind === 'start') {
    sockets = message.sockets ?? [];
    limit = pLimit(message.concurrency ?? 8);
    const k = message.kubelet!;
    kubelet = new KubeletClient({
      baseUrl: k.url,
      tokenFile: k.tokenFile,
      caFile: k.caFile,
      insecureSkipTlsVerify: false,
      timeoutMs: 10_000,
      maxBytes: 64 * 2 ** 20,
      logger: silentLogger,
    });
    reply({ kind: 'started' });
  } else if (message.kind === 'read') read().then(reply, fail);
  else if (message.kind === 'stop') {
    reply({ kind: 'stopped', maxRssBytes: processMemory().peakRssBytes });
    setTimeout(() => process.exit(0), 50);
  }
});
