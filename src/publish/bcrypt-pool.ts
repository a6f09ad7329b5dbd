/**
 * bcrypt verifications on worker threads, so that a flood of wrong passwords costs CPU on the
 * workers and never delays /healthz or a scrape on the main thread. A bounded number of
 * verifications wait; beyond that `verify` answers undefined at once, without work.
 */

import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { VerifyRequest, VerifyResponse } from './bcrypt-worker.ts';

/** The worker's own file: .ts when run from source, .js once compiled (deploy/Dockerfile). */
const WORKER_URL = new URL(`./bcrypt-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

export interface PasswordVerifier {
  /** Whether the password matches the hash; undefined when too many verifications wait already. */
  verify(password: string, hash: string): Promise<boolean> | undefined;
  /** Verifications running or waiting. */
  readonly pending: number;
  close(): Promise<void>;
}

export interface BcryptPoolOptions {
  /** Worker threads; default one per spare core, at most two (a DaemonSet has little CPU). */
  workers?: number;
  /** Verifications that may wait for a worker. */
  maxWaiting?: number;
}

interface Task {
  request: VerifyRequest;
  resolve: (matches: boolean) => void;
}

interface Slot {
  worker: Worker;
  task: Task | undefined;
}

export class BcryptWorkerPool implements PasswordVerifier {
  private readonly size: number;
  private readonly maxWaiting: number;
  private readonly slots: Slot[] = [];
  private readonly waiting: Task[] = [];
  private nextId = 0;
  private closed = false;
  /** Verifications handed to a worker so far. */
  dispatched = 0;

  constructor(options: BcryptPoolOptions = {}) {
    this.size = options.workers ?? Math.max(1, Math.min(2, availableParallelism() - 1));
    this.maxWaiting = options.maxWaiting ?? 16;
  }

  get pending(): number {
    return this.waiting.length + this.slots.filter((slot) => slot.task !== undefined).length;
  }

  verify(password: string, hash: string): Promise<boolean> | undefined {
    if (this.closed || this.waiting.length >= this.maxWaiting) return undefined;
    return new Promise<boolean>((resolve) => {
      this.waiting.push({ request: { id: this.nextId++, password, hash }, resolve });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      const slot = this.slots.find((s) => s.task === undefined) ?? (this.slots.length < this.size ? this.start() : undefined);
      if (slot === undefined) return;
      slot.task = this.waiting.shift()!;
      this.dispatched += 1;
      slot.worker.postMessage(slot.task.request);
    }
  }

  /** Workers start on first use and do not keep the process alive. */
  private start(): Slot {
    const slot: Slot = { worker: new Worker(WORKER_URL), task: undefined };
    slot.worker.unref();
    slot.worker.on('message', (response: VerifyResponse) => {
      const task = slot.task;
      if (task === undefined || task.request.id !== response.id) return;
      slot.task = undefined;
      task.resolve(response.matches);
      this.dispatch();
    });
    // A worker that dies denies its verification and is replaced on the next dispatch.
    const lost = () => {
      const index = this.slots.indexOf(slot);
      if (index < 0) return;
      this.slots.splice(index, 1);
      slot.task?.resolve(false);
      slot.task = undefined;
      if (!this.closed) this.dispatch();
    };
    slot.worker.on('error', lost);
    slot.worker.on('exit', lost);
    this.slots.push(slot);
    return slot;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const task of this.waiting.splice(0)) task.resolve(false);
    await Promise.all(this.slots.map((slot) => slot.worker.terminate()));
  }
}
