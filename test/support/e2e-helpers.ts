/**
 * Shared pieces of the end-to-end tests: raw HTTP (no automatic decompression, so gzip is seen as
 * sent), promtool, the real process. The exporter on a lab is lab-exporter.ts; waiting is wait.ts.
 */

import { execFile, spawn } from 'node:child_process';
import { request } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** GET with node:http: the body arrives exactly as sent (fetch would gunzip it). */
export function httpGet(url: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** A port that was free a moment ago on 127.0.0.1 (for a child process to bind). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `promtool check metrics` with the exposition on stdin. Exit 0 clean, 3 lint problems, 1 errors. */
export function promtoolCheckMetrics(exposition: string): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = execFile('/usr/bin/promtool', ['check', 'metrics'], { timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      if (code === -1) reject(error);
      else resolve({ code, stdout, stderr });
    });
    child.stdin?.end(exposition);
  });
}

export interface Spawned {
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves with the exit code (or 128+n for a signal), or rejects after `timeoutMs`. */
  exited(timeoutMs?: number): Promise<number>;
  kill(signal?: NodeJS.Signals): void;
}

/** Runs a script with this Node (24) from the repository root, capturing its output. */
export function spawnNode(args: readonly string[], env: Record<string, string> = {}): Spawned {
  const child = spawn(process.execPath, [...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exit = new Promise<number>((resolve) => {
    child.on('close', (code, signal) => resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15)));
  });
  return {
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    exited: (timeoutMs = 60_000) =>
      Promise.race([
        exit,
        new Promise<number>((_, reject) => {
          const timer = setTimeout(() => {
            child.kill('SIGKILL');
            reject(new Error(`process did not exit within ${timeoutMs} ms; stderr:\n${stderr}`));
          }, timeoutMs);
          void exit.then(() => clearTimeout(timer));
        }),
      ]),
    kill: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** What `npm start` runs (after `node`): tsx as a loader in the exporter's own process. */
export const NPM_START = ['--import', 'tsx', 'src/main.ts'];
export const BIN = 'bin/kata-metrics-bridge.js';
