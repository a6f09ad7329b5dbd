/**
 * Shim bodies decoded off the main thread. A hostile guest's 4 MiB answer of distinct series
 * takes a few hundred milliseconds to decode (docs/security.md, "A hostile decode never blinds the
 * node"): on the main thread that is as long as /healthz, /readyz and every other request wait.
 * One worker thread decodes the bodies in turn; the main thread only copies each body to it.
 *
 * This module is also the worker's entry (it starts itself), so a build that compiles src/main.ts
 * and its imports ships it.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { ShimOutcome } from './translate/correlate.ts';
import { decodeShimBody, type ShimBodyInput } from './translate/shim-body.ts';

export interface ShimDecoder {
  /** The body's outcome. The body is read (copied) before this returns: the caller may reuse it at once. */
  decode(body: Uint8Array, input: ShimBodyInput): Promise<ShimOutcome>;
  close(): Promise<void>;
}

/** Decodes on the calling thread (tests, and a fallback). */
export const inlineShimDecoder: ShimDecoder = {
  decode: async (body, input) => decodeShimBody(body, input),
  close: async () => undefined,
};

const ROLE = 'kata-metrics-bridge shim decoder';

interface DecodeJob {
  id: number;
  body: ArrayBuffer;
  input: ShimBodyInput;
}

type DecodeReply = { id: number; outcome: ShimOutcome } | { id: number; error: string };

interface Pending {
  resolve(outcome: ShimOutcome): void;
  reject(error: Error): void;
}

/** One worker thread, started on the first body; restarted after it dies. */
export class WorkerShimDecoder implements ShimDecoder {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  decode(body: Uint8Array, input: ShimBodyInput): Promise<ShimOutcome> {
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    // A copy of its own (Buffer#slice would be a view), moved, not copied again, to the worker.
    const copy = new Uint8Array(body).buffer;
    return new Promise<ShimOutcome>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // Referenced while it has work, so `--once` does not exit under it.
      worker.ref();
      worker.postMessage({ id, body: copy, input } satisfies DecodeJob, [copy]);
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private start(): Worker {
    const source = new URL(import.meta.url);
    // Under tsx (development and tests) the worker needs the TypeScript loader too.
    const execArgv = source.pathname.endsWith('.ts') ? ['--import', 'tsx'] : [];
    const worker = new Worker(source, { workerData: { role: ROLE }, execArgv });
    worker.unref();
    worker.on('message', (reply: DecodeReply) => this.settle(reply));
    const fail = (error: Error): void => {
      if (this.worker === worker) this.worker = undefined;
      for (const pending of this.pending.values()) pending.reject(error);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the shim decode thread exited (code ${code})`)));
    this.worker = worker;
    return worker;
  }

  private settle(reply: DecodeReply): void {
    const pending = this.pending.get(reply.id);
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker?.unref();
    if (pending === undefined) return;
    if ('error' in reply) pending.reject(new Error(`shim decode thread: ${reply.error}`));
    else pending.resolve(reply.outcome);
  }
}

/** The worker's side: decode each job in turn and answer. */
function serve(port: NonNullable<typeof parentPort>): void {
  port.on('message', ({ id, body, input }: DecodeJob) => {
    let reply: DecodeReply;
    try {
      reply = { id, outcome: decodeShimBody(new Uint8Array(body), input) };
    } catch (error) {
      reply = { id, error: error instanceof Error ? error.message : String(error) };
    }
    port.postMessage(reply);
  });
}

if (!isMainThread && parentPort !== null && (workerData as { role?: unknown } | null)?.role === ROLE) serve(parentPort);
