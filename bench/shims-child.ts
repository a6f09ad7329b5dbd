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
 * { kind: 'served' } → { kind: 'served', ms: [...] }, each answer's time from its request's arrival
 * to its last byte handed to the socket since the previous 'served' (how close the emulation came
 * to the latency asked for); { kind: 'stop' } → closes every socket and exits.
 */
import diagnostics from 'node:diagnostics_channel';
import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { startFakeShim, type FakeShim } from '../src/lab/fake-shim.ts';
import { benchShimPayload } from './payload.ts';

export interface ShimsChildStart {
  kind: 'start';
  latencyMs: number;
  shims: { socketPath: string; bindPath: string; payload: number }[];
}

const running: FakeShim[] = [];

const arrivals = new WeakMap<ServerResponse, number>();
let served: number[] = [];
diagnostics.channel('http.server.request.start').subscribe((message) => {
  arrivals.set((message as { response: ServerResponse }).response, performance.now());
});
diagnostics.channel('http.server.response.finish').subscribe((message) => {
  const arrived = arrivals.get((message as { response: ServerResponse }).response);
  if (arrived !== undefined) served.push(performance.now() - arrived);
});

async function start(message: ShimsChildStart): Promise<number> {
  let bodyBytes = 0;
  for (const shim of message.shims) {
    const body = Buffer.from(benchShimPayload(shim.payload));
    bodyBytes = body.length;
    running.push(
      await startFakeShim({ socketPath: shim.socketPath, bindPath: shim.bindPath, payload: () => body, delayMs: message.latencyMs }),
    );
  }
  return bodyBytes;
}

process.on('message', (message: { kind: string }) => {
  if (message.kind === 'start') {
    start(message as ShimsChildStart).then(
      (bodyBytes) => process.send?.({ kind: 'started', bodyBytes }),
      (error: unknown) => process.send?.({ kind: 'error', message: error instanceof Error ? error.stack : String(error) }),
    );
  } else if (message.kind === 'served') {
    process.send?.({ kind: 'served', ms: served });
    served = [];
  } else if (message.kind === 'stop') {
    void Promise.all(running.map((shim) => shim.close())).finally(() => process.exit(0));
  }
});
