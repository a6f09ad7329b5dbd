/**
 * A benchmark child process spoken to over IPC: one request, one answer. Shared by the bench
 * (run.ts) and the memory comparison (memory.ts).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileBenchChildren, imageEnv, imageNodeFlags } from './build.ts';

const here = dirname(fileURLToPath(import.meta.url));

export type Message = { kind: string; [key: string]: unknown };

/**
 * How a child runs: 'compiled' is what the image ships (tsc output, `node --enable-source-maps`,
 * the DaemonSet's NODE_OPTIONS and environment); 'tsx' is the development loader.
 */
export type Runtime = 'tsx' | 'compiled';

export interface ChildOptions {
  runtime?: Runtime;
  /** Node flags after the image's (or tsx's). */
  extraFlags?: readonly string[];
  /** Environment variables added to this process's. */
  env?: Readonly<Record<string, string>>;
  /**
   * Another checkout of the project to compile the child from (compiled runtime only), with that
   * checkout's DaemonSet NODE_OPTIONS: a "before" measured side by side with this tree.
   */
  tree?: string;
}

export class Child {
  private readonly proc: ChildProcess;
  private readonly inbox: Message[] = [];
  private waiter: { resolve: (m: Message) => void; reject: (e: Error) => void } | undefined;
  private stopSent = false;

  constructor(file: string, argv: string[] = [], options: ChildOptions = {}) {
    const runtime = options.runtime ?? 'tsx';
    // 'tsx' inherits this process's tsx loader; 'compiled' runs the tsc output like the image.
    const profile = process.env.BENCH_PROFILE_DIR !== undefined && file.startsWith(process.env.BENCH_PROFILE ?? '\0');
    const base = [...(runtime === 'compiled' ? imageNodeFlags(options.tree) : process.execArgv), ...(options.extraFlags ?? [])];
    const execArgv = profile ? [...base, '--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : base;
    const path = runtime === 'compiled' ? compileBenchChildren(options.tree).file(file.replace(/\.ts$/, '')) : join(here, file);
    // A compiled child also gets the DaemonSet's environment (MALLOC_ARENA_MAX), as in a cluster.
    const env = { ...process.env, ...(runtime === 'compiled' ? imageEnv(options.tree) : {}), ...options.env };
    this.proc = fork(path, argv, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv, env });
    this.proc.on('message', (m: Message) => {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        if (m.kind === 'error') w.reject(new Error(`${file}: ${String(m.message)}`));
        else w.resolve(m);
      } else this.inbox.push(m);
    });
    this.proc.on('exit', (code) => this.waiter?.reject(new Error(`${file} exited (${code})`)));
    // A send racing the child's exit fails with EPIPE here; the exit handler has said what matters.
    this.proc.on('error', () => undefined);
  }

  next<T = Message>(): Promise<T> {
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(queued as unknown as T);
    return new Promise<T>((resolve, reject) => {
      this.waiter = { resolve: resolve as (m: Message) => void, reject };
    });
  }

  request<T = Message>(message: Message): Promise<T> {
    if (message.kind === 'stop') this.stopSent = true;
    this.proc.send(message);
    return this.next<T>();
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    // A child already told to stop is on its way out, its channel closing: it is only waited for.
    if (!this.stopSent && this.proc.connected) {
      this.stopSent = true;
      this.proc.send({ kind: 'stop' });
    }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}
