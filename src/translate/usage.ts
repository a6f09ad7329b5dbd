/**
 * Usage records (docs/usage-records.md): what each Kata pod cost the node over its whole life,
 * one record per pod, built when it ends. Pure: every collection's NodeSnapshot is observed with
 * its own time, and the end comes with its time and a final read of the pod's host cgroups.
 *
 * Per pod the accumulator keeps the latest counters, integrates the host working set into
 * GiB-seconds between observations (trapezoids), keeps the highest working set seen, and unions
 * every gap reason and audit finding seen during the pod's life.
 */

import type { AuditSnapshot, ContainerGapReason, NodeSnapshot, PodGapReason, PodSnapshot, ValueSource } from './snapshot.ts';
import type { PodRecord } from './records.ts';

const GIB = 2 ** 30;

/** Pods tracked at once: far above any node's pod limit, a bound should the end of pods never come. */
export const MAX_TRACKED_PODS = 5000;

export type UsageEndReason = 'succeeded' | 'failed' | 'deleted';

/** The pod's host cgroups read at its end (pod cgroup plus what the VM spends outside it). */
export interface FinalHostRead {
  cpuSeconds?: number;
  memoryWorkingSetBytes?: number;
  /** The kernel's own peak, summed over the cgroups read; undefined when one of them keeps none. */
  memoryPeakBytes?: number;
  cpuThrottledSeconds?: number;
  oomKills?: number;
  diskReadBytes?: number;
  diskWrittenBytes?: number;
}

export interface PodEnd {
  atMs: number;
  reason: UsageEndReason;
  pod: Pick<PodRecord, 'namespace' | 'name' | 'uid' | 'runtimeHandler' | 'startedAt' | 'publishedLabels'>;
  node: string;
}

export interface ContainerUsage {
  name: string;
  cpu_seconds: number | null;
  /** `kubelet`: first-hand; `guest_estimate`: the guest's own total (a single-container pod without one). */
  source: ValueSource | null;
  /** When the value was read: a container's counter cannot be read after its end. */
  read_at: string | null;
}

/** One JSON line; every field is always there, null when unknown (docs/usage-records.md). */
export interface UsageRecord {
  kind: 'usage_record';
  schema: 1;
  namespace: string;
  pod: string;
  uid: string;
  node: string;
  runtime_handler: string | null;
  sandbox_id: string | null;
  labels: Record<string, string>;
  start: string;
  end: string;
  duration_seconds: number;
  end_reason: UsageEndReason;
  /** The pod's cgroups were read at its end: the totals are the kernel's final ones. */
  final_read: boolean;
  /** Collections that saw the pod alive. */
  collections: number;
  host_cpu_seconds: number | null;
  overhead_cpu_seconds: number | null;
  containers: ContainerUsage[];
  host_memory_peak_bytes: number | null;
  /** `kernel`: memory.peak / memory.max_usage_in_bytes; `observed_working_set`: the highest working set seen. */
  host_memory_peak_source: 'kernel' | 'observed_working_set' | null;
  host_memory_gib_seconds: number | null;
  host_cpu_throttled_seconds: number | null;
  host_oom_kills: number | null;
  guest_oom_kills: number | null;
  host_network_receive_bytes: number | null;
  host_network_transmit_bytes: number | null;
  host_disk_read_bytes: number | null;
  host_disk_written_bytes: number | null;
  gaps: PodGapReason[];
  container_gaps: Record<string, ContainerGapReason[]>;
  audit_findings: string[];
}

interface MemorySample {
  atMs: number;
  bytes: number;
}

interface PodUsage {
  sandboxId?: string;
  runtimeHandler?: string;
  labels?: Readonly<Record<string, string>>;
  collections: number;
  firstAtMs: number;
  lastAtMs: number;
  /** The latest snapshot of the pod. */
  latest: PodSnapshot;
  /** Each container's latest value and when it was read. */
  containers: Map<string, { cpuSeconds?: number; source?: ValueSource; atMs: number }>;
  firstMemory?: MemorySample;
  lastMemory?: MemorySample;
  gibSeconds: number;
  highestWorkingSet?: number;
  gaps: Set<PodGapReason>;
  containerGaps: Map<string, Set<ContainerGapReason>>;
  audit: Set<string>;
}

/** The audit's findings of one collection, as stable strings per `namespace/pod`. */
function auditFindings(audit: AuditSnapshot | undefined): Map<string, string[]> {
  const byPod = new Map<string, string[]>();
  if (audit === undefined) return byPod;
  const add = (ref: { namespace: string; pod: string }, finding: string) => {
    const key = `${ref.namespace}/${ref.pod}`;
    byPod.set(key, [...(byPod.get(key) ?? []), finding]);
  };
  for (const f of audit.unsandboxed) add(f, `unsandboxed:${f.runtimeHandler}`);
  for (const f of audit.privilegedContainers) add(f, `privileged_container:${f.container}:host_devices=${f.hostDevices}`);
  for (const f of audit.hostNamespaces) add(f, `host_namespace:${f.kind}`);
  for (const f of audit.hostPaths) add(f, 'host_path');
  for (const f of audit.kataAnnotations) add(f, `kata_annotations:honoured=${f.honoured}`);
  return byPod;
}

function round(value: number | undefined, digits = 6): number | null {
  if (value === undefined || !Number.isFinite(value)) return null;
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export class UsageAccumulator {
  private readonly pods = new Map<string, PodUsage>();

  get size(): number {
    return this.pods.size;
  }

  has(uid: string): boolean {
    return this.pods.has(uid);
  }

  /** The sandbox a tracked pod was last joined to. */
  sandboxId(uid: string): string | undefined {
    return this.pods.get(uid)?.sandboxId;
  }

  /** Takes one collection in; `ended(uid)` names pods already recorded (a snapshot taken before their end). */
  observe(snapshot: NodeSnapshot, ended: (uid: string) => boolean = () => false): void {
    const atMs = snapshot.takenAtMs;
    const findings = auditFindings(snapshot.audit);
    for (const pod of snapshot.pods) {
      if (ended(pod.uid)) continue;
      let usage = this.pods.get(pod.uid);
      if (usage === undefined) {
        if (this.pods.size >= MAX_TRACKED_PODS) continue;
        usage = {
          collections: 0,
          firstAtMs: atMs,
          lastAtMs: -Infinity,
          latest: pod,
          containers: new Map(),
          gibSeconds: 0,
          gaps: new Set(),
          containerGaps: new Map(),
          audit: new Set(),
        };
        this.pods.set(pod.uid, usage);
      }
      // A collection that started before one already taken in adds nothing (it raced it).
      if (atMs <= usage.lastAtMs) continue;
      this.sample(usage, pod, atMs, findings.get(`${pod.namespace}/${pod.pod}`) ?? []);
    }
  }

  private sample(usage: PodUsage, pod: PodSnapshot, atMs: number, findings: readonly string[]): void {
    usage.collections++;
    usage.lastAtMs = atMs;
    usage.latest = pod;
    if (pod.sandboxId !== undefined) usage.sandboxId = pod.sandboxId;
    if (pod.runtimeHandler !== undefined) usage.runtimeHandler = pod.runtimeHandler;
    if (pod.labels !== undefined) usage.labels = pod.labels;
    for (const c of pod.containers) {
      if (c.cpuSeconds !== undefined) usage.containers.set(c.name, { cpuSeconds: c.cpuSeconds, source: c.source, atMs });
      else if (!usage.containers.has(c.name)) usage.containers.set(c.name, { atMs });
      if (c.gap !== undefined) {
        const gaps = usage.containerGaps.get(c.name) ?? new Set();
        gaps.add(c.gap);
        usage.containerGaps.set(c.name, gaps);
      }
    }
    for (const gap of pod.gaps) usage.gaps.add(gap);
    for (const finding of findings) usage.audit.add(finding);
    addMemory(usage, atMs, pod.hostMemoryWorkingSetBytes);
  }

  /** Forgets a pod without a record. */
  forget(uid: string): void {
    this.pods.delete(uid);
  }

  /**
   * The pod's record, and its state dropped. `final` is its cgroups read at the end, undefined
   * when they were already gone: the record then holds the last collection's values.
   */
  finish(end: PodEnd, final: FinalHostRead | undefined): UsageRecord {
    const usage = this.pods.get(end.pod.uid);
    this.pods.delete(end.pod.uid);
    const latest = usage?.latest;
    if (usage !== undefined) addMemory(usage, end.atMs, final?.memoryWorkingSetBytes);
    const firstSeenMs = usage?.firstAtMs ?? end.atMs;
    const startMs = Math.min(end.pod.startedAt === undefined ? firstSeenMs : end.pod.startedAt * 1000, end.atMs);
    const hostCpu = final?.cpuSeconds ?? latest?.hostCpuSeconds;
    const peak = final?.memoryPeakBytes ?? maxDefined(usage?.highestWorkingSet, final?.memoryWorkingSetBytes);
    return {
      kind: 'usage_record',
      schema: 1,
      namespace: end.pod.namespace,
      pod: end.pod.name,
      uid: end.pod.uid,
      node: end.node,
      runtime_handler: end.pod.runtimeHandler ?? usage?.runtimeHandler ?? null,
      sandbox_id: usage?.sandboxId ?? null,
      labels: { ...(end.pod.publishedLabels ?? usage?.labels ?? {}) },
      start: iso(startMs),
      end: iso(end.atMs),
      duration_seconds: round((end.atMs - startMs) / 1000, 3) ?? 0,
      end_reason: end.reason,
      final_read: final !== undefined,
      collections: usage?.collections ?? 0,
      host_cpu_seconds: round(hostCpu),
      overhead_cpu_seconds: round(overheadAtEnd(latest, final)),
      containers: [...(usage?.containers ?? [])].map(([name, c]) => ({
        name,
        cpu_seconds: round(c.cpuSeconds),
        source: c.source ?? null,
        read_at: c.cpuSeconds === undefined ? null : iso(c.atMs),
      })),
      host_memory_peak_bytes: round(peak, 0),
      host_memory_peak_source: final?.memoryPeakBytes !== undefined ? 'kernel' : peak !== undefined ? 'observed_working_set' : null,
      host_memory_gib_seconds: usage === undefined ? null : round(gibSeconds(usage, startMs, end.atMs)),
      host_cpu_throttled_seconds: round(final?.cpuThrottledSeconds ?? latest?.hostCpuThrottledSeconds),
      host_oom_kills: round(final?.oomKills ?? latest?.hostOomKills, 0),
      guest_oom_kills: round(latest?.guestOomKills, 0),
      host_network_receive_bytes: round(latest?.hostNetworkReceiveBytes, 0),
      host_network_transmit_bytes: round(latest?.hostNetworkTransmitBytes, 0),
      host_disk_read_bytes: round(final?.diskReadBytes ?? latest?.hostDiskReadBytes, 0),
      host_disk_written_bytes: round(final?.diskWrittenBytes ?? latest?.hostDiskWrittenBytes, 0),
      gaps: [...(usage?.gaps ?? [])].sort(),
      container_gaps: Object.fromEntries([...(usage?.containerGaps ?? [])].map(([name, gaps]) => [name, [...gaps].sort()])),
      audit_findings: [...(usage?.audit ?? [])].sort(),
    };
  }
}

function maxDefined(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.max(a, b);
}

/** A working-set observation: the trapezoid since the last one, and the highest seen. */
function addMemory(usage: PodUsage, atMs: number, bytes: number | undefined): void {
  if (bytes === undefined) return;
  const last = usage.lastMemory;
  if (last !== undefined && atMs <= last.atMs) return;
  if (last !== undefined) usage.gibSeconds += ((last.bytes + bytes) / 2 / GIB) * ((atMs - last.atMs) / 1000);
  usage.firstMemory ??= { atMs, bytes };
  usage.lastMemory = { atMs, bytes };
  usage.highestWorkingSet = maxDefined(usage.highestWorkingSet, bytes);
}

/**
 * GiB-seconds over [start, end]: the trapezoids between observations, the first observation held
 * back to the start and the last one held to the end. Undefined when the working set was never read.
 */
function gibSeconds(usage: PodUsage, startMs: number, endMs: number): number | undefined {
  const first = usage.firstMemory;
  const last = usage.lastMemory;
  if (first === undefined || last === undefined) return undefined;
  const head = (first.bytes / GIB) * (Math.max(0, first.atMs - startMs) / 1000);
  const tail = (last.bytes / GIB) * (Math.max(0, endMs - last.atMs) / 1000);
  return head + usage.gibSeconds + tail;
}

/**
 * The overhead's CPU at the end. The workload's counters cannot be read after the last
 * collection (the kubelet and the guest stop reporting a finished pod), so the host CPU added
 * since is split as the overhead's share of it was until then.
 */
function overheadAtEnd(latest: PodSnapshot | undefined, final: FinalHostRead | undefined): number | undefined {
  const overhead = latest?.overheadCpuSeconds;
  const host = latest?.hostCpuSeconds;
  if (overhead === undefined || host === undefined || final?.cpuSeconds === undefined || host <= 0 || final.cpuSeconds < host)
    return overhead;
  return overhead * (final.cpuSeconds / host);
}

/** One record as the line written: JSON, one line (JSON.stringify escapes every control character). */
export function usageRecordLine(record: UsageRecord): string {
  return `${JSON.stringify(record)}\n`;
}
