/**
 * Renders kubelet /metrics/resource text in the current format (Kubernetes 1.30+): families in
 * name order with `[STABLE]`/`[ALPHA]` HELP and TYPE lines, labels sorted container, namespace,
 * pod, values formatted as Go's strconv 'g' (what the kubelet's Prometheus library writes),
 * millisecond sample timestamps on CPU, memory and swap samples and none on start times,
 * `resource_scrape_error` only (`scrape_error` is hidden since 1.30).
 * Pure: the lab's simulated kubelet calls it with values that move over time.
 */
import { escapeLabelValue, formatGoFloat } from '../prom-text/format.ts';
import type { KubeletContainerStats, KubeletNodeStats, KubeletPodStats } from '../translate/records.ts';

export { formatGoFloat };

export interface KubeletPayloadInput {
  /** When the stats were taken (ms since epoch); used for samples without their own timestamp. */
  timestampMs: number;
  node?: KubeletNodeStats;
  pods?: readonly KubeletPodStats[];
  containers?: readonly KubeletContainerStats[];
  /** Render resource_scrape_error 1 (the kubelet could not read its stats: it then sends nothing else). */
  scrapeError?: boolean;
}

interface Row {
  labels: [string, string][];
  value: number;
  timestampMs?: number;
}

interface FamilyDef {
  name: string;
  stability: 'STABLE' | 'ALPHA';
  type: 'counter' | 'gauge';
  help: string;
  rows: (input: KubeletPayloadInput) => Row[];
}

const podLabels = (p: { namespace: string; pod: string }): [string, string][] => [
  ['namespace', p.namespace],
  ['pod', p.pod],
];
const containerLabels = (c: KubeletContainerStats): [string, string][] => [['container', c.container], ...podLabels(c)];

function rowsOf<T>(
  items: readonly T[] | undefined,
  labels: (item: T) => [string, string][],
  value: (item: T) => number | undefined,
  timestampMs: (item: T) => number | undefined,
): Row[] {
  const rows: Row[] = [];
  for (const item of items ?? []) {
    const v = value(item);
    if (v === undefined) continue;
    const ts = timestampMs(item);
    rows.push({ labels: labels(item), value: v, ...(ts === undefined ? {} : { timestampMs: ts }) });
  }
  return rows;
}

const nodeRow =
  (field: keyof KubeletNodeStats) =>
  (input: KubeletPayloadInput): Row[] =>
    rowsOf(
      input.node ? [input.node] : [],
      () => [],
      (n) => n[field],
      () => input.timestampMs,
    );

const FAMILIES: readonly FamilyDef[] = [
  {
    name: 'container_cpu_usage_seconds_total',
    stability: 'STABLE',
    type: 'counter',
    help: 'Cumulative cpu time consumed by the container in core-seconds',
    rows: (i) =>
      rowsOf(
        i.containers,
        containerLabels,
        (c) => c.cpuSeconds,
        (c) => c.cpuTimestampMs ?? i.timestampMs,
      ),
  },
  {
    name: 'container_memory_working_set_bytes',
    stability: 'STABLE',
    type: 'gauge',
    help: 'Current working set of the container in bytes',
    rows: (i) =>
      rowsOf(
        i.containers,
        containerLabels,
        (c) => c.memoryWorkingSetBytes,
        (c) => c.memoryTimestampMs ?? i.timestampMs,
      ),
  },
  {
    name: 'container_start_time_seconds',
    stability: 'STABLE',
    type: 'gauge',
    help: 'Start time of the container since unix epoch in seconds',
    rows: (i) =>
      rowsOf(
        i.containers,
        containerLabels,
        (c) => c.startTimeSeconds,
        () => undefined,
      ),
  },
  {
    name: 'container_swap_usage_bytes',
    stability: 'ALPHA',
    type: 'gauge',
    help: 'Current amount of the container swap usage in bytes. Reported only on non-windows systems',
    rows: (i) =>
      rowsOf(
        i.containers,
        containerLabels,
        (c) => c.swapBytes,
        (c) => c.memoryTimestampMs ?? i.timestampMs,
      ),
  },
  {
    name: 'node_cpu_usage_seconds_total',
    stability: 'STABLE',
    type: 'counter',
    help: 'Cumulative cpu time consumed by the node in core-seconds',
    rows: nodeRow('cpuSeconds'),
  },
  {
    name: 'node_memory_working_set_bytes',
    stability: 'STABLE',
    type: 'gauge',
    help: 'Current working set of the node in bytes',
    rows: nodeRow('memoryWorkingSetBytes'),
  },
  {
    name: 'node_swap_usage_bytes',
    stability: 'ALPHA',
    type: 'gauge',
    help: 'Current swap usage of the node in bytes. Reported only on non-windows systems',
    rows: nodeRow('swapBytes'),
  },
  {
    name: 'pod_cpu_usage_seconds_total',
    stability: 'STABLE',
    type: 'counter',
    help: 'Cumulative cpu time consumed by the pod in core-seconds',
    rows: (i) =>
      rowsOf(
        i.pods,
        podLabels,
        (p) => p.cpuSeconds,
        (p) => p.cpuTimestampMs ?? i.timestampMs,
      ),
  },
  {
    name: 'pod_memory_working_set_bytes',
    stability: 'STABLE',
    type: 'gauge',
    help: 'Current working set of the pod in bytes',
    rows: (i) =>
      rowsOf(
        i.pods,
        podLabels,
        (p) => p.memoryWorkingSetBytes,
        (p) => p.memoryTimestampMs ?? i.timestampMs,
      ),
  },
  {
    name: 'pod_swap_usage_bytes',
    stability: 'ALPHA',
    type: 'gauge',
    help: 'Current amount of the pod swap usage in bytes. Reported only on non-windows systems',
    rows: (i) =>
      rowsOf(
        i.pods,
        podLabels,
        (p) => p.swapBytes,
        (p) => p.memoryTimestampMs ?? i.timestampMs,
      ),
  },
  {
    name: 'resource_scrape_error',
    stability: 'STABLE',
    type: 'gauge',
    help: '1 if there was an error while getting container metrics, 0 otherwise',
    rows: (i) => [{ labels: [], value: i.scrapeError ? 1 : 0 }],
  },
];

function labelKey(r: Row): string {
  return r.labels.map(([, v]) => v).join('\u0000');
}

/** Render one payload. Families without samples are left out, as the kubelet does. */
export function renderKubeletPayload(input: KubeletPayloadInput): string {
  const out: string[] = [];
  for (const fam of FAMILIES) {
    if (input.scrapeError && fam.name !== 'resource_scrape_error') continue;
    // The Prometheus registry sorts series by label values.
    const rows = fam
      .rows(input)
      .map((row) => ({ row, key: labelKey(row) }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .map(({ row }) => row);
    if (rows.length === 0) continue;
    out.push(`# HELP ${fam.name} [${fam.stability}] ${fam.help}`, `# TYPE ${fam.name} ${fam.type}`);
    for (const r of rows) {
      const labels = r.labels.length === 0 ? '' : `{${r.labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
      const ts = r.timestampMs === undefined ? '' : ` ${Math.trunc(r.timestampMs)}`;
      out.push(`${fam.name}${labels} ${formatGoFloat(r.value)}${ts}`);
    }
  }
  return `${out.join('\n')}\n`;
}
