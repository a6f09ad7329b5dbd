/**
 * The immutable result of one collection: what publish/ renders. Nothing here refers back to a
 * source object, so a pod that disappeared cannot linger past the snapshot that last saw it.
 */

import type { HostNamespace, HostPressure, Hypervisor, KataRuntime, KubeletEndpoint } from './records.ts';
import type { ConfigFileStatus } from './runtime-config.ts';
import type { ShimCallEnd } from './shim-schedule.ts';
import type { RawSandboxFamilies } from './shim-raw.ts';

/** Why a container has no first-hand value this collection. */
export const CONTAINER_GAP_REASONS = [
  'kubelet_unreachable', // the kubelet could not be scraped
  'kubelet_missing', // the kubelet has no series for a running container
  'kubelet_zero', // the kubelet reads zero CPU for a running container (CRI-O / cAdvisor case)
  'kubelet_stale', // the kubelet's sample is older than --kubelet.stale-after
  'kubelet_duplicate', // the kubelet served the series twice (kubernetes#134518) and neither clearly continues the published value
  'implausible_increase', // the CPU sample grew more than the node could have run since the last one: refused
] as const;
export type ContainerGapReason = (typeof CONTAINER_GAP_REASONS)[number];

/** Why part of a pod's VM-level data is missing this collection. */
export const POD_GAP_REASONS = [
  'shim_unreachable',
  'shim_timeout',
  'shim_oversize',
  'shim_malformed', // the shim answered with bytes that are not the text format, or past a parser bound
  'shim_decode_budget', // decoding the shim's answer took more work than one payload may
  'shim_stale', // the shim's last answer is older than 3 × --shim.interval and no newer one came in
  'shim_unsafe_runtime', // runtime-rs with a hypervisor whose /metrics aborts the shim (Kata issue 13708)
  'shim_disabled', // --shim.runtime-rs=none
  'shim_socket_missing', // the sandbox has no shim-monitor.sock
  'cgroup_not_found',
  'sandbox_unmapped', // a running Kata pod that no sandbox on this node maps to
  'kubelet_unreachable',
  'guest_cpu_unit_unknown', // the guest's CPU time is in no unit the decoder can tell (Kata agents before 2.5 changed it): no guest CPU
  'implausible_increase', // the guest's CPU total grew more than the node could have run since the last one: refused
  'host_vmm_not_found', // no process of the sandbox's cgroups is its VMM, or it shares the host's network namespace: no host network
  'host_file_missing', // a host file an enabled collector reads is missing from the pod (or overhead) cgroup
] as const;
export type PodGapReason = (typeof POD_GAP_REASONS)[number];

export type ValueSource = 'kubelet' | 'guest_estimate';

export interface ContainerSnapshot {
  name: string;
  cpuSeconds?: number;
  memoryWorkingSetBytes?: number;
  cpuLimitCores?: number;
  memoryLimitBytes?: number;
  cpuRequestCores?: number;
  memoryRequestBytes?: number;
  /** Where the published values came from this collection; undefined when none are published. */
  source?: ValueSource;
  gap?: ContainerGapReason;
}

export interface PodSnapshot {
  namespace: string;
  pod: string;
  uid: string;
  sandboxId?: string;
  runtimeHandler?: string;
  runtime?: KataRuntime;
  hypervisor?: Hypervisor;
  sandboxCgroupOnly?: boolean;
  /** The --pods.labels-allowlist labels, as published names (`label_<key>`) and values. */
  labels?: Readonly<Record<string, string>>;
  /** The VM's configured memory as the host sees it (VMM command line or Kata state), never the guest's. */
  vmMemoryBytes?: number;
  hostCpuSeconds?: number;
  hostMemoryWorkingSetBytes?: number;
  guestCpuSeconds?: number;
  guestMemoryUsedBytes?: number;
  overheadCpuSeconds?: number;
  overheadMemoryBytes?: number;
  overheadCpuReservedCores?: number;
  overheadMemoryReservedBytes?: number;
  guestTasks?: number;
  guestNetworkReceiveBytes?: number;
  guestNetworkTransmitBytes?: number;
  guestDiskReadBytes?: number;
  guestDiskWrittenBytes?: number;
  /** Reported by the guest (kata_guest_vm_stat oom_kill): untrusted. */
  guestOomKills?: number;
  hostCpuThrottledSeconds?: number;
  hostMemoryLimitBytes?: number;
  hostOomKills?: number;
  /** Pod cgroup only, v2 with PSI only. */
  hostPressure?: HostPressure;
  hostDiskReadBytes?: number;
  hostDiskWrittenBytes?: number;
  hostNetworkReceiveBytes?: number;
  hostNetworkTransmitBytes?: number;
  /** Seconds since the shim call whose answer the guest values come from (--shim.interval). */
  guestSampleAgeSeconds?: number;
  gaps: PodGapReason[];
  containers: ContainerSnapshot[];
}

/** What a sandbox's shim scrape came to, for `kata_bridge_sandboxes{runtime,state}`. */
export type SandboxState = 'scraped' | 'failed' | 'unsafe_skipped' | 'disabled' | 'no_socket' | 'unmapped' | 'superseded'; // another sandbox maps to the same pod and was preferred

export interface SandboxSummary {
  id: string;
  runtime: KataRuntime;
  hypervisor: Hypervisor;
  state: SandboxState;
}

export const SOURCES = ['kubelet', 'shims', 'cgroups', 'pods'] as const;
export type SourceName = (typeof SOURCES)[number];

export interface SourceStatus {
  up: boolean;
  durationSeconds: number;
}

/** A three-way answer: unknown when a configuration needed to decide could not be read. */
export type AuditAnswer = 'true' | 'false' | 'unknown';

export interface AuditPodRef {
  namespace: string;
  pod: string;
}

/** The isolation audit's findings of one collection, each list sorted by namespace and pod. */
export interface AuditSnapshot {
  /** Pods (not finished) that the audit selectors call untrusted. */
  untrustedPods: number;
  /** Untrusted pods that do not run under a Kata handler; `default` without a RuntimeClass, `unknown` for an unknown class. */
  unsandboxed: (AuditPodRef & { runtimeHandler: string })[];
  /** Privileged containers in Kata pods, and whether the runtime passes them the host's devices. */
  privilegedContainers: (AuditPodRef & { container: string; hostDevices: AuditAnswer })[];
  /** Untrusted pods in a host namespace. */
  hostNamespaces: (AuditPodRef & { kind: HostNamespace })[];
  /** Untrusted pods with hostPath volumes. */
  hostPaths: AuditPodRef[];
  /** Untrusted pods with `io.katacontainers.*` annotations, and whether the node would apply any. */
  kataAnnotations: (AuditPodRef & { honoured: AuditAnswer })[];
  /** Every configuration file the audit needed this collection. */
  configs: ConfigFileStatus[];
}

export interface NodeSnapshot {
  takenAtMs: number;
  pods: PodSnapshot[];
  sandboxes: SandboxSummary[];
  sources: Record<SourceName, SourceStatus>;
  kubeletEndpoint?: KubeletEndpoint;
  /** Shim calls made since the exporter started, by how they ended. */
  shimCalls?: Readonly<Record<ShimCallEnd, number>>;
  /** Raw shim families, only with --collector.shim-raw. */
  shimRaw?: RawSandboxFamilies[];
  /** Only when the isolation audit is on (an audit selector is set). */
  audit?: AuditSnapshot;
  /** Whether the kubelet's cgroup hierarchy has PSI (v2 with PSI on); undefined when it was not read. */
  hostPressureSupported?: boolean;
}
