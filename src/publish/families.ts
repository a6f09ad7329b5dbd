/**
 * Every family the bridge publishes, declared once. The renderer and docs/metrics.md both read
 * this table; a test fails when the docs drift from it.
 */

import { PRESSURE_KINDS, PRESSURE_RESOURCES, type HostCollectors } from '../translate/records.ts';
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
  /** The `--[no-]collector.<name>` switch that turns the family off, when there is one. */
  collector?: HostCollectorName;
  collect(snapshot: NodeSnapshot, emit: Emit): void;
}

/** The host collectors' switches (`--[no-]collector.host-<name>`), each a group of per-pod families; all on by default. */
export const HOST_COLLECTOR_FLAGS = {
  throttling: 'collector.host-throttling',
  memory: 'collector.host-memory',
  pressure: 'collector.host-pressure',
  disk: 'collector.host-disk',
  network: 'collector.host-network',
} as const satisfies Record<keyof HostCollectors, string>;
export type HostCollectorName = keyof typeof HOST_COLLECTOR_FLAGS;

/** A per-pod value family that a host collector switch turns off. */
function hostFamily(
  collector: HostCollectorName,
  name: string,
  type: FamilyDef['type'],
  help: string,
  source: string,
  value: (p: PodSnapshot) => number | undefined,
): FamilyDef {
  return { ...podFamily(name, type, help, source, value), collector };
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
    "CPU time used by the container: the kubelet value when first-hand, else the guest total as an estimate for a single-container pod: all of it in the container's first life, counted from zero after a restart (see container_metrics_gap). A sample that grew more than the node could have run is refused.",
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
  containerFamily(
    'container_memory_limit_bytes',
    'gauge',
    'Memory limit of the container, when set.',
    'pod spec',
    (c) => c.memoryLimitBytes,
  ),
  containerFamily('container_cpu_request_cores', 'gauge', 'CPU request of the container, when set.', 'pod spec', (c) => c.cpuRequestCores),
  containerFamily(
    'container_memory_request_bytes',
    'gauge',
    'Memory request of the container, when set.',
    'pod spec',
    (c) => c.memoryRequestBytes,
  ),
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
  {
    name: 'pod_labels',
    type: 'gauge',
    help: 'The pod labels named by --pods.labels-allowlist (always 1), as kube-state-metrics publishes them: label_<key> with every character outside [a-zA-Z0-9_] turned into _, camelCase into snake_case, _conflictN on names two keys share; at most 16 per pod, values cut to 63 characters. Absent while no allowlisted label is set.',
    scope: 'pod',
    extraLabels: ['label_<key>'],
    maxSeriesPerScope: 1,
    source: 'pod watch (metadata.labels), --pods.labels-allowlist',
    collect(snapshot, emit) {
      for (const pod of snapshot.pods) {
        if (pod.labels !== undefined && Object.keys(pod.labels).length > 0)
          emit({ namespace: pod.namespace, pod: pod.pod, ...pod.labels }, 1);
      }
    },
  },
  podFamily(
    'pod_vm_memory_bytes',
    'gauge',
    "Memory the pod's VM was configured with, as the host sees it: QEMU -m, Cloud Hypervisor --memory size=, else the size Kata kept in its state file (Cloud Hypervisor and Firecracker started through their API, Dragonball). Never from the guest. Memory hotplugged later for container limits is not included. Absent when neither names it (no state file, an unknown VMM).",
    'hypervisor command line under --path.procfs; Go persist.json Config.HypervisorConfig.MemorySize, runtime-rs state.json hypervisor.config.memory_info.default_memory',
    (p) => p.vmMemoryBytes,
  ),
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
  podFamily(
    'pod_guest_memory_used_bytes',
    'gauge',
    'Guest memory in use (MemTotal − MemAvailable). Untrusted.',
    'shim kata_guest_meminfo',
    (p) => p.guestMemoryUsedBytes,
  ),
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
  podFamily(
    'pod_overhead_cpu_reserved_cores',
    'gauge',
    'CPU reserved for VM overhead by the RuntimeClass (pod spec.overhead).',
    'pod spec.overhead',
    (p) => p.overheadCpuReservedCores,
  ),
  podFamily(
    'pod_overhead_memory_reserved_bytes',
    'gauge',
    'Memory reserved for VM overhead by the RuntimeClass (pod spec.overhead).',
    'pod spec.overhead',
    (p) => p.overheadMemoryReservedBytes,
  ),
  podFamily(
    'pod_guest_tasks',
    'gauge',
    'Tasks (threads) running in the guest. Untrusted.',
    'shim kata_guest_tasks{item="cur"}',
    (p) => p.guestTasks,
  ),
  podFamily(
    'pod_guest_network_receive_bytes_total',
    'counter',
    'Bytes received by the guest on all interfaces but lo. Untrusted.',
    'shim kata_guest_netdev_stat',
    (p) => p.guestNetworkReceiveBytes,
  ),
  podFamily(
    'pod_guest_network_transmit_bytes_total',
    'counter',
    'Bytes sent by the guest on all interfaces but lo. Untrusted.',
    'shim kata_guest_netdev_stat',
    (p) => p.guestNetworkTransmitBytes,
  ),
  podFamily(
    'pod_guest_disk_read_bytes_total',
    'counter',
    "Bytes read from the guest's whole disks. Untrusted.",
    'shim kata_guest_diskstat (sectors × 512)',
    (p) => p.guestDiskReadBytes,
  ),
  podFamily(
    'pod_guest_disk_written_bytes_total',
    'counter',
    "Bytes written to the guest's whole disks. Untrusted.",
    'shim kata_guest_diskstat (sectors × 512)',
    (p) => p.guestDiskWrittenBytes,
  ),
  podFamily(
    'pod_guest_oom_kills_total',
    'counter',
    "Processes the guest kernel OOM-killed inside the VM (the build's own process died). Reported by the guest: untrusted.",
    'shim kata_guest_vm_stat{item="oom_kill"}',
    (p) => p.guestOomKills,
  ),
  // ── per pod, host truth beyond usage (docs/metrics.md "Host collectors") ──
  hostFamily(
    'throttling',
    'pod_host_cpu_throttled_seconds_total',
    'counter',
    "Time the pod's host cgroups were throttled by their CPU quota: the build runs slower than its limit suggests.",
    'host cgroups, pod + overhead: v2 cpu.stat throttled_usec, v1 cpu.stat throttled_time (cpu controller)',
    (p) => p.hostCpuThrottledSeconds,
  ),
  hostFamily(
    'memory',
    'pod_host_memory_limit_bytes',
    'gauge',
    'Memory limit of the pod cgroup on the host; absent when unlimited. The overhead cgroup has none that bounds the pod.',
    'pod cgroup: v2 memory.max, v1 memory.limit_in_bytes',
    (p) => p.hostMemoryLimitBytes,
  ),
  hostFamily(
    'memory',
    'pod_host_oom_kills_total',
    'counter',
    "Processes the host kernel OOM-killed in the pod's cgroups (the VMM, virtiofsd or the shim: the whole VM dies).",
    'host cgroups, pod + overhead: v2 memory.events oom_kill, v1 memory.oom_control oom_kill',
    (p) => p.hostOomKills,
  ),
  {
    name: 'pod_host_pressure_seconds_total',
    type: 'counter',
    help: 'Time some (kind="some") or all (kind="full") of the pod cgroup\'s tasks stalled on a resource (cpu, memory, io). cgroup v2 with PSI only; see node_host_pressure_supported.',
    scope: 'pod',
    extraLabels: ['resource', 'kind'],
    maxSeriesPerScope: PRESSURE_RESOURCES.length * PRESSURE_KINDS.length,
    source: 'pod cgroup: cpu.pressure, memory.pressure, io.pressure total= (µs)',
    collector: 'pressure',
    collect(snapshot, emit) {
      for (const pod of snapshot.pods) {
        for (const resource of PRESSURE_RESOURCES) {
          for (const kind of PRESSURE_KINDS)
            emitDefined(emit, { namespace: pod.namespace, pod: pod.pod, resource, kind }, pod.hostPressure?.[resource]?.[kind]);
        }
      }
    },
  },
  hostFamily(
    'disk',
    'pod_host_disk_read_bytes_total',
    'counter',
    "Bytes the pod's host cgroups read from block devices, all devices.",
    'host cgroups, pod + overhead: v2 io.stat rbytes, v1 blkio.throttle.io_service_bytes_recursive Read',
    (p) => p.hostDiskReadBytes,
  ),
  hostFamily(
    'disk',
    'pod_host_disk_written_bytes_total',
    'counter',
    "Bytes the pod's host cgroups wrote to block devices, all devices (virtio-fs writes are virtiofsd's, charged where it runs).",
    'host cgroups, pod + overhead: v2 io.stat wbytes, v1 blkio.throttle.io_service_bytes_recursive Write',
    (p) => p.hostDiskWrittenBytes,
  ),
  hostFamily(
    'network',
    'pod_host_network_receive_bytes_total',
    'counter',
    "Bytes the pod received, as the host kernel counts them in the pod's network namespace (every interface but lo and Kata's *_kata plumbing).",
    "the VMM's <procfs>/<pid>/net/dev (VMM found in the sandbox's cgroups)",
    (p) => p.hostNetworkReceiveBytes,
  ),
  hostFamily(
    'network',
    'pod_host_network_transmit_bytes_total',
    'counter',
    "Bytes the pod sent, as the host kernel counts them in the pod's network namespace (every interface but lo and Kata's *_kata plumbing).",
    "the VMM's <procfs>/<pid>/net/dev (VMM found in the sandbox's cgroups)",
    (p) => p.hostNetworkTransmitBytes,
  ),
  podFamily(
    'pod_guest_sample_age_seconds',
    'gauge',
    "Age of the shim answer the pod's guest values come from: each shim is called once per --shim.interval and its answer re-published in between; past 3 intervals it is a gap (shim_stale).",
    'collector: time since the shim call',
    (p) => p.guestSampleAgeSeconds,
  ),
  {
    name: 'pod_metrics_gap',
    type: 'gauge',
    help: "Present (1) while part of the pod's data is missing; reason says which source and why.",
    scope: 'pod',
    extraLabels: ['reason'],
    maxSeriesPerScope: 5,
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
    name: 'node_host_pressure_supported',
    type: 'gauge',
    help: "Whether the kubelet's cgroup hierarchy has PSI files (1: cgroup v2 with PSI on), so pods can have pod_host_pressure_seconds_total; 0 on cgroup v1 and on kernels without PSI.",
    scope: 'node',
    extraLabels: [],
    maxSeriesPerScope: 1,
    source: 'cgroup layout: cpu.pressure at the hierarchy root or kubepods',
    collect(snapshot, emit) {
      if (snapshot.hostPressureSupported !== undefined) emit({}, snapshot.hostPressureSupported ? 1 : 0);
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
    source:
      '--path.containerd-config and its imports, or --path.crio-config and its drop-ins; the Kata configuration of each Kata handler in use',
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
    "A privileged container in a Kata pod (any namespace). host_devices: true when the runtime hands it the host's devices (privileged_without_host_devices false or unset for the handler), false when not, unknown when the runtime configuration could not be read.",
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
    "An untrusted pod that carries io.katacontainers.* annotations, which can change its VM's configuration; see audit_kata_annotations_honoured.",
    (audit) => audit.kataAnnotations,
    {},
  ),
  auditFamily(
    'audit_kata_annotations_honoured',
    "Beside each audit_kata_annotations: honoured=true when the node would apply at least one of the pod's Kata annotations (passed by the runtime's pod_annotations, and for hypervisor ones enabled by enable_annotations), false when none (or the pod is not a Kata pod), unknown when a configuration needed to decide could not be read.",
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
    help: 'Guest-reported samples refused by reason: by the decoder (implausible_value: NaN, infinite, negative or above 2^53), or a guest CPU total that grew more than the node could have run (implausible_increase).',
    labels: ['reason'],
  },
  usageRecords: {
    name: 'usage_records_total',
    help: 'Usage records of ended Kata pods by result: written; failed (the output refused the line: the record is logged on stderr instead); missed (a pod that ended unseen, its cgroups already gone: no record).',
    labels: ['result'],
  },
} as const;

/** The exporter's version series, outside any snapshot. */
export const BUILD_INFO = {
  name: 'build_info',
  help: 'Version of kata-metrics-bridge (always 1).',
  labels: ['version', 'revision', 'nodejs'],
} as const;

/** The stated cardinality budget (docs/metrics.md); a test checks the table stays inside it. */
export const CARDINALITY_BUDGET = { perContainer: 7, perPod: 36 } as const;

export function seriesBudgetUsed(scope: FamilyScope): number {
  return FAMILIES.filter((f) => f.scope === scope).reduce((sum, f) => sum + f.maxSeriesPerScope, 0);
}
