/** Starts a node lab and the real exporter against it, and scrapes it: each e2e test states only its scenario. */

import { parseCommandLine, type Config } from '../../src/config.ts';
import { Exporter } from '../../src/exporter.ts';
import { silentLogger } from '../../src/log.ts';
import { NodeLab, type LabScenario } from '../../src/lab/node-lab.ts';
import { parsePromText } from '../../src/prom-text/index.ts';

/** Fixed build info, so whole expositions compare across Node.js patch releases. */
export const TEST_BUILD = { version: 'test', revision: 'test', nodeVersion: 'test' };

export interface Bridge {
  lab: NodeLab;
  exporter: Exporter;
  url: string;
  /** GET /metrics, as a map from `name{label="value",...}` (labels sorted) to value. */
  scrape(): Promise<Map<string, number>>;
  scrapeText(): Promise<string>;
  close(): Promise<void>;
}

export function seriesKey(name: string, labels: Record<string, string>): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]}"`);
  return `${name}{${parts.join(',')}}`;
}

export function toSeriesMap(text: string): Map<string, number> {
  const map = new Map<string, number>();
  for (const family of parsePromText(text).families) {
    for (const sample of family.samples) map.set(seriesKey(sample.name, sample.labels), sample.value);
  }
  return map;
}

/**
 * The real exporter, configured from a lab's flags plus `flags` (later flags win), with its pod
 * watch started; waits up to `readyTimeoutMs` for the first pod list (0: do not wait).
 */
export async function startExporterOn(
  lab: NodeLab,
  flags: readonly string[] = [],
  options: { now?: () => number; readyTimeoutMs?: number; processMetrics?: boolean } = {},
): Promise<{ exporter: Exporter; config: Config }> {
  const parsed = parseCommandLine([...lab.flags(), '--web.listen-address=127.0.0.1:0', ...flags], {});
  if (parsed.kind !== 'run') throw new Error(`expected a run configuration from ${flags.join(' ')}`);
  const exporter = new Exporter({
    config: parsed.config,
    logger: silentLogger,
    build: TEST_BUILD,
    kubeConfig: lab.kubeConfig(),
    processMetrics: options.processMetrics ?? false,
    now: options.now,
  });
  const readyTimeoutMs = options.readyTimeoutMs ?? 20_000;
  try {
    const ready = await exporter.startSources(readyTimeoutMs);
    if (readyTimeoutMs > 0 && !ready) throw new Error('the lab API server never delivered the pod list');
  } catch (error) {
    await exporter.close();
    throw error;
  }
  return { exporter, config: parsed.config };
}

/** Every scrape of a test collects anew (at 1ms, two collections in the same millisecond would share one). */
export const FRESH_COLLECTIONS = '--collect.min-interval=0s';

export async function startBridge(scenario: LabScenario, extraFlags: string[] = [], options: { now?: () => number } = {}): Promise<Bridge> {
  const lab = await NodeLab.start(scenario, options);
  const { exporter } = await startExporterOn(lab, [FRESH_COLLECTIONS, ...extraFlags], options);
  const address = await exporter.listen();
  const url = `http://127.0.0.1:${address.port}/metrics`;
  const scrapeText = async () => {
    const response = await fetch(url);
    if (response.status !== 200) throw new Error(`GET ${url}: ${response.status}`);
    return response.text();
  };
  return {
    lab,
    exporter,
    url,
    scrapeText,
    scrape: async () => toSeriesMap(await scrapeText()),
    close: async () => {
      await exporter.close();
      await lab.close();
    },
  };
}

/** The series of one family for one pod (namespace ci unless given), by remaining labels. */
export function podSeries(series: Map<string, number>, name: string, pod: string, namespace = 'ci'): Map<string, number> {
  const prefix = `kata_bridge_${name}{`;
  const out = new Map<string, number>();
  for (const [key, value] of series) {
    if (key.startsWith(prefix) && key.includes(`pod="${pod}"`) && key.includes(`namespace="${namespace}"`)) out.set(key, value);
  }
  return out;
}

export function one(series: Map<string, number>, key: string): number {
  const value = series.get(key);
  if (value === undefined) throw new Error(`no series ${key}; have:\n${[...series.keys()].filter((k) => k.startsWith(key.split('{')[0]!)).join('\n')}`);
  return value;
}
