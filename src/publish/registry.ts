/**
 * Renders one NodeSnapshot through @prometheus-io/client registries (Prometheus text 0.0.4 and
 * OpenMetrics). Each family of the table is a registry metric whose values are read from the
 * snapshot being rendered, so nothing outlives a snapshot; only the exporter's own counters,
 * build info and the library's process metrics persist.
 */

import { createHash } from 'node:crypto';
import { Registry, collectDefaultMetrics, type Metric } from '@prometheus-io/client';
import { BUILD_INFO, FAMILIES, PREFIX, SELF_COUNTERS, type FamilyDef, type Labels } from './families.ts';
import type { NodeSnapshot } from '../translate/snapshot.ts';
import { renderRawFamilies } from './raw-exposition.ts';

export type ExpositionFormat = 'text' | 'openmetrics';

export const CONTENT_TYPES: Record<ExpositionFormat, string> = {
  text: Registry.PROMETHEUS_CONTENT_TYPE,
  openmetrics: Registry.OPENMETRICS_CONTENT_TYPE,
};

export interface BuildInfo {
  version: string;
  revision: string;
  nodeVersion: string;
}

/** Cumulative counts the collector keeps about itself; rendered as counters. */
export class SelfStats {
  readonly shimScrapeErrors = new Map<string, number>();
  readonly kubeletRejectedSamples = new Map<string, number>();
  guestRejectedSamples = 0;

  add(map: Map<string, number>, key: string, amount = 1): void {
    if (amount > 0) map.set(key, (map.get(key) ?? 0) + amount);
  }
}

interface MetricValue {
  value: number;
  labels: Labels;
}

interface MetricSnapshotShape {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  values: MetricValue[];
  aggregator: 'sum';
}

/** A registry metric whose values come from a callback at render time. */
function callbackMetric(name: string, help: string, type: 'counter' | 'gauge', values: () => MetricValue[]): Metric {
  const metric = {
    name,
    help,
    type,
    aggregator: 'sum' as const,
    get: async (): Promise<MetricSnapshotShape> => ({ name: metric.name, help, type, values: values(), aggregator: 'sum' }),
    reset: () => undefined,
  };
  return metric as unknown as Metric;
}

/**
 * The longest label value published. Names from the API server are far shorter (pods 253,
 * namespaces and containers 63); only a broken or hostile source or a deep host path reaches it.
 */
export const MAX_LABEL_VALUE_CHARS = 1024;

/** Cuts an over-long value, keeping a digest of the whole so two long values stay two series. */
export function boundLabelValue(value: string): string {
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

function familyValues(def: FamilyDef, snapshot: NodeSnapshot | undefined): MetricValue[] {
  const values: MetricValue[] = [];
  if (snapshot !== undefined) def.collect(snapshot, (labels, value) => values.push({ labels: boundLabels(labels), value }));
  return values;
}

function mapValues(map: ReadonlyMap<string, number>, label: string): MetricValue[] {
  return [...map].map(([key, value]) => ({ labels: { [label]: key }, value }));
}

export class SnapshotRenderer {
  private readonly registries: Record<ExpositionFormat, Registry>;
  private current: NodeSnapshot | undefined;
  private lock: Promise<unknown> = Promise.resolve();
  private readonly cache = new WeakMap<NodeSnapshot, Partial<Record<ExpositionFormat, string>>>();

  constructor(
    private readonly self: SelfStats,
    build: BuildInfo,
    options: { processMetrics?: boolean } = {},
  ) {
    this.registries = {
      text: this.createRegistry(Registry.PROMETHEUS_CONTENT_TYPE, build, options.processMetrics ?? true),
      openmetrics: this.createRegistry(Registry.OPENMETRICS_CONTENT_TYPE, build, options.processMetrics ?? true),
    };
  }

  private createRegistry(contentType: string, build: BuildInfo, processMetrics: boolean): Registry {
    const registry = new Registry(contentType as typeof Registry.PROMETHEUS_CONTENT_TYPE);
    for (const def of FAMILIES) {
      registry.registerMetric(callbackMetric(PREFIX + def.name, def.help, def.type, () => familyValues(def, this.current)));
    }
    const { shimScrapeErrors, kubeletRejectedSamples, guestRejectedSamples } = SELF_COUNTERS;
    registry.registerMetric(
      callbackMetric(PREFIX + shimScrapeErrors.name, shimScrapeErrors.help, 'counter', () => mapValues(this.self.shimScrapeErrors, 'reason')),
    );
    registry.registerMetric(
      callbackMetric(PREFIX + kubeletRejectedSamples.name, kubeletRejectedSamples.help, 'counter', () =>
        mapValues(this.self.kubeletRejectedSamples, 'reason'),
      ),
    );
    registry.registerMetric(
      callbackMetric(PREFIX + guestRejectedSamples.name, guestRejectedSamples.help, 'counter', () => [
        { labels: {}, value: this.self.guestRejectedSamples },
      ]),
    );
    registry.registerMetric(
      callbackMetric(PREFIX + BUILD_INFO.name, BUILD_INFO.help, 'gauge', () => [
        { labels: { version: build.version, revision: build.revision, nodejs: build.nodeVersion }, value: 1 },
      ]),
    );
    if (processMetrics) collectDefaultMetrics({ register: registry });
    return registry;
  }

  /** Renders a snapshot; concurrent calls are serialised and a snapshot renders once per format. */
  render(snapshot: NodeSnapshot, format: ExpositionFormat): Promise<string> {
    const cached = this.cache.get(snapshot)?.[format];
    if (cached !== undefined) return Promise.resolve(cached);
    const result = this.lock.then(async () => {
      this.current = snapshot;
      try {
        const text = withRawFamilies(await this.registries[format].metrics(), snapshot, format);
        const entry = this.cache.get(snapshot) ?? {};
        entry[format] = text;
        this.cache.set(snapshot, entry);
        return text;
      } finally {
        this.current = undefined;
      }
    });
    this.lock = result.catch(() => undefined);
    return result;
  }
}

/** Appends the kata-monitor compatible raw families, before OpenMetrics' closing `# EOF`. */
function withRawFamilies(text: string, snapshot: NodeSnapshot, format: ExpositionFormat): string {
  if (snapshot.shimRaw === undefined || snapshot.shimRaw.length === 0) return text;
  const raw = renderRawFamilies(snapshot.shimRaw, format);
  if (format === 'openmetrics') return text.replace(/# EOF\n$/, `${raw}# EOF\n`);
  return text.endsWith('\n') ? text + raw : `${text}\n${raw}`;
}

/** Picks the exposition format from an Accept header, as Prometheus negotiates it. */
export function negotiateFormat(accept: string | undefined): ExpositionFormat {
  return accept !== undefined && /application\/openmetrics-text/i.test(accept) ? 'openmetrics' : 'text';
}
