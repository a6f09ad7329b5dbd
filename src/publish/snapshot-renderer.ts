/**
 * Renders one NodeSnapshot: the bridge's families through ExpositionWriter, then the exporter's own
 * counters, build info and the library's process metrics (process-metrics.ts) through @prometheus-io/client registries
 * (Prometheus text 0.0.4 and OpenMetrics), joined as one registry would join them. Nothing
 * outlives a snapshot but those registry metrics.
 */

import { Registry, type Metric } from '@prometheus-io/client';
import { BUILD_INFO, FAMILIES, PREFIX, SELF_COUNTERS, type Labels } from './families.ts';
import type { NodeSnapshot } from '../translate/snapshot.ts';
import { registerProcessMetrics } from './process-metrics.ts';
import { renderRawFamilies } from './raw-exposition.ts';
import { ExpositionWriter, METRIC_SEPARATOR } from './exposition-writer.ts';
import type { ExpositionFormat } from './exposition-format.ts';
import type { SelfStats } from '../translate/self-stats.ts';

export { boundLabelValue, MAX_LABEL_VALUE_CHARS } from './exposition-writer.ts';

export interface BuildInfo {
  version: string;
  revision: string;
  nodeVersion: string;
}

export interface MetricValue {
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
export function callbackMetric(name: string, help: string, type: 'counter' | 'gauge', values: () => MetricValue[]): Metric {
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

function mapValues(map: ReadonlyMap<string, number>, label: string): MetricValue[] {
  return [...map].map(([key, value]) => ({ labels: { [label]: key }, value }));
}

export class SnapshotRenderer {
  private readonly registries: Record<ExpositionFormat, Registry>;
  private readonly writer = new ExpositionWriter(FAMILIES, PREFIX);
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
    registerSelfMetrics(registry, this.self, build);
    if (processMetrics) registerProcessMetrics(registry);
    return registry;
  }

  /** Renders a snapshot; concurrent calls are serialised and a snapshot renders once per format. */
  render(snapshot: NodeSnapshot, format: ExpositionFormat): Promise<string> {
    const cached = this.cache.get(snapshot)?.[format];
    if (cached !== undefined) return Promise.resolve(cached);
    const result = this.lock.then(async () => {
      const families = this.writer.write(snapshot, format);
      // The raw families only touch the end, which is the registry's: no pass over the whole text.
      const registered = withRawFamilies(await this.registries[format].metrics(), snapshot, format);
      const text = families === '' ? registered : families + METRIC_SEPARATOR[format] + registered;
      const entry = this.cache.get(snapshot) ?? {};
      entry[format] = text;
      this.cache.set(snapshot, entry);
      return text;
    });
    this.lock = result.catch(() => undefined);
    return result;
  }
}

/** The exporter's own counters and its build info, read from `self` at render time. */
export function registerSelfMetrics(registry: Registry, self: SelfStats, build: BuildInfo): void {
  const { shimScrapeErrors, kubeletRejectedSamples, guestRejectedSamples, usageRecords } = SELF_COUNTERS;
  registry.registerMetric(
    callbackMetric(PREFIX + shimScrapeErrors.name, shimScrapeErrors.help, 'counter', () => mapValues(self.shimScrapeErrors, 'reason')),
  );
  registry.registerMetric(
    callbackMetric(PREFIX + kubeletRejectedSamples.name, kubeletRejectedSamples.help, 'counter', () =>
      mapValues(self.kubeletRejectedSamples, 'reason'),
    ),
  );
  registry.registerMetric(
    callbackMetric(PREFIX + guestRejectedSamples.name, guestRejectedSamples.help, 'counter', () =>
      mapValues(self.guestRejectedSamples, 'reason'),
    ),
  );
  registry.registerMetric(
    callbackMetric(PREFIX + usageRecords.name, usageRecords.help, 'counter', () => mapValues(self.usageRecords, 'result')),
  );
  registry.registerMetric(
    callbackMetric(PREFIX + BUILD_INFO.name, BUILD_INFO.help, 'gauge', () => [
      { labels: { version: build.version, revision: build.revision, nodejs: build.nodeVersion }, value: 1 },
    ]),
  );
}

const OPENMETRICS_EOF = '# EOF\n';

/** Appends the kata-monitor compatible raw families, before OpenMetrics' closing `# EOF`. */
export function withRawFamilies(text: string, snapshot: NodeSnapshot, format: ExpositionFormat): string {
  if (snapshot.shimRaw === undefined || snapshot.shimRaw.length === 0) return text;
  const raw = renderRawFamilies(snapshot.shimRaw, format);
  // Sliced, not String.replace: `$&` or `$\`` in a guest's label value would expand there.
  if (format === 'openmetrics' && text.endsWith(OPENMETRICS_EOF)) return text.slice(0, -OPENMETRICS_EOF.length) + raw + OPENMETRICS_EOF;
  return text.endsWith('\n') ? text + raw : `${text}\n${raw}`;
}
