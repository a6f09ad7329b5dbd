/**
 * The renderer as it was before ExpositionWriter: every family a @prometheus-io/client callback
 * metric, so the library formats every series. Tests hold SnapshotRenderer to it byte for byte.
 * The self metrics and raw families are the renderer's own code on both sides: only the bridge's
 * families are what the comparison checks.
 */

import { createHash } from 'node:crypto';
import { Registry } from '@prometheus-io/client';
import { FAMILIES, PREFIX, type FamilyDef, type Labels } from '../../src/publish/families.ts';
import type { ExpositionFormat } from '../../src/publish/exposition-format.ts';
import {
  callbackMetric,
  registerSelfMetrics,
  withRawFamilies,
  type BuildInfo,
  type MetricValue,
} from '../../src/publish/snapshot-renderer.ts';
import type { SelfStats } from '../../src/translate/self-stats.ts';
import type { NodeSnapshot } from '../../src/translate/snapshot.ts';

// The bound as it was, restated so the oracle does not lean on the code under test.
const MAX_LABEL_VALUE_CHARS = 1024;

function boundLabelValue(value: string): string {
  if (value.length <= MAX_LABEL_VALUE_CHARS) return value;
  const digest = createHash('sha256').update(value).digest('hex').slice(0, 16);
  return `${value.slice(0, MAX_LABEL_VALUE_CHARS - digest.length - 3)}...${digest}`;
}

function boundLabels(labels: Labels): Labels {
  for (const value of Object.values(labels)) {
    if (value.length > MAX_LABEL_VALUE_CHARS) {
      return Object.fromEntries(Object.entries(labels).map(([name, v]) => [name, boundLabelValue(v)]));
    }
  }
  return labels;
}

function familyValues(def: FamilyDef, snapshot: NodeSnapshot): MetricValue[] {
  const values: MetricValue[] = [];
  def.collect(snapshot, (labels, value) => values.push({ labels: boundLabels(labels), value }));
  return values;
}

/** A registry of `families` read from `snapshot`, then the self counters and build info (no process metrics). */
export function oracleRegistry(
  snapshot: NodeSnapshot,
  format: ExpositionFormat,
  self: SelfStats,
  build: BuildInfo,
  families: readonly FamilyDef[] = FAMILIES,
): Registry {
  const registry = new Registry(format === 'text' ? Registry.PROMETHEUS_CONTENT_TYPE : Registry.OPENMETRICS_CONTENT_TYPE);
  for (const def of families) {
    registry.registerMetric(callbackMetric(PREFIX + def.name, def.help, def.type, () => familyValues(def, snapshot)));
  }
  registerSelfMetrics(registry, self, build);
  return registry;
}

/** The whole exposition as the library-only renderer wrote it, raw shim families included. */
export async function oracleRender(snapshot: NodeSnapshot, format: ExpositionFormat, self: SelfStats, build: BuildInfo): Promise<string> {
  return withRawFamilies(await oracleRegistry(snapshot, format, self, build).metrics(), snapshot, format);
}
