/**
 * A real Prometheus (Debian's `prometheus` package) for end-to-end tests: a private config, rule
 * files and TSDB in a temp dir, listening on 127.0.0.1, with small clients for the HTTP API.
 * Every wait is bounded; close() stops the process and removes the temp dir.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './e2e-helpers.ts';
import { sleep, waitFor } from './wait.ts';

export interface PrometheusOptions {
  /** host:port targets of the one scrape job. */
  targets: string[];
  jobName: string;
  /** Rule files to load, by file name → content (written into the temp dir). */
  ruleFiles?: Record<string, string>;
  /** Seconds; also the rule evaluation interval. */
  intervalSeconds?: number;
  extraArgs?: string[];
  /** Bounded wait for /-/ready. */
  readyTimeoutMs?: number;
  /** A whole prometheus.yml of the test's own instead of the one-job config (targets, jobName unused). */
  config?: (ruleFilePaths: string[]) => string;
  /** An existing TSDB to open (backfilled blocks) instead of a fresh one; close() leaves it in place. */
  dataDir?: string;
}

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface RuleInfo {
  type: 'recording' | 'alerting';
  name: string;
  query: string;
  health: string;
  lastError?: string;
  state?: string;
}

export interface ActiveAlert {
  labels: Record<string, string>;
  state: 'pending' | 'firing' | 'inactive';
  value: string;
}

export interface RunningPrometheus {
  url: string;
  dir: string;
  /** Instant query; throws with Prometheus's own error text on a bad query. */
  query(expr: string): Promise<Sample[]>;
  /** GET /api/v1/label/<name>/values?match[]=<selector>. */
  labelValues(label: string, match?: string): Promise<string[]>;
  rules(): Promise<RuleInfo[]>;
  alerts(): Promise<ActiveAlert[]>;
  /** The last lines Prometheus logged, for failure messages. */
  log(): string;
  close(): Promise<void>;
}

export const PROMETHEUS_BIN = process.env['PROMETHEUS_BIN'] ?? 'prometheus';

/** Old names (tests on other branches use them): wait.ts's sleep and waitFor. */
export { sleep, waitFor as pollUntil };

export function prometheusConfig(
  options: Pick<PrometheusOptions, 'targets' | 'jobName' | 'intervalSeconds'>,
  ruleFilePaths: string[],
): string {
  const interval = `${options.intervalSeconds ?? 1}s`;
  return [
    'global:',
    `  scrape_interval: ${interval}`,
    `  scrape_timeout: ${interval}`,
    `  evaluation_interval: ${interval}`,
    'rule_files:',
    ...(ruleFilePaths.length === 0 ? ['  []'] : ruleFilePaths.map((p) => `  - ${JSON.stringify(p)}`)),
    'scrape_configs:',
    `  - job_name: ${JSON.stringify(options.jobName)}`,
    '    metrics_path: /metrics',
    '    static_configs:',
    `      - targets: [${options.targets.map((t) => JSON.stringify(t)).join(', ')}]`,
    '',
  ].join('\n');
}

interface ApiResponse<T> {
  status: 'success' | 'error';
  data?: T;
  errorType?: string;
  error?: string;
}

async function api<T>(url: string): Promise<T> {
  const response = await fetch(url);
  const body = (await response.json()) as ApiResponse<T>;
  if (body.status !== 'success' || body.data === undefined)
    throw new Error(`${url}: ${body.errorType ?? response.status}: ${body.error ?? 'no data'}`);
  return body.data;
}

export async function startPrometheus(options: PrometheusOptions): Promise<RunningPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'kmb-prometheus-'));
  const ruleFilePaths = Object.entries(options.ruleFiles ?? {}).map(([name, content]) => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  });
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, (options.config ?? ((paths: string[]) => prometheusConfig(options, paths)))(ruleFilePaths));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logLines: string[] = [];
  const keep = (chunk: Buffer) => {
    logLines.push(
      ...chunk
        .toString('utf8')
        .split('\n')
        .filter((l) => l !== ''),
    );
    if (logLines.length > 200) logLines.splice(0, logLines.length - 200);
  };
  let child: ChildProcess | undefined;
  let exited = false;
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  const stop = async () => {
    if (child === undefined || exited) return;
    const done = new Promise<void>((resolve) => child!.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const killed = await Promise.race([done.then(() => true), sleep(10_000).then(() => false)]);
    if (!killed) {
      child.kill('SIGKILL');
      await done;
    }
  };
  try {
    child = spawn(
      PROMETHEUS_BIN,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${options.dataDir ?? join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
        ...(options.extraArgs ?? []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const spawnError = new Promise<never>((_, reject) => child!.once('error', reject));
    child.once('exit', (code, signal) => {
      exited = true;
      logLines.push(`(prometheus exited: code ${code}, signal ${signal})`);
    });
    spawnError.catch(() => undefined);
    await Promise.race([
      spawnError,
      waitFor(
        `Prometheus ready on ${url}`,
        async () => {
          if (exited) throw new Error(`prometheus exited before ready:\n${logLines.join('\n')}`);
          const response = await fetch(`${url}/-/ready`);
          await response.arrayBuffer();
          return response.status === 200 ? true : undefined;
        },
        { timeoutMs: options.readyTimeoutMs ?? 30_000, intervalMs: 100, describe: () => logLines.join('\n') },
      ),
    ]);
    if (exited) throw new Error(`prometheus exited:\n${logLines.join('\n')}`);
  } catch (error) {
    await stop();
    removeDir();
    throw error;
  }

  return {
    url,
    dir,
    query: async (expr) => {
      const data = await api<{ resultType: string; result: unknown }>(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`);
      if (data.resultType === 'vector') return data.result as Sample[];
      if (data.resultType === 'scalar') return [{ metric: {}, value: data.result as [number, string] }];
      throw new Error(`query returned a ${data.resultType}, not an instant vector: ${expr}`);
    },
    labelValues: (label, match) =>
      api<string[]>(
        `${url}/api/v1/label/${encodeURIComponent(label)}/values${match === undefined ? '' : `?match[]=${encodeURIComponent(match)}`}`,
      ),
    rules: async () => {
      const data = await api<{ groups: Array<{ rules: RuleInfo[] }> }>(`${url}/api/v1/rules`);
      return data.groups.flatMap((g) => g.rules);
    },
    alerts: async () => (await api<{ alerts: ActiveAlert[] }>(`${url}/api/v1/alerts`)).alerts,
    log: () => logLines.join('\n'),
    close: async () => {
      await stop();
      removeDir();
    },
  };
}
