/**
 * Old entry points of the lab harness, kept for the files still being edited on other branches
 * (test/e2e/golden.test.ts, readme-demo.test.ts, serving.test.ts, test/unit/exposition-writer.test.ts
 * and test/support/fault-helpers.ts, through this file and e2e-helpers.ts). New tests use lab-exporter.ts and scrape.ts directly.
 */
import type { Config } from '../../src/config.ts';
import type { Exporter } from '../../src/exporter.ts';
import type { LabScenario, NodeLab } from '../../src/lab/node-lab.ts';
import { startLabExporter, startSourcesOn, TEST_BUILD, TEST_MIN_INTERVAL, type LabExporter } from './lab-exporter.ts';

export { TEST_BUILD };
export { one, podSeries, seriesKey, toSeriesMap } from './scrape.ts';

export type Bridge = LabExporter;

/** What the old callers put first in their flags; the harness now sets it itself. */
export const FRESH_COLLECTIONS = `--collect.min-interval=${TEST_MIN_INTERVAL}`;

/** The old flag lists carried the min-interval among the flags: take it out into the option. */
export function withMinInterval(flags: readonly string[]): { minInterval?: string; flags: string[] } {
  const prefix = '--collect.min-interval=';
  const minInterval = flags.filter((f) => f.startsWith(prefix)).at(-1)?.slice(prefix.length);
  return { ...(minInterval === undefined ? {} : { minInterval }), flags: flags.filter((f) => !f.startsWith(prefix)) };
}

export function startBridge(scenario: LabScenario, extraFlags: string[] = [], options: { now?: () => number } = {}): Promise<Bridge> {
  return startLabExporter(scenario, { ...options, ...withMinInterval(extraFlags) });
}

export function startExporterOn(
  lab: NodeLab,
  flags: readonly string[] = [],
  options: { now?: () => number; readyTimeoutMs?: number; processMetrics?: boolean } = {},
): Promise<{ exporter: Exporter; config: Config }> {
  return startSourcesOn(lab, { ...options, ...withMinInterval(flags) });
}
