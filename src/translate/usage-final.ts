/**
 * A pod's totals from the last read of its host cgroups (usage records), pure: the pod cgroup
 * plus what its VM spends outside it, summed as a collection sums them (host-totals.ts), with the
 * kernel's memory peak of each cgroup.
 */

import { hostTotals, sumBoth } from './host-totals.ts';
import { outsideUsage } from './correlate.ts';
import type { CgroupUsage } from './records.ts';
import type { FinalHostRead } from './usage.ts';

/** One cgroup as read at the end: its usage and the kernel's peak (undefined: the kernel keeps none). */
export interface FinalCgroup {
  usage: CgroupUsage;
  peakBytes?: number;
}

/**
 * The pod's totals, or undefined when a part outside the pod cgroup could not be read (`undefined`
 * in `outside`) or the parts disagree on what they have: a partial total would pass for a final one.
 * The peak is the sum of each cgroup's peak: at least the peak of their sum, equal when they peaked together.
 */
export function finalHostRead(pod: FinalCgroup, outside: readonly (FinalCgroup | undefined)[]): FinalHostRead | undefined {
  const parts = outsideUsage(
    outside.map((part) => part?.usage),
    false,
  );
  if (parts.incomplete) return undefined;
  const total = parts.total;
  const cpuSeconds = total === undefined ? pod.usage.cpuSeconds : sumBoth(pod.usage.cpuSeconds, total.cpuSeconds);
  const workingSet =
    total === undefined ? pod.usage.memoryWorkingSetBytes : sumBoth(pod.usage.memoryWorkingSetBytes, total.memoryWorkingSetBytes);
  if (cpuSeconds === null || workingSet === null) return undefined;
  let peak = pod.peakBytes;
  for (const part of outside) peak = peak === undefined || part?.peakBytes === undefined ? undefined : peak + part.peakBytes;
  const totals = hostTotals(pod.usage, total);
  const read: FinalHostRead = {};
  if (cpuSeconds !== undefined) read.cpuSeconds = cpuSeconds;
  if (workingSet !== undefined) read.memoryWorkingSetBytes = workingSet;
  if (peak !== undefined) read.memoryPeakBytes = peak;
  if (totals.cpuThrottledSeconds !== undefined) read.cpuThrottledSeconds = totals.cpuThrottledSeconds;
  if (totals.oomKills !== undefined) read.oomKills = totals.oomKills;
  if (totals.diskReadBytes !== undefined) read.diskReadBytes = totals.diskReadBytes;
  if (totals.diskWrittenBytes !== undefined) read.diskWrittenBytes = totals.diskWrittenBytes;
  return read;
}
