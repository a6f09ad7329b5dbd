/**
 * Every family the bridge publishes, declared once. The renderer and docs/metrics.md both read
 * this table; a test fails when the docs drift from it.
 */

import {
  CONTAINER_GAP_REASONS,
  POD_GAP_REASONS,
  type AuditPodRef,
  type AuditSnapshot,
  type ContainerSnapshot,
  type NodeSnapshot,
  type PodSnapshot,
} from '../translate/snapshot.ts';

export const PREFIX = 'kata_bridge_';

/** `audit`: the isolation audit's findings, per pod on the node (Kata or not), only with the audit on. */
export type FamilyScope = 'container' | 'pod' | 'node' | 'audit';
export type Labels = Record<string, string>;
export type Emit = (labels: Labels, value: number) => void;

export interface FamilyDef {
  /** Without the prefix. */
  name: string;
  type: 'counter' | 'gauge';
  help: string;
  scope: FamilyScope;
  /** Label names in addition to the scope's identity labels (namespace, pod, container). */
  extraLabels: readonly string[];
  /** Series this family adds per container / pod at most (for the cardinality budget). */
  maxSeriesPerScope: number;
  /** For a family outside the per-scope budget (maxSeriesPerScope 0): what its series count grows with. */
  maxSeriesNote?: string;
  /** Where the value comes from, for the docs. */
  source: string;
  collect(snapshot: NodeSnapshot, emit: Emit): void;
}

export const SCOPE_LABELS: Record<FamilyScope, readonly string[]> = {
  container: ['namespace', 'pod', 'container'],
  pod: ['namespace', 'pod'],
  node: [],
  audit: ['namespace', 'pod'],
};

/** A family with one value series per container or per pod and no labels beyond the scope's. */
function valueFamily(
  scope: FamilyScope,
  name: string,
  type: FamilyDef['type'],
  help: string,
  source: string,
  collect: FamilyDef['collect'],
): FamilyDef {
  return { name, type, help, scope, extraLabels: [], maxSeriesPerScope: 1, source, collect };
}

function emitDefined(emit: Emit, labels: Labels, value: number | undefined): void {
  if (value !== undefined) emit(labels, value);
}

function containerFamily(
  name: string,
  type: FamilyDef['type'],
  help: string,
  source: string,
  value: (c: ContainerSnapshot) => number | undefined,
): FamilyDef {
  return valueFamily('container', name, type, help, source, (snapshot, emit) => {
    for (const pod of snapshot.pods) {
      for (const c of pod.containers) emitDefined(emit, { namespace: pod.namespace, pod: pod.pod, container: c.name }, value(c));
    }
  });
}

function podFamily(
  name: string,
  type: FamilyDef['type'],
  help: string,
  source: string,
  value: (p: PodSnapshot) => number | undefined,
): FamilyDef {
  return valueFamily('pod', name, type, help, source, (snapshot, emit) => {
    for (const pod of snapshot.pods) emitDefined(emit, { namespace: pod.namespace, pod: pod.pod }, value(pod));
  });
}

function boolLabel(value: boolean | undefined): string {
  return value === undefined ? 'unknown' : String(value);
}

export const FAMILIES: readonly FamilyDef[] = [
  // ── per container ──
  containerFamily(
    'container_cpu_usage_seconds_total',
    'counter',
    'CPU time used by the container: the kubelet value when first-hand, else the guest total as an estimate for a single-container pod: all of it in the container\'s first life, counted from zero after a restart (see container_metrics_gap). A sample that grew more than the node could have run is refused.',
    'kubelet container_cpu_usage_seconds_total; during a gap in a one-container pod, guest non-idle CPU',
    (c) => c.cpuSeconds,
  ),
  containerFamily(
    'container_memory_working_set_bytes',
    'gauge',
    'Memory working set of the container: the kubelet value when first-hand, else the guest used memory as an estimate for a single-container pod.',
    'kubelet container_memory_working_set_bytes; during a gap in a one-container pod, guest MemTotal − MemAvailable',
    (c) => c.memoryWorkingSetBytes,
  ),
  containerFamily('container_cpu_limit_cores', 'gauge', 'CPU limit of the container, when set.', 'pod spec', (c) => c.cpuLimitCores),
  containerFamily('container_memory_limit_bytes', 'gauge', 'Memory limit of the container, when set.', 'pod spec', (c) => c.memoryLimitBytes),
  {
    name: 'container_metrics_gap',
    type: 'gauge',
    help: 'Present (1) while the container has no first-hand value; reason says why. Values published during a gap are estimates.',
    scope: 'container',
    extraLabels: ['reason'],
    maxSeriesPerScope: 1,
    source: `correlation; reasons: ${CONTAINER_GAP_REASONS.join(', ')}`,
    collect(snapshot, emit) {
      for (const pod of snapshot.pods) {
        for (const c of pod.containers) {
          if (c.gap !== undefined) emit({ namespace: pod.namespace, pod: pod.pod, container: c.name, reason: c.gap }, 1);
        }
      }
    },
  },
  // ── per pod ──
  {
    name: 'pod_info',
    type: 'gauge',
    help: 'Identity of a Kata pod and its sandbox (always 1).',
    scope: 'pod',
    extraLabels: ['uid', 'sandbox_id', 'runtime_handler', 'runtime', 'hypervisor', 'sandbox_cgroup_only'],
    maxSeriesPerScope: 1,
    source: 'pod watch, Kata state files',
    collect(snapshot, emit) {
      for (const pod of snapshot.pods) {
        emit(
          {
            namespace: pod.namespace,
            pod: pod.pod,
            uid: pod.uid,
            sandbox_id: pod.sandboxId ?? '',
            runtime_handler: pod.runtimeHandler ?? '',
            runtime: pod.runtime ?? '',
            hypervisor: pod.hypervisor ?? '',
            sandbox_cgroup_only: boolLabel(pod.sandboxCgroupOnly),
          },
          1,
        );
      }
    },
  },
  podFamily(
    'pod_host_cpu_usage_seconds_total',
    'counter',
    'CPU time the node spent on the pod: its host cgroup plus /kata_overhead/<sandbox>. The truth about what the node pays.',
    'host cgroups',
    (p) => p.hostCpuSeconds,
  ),
  podFamily(
    'pod_host_memory_working_set_bytes',
    'gauge',
    'Memory working set of the pod on the host (usage − inactive file), overhead cgroup included.',
    'host cgroups',
    (p) => p.hostMemoryWorkingSetBytes,
  ),
  podFamily(
    'pod_guest_cpu_usage_seconds_total',
    'counter',
    'CPU time the guest reports as busy (user+nice+system+irq+softirq). Reported by the guest: untrusted; a sample that grew more than the node could have run is refused.',
    'shim kata_guest_cpu_time{cpu="total"}: milliseconds from Kata 2.5.0, clock ticks in 2.4, seconds in 2.2–2.3, told from the values (else gap guest_cpu_unit_unknown)',
    (p) => p.guestCpuSeconds,
  ),
  podFamily('pod_guest_memory_used_bytes', 'gauge', 'Guest memory in use (MemTotal − MemAvailable). Untrusted.', 'shim kata_guest_meminfo', (p) => p.guestMemoryUsedBytes),
  podFamily('pod_guest_memory_total_bytes', 'gauge', 'Guest memory size (MemTotal).', 'shim kata_guest_meminfo', (p) => p.guestMemoryTotalBytes),
  podFamily(
    'pod_overhead_cpu_usage_seconds_total',
    'counter',
    'CPU the VM costs beyond its workload: host − Σ containers (host − guest when a container has no value), following their increments; a collection where the workload grew more than the host adds nothing.',
    'correlation',
    (p) => p.overheadCpuSeconds,
  ),
  podFamily(
    'pod_overhead_memory_bytes',
    'gauge',
    'Memory the VM costs beyond its workload: host working set − Σ containers (or − guest used), never below 0.',
    'correlation',
    (p) => p.overheadMemoryBytes,
  ),
  podFamily('pod_overhead_cpu_reserved_cores', 'gauge', 'CPU reserved for VM overhead by the RuntimeClass (pod spec.overhead).', 'pod spec.overhead', (p) => p.overheadCpuReservedCores),
  podFamily('pod_overhead_memory_reserved_bytes', 'gauge', 'Memory reserved for VM overhead by the RuntimeClass (pod spec.overhead).', 'pod spec.overhead', (p) => p.overheadMemoryReservedBytes),
  podFamily('pod_guest_tasks', 'gauge', 'Tasks (threads) running in the guest. Untrusted.', 'shim kata_guest_tasks{item="cur"}', (p) => p.guestTasks),
  podFamily('pod_guest_network_receive_bytes_total', 'counter', 'Bytes received by the guest on all interfaces but lo. Untrusted.', 'shim kata_guest_netdev_stat', (p) => p.guestNetworkReceiveBytes),
  podFamily('pod_guest_network_transmit_bytes_total', 'counter', 'Bytes sent by the guest on all interfaces but lo. Untrusted.', 'shim kata_guest_netdev_stat', (p) => p.guestNetworkTransmitBytes),
  podFamily('pod_guest_disk_read_bytes_total', 'counter', 'Bytes read from the guest\'s whole disks. Untrusted.', 'shim kata_guest_diskstat (sectors × 512)', (p) => p.guestDiskReadBytes),
  podFamily('pod_guest_disk_written_bytes_total', 'counter', 'Bytes written to the guest\'s whole disks. Untrusted.', 'shim kata_guest_diskstat (sectors × 512)', (p) => p.guestDiskWrittenBytes),
  podFamily(
    'pod_guest_sample_age_seconds',
    'gauge',
    'Age of the shim answer the pod\'s guest values come from: each shim is called once per --shim.interval and its answer re-published in between; past 3 intervals it is a gap (shim_stale).',
    'collector: time since the shim call',
    (p) => p.guestSampleAgeSeconds,
  ),
  {
    name: 'pod_metrics_gap',
    type: 'gauge',
    help: 'Present (1) while part of the pod\'s data is missing; reason says which source and why.',
    scope: 'pod',
    extraLabels: ['reason'],
    maxSeriesPerScope: 4,
    source: `correlation; reasons: ${POD_GAP_REASONS.join(', ')}`,
    collect(snapshot, emit) {
      for (const pod of snapshot.pods) {
        for (const reason of pod.gaps) emit({ namespace: pod.namespace, pod: pod.pod, reason }, 1);
      }
    },
  },
  // ── per node and exporter ──
  {
    name: 'source_up',
    type: 'gauge',
    help: 'Whether the last collection read the source (kubelet, shims, cgroups, pods).',
    scope: 'node',
    extraLabels: ['source'],
    maxSeriesPerScope: 4,
    source: 'collector',
    collect(snapshot, emit) {
      for (const [source, status] of Object.entries(snapshot.sources)) emit({ source }, status.up ? 1 : 0);
    },
  },
  {
    name: 'collection_duration_seconds',
    type: 'gauge',
    help: 'Time the last collection spent reading each source.',
    scope: 'node',
    extraLabels: ['source'],
    maxSeriesPerScope: 4,
    source: 'collector',
    collect(snapshot, emit) {
      for (const [source, status] of Object.entries(snapshot.sources)) emit({ source }, status.durationSeconds);
    },
  },
  {
    name: 'sandboxes',
    type: 'gauge',
    help: 'Kata sandboxes on the node by runtime (go, rs) and state (scraped, failed, unsafe_skipped, disabled, no_socket, unmapped, superseded).',
    scope: 'node',
    extraLabels: ['runtime', 'state'],
    maxSeriesPerScope: 14,
    source: 'sandbox discovery',
    collect(snapshot, emit) {
      const counts = new Map<string, { runtime: string; state: string; n: number }>();
      for (const s of snapshot.sandboxes) {
        const key = `${s.runtime}/${s.state}`;
        const entry = counts.get(key) ?? { runtime: s.runtime, state: s.state, n: 0 };
        entry.n++;
        counts.set(key, entry);
      }
      for (const { runtime, state, n } of counts.values()) emit({ runtime, state }, n);
    },
  },
  {
    name: 'shim_calls_total',
    type: 'counter',
    help: 'Shim calls made since the exporter started, by result (answered, timed_out, failed): at most one per sandbox per --shim.interval while its shim answers.',
    scope: 'node',
    extraLabels: ['result'],
    maxSeriesPerScope: 3,
    source: 'collector',
    collect(snapshot, emit) {
      for (const [result, calls] of Object.entries(snapshot.shimCalls ?? {})) emit({ result }, calls);
    },
  },
  {
    name: 'sandbox_unmapped',
    type: 'gauge',
    help: 'A Kata sandbox that no source could join to a pod on this node (1 per sandbox).',
    scope: 'node',
    extraLabels: ['sandbox_id', 'runtime'],
    maxSeriesPerScope: 0,
    maxSeriesNote: '1 per unmapped sandbox',
    source: 'sandbox mapping',
    collect(snapshot, emit) {
      for (const s of snapshot.sandboxes) if (s.state === 'unmapped') emit({ sandbox_id: s.id, runtime: s.runtime }, 1);
    },
  },
  {
    name: 'audit_enabled',
    type: 'gauge',
    help: 'Whether the isolation audit runs: 1 when --audit.namespace-selector or --audit.pod-selector says which workloads are untrusted, else 0.',
    scope: 'node',
    extraLabels: [],
    maxSeriesPerScope: 1,
    source: 'flags',
    collect(snapshot, emit) {
      emit({}, snapshot.audit === undefined ? 0 : 1);
    },
  },
  {
    name: 'audit_untrusted_pods',
    type: 'gauge',
    help: 'Pods on this node (not finished) that the audit selectors call untrusted. Only with the audit on.',
    scope: 'node',
    extraLabels: [],
    maxSeriesPerScope: 1,
    source: 'pod watch, namespace watch, audit selectors',
    collect(snapshot, emit) {
      if (snapshot.audit !== undefined) emit({}, snapshot.audit.untrustedPods);
    },
  },
  {
    name: 'audit_config_readable',
    type: 'gauge',
    help: 'Whether a configuration file the audit needs (config: containerd, crio, kata) was read and parsed (1) or is missing, unreadable or invalid (0, its answers are unknown). Only with the audit on.',
    scope: 'node',
    extraLabels: ['config', 'path'],
    maxSeriesPerScope: 0,
    maxSeriesNote: '1 per configuration file the audit reads',
    source: '--path.containerd-config and its imports, or --path.crio-config and its drop-ins; the Kata configuration of each Kata handler in use',
    collect(snapshot, emit) {
      for (const file of snapshot.audit?.configs ?? []) emit({ config: file.config, path: file.path }, file.readable ? 1 : 0);
    },
  },
  {
    name: 'kubelet_endpoint_info',
    type: 'gauge',
    help: 'Which kubelet endpoint answered: resource (/metrics/resource) or v1alpha1.',
    scope: 'node',
    extraLabels: ['endpoint'],
    maxSeriesPerScope: 1,
    source: 'kubelet scraper',
    collect(snapshot, emit) {
      if (snapshot.kubeletEndpoint !== undefined) emit({ endpoint: snapshot.kubeletEndpoint }, 1);
    },
  },
  // ── isolation audit, per pod ──
  auditFamily(
    'audit_pod_unsandboxed',
    'An untrusted pod that does not run under a Kata handler (--pods.runtime-handlers): it has no VM boundary. runtime_handler is its RuntimeClass handler, default without a RuntimeClass, unknown when the class is not known.',
    (audit) => audit.unsandboxed,
    { runtime_handler: (f) => f.runtimeHandler },
  ),
  auditFamily(
    'audit_privileged_container',
    'A privileged container in a Kata pod (any namespace). host_devices: true when the runtime hands it the host\'s devices (privileged_without_host_devices false or unset for the handler), false when not, unknown when the runtime configuration could not be read.',
    (audit) => audit.privilegedContainers,
    { container: (f) => f.container, host_devices: (f) => f.hostDevices },
    { note: '1 per privileged container of a Kata pod' },
  ),
  auditFamily(
    'audit_host_namespace',
    'An untrusted pod that shares a host namespace; kind: network, pid, ipc (hostNetwork, hostPID, hostIPC).',
    (audit) => audit.hostNamespaces,
    { kind: (f) => f.kind },
    { max: 3 },
  ),
  auditFamily('audit_host_path', 'An untrusted pod with hostPath volumes.', (audit) => audit.hostPaths, {}),
  auditFamily(
    'audit_kata_annotations',
    'An untrusted pod that carries io.katacontainers.* annotations, which can change its VM\'s configuration; see audit_kata_annotations_honoured.',
    (audit) => audit.kataAnnotations,
    {},
  ),
  auditFamily(
    'audit_kata_annotations_honoured',
    'Beside each audit_kata_annotations: honoured=true when the node would apply at least one of the pod\'s Kata annotations (passed by the runtime\'s pod_annotations, and for hypervisor ones enabled by enable_annotations), false when none (or the pod is not a Kata pod), unknown when a configuration needed to decide could not be read.',
    (audit) => audit.kataAnnotations,
    { honoured: (f) => f.honoured },
  ),
];

/**
 * A finding of the isolation audit: a series (1) per finding while its condition holds, labelled
 * namespace, pod and `extra`; only with the audit on. `max`: series per pod (default 1); `note`:
 * what the count grows with instead, for a family outside the per-pod budget.
 */
function auditFamily<F extends AuditPodRef>(
  name: string,
  help: string,
  findings: (audit: AuditSnapshot) => readonly F[],
  extra: Record<string, (finding: F) => string>,
  budget: { max?: number; note?: string } = {},
): FamilyDef {
  return {
    name,
    type: 'gauge',
    help,
    scope: 'audit',
    extraLabels: Object.keys(extra),
    maxSeriesPerScope: budget.note === undefined ? (budget.max ?? 1) : 0,
    ...(budget.note === undefined ? {} : { maxSeriesNote: budget.note }),
    source: 'isolation audit: pod watch, audit selectors, runtime and Kata configuration',
    collect(snapshot, emit) {
      for (const finding of snapshot.audit === undefined ? [] : findings(snapshot.audit)) {
        const labels: Labels = { namespace: finding.namespace, pod: finding.pod };
        for (const [label, value] of Object.entries(extra)) labels[label] = value(finding);
        emit(labels, 1);
      }
    },
  };
}

/** Counters the exporter keeps about itself across collections (not part of one snapshot). */
export const SELF_COUNTERS = {
  shimScrapeErrors: {
    name: 'shim_scrape_errors_total',
    help: 'Failed shim scrapes by reason (unreachable, timeout, oversize, malformed, decode_budget).',
    labels: ['reason'],
  },
  kubeletRejectedSamples: {
    name: 'kubelet_rejected_samples_total',
    help: 'Kubelet samples refused by reason: by the decoder (zero_time, implausible_value, duplicate), or a container CPU sample that grew more than the node could have run (implausible_increase).',
    labels: ['reason'],
  },
  guestRejectedSamples: {
    name: 'shim_rejected_samples_total',
    help: 'Guest-reported samples refused: by the decoder (NaN, negative, absurd magnitudes), or a guest CPU total that grew more than the node could have run.',
    labels: [],
  },
} as const;

/** The exporter's version series, outside any snapshot. */
export const BUILD_INFO = {
  name: 'build_info',
  help: 'Version of kata-metrics-bridge (always 1).',
  labels: ['version', 'revision', 'nodejs'],
} as const;

/** The stated cardinality budget (docs/metrics.md); a test checks the table stays inside it. */
export const CARDINALITY_BUDGET = { perContainer: 6, perPod: 20 } as const;

export function seriesBudgetUsed(scope: FamilyScope): number {
  return FAMILIES.filter((f) => f.scope === scope).reduce((sum, f) => sum + f.maxSeriesPerScope, 0);
}
