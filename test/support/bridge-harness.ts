/**
 * Old entry points of the lab harness, kept only for the files still being edited on other
 * branches (test/unit/exposition-writer.test.ts, and test/support/fault-helpers.ts for faults and
 * hostile-guest). Everything else uses lab-exporter.ts and scrape.ts directly.
 */
import type { Config } from '../../src/config.ts';
import type { Exporter } from '../../src/exporter.ts';
import type { LabScenario, NodeLab } from '../../src/lab/node-lab.ts';
import { startLabExporter, startSourcesOn, TEST_MIN_INTERVAL, type LabExporter } from './lab-exporter.ts';

export type Bridge = LabExporter;

/** What the old callers put first in their flags; the harness now sets it itself. */
export const FRESH_COLLECTIONS = `--collect.min-interval=${TEST_MIN_INTERVAL}`;

/** The old flag lists carried the min-interval among the flags: take it out into the option. */
function withMinInterval(flags: readonly string[]): { minInterval?: string; flags: string[] } {
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
