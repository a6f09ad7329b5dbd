/**
 * What the host kernel counts for a simulated pod beyond CPU time and memory: the pod cgroup's
 * limits (from the pod spec, as the kubelet sets them), CFS throttling under the CPU quota, PSI
 * stall time, OOM kills, block I/O and network bytes. Pure functions of the scenario and the pod's
 * age, so every counter only grows and a frozen clock gives fixed values.
 */

import { quantityToBytes, quantityToCores } from '../translate/quantity.ts';
import { CFS_PERIOD_US, type LabPodLimits, type LabPressure } from './cgroup-tree.ts';

export interface HostContainer {
  cpuCores: number;
  memoryBytes: number;
  limits?: { cpu?: string; memory?: string };
}

/** The pod cgroup's limits: the containers' summed limits plus the RuntimeClass overhead, only where every container sets one. */
export function podCgroupLimits(
  containers: readonly HostContainer[],
  overhead: { cpu?: string; memory?: string } | undefined,
): { memoryLimitBytes?: number; cpuQuotaCores?: number } {
  const sum = (pick: (c: HostContainer) => number | undefined, extra: number | undefined): number | undefined => {
    const values = containers.map(pick);
    if (values.length === 0 || values.some((v) => v === undefined)) return undefined;
    return values.reduce((s: number, v) => s + (v ?? 0), 0) + (extra ?? 0);
  };
  const memory = sum(
    (c) => (c.limits?.memory === undefined ? undefined : quantityToBytes(c.limits.memory)),
    overhead?.memory === undefined ? 0 : quantityToBytes(overhead.memory),
  );
  const cpu = sum(
    (c) => (c.limits?.cpu === undefined ? undefined : quantityToCores(c.limits.cpu)),
    overhead?.cpu === undefined ? 0 : quantityToCores(overhead.cpu),
  );
  return { ...(memory === undefined ? {} : { memoryLimitBytes: memory }), ...(cpu === undefined ? {} : { cpuQuotaCores: cpu }) };
}

export interface HostProfileInput {
  limits: { memoryLimitBytes?: number; cpuQuotaCores?: number };
  /** Cores the whole VM wants (vCPUs and VMM). */
  cpuDemandCores: number;
  /** Working set the VM settles at, before any growth. */
  workingSetBytes: number;
  memoryGrowing: boolean;
  hostOomKills: boolean;
  diskBytesPerSecond: number;
  /** An explicit throttled share; default from demand against the quota. */
  cpuThrottledShare?: number;
}

/** Shares of wall time: throttled CFS periods, and PSI `some` per resource. */
export interface HostProfile {
  limits: { memoryLimitBytes?: number; cpuQuotaCores?: number };
  throttledShare: number;
  pressureShare: Record<'cpu' | 'memory' | 'io', number>;
}

/** A pod at 90 % of its quota or more spends many periods throttled; below it, none. */
const PINNED_FRACTION = 0.9;
const PINNED_THROTTLED_SHARE = 0.6;
/** Near its memory limit the kernel reclaims hard: tasks stall on memory. */
const MEMORY_TIGHT_FRACTION = 0.9;
/** Sustained block I/O that makes tasks wait (bytes per second). */
const IO_BUSY_BYTES_PER_SECOND = 50_000_000;

export function hostProfile(input: HostProfileInput): HostProfile {
  const quota = input.limits.cpuQuotaCores;
  const pinned = quota !== undefined && input.cpuDemandCores >= PINNED_FRACTION * quota;
  const throttledShare = quota === undefined ? 0 : (input.cpuThrottledShare ?? (pinned ? PINNED_THROTTLED_SHARE : 0));
  const limit = input.limits.memoryLimitBytes;
  const memoryTight =
    input.memoryGrowing || input.hostOomKills || (limit !== undefined && input.workingSetBytes >= MEMORY_TIGHT_FRACTION * limit);
  return {
    limits: input.limits,
    throttledShare,
    pressureShare: {
      cpu: Math.min(1, 0.01 + throttledShare / 2),
      memory: memoryTight ? 0.3 : 0.001,
      io: input.diskBytesPerSecond >= IO_BUSY_BYTES_PER_SECOND ? 0.4 : 0.005,
    },
  };
}

/** The pod cgroup's own files at `seconds` of age: limits, CFS bandwidth counters, PSI totals. */
export function podCgroupState(profile: HostProfile, seconds: number): LabPodLimits {
  const quota = profile.limits.cpuQuotaCores;
  const periods = quota === undefined ? 0 : Math.floor((seconds * 1e6) / CFS_PERIOD_US);
  const throttledPeriods = Math.floor(periods * profile.throttledShare);
  // A throttled period waits out the rest of it (half on average) on every CPU the quota spans.
  const throttledSeconds = (throttledPeriods * CFS_PERIOD_US * 1e-6 * Math.max(1, quota ?? 0)) / 2;
  const pressure: LabPressure = {};
  for (const resource of ['cpu', 'memory', 'io'] as const) {
    const some = profile.pressureShare[resource] * seconds;
    pressure[resource] = { someSeconds: some, fullSeconds: some / 2 };
  }
  return {
    ...profile.limits,
    cpuPeriods: periods,
    cpuThrottledPeriods: throttledPeriods,
    cpuThrottledSeconds: throttledSeconds,
    pressure,
  };
}

/** Events every `every` seconds since the pod started (none when `every` is unset). */
export function eventsSince(seconds: number, every: number | undefined): number {
  return every === undefined || every <= 0 ? 0 : Math.floor(seconds / every);
}
