/**
 * The landing page's node `top`: one row per Kata pod of a snapshot, sorted by host CPU. Rates come
 * from two snapshots' counters (time is the snapshots' own). Pure, except RecentSnapshots, which
 * keeps the snapshot before the current one so the next rate has a start.
 *
 * Pod names, gap reasons and audit findings reach the browser as text only: the page writes them
 * with textContent, and the HTML render escapes them.
 */

import type { AuditSnapshot, NodeSnapshot, PodSnapshot } from '../translate/snapshot.ts';

export interface PodRow {
  namespace: string;
  pod: string;
  runtimeHandler?: string;
  /** Cores: the rate of kata_bridge_pod_host_cpu_usage_seconds_total between the last two snapshots. */
  hostCpuCores?: number;
  hostMemoryBytes?: number;
  /** kata_bridge_pod_host_memory_limit_bytes; absent while unlimited or not read. */
  hostMemoryLimitBytes?: number;
  overheadMemoryBytes?: number;
  overheadMemoryReservedBytes?: number;
  /** Cores: the rate of kata_bridge_pod_overhead_cpu_usage_seconds_total between the last two snapshots. */
  overheadCpuCores?: number;
  overheadCpuReservedCores?: number;
  /** Seconds throttled per second: the rate of kata_bridge_pod_host_cpu_throttled_seconds_total. */
  hostCpuThrottledRate?: number;
  /** kata_bridge_pod_host_oom_kills_total. */
  hostOomKills?: number;
  /** Pod gap reasons, then `container: reason` for each container gap. */
  gaps: string[];
  /** The isolation audit's findings on this pod. */
  findings: string[];
}

export interface PodTable {
  takenAtMs: number;
  /** Seconds between the two snapshots the rates span; absent for the first snapshot. */
  rateSeconds?: number;
  rows: PodRow[];
}

/** Column headings and the text of each cell, in order; "—" where a value is absent. */
export const POD_COLUMNS: readonly { heading: string; cell: (row: PodRow) => string }[] = [
  { heading: 'Pod', cell: (r) => `${r.namespace}/${r.pod}` },
  { heading: 'Handler', cell: (r) => r.runtimeHandler ?? ABSENT },
  { heading: 'Host CPU (cores)', cell: (r) => cores(r.hostCpuCores) },
  { heading: 'Host memory / limit', cell: (r) => against(r.hostMemoryBytes, r.hostMemoryLimitBytes, bytes) },
  { heading: 'Overhead memory / reserved', cell: (r) => against(r.overheadMemoryBytes, r.overheadMemoryReservedBytes, bytes) },
  { heading: 'Overhead CPU / reserved (cores)', cell: (r) => against(r.overheadCpuCores, r.overheadCpuReservedCores, cores) },
  { heading: 'Throttled (s/s)', cell: (r) => cores(r.hostCpuThrottledRate) },
  { heading: 'Host OOM kills', cell: (r) => (r.hostOomKills === undefined ? ABSENT : String(r.hostOomKills)) },
  { heading: 'Gaps', cell: (r) => r.gaps.join(', ') },
  { heading: 'Audit findings', cell: (r) => r.findings.join('; ') },
];

const ABSENT = '—';
/** A cell longer than this is cut: a pod with many containers must not bloat every refresh. */
const MAX_CELL_CHARS = 300;
const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

function cores(value: number | undefined): string {
  return value === undefined ? ABSENT : value.toFixed(2);
}

function bytes(value: number | undefined): string {
  if (value === undefined) return ABSENT;
  return value >= GIB ? `${(value / GIB).toFixed(2)} GiB` : `${(value / MIB).toFixed(0)} MiB`;
}

function against(used: number | undefined, bound: number | undefined, format: (v: number | undefined) => string): string {
  const share = used !== undefined && bound !== undefined && bound > 0 ? ` (${Math.round((100 * used) / bound)}%)` : '';
  return `${format(used)} / ${format(bound)}${share}`;
}

function bounded(text: string): string {
  return text.length <= MAX_CELL_CHARS ? text : `${text.slice(0, MAX_CELL_CHARS - 1)}…`;
}

/** The text of each cell of a row, bounded. */
export function podCells(row: PodRow): string[] {
  return POD_COLUMNS.map((c) => bounded(c.cell(row)));
}

/** Per second between two readings of a counter; none when either is missing or it went back. */
function perSecond(now: number | undefined, before: number | undefined, seconds: number | undefined): number | undefined {
  if (now === undefined || before === undefined || seconds === undefined || seconds <= 0 || now < before) return undefined;
  return (now - before) / seconds;
}

const podKey = (namespace: string, pod: string) => `${namespace}/${pod}`;

function findingsByPod(audit: AuditSnapshot | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (audit === undefined) return out;
  const add = (ref: { namespace: string; pod: string }, text: string) => {
    const key = podKey(ref.namespace, ref.pod);
    out.set(key, [...(out.get(key) ?? []), text]);
  };
  for (const f of audit.privilegedContainers) add(f, `privileged container ${f.container} (host devices: ${f.hostDevices})`);
  for (const f of audit.hostNamespaces) add(f, `host ${f.kind} namespace`);
  for (const f of audit.hostPaths) add(f, 'hostPath volume');
  for (const f of audit.kataAnnotations) add(f, `Kata annotations (honoured: ${f.honoured})`);
  return out;
}

function rowOf(pod: PodSnapshot, before: PodSnapshot | undefined, seconds: number | undefined, findings: string[]): PodRow {
  return {
    namespace: pod.namespace,
    pod: pod.pod,
    runtimeHandler: pod.runtimeHandler,
    hostCpuCores: perSecond(pod.hostCpuSeconds, before?.hostCpuSeconds, seconds),
    hostMemoryBytes: pod.hostMemoryWorkingSetBytes,
    hostMemoryLimitBytes: pod.hostMemoryLimitBytes,
    overheadMemoryBytes: pod.overheadMemoryBytes,
    overheadMemoryReservedBytes: pod.overheadMemoryReservedBytes,
    overheadCpuCores: perSecond(pod.overheadCpuSeconds, before?.overheadCpuSeconds, seconds),
    overheadCpuReservedCores: pod.overheadCpuReservedCores,
    hostCpuThrottledRate: perSecond(pod.hostCpuThrottledSeconds, before?.hostCpuThrottledSeconds, seconds),
    hostOomKills: pod.hostOomKills,
    gaps: [...pod.gaps, ...pod.containers.flatMap((c) => (c.gap === undefined ? [] : [`${c.name}: ${c.gap}`]))],
    findings,
  };
}

/** Highest host CPU first; pods without a rate after, then by namespace and name. */
function byHostCpu(a: PodRow, b: PodRow): number {
  const cpu = (b.hostCpuCores ?? -1) - (a.hostCpuCores ?? -1);
  return cpu !== 0 ? cpu : podKey(a.namespace, a.pod).localeCompare(podKey(b.namespace, b.pod));
}

/** The table of `current`, with rates since `previous` (the same pod by uid: a re-created pod starts anew). */
export function podTable(current: NodeSnapshot, previous: NodeSnapshot | undefined): PodTable {
  const seconds = previous === undefined ? undefined : (current.takenAtMs - previous.takenAtMs) / 1000;
  const before = new Map((previous?.pods ?? []).map((p) => [p.uid, p]));
  const findings = findingsByPod(current.audit);
  const rows = current.pods
    .map((pod) => rowOf(pod, before.get(pod.uid), seconds, findings.get(podKey(pod.namespace, pod.pod)) ?? []))
    .sort(byHostCpu);
  return { takenAtMs: current.takenAtMs, ...(seconds !== undefined && seconds > 0 ? { rateSeconds: seconds } : {}), rows };
}

/** What /top.json answers: the table, and each row's cells as the page shows them. */
export function podTableJson(table: PodTable): string {
  return JSON.stringify({
    takenAt: new Date(table.takenAtMs).toISOString(),
    rateSeconds: table.rateSeconds ?? null,
    columns: POD_COLUMNS.map((c) => c.heading),
    rows: table.rows.map((row) => ({ ...row, cells: podCells(row) })),
  });
}

/** The current snapshot and the one before it, for rates. A repeat or an older snapshot changes nothing. */
export class RecentSnapshots {
  private current: NodeSnapshot | undefined;
  private previous: NodeSnapshot | undefined;

  observe(snapshot: NodeSnapshot): PodTable {
    if (this.current === undefined || snapshot.takenAtMs > this.current.takenAtMs) {
      this.previous = this.current;
      this.current = snapshot;
    }
    return podTable(this.current, this.previous);
  }
}
