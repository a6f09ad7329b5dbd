/**
 * The host families of a pod from its pod cgroup and what the VM spends outside it (pure).
 * Counters that the overhead cgroup shares (throttling, OOM kills, block I/O: virtiofsd writes
 * and a killed VMM are charged there) are summed; the memory limit and pressure are the pod
 * cgroup's own. As with CPU and memory usage, a sum one part cannot complete is not published.
 */
import type { CgroupUsage, HostCgroupFields } from './records.ts';

export type HostTotals = HostCgroupFields & {
  /** A file an enabled collector needed was not there, in the pod cgroup or outside it. */
  fileMissing: boolean;
};

/** The counters summed over the pod cgroup and the cgroups outside it. */
export const SUMMED_HOST_FIELDS = ['cpuThrottledSeconds', 'oomKills', 'diskReadBytes', 'diskWrittenBytes'] as const;

/** Both defined: their sum; both undefined: undefined; only one: null (a partial sum). */
export function sumBoth(a: number | undefined, b: number | undefined): number | undefined | null {
  if (a === undefined && b === undefined) return undefined;
  return a === undefined || b === undefined ? null : a + b;
}

/**
 * The summed host counters of several cgroups outside the pod cgroup, into `total` (a copy of
 * the first). A field one has and another lacks is dropped and marked missing.
 */
export function addHostCounters(total: CgroupUsage, next: CgroupUsage): CgroupUsage {
  const out: CgroupUsage = { ...total };
  for (const field of SUMMED_HOST_FIELDS) {
    const sum = sumBoth(total[field], next[field]);
    if (typeof sum === 'number') out[field] = sum;
    else delete out[field];
  }
  const missing = [...(total.missingFiles ?? []), ...(next.missingFiles ?? [])];
  if (missing.length > 0) out.missingFiles = [...new Set(missing)];
  return out;
}

export function hostTotals(podCgroup: CgroupUsage, outside: CgroupUsage | undefined): HostTotals {
  const totals: HostTotals = {
    memoryLimitBytes: podCgroup.memoryLimitBytes,
    pressure: podCgroup.pressure,
    fileMissing: (podCgroup.missingFiles?.length ?? 0) + (outside?.missingFiles?.length ?? 0) > 0,
  };
  for (const field of SUMMED_HOST_FIELDS) {
    if (outside === undefined) {
      totals[field] = podCgroup[field];
      continue;
    }
    const sum = sumBoth(podCgroup[field], outside[field]);
    totals[field] = sum ?? undefined;
  }
  return totals;
}
