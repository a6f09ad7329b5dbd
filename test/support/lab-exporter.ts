/**
 * The one way tests start "an exporter on a lab": a node lab from a scenario, and the real
 * exporter in this process, configured from the lab's own flags, listening on 127.0.0.1. Each
 * test states only its scenario and what differs.
 *
 * --collect.min-interval is always explicit: `minInterval`, 0s unless a test says otherwise, so
 * every scrape collects anew and sees the lab as it is now. A test about single-flight or reuse
 * passes its own interval; flags cannot set it behind the harness's back. Likewise
 * --shim.interval: `shimInterval`, 0s (every shim at every collection) unless a test says otherwise.
 */

import { performance } from 'node:perf_hooks';
import { parseCommandLine, type Config } from '../../src/config.ts';
import { Exporter } from '../../src/exporter.ts';
import { silentLogger } from '../../src/log.ts';
import { NodeLab, type LabScenario } from '../../src/lab/node-lab.ts';
import { toSeriesMap } from './scrape.ts';

/** Fixed build info, so whole expositions compare across Node.js patch releases. */
export const TEST_BUILD = { version: 'test', revision: 'test', nodeVersion: 'test' };

/** Every scrape collects anew (at 1ms, two collections in the same millisecond would share one). */
export const TEST_MIN_INTERVAL = '0s';

const MIN_INTERVAL_FLAG = '--collect.min-interval';

/** Every shim is called at every collection, so each scrape sees the lab's shims as they are now. */
export const TEST_SHIM_INTERVAL = '0s';

const SHIM_INTERVAL_FLAG = '--shim.interval';

export interface ExporterOptions {
  /** --collect.min-interval; default TEST_MIN_INTERVAL. */
  minInterval?: string;
  /** --shim.interval; default TEST_SHIM_INTERVAL. */
  shimInterval?: string;
  /** More exporter flags, after the lab's (later flags win); never --collect.min-interval or --shim.interval. */
  flags?: readonly string[];
  /** The exporter's clock (the lab's too, with startLabExporter): a frozen one makes scrapes comparable. */
  now?: () => number;
  /** Wait this long for the first pod list before listening; 0 starts without waiting. Default 20 s. */
  readyTimeoutMs?: number;
  /** The process_* and nodejs_* families; default off, so expositions compare. */
  processMetrics?: boolean;
}

export interface LabExporterOptions extends ExporterOptions {
  /** Called after the lab is up and before the exporter starts (e.g. take the API server down). */
  beforeStart?: (lab: NodeLab) => Promise<void>;
}

/** One answer of the exporter: its status, the time to its last body byte, its body. */
export interface Answer {
  status: number;
  elapsedMs: number;
  text: string;
}

/**
 * One GET, timed from the request to the last body byte. Throws when the body is not valid UTF-8:
 * the exporter's output must always be, whatever a guest sent.
 */
export async function timedGet(url: string): Promise<Answer> {
  const started = performance.now();
  const response = await fetch(url, { signal: AbortSignal.timeout(60_000) });
  const text = new TextDecoder('utf-8', { fatal: true }).decode(await response.arrayBuffer());
  return { status: response.status, elapsedMs: performance.now() - started, text };
}

export interface RunningExporter {
  exporter: Exporter;
  config: Config;
  /** http://127.0.0.1:<port> */
  base: string;
  /** base + the telemetry path */
  url: string;
  /** timedGet of a path (`/readyz`, ...); the telemetry path when none is given. */
  get(path?: string): Promise<Answer>;
  /** GET /metrics: the body of a 200 answer; throws on any other status. */
  scrapeText(): Promise<string>;
  /** GET /metrics as a map from `name{label="value",...}` (labels sorted) to value. */
  scrape(): Promise<Map<string, number>>;
  close(): Promise<void>;
}

export interface LabExporter extends RunningExporter {
  lab: NodeLab;
}

/** The configuration the harness runs: the lab's flags, the listen address, the min-interval, then `flags`. */
export function labExporterConfig(
  lab: Pick<NodeLab, 'flags'>,
  options: Pick<ExporterOptions, 'minInterval' | 'shimInterval' | 'flags'> = {},
): Config {
  const flags = options.flags ?? [];
  if (flags.some((flag) => flag.startsWith(MIN_INTERVAL_FLAG))) {
    throw new Error(`say the min-interval with the harness's minInterval option, not in flags: ${flags.join(' ')}`);
  }
  if (flags.some((flag) => flag.startsWith(SHIM_INTERVAL_FLAG))) {
    throw new Error(`say the shim interval with the harness's shimInterval option, not in flags: ${flags.join(' ')}`);
  }
  const argv = [
    ...lab.flags(),
    '--web.listen-address=127.0.0.1:0',
    `${MIN_INTERVAL_FLAG}=${options.minInterval ?? TEST_MIN_INTERVAL}`,
    `${SHIM_INTERVAL_FLAG}=${options.shimInterval ?? TEST_SHIM_INTERVAL}`,
    // Usage records off unless a test asks (the default, stdout, would mix them into the test output).
    '--usage.output=off',
    ...flags,
  ];
  const parsed = parseCommandLine(argv, {});
  if (parsed.kind !== 'run') throw new Error(`expected a run configuration from ${argv.join(' ')}`);
  return parsed.config;
}

/**
 * The real exporter against a lab the caller owns, its pod watch started, not yet listening.
 * Waits for the first pod list unless readyTimeoutMs is 0.
 */
export async function startSourcesOn(lab: NodeLab, options: ExporterOptions = {}): Promise<{ exporter: Exporter; config: Config }> {
  const config = labExporterConfig(lab, options);
  const exporter = new Exporter({
    config,
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
  return { exporter, config };
}

/** startSourcesOn, listening on 127.0.0.1; the caller closes the lab. */
export async function startExporterOn(lab: NodeLab, options: ExporterOptions = {}): Promise<RunningExporter> {
  const { exporter, config } = await startSourcesOn(lab, options);
  let port: number;
  try {
    port = (await exporter.listen()).port;
  } catch (error) {
    await exporter.close();
    throw error;
  }
  const base = `http://127.0.0.1:${port}`;
  const url = `${base}${config.telemetryPath}`;
  const get = (path = config.telemetryPath) => timedGet(`${base}${path}`);
  const scrapeText = async () => {
    const answer = await get();
    if (answer.status !== 200) throw new Error(`GET ${url}: ${answer.status}`);
    return answer.text;
  };
  return {
    exporter,
    config,
    base,
    url,
    get,
    scrapeText,
    scrape: async () => toSeriesMap(await scrapeText()),
    close: () => exporter.close(),
  };
}

/** A lab from `scenario` and the real exporter on it, on one clock; close() closes both. */
export async function startLabExporter(scenario: LabScenario, options: LabExporterOptions = {}): Promise<LabExporter> {
  const lab = await NodeLab.start(scenario, options.now ? { now: options.now } : {});
  try {
    await options.beforeStart?.(lab);
    const running = await startExporterOn(lab, options);
    return {
      ...running,
      lab,
      close: async () => {
        await running.close();
        await lab.close();
      },
    };
  } catch (error) {
    await lab.close();
    throw error;
  }
}
