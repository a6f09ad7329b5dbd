/**
 * Joins the four views of a node (pod metadata, kubelet, Kata shims, host cgroups) per pod and
 * container. Pure: the collection time comes in, and counter continuity lives in CounterState.
 */

import { PLAUSIBLE_CPU_MARGIN, type CounterEffect, type CounterOptions, type CounterOutcome, type CounterState } from './counters.ts';
import { addHostCounters, hostTotals, sumBoth } from './host-totals.ts';
import { PRESSURE_KINDS, PRESSURE_RESOURCES, type HostNetworkRead, type HostPressure } from './records.ts';
import type { CgroupUsage, GuestCpuSeconds, KubeletStats, PodRecord, SandboxPodRef, SandboxRecord, ShimMetrics } from './records.ts';
import type { ContainerGapReason, ContainerSnapshot, PodGapReason, PodSnapshot, SandboxState, SandboxSummary } from './snapshot.ts';

export type ShimOutcome =
  | { state: 'ok'; metrics: ShimMetrics }
  | { state: 'skipped'; reason: 'shim_unsafe_runtime' | 'shim_disabled' | 'shim_socket_missing' }
  | {
      state: 'failed';
      reason: 'shim_unreachable' | 'shim_timeout' | 'shim_oversize' | 'shim_malformed' | 'shim_decode_budget' | 'shim_stale';
    };

export interface SandboxObservation {
  sandbox: SandboxRecord;
  /** Undefined when no source could join the sandbox to a pod. */
  pod?: SandboxPodRef;
  /** Undefined when the shim was not asked (e.g. an unmapped sandbox). */
  shim?: ShimOutcome;
  /**
   * When the shim gave the `ok` outcome: an earlier collection's time when its answer is re-used
   * between calls (--shim.interval); undefined: this collection.
   */
  shimAnsweredAtMs?: number;
  /** `/kata_overhead/<id>` (or the systemd-driver oddity at the root), when it exists. */
  overheadCgroup?: CgroupUsage;
  /** One of those cgroups exists but could not be read in this collection (it vanished mid-read). */
  overheadCgroupIncomplete?: boolean;
  /** The pod's network counters from its VMM's namespace; undefined when that collector is off. */
  hostNetwork?: HostNetworkRead;
}

export interface CorrelationInput {
  nowMs: number;
  /** `--pods.runtime-handlers`. */
  runtimeHandlers: RegExp;
  /** A kubelet sample older than this is stale. */
  kubeletStaleAfterMs: number;
  pods: Iterable<PodRecord>;
  /** Host pod cgroups by pod UID, for the pods in scope that have one. */
  podCgroups: ReadonlyMap<string, CgroupUsage>;
  /** Undefined when the kubelet could not be scraped. */
  kubelet?: KubeletStats;
  sandboxes: readonly SandboxObservation[];
  /**
   * The node's CPUs: no CPU counter fed by the kubelet or a guest may grow by more than they could
   * run since its last sample. Undefined: unbounded.
   */
  hostCpus?: number;
}

export interface CorrelationResult {
  pods: PodSnapshot[];
  sandboxes: SandboxSummary[];
  /** CPU samples refused as implausible increases, by who sent them. */
  refused: { kubelet: number; guest: number };
}

/** Per pod: what the CPU counters did this collection, for the overhead and the refusal counts. */
interface CpuEffects {
  containers: CounterEffect[];
  guest?: CounterEffect;
  /** The guest's values were re-used from an earlier call: they say nothing about this collection's span. */
  guestReused?: boolean;
  refused: CorrelationResult['refused'];
}

/**
 * The UID of the pod a sandbox maps to. containerd before 1.7 names the pod but not its UID: the
 * name and namespace then find it among this node's pods.
 */
export function resolvePodUid(ref: SandboxPodRef | undefined, pods: Iterable<PodRecord>): string | undefined {
  if (ref === undefined) return undefined;
  if (ref.uid !== undefined) return ref.uid;
  for (const pod of pods) if (pod.name === ref.name && pod.namespace === ref.namespace) return pod.uid;
  return undefined;
}

/** Pods the exporter reports: Kata by RuntimeClass handler, or joined to a Kata sandbox. */
export function isPodInScope(pod: PodRecord, runtimeHandlers: RegExp, mappedUids: ReadonlySet<string>): boolean {
  if (mappedUids.has(pod.uid)) return true;
  const handler = pod.runtimeHandler ?? pod.runtimeClassName;
  return handler !== undefined && runtimeHandlers.test(handler);
}

/** Pods whose containers have all finished keep no series. */
export function isFinished(pod: PodRecord): boolean {
  return pod.phase === 'Succeeded' || pod.phase === 'Failed';
}

export function correlate(input: CorrelationInput, counters: CounterState): CorrelationResult {
  const podsByUid = new Map<string, PodRecord>();
  for (const pod of input.pods) podsByUid.set(pod.uid, pod);

  const { chosen, summaries } = chooseSandboxPerPod(input.sandboxes, podsByUid);
  const mappedUids = new Set(chosen.keys());

  const pods: PodSnapshot[] = [];
  const refused = { kubelet: 0, guest: 0 };
  for (const pod of podsByUid.values()) {
    if (isFinished(pod) || !isPodInScope(pod, input.runtimeHandlers, mappedUids)) continue;
    pods.push(correlatePod(pod, chosen.get(pod.uid), input, counters, refused));
  }
  pods.sort((a, b) => (a.namespace === b.namespace ? cmp(a.pod, b.pod) : cmp(a.namespace, b.namespace)));
  return { pods, sandboxes: summaries, refused };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * One sandbox per pod. A pod re-created its sandbox while the old directory lingers: prefer the
 * one whose shim answered, then the one with a socket, then the lowest id, so the choice is stable.
 */
function chooseSandboxPerPod(
  observations: readonly SandboxObservation[],
  podsByUid: ReadonlyMap<string, PodRecord>,
): { chosen: Map<string, SandboxObservation>; summaries: SandboxSummary[] } {
  const chosen = new Map<string, SandboxObservation>();
  const unmapped: SandboxObservation[] = [];
  for (const observation of observations) {
    const uid = resolvePodUid(observation.pod, podsByUid.values());
    if (uid === undefined || !podsByUid.has(uid)) {
      unmapped.push(observation);
      continue;
    }
    const current = chosen.get(uid);
    if (current === undefined || preferSandbox(observation, current)) chosen.set(uid, observation);
  }
  const chosenSet = new Set(chosen.values());
  const summaries = observations.map(
    (o) =>
      ({
        id: o.sandbox.id,
        runtime: o.sandbox.runtime,
        hypervisor: o.sandbox.hypervisor,
        state: unmapped.includes(o) ? 'unmapped' : chosenSet.has(o) ? shimState(o.shim) : 'superseded',
      }) satisfies SandboxSummary,
  );
  summaries.sort((a, b) => cmp(a.id, b.id));
  return { chosen, summaries };
}

function preferSandbox(candidate: SandboxObservation, current: SandboxObservation): boolean {
  const rank = (o: SandboxObservation): number => (o.shim?.state === 'ok' ? 0 : o.sandbox.socketPath !== undefined ? 1 : 2);
  const diff = rank(candidate) - rank(current);
  return diff !== 0 ? diff < 0 : candidate.sandbox.id < current.sandbox.id;
}

function shimState(shim: ShimOutcome | undefined): SandboxState {
  if (shim === undefined) return 'failed';
  if (shim.state === 'ok') return 'scraped';
  if (shim.state === 'failed') return 'failed';
  switch (shim.reason) {
    case 'shim_unsafe_runtime':
      return 'unsafe_skipped';
    case 'shim_disabled':
      return 'disabled';
    case 'shim_socket_missing':
      return 'no_socket';
  }
}

function correlatePod(
  pod: PodRecord,
  observation: SandboxObservation | undefined,
  input: CorrelationInput,
  counters: CounterState,
  refused: CorrelationResult['refused'],
): PodSnapshot {
  const gaps = new Set<PodGapReason>();
  const effects: CpuEffects = { containers: [], refused };
  const cpuBound: CounterOptions = input.hostCpus === undefined ? {} : { maxPerSecond: input.hostCpus * PLAUSIBLE_CPU_MARGIN };
  const podKey = `${pod.namespace}/${pod.name}`;
  counters.keep(podKey);
  const epoch = pod.uid;
  const sandbox = observation?.sandbox;
  const reserved = pod.overheadSource === 'runtime_class' ? undefined : pod.overhead;
  const snapshot: PodSnapshot = {
    namespace: pod.namespace,
    pod: pod.name,
    uid: pod.uid,
    sandboxId: sandbox?.id,
    runtimeHandler: pod.runtimeHandler,
    runtime: sandbox?.runtime,
    hypervisor: sandbox?.hypervisor,
    sandboxCgroupOnly: sandbox?.sandboxCgroupOnly,
    labels: pod.publishedLabels,
    vmMemoryBytes: sandbox?.vmMemoryBytes,
    // Only what admission really added to the pod: a class overhead the pod lacks was never reserved.
    overheadCpuReservedCores: reserved?.cpuCores,
    overheadMemoryReservedBytes: reserved?.memoryBytes,
    gaps: [],
    containers: [],
  };

  if (observation === undefined) {
    if (pod.phase === 'Running') gaps.add('sandbox_unmapped');
  } else if (observation.shim !== undefined && observation.shim.state !== 'ok') {
    gaps.add(observation.shim.reason);
  }
  if (input.kubelet === undefined) gaps.add('kubelet_unreachable');

  // Host: what the node really pays for this pod's VM.
  const host = observation?.overheadCgroupIncomplete ? undefined : hostUsage(input.podCgroups.get(pod.uid), observation?.overheadCgroup);
  if (host === undefined) {
    if (observation !== undefined || pod.phase === 'Running') gaps.add('cgroup_not_found');
  } else {
    if (host.cpuSeconds !== undefined) {
      snapshot.hostCpuSeconds = counters.update(podKey, 'host_cpu', epoch, { source: 'cgroup', value: host.cpuSeconds });
    }
    snapshot.hostMemoryWorkingSetBytes = host.memoryWorkingSetBytes;
  }
  const podCgroup = input.podCgroups.get(pod.uid);
  if (host !== undefined && podCgroup !== undefined)
    applyHostTotals(snapshot, gaps, podKey, epoch, counters, podCgroup, observation?.overheadCgroup);
  // The VMM is found and trusted through the pod's cgroups: without them (torn down, or never
  // found), cgroup_not_found says why no host family is there, network included.
  const network = host === undefined ? undefined : observation?.hostNetwork;
  if (network !== undefined && !applyHostNetwork(snapshot, podKey, epoch, counters, network)) gaps.add('host_vmm_not_found');

  // Guest: what the VM says about itself (untrusted, aggregated only).
  const metrics = observation?.shim?.state === 'ok' ? observation.shim.metrics : undefined;
  const guest = metrics?.guest;
  const answeredAtMs = observation?.shimAnsweredAtMs ?? input.nowMs;
  // A re-used answer is not a new sample: the guest counters re-publish their values untouched, so
  // the next fresh answer is bounded by the whole time since the call that gave this one.
  const reused = answeredAtMs < input.nowMs;
  if (metrics !== undefined) {
    snapshot.guestSampleAgeSeconds = (input.nowMs - answeredAtMs) / 1000;
    effects.guestReused = reused;
  }
  const guestCounter = (key: string, value: number | undefined, options: CounterOptions = {}): CounterOutcome | undefined => {
    if (value === undefined) return undefined;
    const held = reused ? counters.peek(podKey, key) : undefined;
    if (held !== undefined && held.epoch === epoch) return { effect: 'applied', published: held.published };
    return counters.follow(podKey, key, epoch, [{ source: 'shim', value }], options);
  };
  if (guest !== undefined) {
    if (guest.cpuUnit === 'unknown') gaps.add('guest_cpu_unit_unknown');
    const guestCpu = guest.cpu === undefined ? undefined : guestBusySeconds(guest.cpu);
    if (guestCpu !== undefined) {
      // The guest total counts from the VM's boot, which comes after the pod's start.
      const outcome = guestCounter('guest_cpu', guestCpu, { ...cpuBound, startedAtMs: msOf(pod.startedAt) })!;
      snapshot.guestCpuSeconds = outcome.published;
      effects.guest = outcome.effect;
      if (outcome.effect === 'refused') {
        gaps.add('implausible_increase');
        refused.guest++;
      }
    }
    if (guest.memTotalBytes !== undefined && guest.memAvailableBytes !== undefined) {
      snapshot.guestMemoryUsedBytes = Math.max(0, guest.memTotalBytes - guest.memAvailableBytes);
    }
    snapshot.guestTasks = guest.tasks;
    snapshot.guestNetworkReceiveBytes = guestCounter('guest_rx', guest.networkReceiveBytes)?.published;
    snapshot.guestNetworkTransmitBytes = guestCounter('guest_tx', guest.networkTransmitBytes)?.published;
    snapshot.guestDiskReadBytes = guestCounter('guest_disk_r', guest.diskReadBytes)?.published;
    snapshot.guestDiskWrittenBytes = guestCounter('guest_disk_w', guest.diskWrittenBytes)?.published;
    snapshot.guestOomKills = guestCounter('guest_oom', guest.oomKills)?.published;
  }

  snapshot.containers = correlateContainers(pod, snapshot, input, counters, cpuBound, effects);
  applyOverhead(snapshot, podKey, epoch, counters, effects);
  snapshot.gaps = [...gaps].sort();
  return snapshot;
}

/** The pod cgroup plus what the VM spends outside it; nothing when the pod cgroup itself is missing. */
function hostUsage(
  podCgroup: CgroupUsage | undefined,
  overhead: CgroupUsage | undefined,
): { cpuSeconds?: number; memoryWorkingSetBytes?: number } | undefined {
  // The overhead alone is a fraction of the VM: publishing it as the host total would be a lie.
  if (podCgroup === undefined) return undefined;
  if (overhead === undefined) return { cpuSeconds: podCgroup.cpuSeconds, memoryWorkingSetBytes: podCgroup.memoryWorkingSetBytes };
  // Likewise a field one part has and the other lacks (its files were mid-removal).
  const cpuSeconds = sumBoth(podCgroup.cpuSeconds, overhead.cpuSeconds);
  const memoryWorkingSetBytes = sumBoth(podCgroup.memoryWorkingSetBytes, overhead.memoryWorkingSetBytes);
  if (cpuSeconds === null || memoryWorkingSetBytes === null) return undefined;
  return { cpuSeconds, memoryWorkingSetBytes };
}

/**
 * What a VM spends outside its pod cgroup (the overhead cgroup, a sandbox cgroup at the root), from
 * the reads of those cgroups (undefined: could not be read). Incomplete, so that no host total is
 * published, when a part vanished mid-read, when an overhead cgroup Kata's state names is not there
 * (`overheadMissing`), or when the parts disagree on which fields they have (a partial sum).
 */
export function outsideUsage(
  reads: readonly (CgroupUsage | undefined)[],
  overheadMissing: boolean,
): { total?: CgroupUsage; incomplete: boolean } {
  const read = reads.filter((u): u is CgroupUsage => u !== undefined);
  const total = sumUsage(read);
  const incomplete = read.length < reads.length || overheadMissing || (read.length > 0 && total === undefined);
  return total === undefined ? { incomplete } : { total, incomplete };
}

/** The sum of several cgroups, or undefined when one has a field another lacks (a partial sum). */
function sumUsage(usages: readonly CgroupUsage[]): CgroupUsage | undefined {
  let total: CgroupUsage | undefined = usages[0];
  for (const u of usages.slice(1)) {
    if (total === undefined) break;
    const cpuSeconds = sumBoth(total.cpuSeconds, u.cpuSeconds);
    const memoryWorkingSetBytes = sumBoth(total.memoryWorkingSetBytes, u.memoryWorkingSetBytes);
    total =
      cpuSeconds === null || memoryWorkingSetBytes === null
        ? undefined
        : { ...addHostCounters(total, u), cpuSeconds, memoryWorkingSetBytes };
  }
  return total;
}

function hostCounter(counters: CounterState, scope: string, key: string, epoch: string, value: number | undefined): number | undefined {
  return value === undefined ? undefined : counters.update(scope, key, epoch, { source: 'cgroup', value });
}

/** Counter keys of the pressure series, built once (six per pod per collection otherwise). */
const PRESSURE_COUNTER_KEYS = PRESSURE_RESOURCES.flatMap((resource) =>
  PRESSURE_KINDS.map((kind) => ({ resource, kind, key: `host_psi_${resource}_${kind}` })),
);

/** The host families beyond CPU and memory usage: counters kept monotonic like host CPU. */
function applyHostTotals(
  snapshot: PodSnapshot,
  gaps: Set<PodGapReason>,
  podKey: string,
  epoch: string,
  counters: CounterState,
  podCgroup: CgroupUsage,
  outside: CgroupUsage | undefined,
): void {
  const totals = hostTotals(podCgroup, outside);
  if (totals.fileMissing) gaps.add('host_file_missing');
  snapshot.hostCpuThrottledSeconds = hostCounter(counters, podKey, 'host_throttled', epoch, totals.cpuThrottledSeconds);
  snapshot.hostMemoryLimitBytes = totals.memoryLimitBytes;
  snapshot.hostOomKills = hostCounter(counters, podKey, 'host_oom', epoch, totals.oomKills);
  snapshot.hostDiskReadBytes = hostCounter(counters, podKey, 'host_disk_r', epoch, totals.diskReadBytes);
  snapshot.hostDiskWrittenBytes = hostCounter(counters, podKey, 'host_disk_w', epoch, totals.diskWrittenBytes);
  if (totals.pressure !== undefined) {
    const pressure: HostPressure = {};
    for (const { resource, kind, key } of PRESSURE_COUNTER_KEYS) {
      const value = hostCounter(counters, podKey, key, epoch, totals.pressure[resource]?.[kind]);
      if (value !== undefined) (pressure[resource] ??= {})[kind] = value;
    }
    snapshot.hostPressure = pressure;
  }
}

/** Network bytes from the VMM's namespace; false when its VMM was not found. */
function applyHostNetwork(snapshot: PodSnapshot, podKey: string, epoch: string, counters: CounterState, network: HostNetworkRead): boolean {
  if (network.state !== 'ok') return false;
  snapshot.hostNetworkReceiveBytes = hostCounter(counters, podKey, 'host_rx', epoch, network.receiveBytes);
  snapshot.hostNetworkTransmitBytes = hostCounter(counters, podKey, 'host_tx', epoch, network.transmitBytes);
  return true;
}

/**
 * Time the guest's CPUs ran work: user + nice + system + irq + softirq. Idle and iowait are idle;
 * steal is time the host did not give the VM; guest and guest_nice are already inside user and nice.
 */
export function guestBusySeconds(cpu: GuestCpuSeconds): number {
  return cpu.user + cpu.nice + cpu.system + cpu.irq + cpu.softirq;
}

/**
 * App containers: init containers run before the app and are not reported by the kubelet once
 * done, except native sidecars (restartPolicy Always), which run beside the app.
 */
function appContainerNames(pod: PodRecord): string[] {
  return pod.containers.filter((c) => !c.init || c.sidecar === true).map((c) => c.name);
}

function correlateContainers(
  pod: PodRecord,
  podSnapshot: PodSnapshot,
  input: CorrelationInput,
  counters: CounterState,
  cpuBound: CounterOptions,
  effects: CpuEffects,
): ContainerSnapshot[] {
  const names = appContainerNames(pod);
  const single = names.length === 1;
  return names.map((name) => {
    const spec = pod.containers.find((c) => c.name === name);
    const status = pod.containerStatuses.find((s) => s.name === name);
    const podKey = `${pod.namespace}/${pod.name}`;
    const key = `${podKey}/${name}`;
    const cpuKey = `cpu/${name}`;
    const restarts = status?.restartCount ?? 0;
    const epoch = `${pod.uid}/${restarts}`;
    const container: ContainerSnapshot = {
      name,
      cpuLimitCores: spec?.cpuLimitCores,
      memoryLimitBytes: spec?.memoryLimitBytes,
      cpuRequestCores: spec?.cpuRequestCores,
      memoryRequestBytes: spec?.memoryRequestBytes,
    };
    retireRestartedContainer(counters, podKey, cpuKey, epoch, pod.uid);
    const running = status?.state === 'running';
    const stats = input.kubelet?.containers.get(key);
    let gap = containerGap(input, stats, running);
    if (gap === undefined && stats !== undefined) {
      const candidates = (stats.cpuCandidates ?? [{ value: stats.cpuSeconds ?? 0, timestampMs: stats.cpuTimestampMs }]).map((c) => ({
        source: 'kubelet',
        ...c,
      }));
      // The kubelet's counter counts this life of the container; the pod's start bounds it too, more loosely.
      const outcome = counters.follow(podKey, cpuKey, epoch, candidates, {
        ...cpuBound,
        startedAtMs: msOf(status?.startedAt ?? pod.startedAt),
      });
      effects.containers.push(outcome.effect);
      if (outcome.effect === 'refused') {
        effects.refused.kubelet++;
        container.gap = 'implausible_increase';
      } else if (outcome.effect === 'undecided') {
        container.gap = 'kubelet_duplicate';
      }
      if (outcome.published !== undefined) {
        container.source = 'kubelet';
        container.cpuSeconds = outcome.published;
        // Which duplicate the memory sample belongs to is as open as the CPU one.
        if (outcome.effect !== 'undecided') container.memoryWorkingSetBytes = stats.memoryWorkingSetBytes;
        return container;
      }
      gap = outcome.effect === 'refused' ? 'implausible_increase' : 'kubelet_duplicate';
    }
    if (gap === undefined) return container; // not running and not reported: nothing to say
    container.gap = gap;
    if (single && podSnapshot.guestCpuSeconds !== undefined) {
      // The VM runs one app container: the guest's own total is the best estimate of it. In the
      // container's first life that total is all it ran; after a restart it also holds the earlier
      // lives, so the new life's counter starts at zero. It is the published guest counter, already
      // bounded from its first sample on.
      container.source = 'guest_estimate';
      const outcome = counters.follow(podKey, cpuKey, epoch, [{ source: 'guest_estimate', value: podSnapshot.guestCpuSeconds }], {
        start: restarts === 0 ? 'raw' : 'zero',
      });
      effects.containers.push(outcome.effect);
      container.cpuSeconds = outcome.published;
      container.memoryWorkingSetBytes = podSnapshot.guestMemoryUsedBytes;
    }
    return container;
  });
}

function containerGap(
  input: CorrelationInput,
  stats: { cpuSeconds?: number; cpuTimestampMs?: number } | undefined,
  running: boolean,
): ContainerGapReason | undefined {
  if (input.kubelet === undefined) return running ? 'kubelet_unreachable' : undefined;
  if (stats === undefined || stats.cpuSeconds === undefined) return running ? 'kubelet_missing' : undefined;
  if (running && stats.cpuSeconds === 0) return 'kubelet_zero';
  if (stats.cpuTimestampMs !== undefined && input.nowMs - stats.cpuTimestampMs > input.kubeletStaleAfterMs) {
    return 'kubelet_stale';
  }
  return undefined;
}

const RETIRED_CPU = 'retired_cpu';

/** When a container restarts, what it had counted moves to the pod's retired total. */
function retireRestartedContainer(counters: CounterState, podKey: string, cpuKey: string, epoch: string, podUid: string): void {
  const previous = counters.peek(podKey, cpuKey);
  const restarted = previous !== undefined && previous.epoch !== epoch && previous.epoch.startsWith(`${podUid}/`);
  counters.accumulate(podKey, RETIRED_CPU, podUid, restarted ? previous.published : 0);
  if (restarted) counters.forget(podKey, cpuKey);
}

/**
 * Overhead = host − workload, where workload is Σ containers (restarted ones' counts included) when
 * every container has a first-hand value, else the guest's own total. Memory is a gauge floored at 0; CPU is a
 * monotonic counter that follows the difference of increments (see CounterState.updateDifference).
 */
function applyOverhead(snapshot: PodSnapshot, podKey: string, epoch: string, counters: CounterState, effects: CpuEffects): void {
  const containers = snapshot.containers;
  // An estimate is the guest total itself: then the guest is the honest basis for the difference.
  const cpuComplete = containers.length > 0 && containers.every((c) => c.source === 'kubelet' && c.cpuSeconds !== undefined);
  const retired = counters.peek(podKey, RETIRED_CPU)?.published ?? 0;
  const cpuBasis = cpuComplete ? 'containers' : 'guest';
  const workloadCpu = cpuComplete ? sumOf(containers, (c) => c.cpuSeconds) + retired : snapshot.guestCpuSeconds;
  if (snapshot.hostCpuSeconds !== undefined && workloadCpu !== undefined) {
    snapshot.overheadCpuSeconds = counters.updateDifference(
      podKey,
      'overhead_cpu',
      epoch,
      cpuBasis,
      snapshot.hostCpuSeconds,
      workloadCpu,
      cpuComplete ? differenceInputs(effects.containers) : guestDifferenceInputs(effects),
    );
  }
  const memoryComplete = containers.length > 0 && containers.every((c) => c.source === 'kubelet' && c.memoryWorkingSetBytes !== undefined);
  const workloadMemory = memoryComplete ? sumOf(containers, (c) => c.memoryWorkingSetBytes) : snapshot.guestMemoryUsedBytes;
  if (snapshot.hostMemoryWorkingSetBytes !== undefined && workloadMemory !== undefined) {
    snapshot.overheadMemoryBytes = Math.max(0, snapshot.hostMemoryWorkingSetBytes - workloadMemory);
  }
}

/**
 * How the overhead takes this collection's workload: a counter that jumped to a new baseline added
 * nothing for it (skip the collection); one that refused, held or could not pick its sample will
 * add this collection's work with its next one (hold the baselines, to measure both over that span).
 */
function differenceInputs(workload: readonly CounterEffect[]): 'follow' | 'hold' | 'skip' {
  if (workload.includes('rebased')) return 'skip';
  if (workload.some((e) => e === 'refused' || e === 'held' || e === 'undecided')) return 'hold';
  return 'follow';
}

function msOf(seconds: number | undefined): number | undefined {
  return seconds === undefined ? undefined : seconds * 1000;
}

/**
 * The same on the guest basis. A guest value re-used between shim calls has not moved since its
 * call while the host has: hold the baselines until the next fresh answer, so that the host's and
 * the guest's increments are measured over the same span, from one call to the next.
 */
function guestDifferenceInputs(effects: CpuEffects): 'follow' | 'hold' | 'skip' {
  if (effects.guest === undefined) return 'follow';
  const inputs = differenceInputs([effects.guest]);
  return inputs === 'follow' && effects.guestReused === true ? 'hold' : inputs;
}

function sumOf<T>(items: readonly T[], value: (item: T) => number | undefined): number {
  let sum = 0;
  for (const item of items) sum += value(item) ?? 0;
  return sum;
}
