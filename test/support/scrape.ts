/**
 * The one reader of an exposition in tests: every sample with its family, the family names, and
 * the views tests compare (a map from series key to value, one pod's series, one value that must
 * exist).
 */
import { parsePromText } from '../../src/translate/prom-text.ts';

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
  if (value === undefined) throw new Error(`no series ${key}; have:\n${[...series.keys()].filter((k) => k.startsWith(key.split('{')[0]!)).join('\n')}`);
  return value;
}
