/**
 * The one reader of an exposition in tests: every sample with its family, the family names, and
 * the views tests compare (a map from series key to value, one pod's series, one value that must
 * exist; over the samples: one pod's or every other pod's series, gaps, source_up).
 */
import { parsePromText } from '../../src/prom-text/index.ts';

export interface Sample {
  /** The family (TYPE line) the sample belongs to: `x` for `x_bucket`, `x_sum`, `x_count`. */
  family: string;
  type: string;
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Every sample of an exposition, in order; throws on text that does not parse. */
export function parseSamples(text: string): Sample[] {
  return parsePromText(text).families.flatMap((family) =>
    family.samples.map((s) => ({ family: family.name, type: family.type, name: s.name, labels: { ...s.labels }, value: s.value })),
  );
}

/** The name of every family (TYPE line) of an exposition, in order, those without samples too. */
export function familyNames(text: string): string[] {
  return parsePromText(text).families.map((family) => family.name);
}

/** `name{k="v",...}` with the labels sorted: how tests name a series. */
export function seriesKey(name: string, labels: Record<string, string>): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]}"`);
  return `${name}{${parts.join(',')}}`;
}

/** An exposition as a map from seriesKey to value. */
export function toSeriesMap(text: string): Map<string, number> {
  return new Map(parseSamples(text).map((s) => [seriesKey(s.name, s.labels), s.value]));
}

/** The series of one kata_bridge_ family for one pod (namespace ci unless given), by key. */
export function podSeries(series: Map<string, number>, name: string, pod: string, namespace = 'ci'): Map<string, number> {
  const prefix = `kata_bridge_${name}{`;
  const out = new Map<string, number>();
  for (const [key, value] of series) {
    if (key.startsWith(prefix) && key.includes(`pod="${pod}"`) && key.includes(`namespace="${namespace}"`)) out.set(key, value);
  }
  return out;
}

/** The value of a series that must exist; the error lists the family's series that do. */
export function one(series: Map<string, number>, key: string): number {
  const value = series.get(key);
  if (value === undefined)
    throw new Error(`no series ${key}; have:\n${[...series.keys()].filter((k) => k.startsWith(key.split('{')[0]!)).join('\n')}`);
  return value;
}

// ─── views of a list of samples ───────────────────────────────────────────────

/**
 * An unambiguous identity for a sample: name and labels sorted, values JSON-quoted. For comparing
 * whole sets of series where a label value may be hostile; seriesKey names a series readably.
 */
export function sampleKey(sample: Sample): string {
  const labels = Object.keys(sample.labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(sample.labels[k])}`);
  return `${sample.name}{${labels.join(',')}}`;
}

/** Every series of one pod, as sorted `key value` lines (the comparison unit for "identical"). */
export function podLines(
  samples: readonly Sample[],
  pod: string,
  namespace = 'ci',
  nameFilter: (name: string) => boolean = () => true,
): string[] {
  return samples
    .filter((s) => s.labels.pod === pod && s.labels.namespace === namespace && nameFilter(s.name))
    .map((s) => `${sampleKey(s)} ${s.value}`)
    .sort();
}

/** The series of every pod except `excluded`, as podLines keyed by pod. */
export function otherPods(samples: readonly Sample[], excluded: readonly string[], namespace = 'ci'): Record<string, string[]> {
  const pods = new Set(samples.filter((s) => s.labels.namespace === namespace && s.labels.pod !== undefined).map((s) => s.labels.pod!));
  const out: Record<string, string[]> = {};
  for (const pod of [...pods].sort()) if (!excluded.includes(pod)) out[pod] = podLines(samples, pod, namespace);
  return out;
}

/** The samples named `name` whose labels include `labels`. */
export function find(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The value of the one sample find() matches, or undefined when there is none; throws when several match. */
export function valueOf(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = find(samples, name, labels);
  if (found.length > 1) throw new Error(`${found.length} series match ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

/** The reasons of a pod's kata_bridge_pod_metrics_gap series, sorted. */
export function podGaps(samples: readonly Sample[], pod: string, namespace = 'ci'): string[] {
  return find(samples, 'kata_bridge_pod_metrics_gap', { namespace, pod })
    .map((s) => s.labels.reason!)
    .sort();
}

/** A pod's kata_bridge_container_metrics_gap series as `container:reason`, sorted. */
export function containerGaps(samples: readonly Sample[], pod: string, namespace = 'ci'): string[] {
  return find(samples, 'kata_bridge_container_metrics_gap', { namespace, pod })
    .map((s) => `${s.labels.container}:${s.labels.reason}`)
    .sort();
}

export function sourceUp(samples: readonly Sample[], source: string): number | undefined {
  return valueOf(samples, 'kata_bridge_source_up', { source });
}

/** Sample names outside the bridge's own families. */
export function foreignNames(samples: readonly Sample[]): string[] {
  return [...new Set(samples.map((s) => s.name).filter((n) => !n.startsWith('kata_bridge_')))];
}
