/**
 * Decodes the kubelet's /metrics/resource (and /metrics/resource/v1alpha1) text into KubeletStats.
 * Pure: no I/O, no clock. Every version quirk of domain.md §1 is handled here:
 * - families are matched on sample names only (never on TYPE, which is `gauge` for everything in
 *   v1alpha1, nor on HELP, which carries `[ALPHA]`, `[STABLE]` or a deprecation note or nothing);
 * - 1.18.0's CPU names without `_total` are aliases of the `_total` ones;
 * - the zero `time.Time` sample (timestamp -62135596800000, negative start time; kubernetes#109679)
 *   is rejected alone, the rest of the payload is kept;
 * - duplicate series (kubernetes#134518): the first one wins, except that every distinct container
 *   CPU sample is kept as a candidate (`cpuCandidates`), for the counter state to follow the one that
 *   continues what it published;
 * - wrapped uint64, negative, NaN and infinite values are rejected (see KUBELET_SANITY_LIMITS).
 */
import type { KubeletContainerStats, KubeletNodeStats, KubeletRejectReason, KubeletStats } from './records.ts';
import { parsePromText, type PromSample } from '../prom-text/index.ts';

/** The only families the decoder reads; the parser skips every other line undecoded. */
export const KUBELET_KEEP_PREFIXES: readonly string[] = ['node_', 'pod_', 'container_', 'scrape_error', 'resource_scrape_error'];

/**
 * Upper bounds past which a value cannot be real, so it is rejected as `implausible_value`.
 * - bytes: 2^60 (1 EiB). No node has that much memory or swap; a uint64 that wrapped below zero
 *   in the kubelet (e.g. `node_swap_usage_bytes 1.8446743709127774e+19`, about 2^64) is far above.
 * - CPU: 2^40 core-seconds (about 34,800 core-years), beyond any node's lifetime total.
 * - start time: 2^33 s after the epoch (year 2242).
 */
export const KUBELET_SANITY_LIMITS = {
  maxBytes: 2 ** 60,
  maxCpuSeconds: 2 ** 40,
  maxStartTimeSeconds: 2 ** 33,
} as const;

type Kind = 'cpu' | 'bytes' | 'start';

type FieldSpec =
  | { scope: 'node'; field: keyof KubeletNodeStats; kind: Kind }
  | {
      scope: 'pod';
      field: 'cpuSeconds' | 'memoryWorkingSetBytes' | 'swapBytes';
      timestampField?: 'cpuTimestampMs' | 'memoryTimestampMs';
      kind: Kind;
    }
  | {
      scope: 'container';
      field: 'cpuSeconds' | 'memoryWorkingSetBytes' | 'swapBytes' | 'startTimeSeconds';
      timestampField?: 'cpuTimestampMs' | 'memoryTimestampMs';
      kind: Kind;
    };

const CONTAINER_CPU: FieldSpec = {
  scope: 'container',
  field: 'cpuSeconds',
  timestampField: 'cpuTimestampMs',
  kind: 'cpu',
};
const NODE_CPU: FieldSpec = { scope: 'node', field: 'cpuSeconds', kind: 'cpu' };

/** Sample name → where its value goes. Aliases share one spec object, so they dedupe together. */
const FIELDS: ReadonlyMap<string, FieldSpec> = new Map<string, FieldSpec>([
  ['node_cpu_usage_seconds_total', NODE_CPU],
  ['node_cpu_usage_seconds', NODE_CPU], // 1.18.0 only
  ['node_memory_working_set_bytes', { scope: 'node', field: 'memoryWorkingSetBytes', kind: 'bytes' }],
  ['node_swap_usage_bytes', { scope: 'node', field: 'swapBytes', kind: 'bytes' }],
  ['container_cpu_usage_seconds_total', CONTAINER_CPU],
  ['container_cpu_usage_seconds', CONTAINER_CPU], // 1.18.0 only
  [
    'container_memory_working_set_bytes',
    { scope: 'container', field: 'memoryWorkingSetBytes', timestampField: 'memoryTimestampMs', kind: 'bytes' },
  ],
  ['container_start_time_seconds', { scope: 'container', field: 'startTimeSeconds', kind: 'start' }],
  ['container_swap_usage_bytes', { scope: 'container', field: 'swapBytes', kind: 'bytes' }],
  ['pod_cpu_usage_seconds_total', { scope: 'pod', field: 'cpuSeconds', timestampField: 'cpuTimestampMs', kind: 'cpu' }],
  ['pod_memory_working_set_bytes', { scope: 'pod', field: 'memoryWorkingSetBytes', timestampField: 'memoryTimestampMs', kind: 'bytes' }],
  ['pod_swap_usage_bytes', { scope: 'pod', field: 'swapBytes', kind: 'bytes' }],
]);

const SCRAPE_ERROR_NAMES: ReadonlySet<string> = new Set(['scrape_error', 'resource_scrape_error']);

export function kubeletPodKey(namespace: string, pod: string): string {
  return `${namespace}/${pod}`;
}

export function kubeletContainerKey(namespace: string, pod: string, container: string): string {
  return `${namespace}/${pod}/${container}`;
}

/** Why a sample cannot be used, or undefined when it can. */
function rejectReason(sample: PromSample, kind: Kind): KubeletRejectReason | undefined {
  const v = sample.value;
  // Go renders a zero time.Time as -62135596800000 ms; any timestamp at or before the epoch is
  // the same bug in another shape.
  if (sample.timestampMs !== undefined && sample.timestampMs <= 0) return 'zero_time';
  if (kind === 'start' && v <= 0) return 'zero_time';
  if (!Number.isFinite(v) || v < 0) return 'implausible_value';
  const max =
    kind === 'bytes'
      ? KUBELET_SANITY_LIMITS.maxBytes
      : kind === 'cpu'
        ? KUBELET_SANITY_LIMITS.maxCpuSeconds
        : KUBELET_SANITY_LIMITS.maxStartTimeSeconds;
  return v > max ? 'implausible_value' : undefined;
}

function nonEmpty(labels: Record<string, string>, name: string): string | undefined {
  const v = labels[name];
  return v === undefined || v === '' ? undefined : v;
}

type NumericFields = Record<string, number | string | undefined>;

/** Where a sample of `spec` goes: a dedupe key and the record (created on first accepted sample). */
function locate(
  stats: KubeletStats,
  spec: FieldSpec,
  labels: Record<string, string>,
): { key: string; entry: () => NumericFields } | undefined {
  if (spec.scope === 'node') return { key: '', entry: () => stats.node as NumericFields };
  const namespace = nonEmpty(labels, 'namespace');
  const pod = nonEmpty(labels, 'pod');
  if (namespace === undefined || pod === undefined) return undefined;
  if (spec.scope === 'pod') {
    const key = kubeletPodKey(namespace, pod);
    return { key, entry: () => getOrCreate(stats.pods, key, () => ({ namespace, pod })) };
  }
  const container = nonEmpty(labels, 'container');
  if (container === undefined) return undefined;
  const key = kubeletContainerKey(namespace, pod, container);
  return {
    key,
    entry: () => getOrCreate(stats.containers, key, () => ({ namespace, pod, container })),
  };
}

function getOrCreate<T extends object>(map: Map<string, T>, key: string, make: () => T): NumericFields {
  let v = map.get(key);
  if (v === undefined) map.set(key, (v = make()));
  return v as NumericFields;
}

/** Container CPU names whose exact repeats the parser returns, for `cpuCandidates`. */
const CPU_CANDIDATE_NAMES: ReadonlySet<string> = new Set(['container_cpu_usage_seconds_total', 'container_cpu_usage_seconds']);

/** Whether a sample repeats an earlier container CPU series exactly (a repeat the parser returned and counted). */
function isParserRepeat(series: Set<string>, sample: PromSample): boolean {
  if (!CPU_CANDIDATE_NAMES.has(sample.name)) return false;
  const key = `${sample.name}\u0000${Object.entries(sample.labels).sort().join('\u0000')}`;
  if (series.has(key)) return true;
  series.add(key);
  return false;
}

/** Candidates kept per container CPU series at most: a payload cannot grow them without bound. */
export const MAX_CPU_CANDIDATES = 4;

/**
 * Every distinct container CPU sample in payload order; listed only once there is a second, so the
 * usual payload carries none.
 */
function addCpuCandidate(entry: KubeletContainerStats, sample: PromSample): void {
  const candidate = sample.timestampMs === undefined ? { value: sample.value } : { value: sample.value, timestampMs: sample.timestampMs };
  if (entry.cpuSeconds === undefined) return;
  const first = { value: entry.cpuSeconds, ...(entry.cpuTimestampMs === undefined ? {} : { timestampMs: entry.cpuTimestampMs }) };
  const candidates = entry.cpuCandidates ?? [first];
  if (candidates.length >= MAX_CPU_CANDIDATES) return;
  if (candidates.some((c) => c.value === candidate.value && c.timestampMs === candidate.timestampMs)) return;
  candidates.push(candidate);
  entry.cpuCandidates = candidates;
}

/**
 * Decode one kubelet resource-metrics payload.
 * Samples without the labels their family needs (namespace, pod, container) are ignored; other
 * labels are ignored too. Only `pod_*` families create pod entries (they are the host pod cgroup;
 * v1alpha1 has none).
 * @throws PromParseError when the payload is not valid exposition text.
 */
export function decodeKubeletMetrics(body: Uint8Array | string): KubeletStats {
  const parsed = parsePromText(body, { keepPrefixes: KUBELET_KEEP_PREFIXES, keepRepeatsOf: CPU_CANDIDATE_NAMES });
  const stats: KubeletStats = {
    node: {},
    pods: new Map(),
    containers: new Map(),
    kubeletScrapeError: false,
    // The parser counted exact repeats of a series (and returned those of container CPU, counted
    // again below); the decoder counts the collisions it alone can see (aliases, label sets
    // differing in ignored labels).
    rejected: { zero_time: 0, implausible_value: 0, duplicate: parsed.duplicates },
  };
  const seen = new Set<string>();
  // Container CPU series as the parser saw them, to tell its returned repeats (counted there).
  const cpuSeries = new Set<string>();
  // Identity of a spec object, so aliases (1.18.0 names) share their dedupe slot.
  const specIds = new Map<FieldSpec, number>();

  for (const family of parsed.families) {
    for (const sample of family.samples) {
      if (SCRAPE_ERROR_NAMES.has(sample.name)) {
        if (sample.value > 0) stats.kubeletScrapeError = true;
        continue;
      }
      const spec = FIELDS.get(sample.name);
      if (!spec) continue;

      const slot = locate(stats, spec, sample.labels);
      if (!slot) continue;

      let specId = specIds.get(spec);
      if (specId === undefined) specIds.set(spec, (specId = specIds.size));
      const seenKey = `${specId}\u0000${slot.key}`;
      const duplicate = seen.has(seenKey);
      const repeat = isParserRepeat(cpuSeries, sample);
      if (duplicate && !repeat) stats.rejected.duplicate++;
      seen.add(seenKey);
      if (duplicate && spec !== CONTAINER_CPU) continue;

      const reason = rejectReason(sample, spec.kind);
      if (reason !== undefined) {
        if (!duplicate) stats.rejected[reason]++;
        continue;
      }
      if (spec === CONTAINER_CPU) {
        addCpuCandidate(slot.entry() as unknown as KubeletContainerStats, sample);
        if (duplicate) continue;
      }

      const entry = slot.entry();
      entry[spec.field] = sample.value;
      if (spec.scope !== 'node' && spec.timestampField !== undefined && sample.timestampMs !== undefined) {
        entry[spec.timestampField] = sample.timestampMs;
      }
    }
  }
  return stats;
}
