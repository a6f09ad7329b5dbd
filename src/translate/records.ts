/**
 * The plain records that flow from the sources into correlation.
 * Scrapers produce raw bytes or these records; translate/ turns raw bytes into them.
 * Each source owns its section; correlation reads all of them.
 */

// ─── kubelet /metrics/resource ────────────────────────────────────────────────

export type KubeletEndpoint = 'resource' | 'v1alpha1';

/** One container as the kubelet reports it (for Kata: the guest's view, relayed through CRI). */
export interface KubeletContainerStats {
  namespace: string;
  pod: string;
  container: string;
  cpuSeconds?: number;
  /** When the kubelet took the CPU sample (ms since epoch), not the scrape time. */
  cpuTimestampMs?: number;
  memoryWorkingSetBytes?: number;
  memoryTimestampMs?: number;
  startTimeSeconds?: number;
  swapBytes?: number;
  /**
   * Every distinct CPU sample when the kubelet served this series more than once (kubernetes#134518:
   * a leftover cgroup of an earlier instance), in payload order; `cpuSeconds` is the first of them.
   */
  cpuCandidates?: { value: number; timestampMs?: number }[];
}

/** One pod as the kubelet reports it: the host pod cgroup, read by cAdvisor. */
export interface KubeletPodStats {
  namespace: string;
  pod: string;
  cpuSeconds?: number;
  cpuTimestampMs?: number;
  memoryWorkingSetBytes?: number;
  memoryTimestampMs?: number;
  swapBytes?: number;
}

export interface KubeletNodeStats {
  cpuSeconds?: number;
  memoryWorkingSetBytes?: number;
  swapBytes?: number;
}

/** Why a kubelet sample was rejected by the decoder. */
export type KubeletRejectReason =
  | 'zero_time' // timestamp -62135596800000 / negative start time (kubernetes#109679)
  | 'implausible_value' // wrapped uint64, negative, NaN or Inf
  | 'duplicate'; // same family and label set twice (kubernetes#134518): first wins, container CPU keeps every candidate

export interface KubeletStats {
  node: KubeletNodeStats;
  /** Keyed by `${namespace}/${pod}`. */
  pods: Map<string, KubeletPodStats>;
  /** Keyed by `${namespace}/${pod}/${container}`. */
  containers: Map<string, KubeletContainerStats>;
  /** The kubelet's own scrape_error / resource_scrape_error gauge was 1. */
  kubeletScrapeError: boolean;
  rejected: Record<KubeletRejectReason, number>;
}

// ─── Kata sandboxes (discovery, state files, bundles) ─────────────────────────

export type KataRuntime = 'go' | 'rs';
export type Hypervisor = 'qemu' | 'cloud-hypervisor' | 'firecracker' | 'dragonball' | 'unknown';

/** A Kata sandbox found on disk, before its shim is scraped. */
export interface SandboxRecord {
  id: string;
  runtime: KataRuntime;
  /** The sandbox directory under --path.kata-go or --path.kata-rs. */
  dir: string;
  /** shim-monitor.sock, when present. */
  socketPath?: string;
  /** Its device and inode when discovery saw it, as `dev:ino`. */
  socketIdentity?: string;
  hypervisor: Hypervisor;
  /** Where the hypervisor was learnt from. */
  hypervisorSource: 'state' | 'process' | 'unknown';
  sandboxCgroupPath?: string;
  overheadCgroupPath?: string;
  sandboxCgroupOnly?: boolean;
  vmmPid?: number;
  /** The VM's configured memory as the host sees it: the VMM's command line, else the state file. */
  vmMemoryBytes?: number;
  vmMemorySource?: 'cmdline' | 'state';
  /** OCI annotations of the sandbox (persist.json / state.json), untrusted-free host data. */
  annotations: Record<string, string>;
}

/** How a sandbox id was joined to a pod (domain.md §4, in order of trust). */
export type SandboxMappingSource = 'containerd' | 'crio' | 'kata-state' | 'cgroup-path';

export interface SandboxPodRef {
  sandboxId: string;
  uid?: string;
  namespace?: string;
  name?: string;
  source: SandboxMappingSource;
  /** Set when the uid came from a later source than `source` (e.g. containerd < 1.7 has no sandbox-uid). */
  uidSource?: SandboxMappingSource;
}

/** A host process whose command line names a sandbox (read from --path.procfs). */
export interface HostProcess {
  pid: number;
  /** /proc/<pid>/comm: the kernel truncates it to 15 characters. */
  comm: string;
  /** /proc/<pid>/cmdline split on NUL; empty for kernel threads and zombies. */
  cmdline: string[];
  /** /proc/<pid>/task/<tid>/comm of each thread (vcpuN, fc_vcpu N, db_vcpuN). */
  threadNames: string[];
}

/** What discovery read for one sandbox, undecoded (scrapers/kata-sandboxes.ts → translate/). */
export interface RawSandbox {
  id: string;
  runtime: KataRuntime;
  dir: string;
  /** shim-monitor.sock, when it exists and is a socket. */
  socketPath?: string;
  /** Its device and inode, as `dev:ino`. */
  socketIdentity?: string;
  /** persist.json (Go) or state.json (runtime-rs), when readable. */
  stateText?: string;
  /** containerd's OCI bundle config.json for this sandbox id, when present. */
  containerdConfig?: string;
  /** CRI-O's infra container config.json (userdata), when present. */
  crioConfig?: string;
  processes: HostProcess[];
}

// ─── Kata shim metrics (decoded) ──────────────────────────────────────────────

/** A process on the host or in the guest, normalised to base units. */
export interface ProcessStats {
  /** utime + stime, in seconds (ticks / USER_HZ). */
  cpuSeconds?: number;
  residentBytes?: number;
  virtualBytes?: number;
  threads?: number;
  fds?: number;
  readBytes?: number;
  writeBytes?: number;
}

export interface GuestCpuSeconds {
  user: number;
  nice: number;
  system: number;
  idle: number;
  iowait: number;
  irq: number;
  softirq: number;
  steal: number;
  guest: number;
  guestNice: number;
}

/**
 * The unit of `kata_guest_cpu_time`, told from the values (the agent wrote no version): seconds as
 * fractions (Kata 2.2–2.3), clock ticks (2.4), milliseconds (2.5.0 on: ticks × 10 at USER_HZ 100);
 * unknown when too few values are non-zero to tell.
 */
export type GuestCpuUnit = 'seconds' | 'ticks' | 'milliseconds' | 'unknown';

export interface GuestStats {
  /** cpu="total" row, in seconds; absent when its unit is unknown. */
  cpu?: GuestCpuSeconds;
  /** Set whenever kata_guest_cpu_time was there. */
  cpuUnit?: GuestCpuUnit;
  memTotalBytes?: number;
  memFreeBytes?: number;
  memAvailableBytes?: number;
  /** kata_guest_tasks{item="cur"}. */
  tasks?: number;
  tasksMax?: number;
  load1?: number;
  /** Sums over guest interfaces other than lo. */
  networkReceiveBytes?: number;
  networkTransmitBytes?: number;
  /** Sums over whole disks (no partitions, loop, ram or dm devices), sectors × 512. */
  diskReadBytes?: number;
  diskWrittenBytes?: number;
  /** kata_guest_vm_stat{item="oom_kill"}: OOM kills inside the VM. */
  oomKills?: number;
}

export interface ShimMetrics {
  /** The shim process itself (Go: go_* / process_* / kata_shim_*; rs: kata_shim_*). */
  shim: ProcessStats;
  hypervisor: ProcessStats;
  virtiofsd?: ProcessStats;
  agent?: ProcessStats;
  guest: GuestStats;
  /** Firecracker's kata_firecracker_* values: deltas over its ~60 s flush window, never counters. */
  firecrackerWindow?: Record<string, number>;
  /** kata_shim_pod_overhead_* as reported; unreliable (domain.md §2), kept for comparison only. */
  reportedOverhead?: { cpu?: number; memoryBytes?: number };
  /**
   * Dragonball (runtime-rs): the VMM runs inside the shim process, so `shim` covers it and
   * `hypervisor` stays empty (docs/design/kata-metrics-in-runtime-rs.md, "Kata Hypervisor").
   */
  vmmInShim?: boolean;
  /** Samples the decoder refused (NaN, negative, absurd magnitudes). */
  rejectedSamples: number;
}

// ─── host cgroups ─────────────────────────────────────────────────────────────

export type CgroupVersion = 1 | 2;

export interface CgroupUsage {
  /** Path relative to the cgroup root (e.g. /kubepods/burstable/pod<uid>). */
  path: string;
  version: CgroupVersion;
  cpuSeconds?: number;
  memoryUsageBytes?: number;
  memoryInactiveFileBytes?: number;
  /** usage − inactive_file, floored at 0, as the kubelet computes it. */
  memoryWorkingSetBytes?: number;
  /** v2 cpu.stat throttled_usec / v1 cpu.stat throttled_time, in seconds. */
  cpuThrottledSeconds?: number;
  /** memory.max / memory.limit_in_bytes; undefined when unlimited. */
  memoryLimitBytes?: number;
  /** memory.events / memory.oom_control oom_kill (hierarchical). */
  oomKills?: number;
  /** cpu|memory|io.pressure total= of some and full, in seconds (v2 with PSI only). */
  pressure?: HostPressure;
  /** io.stat rbytes / wbytes or blkio.throttle.io_service_bytes_recursive Read / Write, all devices. */
  diskReadBytes?: number;
  diskWrittenBytes?: number;
  /** Host files an enabled collector needed that were not there (the directory was), by file name. */
  missingFiles?: string[];
}

/** What the host collectors add to a cgroup's usage. */
export type HostCgroupFields = Pick<
  CgroupUsage,
  'cpuThrottledSeconds' | 'memoryLimitBytes' | 'oomKills' | 'pressure' | 'diskReadBytes' | 'diskWrittenBytes'
>;

export const PRESSURE_RESOURCES = ['cpu', 'memory', 'io'] as const;
export type PressureResource = (typeof PRESSURE_RESOURCES)[number];
export const PRESSURE_KINDS = ['some', 'full'] as const;
export type PressureKind = (typeof PRESSURE_KINDS)[number];
export type HostPressure = Partial<Record<PressureResource, Partial<Record<PressureKind, number>>>>;

/**
 * The host-side collectors (`--[no-]collector.host-*`): which groups of host files are read.
 * CPU and memory usage are always read.
 */
export interface HostCollectors {
  /** cpu.stat throttling. */
  throttling: boolean;
  /** Memory limit and OOM kills. */
  memory: boolean;
  /** PSI files (v2 only). */
  pressure: boolean;
  /** Block I/O bytes. */
  disk: boolean;
  /** The VMM's network namespace (net/dev). */
  network: boolean;
}

export const ALL_HOST_COLLECTORS: HostCollectors = { throttling: true, memory: true, pressure: true, disk: true, network: true };

/** The pod's network counters as the host kernel counts them in the VMM's namespace. */
export type HostNetworkRead =
  | { state: 'ok'; receiveBytes: number; transmitBytes: number }
  /** No process of the sandbox's cgroups is its hypervisor (or it left them while being read). */
  | { state: 'vmm_not_found' }
  /** The VMM found is in the host's network namespace: its counters would be the node's. */
  | { state: 'host_namespace' };

// ─── pod metadata (API server watch) ──────────────────────────────────────────

export interface ContainerSpecRecord {
  name: string;
  /** From spec.initContainers. */
  init: boolean;
  /**
   * An init container with restartPolicy Always (native sidecar, Kubernetes 1.28+): it keeps
   * running beside the regular containers, so its usage is live, not a finished init step.
   */
  sidecar?: boolean;
  cpuRequestCores?: number;
  cpuLimitCores?: number;
  memoryRequestBytes?: number;
  memoryLimitBytes?: number;
  privileged: boolean;
}

export interface ContainerStatusRecord {
  name: string;
  /** The bare id (`containerd://<id>` → `<id>`), as bundles, shims and cgroups name it. */
  containerId?: string;
  /** The scheme of status.containerID: `containerd`, `cri-o`, `docker`. */
  containerRuntime?: string;
  restartCount: number;
  state: 'running' | 'waiting' | 'terminated' | 'unknown';
  /** Seconds since epoch, when running. */
  startedAt?: number;
}

export interface PodRecord {
  uid: string;
  namespace: string;
  name: string;
  nodeName?: string;
  phase?: string;
  /** status.startTime in seconds since epoch: when the kubelet took the pod on (before its sandbox). */
  startedAt?: number;
  qosClass?: string;
  runtimeClassName?: string;
  /** Resolved from the RuntimeClass object; undefined when the class is unknown. */
  runtimeHandler?: string;
  overhead?: { cpuCores?: number; memoryBytes?: number };
  /**
   * `pod`: spec.overhead, set at admission and what the kubelet applied to the pod cgroup.
   * `runtime_class`: the pod has none, so the RuntimeClass's current podFixed is shown instead;
   * it was not applied to this pod (the class gained overhead after the pod was admitted).
   */
  overheadSource?: 'pod' | 'runtime_class';
  containers: ContainerSpecRecord[];
  containerStatuses: ContainerStatusRecord[];
  /** metadata.labels, for the isolation audit's pod selector. */
  labels?: Readonly<Record<string, string>>;
  /** The --pods.labels-allowlist labels as published names (`label_<key>`) and values (pod-labels.ts). */
  publishedLabels?: Readonly<Record<string, string>>;
  /** What the isolation audit reads from the pod (absent: nothing to report). */
  isolation?: PodIsolation;
}

export type HostNamespace = 'network' | 'pid' | 'ipc';

export interface PodIsolation {
  /** spec.hostNetwork, hostPID, hostIPC. */
  hostNamespaces: HostNamespace[];
  /** Volumes with a hostPath source. */
  hostPathVolumes: number;
  /** Keys of the pod's `io.katacontainers.*` annotations, sorted. */
  kataAnnotations: string[];
  /** Containers of every kind (init, regular, ephemeral) with securityContext.privileged: true. */
  privilegedContainers: string[];
}

export interface NamespaceRecord {
  name: string;
  labels: Readonly<Record<string, string>>;
}

export interface RuntimeClassRecord {
  name: string;
  handler: string;
  overhead?: { cpuCores?: number; memoryBytes?: number };
}
