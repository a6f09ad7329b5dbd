/**
 * Benchmark child: the emulated shims, in a process of their own. On a node every sandbox has its
 * own shim process; here one process serves them all, apart from the simulated kubelet and API
 * server (bench/node-child.ts). A kubelet render there (tens of ms per request at N = 250) would
 * otherwise hold every shim timer due meanwhile, and a 20 ms call would take 40-70 ms.
 *
 * Each shim answers GET /metrics after the emulated latency with a body rendered before the run.
 *
 * Protocol (IPC): { kind: 'start', latencyMs, shims: [{ socketPath, bindPath, payload }] }, where
 * `payload` is the benchShimPayload index, → { kind: 'started', bodyBytes };
 * { kind: 'stop' } → closes every socket and exits.
 */
import { startFakeShim, type FakeShim } from '../src/lab/fake-shim.ts';
import { benchShimPayload } from './payload.ts';

export interface ShimsChildStart {
  kind: 'start';
  latencyMs: number;
  shims: { socketPath: string; bindPath: string; payload: number }[];
}

const running: FakeShim[] = [];

async function start(message: ShimsChildStart): Promise<number> {
  let bodyBytes = 0;
  for (const shim of message.shims) {
    const body = Buffer.from(benchShimPayload(shim.payload));
    bodyBytes = body.length;
    running.push(await startFakeShim({ socketPath: shim.socketPath, bindPath: shim.bindPath, payload: () => body, delayMs: message.latencyMs }));
  }
  return bodyBytes;
}

process.on('message', (message: { kind: string }) => {
  if (message.kind === 'start') {
    start(message as ShimsChildStart).then(
      (bodyBytes) => process.send?.({ kind: 'started', bodyBytes }),
      (error: unknown) => process.send?.({ kind: 'error', message: error instanceof Error ? error.stack : String(error) }),
    );
  } else if (message.kind === 'stop') {
    void Promise.all(running.map((shim) => shim.close())).finally(() => process.exit(0));
  }
});
