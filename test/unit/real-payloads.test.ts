/**
 * Conformance over real payloads: bodies that real kubelets and Kata shims served, read from
 * ../shared/real-payloads (outside the project: never copied in). Each is decoded by the project's
 * decoders and checked against an independent, line-based reading (test/support/reference-prom-reader.ts)
 * after the decoders' documented conversions; a payload that is broken on purpose is checked for
 * the decoder's documented behaviour instead.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { correlate } from '../../src/translate/correlate.ts';
import { CounterState } from '../../src/translate/counters.ts';
import { KUBELET_SANITY_LIMITS, decodeKubeletMetrics } from '../../src/translate/kubelet-decode.ts';
import { decodeShimMetrics } from '../../src/translate/kata-decode.ts';
import type { KubeletStats } from '../../src/translate/records.ts';
import { readReferenceSamples, type ReferenceSample } from '../support/reference-prom-reader.ts';
import { input, pod } from '../support/correlation-builders.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DIR = resolve(ROOT, '../shared/real-payloads');
const present = existsSync(DIR);
const payloads = present
  ? readdirSync(DIR)
      .filter((f) => !f.endsWith('.source.txt') && f !== 'README.md')
      .sort()
  : [];
const read = (name: string): string => readFileSync(resolve(DIR, name), 'utf8');

test('the real payloads folder is there (../shared/real-payloads beside the repository)', () => {
  // Outside this workplace the folder is absent: this test says so instead of passing silently.
  expect(present, `real payloads not found at ../shared/real-payloads: nothing below was checked`).toBe(true);
  expect(payloads).toHaveLength(27);
});

// ─── kubelet /metrics/resource ────────────────────────────────────────────────

type Field = { scope: 'node' | 'pod' | 'container'; field: string; timestampField?: string; kind: 'cpu' | 'bytes' | 'start' };
/** Sample name → where the decoder documents it goes (domain.md §1). */
const KUBELET_FIELDS: Record<string, Field> = {
  node_cpu_usage_seconds_total: { scope: 'node', field: 'cpuSeconds', kind: 'cpu' },
  node_memory_working_set_bytes: { scope: 'node', field: 'memoryWorkingSetBytes', kind: 'bytes' },
  node_swap_usage_bytes: { scope: 'node', field: 'swapBytes', kind: 'bytes' },
  pod_cpu_usage_seconds_total: { scope: 'pod', field: 'cpuSeconds', timestampField: 'cpuTimestampMs', kind: 'cpu' },
  pod_memory_working_set_bytes: { scope: 'pod', field: 'memoryWorkingSetBytes', timestampField: 'memoryTimestampMs', kind: 'bytes' },
  pod_swap_usage_bytes: { scope: 'pod', field: 'swapBytes', kind: 'bytes' },
  container_cpu_usage_seconds_total: { scope: 'container', field: 'cpuSeconds', timestampField: 'cpuTimestampMs', kind: 'cpu' },
  container_memory_working_set_bytes: {
    scope: 'container',
    field: 'memoryWorkingSetBytes',
    timestampField: 'memoryTimestampMs',
    kind: 'bytes',
  },
  container_start_time_seconds: { scope: 'container', field: 'startTimeSeconds', kind: 'start' },
  container_swap_usage_bytes: { scope: 'container', field: 'swapBytes', kind: 'bytes' },
};

/** The documented refusals: zero time (kubernetes#109679), negative, non-finite or beyond the sanity limits. */
function refused(sample: ReferenceSample, kind: Field['kind']): 'zero_time' | 'implausible_value' | undefined {
  if ((sample.timestampMs !== undefined && sample.timestampMs <= 0) || (kind === 'start' && sample.value <= 0)) return 'zero_time';
  const max =
    kind === 'cpu'
      ? KUBELET_SANITY_LIMITS.maxCpuSeconds
      : kind === 'bytes'
        ? KUBELET_SANITY_LIMITS.maxBytes
        : KUBELET_SANITY_LIMITS.maxStartTimeSeconds;
  return !Number.isFinite(sample.value) || sample.value < 0 || sample.value > max ? 'implausible_value' : undefined;
}

function entryOf(stats: KubeletStats, field: Field, labels: Record<string, string>): Record<string, unknown> | undefined {
  if (field.scope === 'node') return stats.node as Record<string, unknown>;
  if (field.scope === 'pod') return stats.pods.get(`${labels.namespace}/${labels.pod}`) as Record<string, unknown> | undefined;
  return stats.containers.get(`${labels.namespace}/${labels.pod}/${labels.container}`) as Record<string, unknown> | undefined;
}

describe.each(payloads.filter((f) => f.startsWith('kubelet-')))('kubelet payload %s', (file) => {
  test('decodes to what an independent reading finds, first sample of a series first', () => {
    const text = read(file);
    const reference = readReferenceSamples(text);
    expect(reference.unreadable).toEqual([]);
    const stats = decodeKubeletMetrics(text);
    const seen = new Set<string>();
    const rejected = { zero_time: 0, implausible_value: 0 };
    let checked = 0;
    for (const sample of reference.samples) {
      if (sample.name === 'scrape_error' || sample.name === 'resource_scrape_error') {
        if (sample.value > 0) expect(stats.kubeletScrapeError).toBe(true);
        checked++;
        continue;
      }
      const field = KUBELET_FIELDS[sample.name];
      if (field === undefined) continue;
      const key = `${sample.name}/${field.scope === 'node' ? '' : JSON.stringify([sample.labels.namespace, sample.labels.pod, sample.labels.container])}`;
      if (seen.has(key)) continue; // a repeat: the first one is the value (kubernetes#134518)
      seen.add(key);
      const reason = refused(sample, field.kind);
      const entry = entryOf(stats, field, sample.labels);
      if (reason !== undefined) {
        rejected[reason]++;
        expect(entry?.[field.field]).toBeUndefined();
        continue;
      }
      expect(entry?.[field.field], `${file}: ${sample.name}${JSON.stringify(sample.labels)}`).toBe(sample.value);
      if (field.timestampField !== undefined && sample.timestampMs !== undefined)
        expect(entry?.[field.timestampField]).toBe(sample.timestampMs);
      checked++;
    }
    expect(checked).toBeGreaterThan(0);
    expect(stats.rejected.zero_time).toBe(rejected.zero_time);
    expect(stats.rejected.implausible_value).toBe(rejected.implausible_value);
    if (!reference.samples.some((s) => (s.name === 'scrape_error' || s.name === 'resource_scrape_error') && s.value > 0)) {
      expect(stats.kubeletScrapeError).toBe(false);
    }
  });
});

// ─── Kata shim /metrics ──────────────────────────────────────────────────────

/** What the decoder documents for one reading: the family, the item, the factor to base units. */
const SHIM_READINGS: {
  read: (m: ReturnType<typeof decodeShimMetrics>) => number | undefined;
  family: string;
  item?: string;
  factor?: number;
}[] = [
  { read: (m) => m.hypervisor.fds, family: 'kata_hypervisor_fds' },
  { read: (m) => m.hypervisor.readBytes, family: 'kata_hypervisor_io_stat', item: 'readbytes' },
  { read: (m) => m.hypervisor.writeBytes, family: 'kata_hypervisor_io_stat', item: 'writebytes' },
  // The Go shim's own proc_status is in bytes (prometheus/procfs converts kB).
  { read: (m) => m.shim.residentBytes, family: 'kata_shim_proc_status', item: 'vmrss' },
  { read: (m) => m.shim.virtualBytes, family: 'kata_shim_proc_status', item: 'vmsize' },
  { read: (m) => m.guest.load1, family: 'kata_guest_load', item: 'load1' },
  { read: (m) => m.guest.memTotalBytes, family: 'kata_guest_meminfo', item: 'mem_total' },
  { read: (m) => m.agent?.threads, family: 'kata_agent_threads' },
  { read: (m) => m.reportedOverhead?.cpu, family: 'kata_shim_pod_overhead_cpu' },
  { read: (m) => m.reportedOverhead?.memoryBytes, family: 'kata_shim_pod_overhead_memory_in_bytes' },
];

describe.each(payloads.filter((f) => f.startsWith('kata-')))('Kata payload %s', (file) => {
  test('decodes to what an independent reading finds (the first sample of a family or item)', () => {
    const text = read(file);
    const reference = readReferenceSamples(text);
    expect(reference.unreadable).toEqual([]);
    // Every one is a real shim's output, so every one has a kata_ family and decodes.
    expect(reference.samples.some((s) => s.name.startsWith('kata_'))).toBe(true);
    const metrics = decodeShimMetrics(Buffer.from(text), 'go');
    let checked = 0;
    for (const reading of SHIM_READINGS) {
      const first = reference.samples.find(
        (s) => s.name === reading.family && (reading.item === undefined || s.labels.item === reading.item),
      );
      expect(reading.read(metrics), `${file}: ${reading.family} ${reading.item ?? ''}`).toBe(
        first === undefined ? undefined : first.value * (reading.factor ?? 1),
      );
      if (first !== undefined) checked++;
    }
    if (reference.samples.some((s) => /^kata_(shim|guest|agent|hypervisor_(fds|io_stat|proc|threads))/.test(s.name))) {
      expect(checked).toBeGreaterThan(0);
    } else {
      // A trimmed excerpt with no family the decoder reads (only go_* and kata_hypervisor_netdev): empty readings.
      expect(metrics).toEqual({ shim: {}, hypervisor: {}, guest: {}, rejectedSamples: 0 });
    }
    expect(metrics.rejectedSamples).toBe(0);
  });
});

// ─── the v1.30.10 duplicate pair (kubernetes#134518) ─────────────────────────

describe('the real v1.30.10 duplicate pair', () => {
  const file = 'kubelet-ms1779-v1.30.10-duplicates-grep.txt';
  const CPU = /^container_cpu_usage_seconds_total\{.*\} (\S+) (\d+)$/;

  /** The real body, with its two CPU lines in the given order, the live one (the second in the file) advanced. */
  function body(liveFirst: boolean, advanceSeconds: number, advanceCpu: number): string {
    const lines = read(file).split('\n');
    const cpu = lines.filter((l) => CPU.test(l));
    const [leftover, live] = [cpu[0]!, cpu[1]!];
    const moved = (line: string, cpuBy: number) =>
      line.replace(CPU, (whole, value: string, ts: string) =>
        whole.replace(`${value} ${ts}`, `${Number(value) + cpuBy} ${Number(ts) + advanceSeconds * 1000}`),
      );
    const pair = liveFirst ? [moved(live, advanceCpu), moved(leftover, 0)] : [moved(leftover, 0), moved(live, advanceCpu)];
    return [...pair, ...lines.filter((l) => !CPU.test(l))].join('\n');
  }

  test('fed in alternating order, the published counter follows the live series and never jumps', () => {
    expect(existsSync(resolve(DIR, file)), `${file} not found in ../shared/real-payloads`).toBe(true);
    const p = pod('prometheus-prometheus-k8s-0', ['prometheus'], { namespace: 'monitoring-system' });
    const counters = new CounterState();
    const published: number[] = [];
    const gaps: (string | undefined)[] = [];
    for (let i = 0; i < 6; i++) {
      const nowMs = 1773934040000 + i * 15_000;
      // The first collection sees the pair for the first time: undecided; then the live one moves on.
      const stats = decodeKubeletMetrics(body(i % 2 === 0, i * 15, i * 3.5));
      counters.beginCollection(nowMs);
      const result = correlate(input({ nowMs, pods: [p], kubelet: stats, hostCpus: 64 }), counters);
      counters.endCollection();
      const c = result.pods[0]!.containers[0]!;
      gaps.push(c.gap);
      if (c.cpuSeconds !== undefined) published.push(c.cpuSeconds);
    }
    expect(gaps[0]).toBe('kubelet_duplicate');
    expect(gaps.slice(1)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(published[0]).toBeCloseTo(295207.606798 + 3.5, 6);
    for (let i = 1; i < published.length; i++) expect(published[i]! - published[i - 1]!).toBeCloseTo(3.5, 6);
  });
});
