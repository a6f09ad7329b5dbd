/**
 * The last read of one pod's host cgroups, at its end and before the kubelet and Kata remove them
 * (usage records): the pod cgroup, and what its VM spends outside it (the overhead cgroup, a
 * sandbox cgroup at the root), each with the kernel's memory peak. I/O only, with a collection's
 * readers, for one pod; translate/usage-final.ts sums the parts.
 */

import type { HostCollectors } from '../translate/records.ts';
import type { FinalHostRead } from '../translate/usage.ts';
import { finalHostRead, type FinalCgroup } from '../translate/usage-final.ts';
import {
  detectCgroupLayout,
  findSandboxCgroups,
  hostReads,
  indexPodCgroups,
  readCgroupMemoryPeak,
  readCgroupUsage,
  type CgroupLayout,
} from './cgroups.ts';
import { SourceError } from './source-error.ts';

export class FinalCgroupReader {
  private layout: CgroupLayout | undefined;

  constructor(
    private readonly cgroupRoot: string,
    private readonly collectors: HostCollectors,
  ) {}

  /**
   * The pod's totals now; undefined when its pod cgroup is gone or a part of its VM could not be
   * read. Without a sandbox id (a pod no collection joined to one) only the pod cgroup is read.
   */
  async read(podUid: string, sandboxId: string | undefined): Promise<FinalHostRead | undefined> {
    try {
      // The mounts do not change while the exporter runs: detected again only until kubepods shows.
      const layout = this.layout?.drivers.length ? this.layout : await detectCgroupLayout(this.cgroupRoot);
      this.layout = layout;
      const podPath = (await indexPodCgroups(layout)).get(podUid)?.path;
      if (podPath === undefined) return undefined;
      const pod = await readFinal(layout, podPath, hostReads(layout, this.collectors, 'pod'));
      if (pod === undefined) return undefined;
      const outside: (FinalCgroup | undefined)[] = [];
      if (sandboxId !== undefined) {
        const found = await findSandboxCgroups(layout, podPath, sandboxId);
        const inPod = found.sandbox !== undefined && found.sandbox.path.startsWith(`${podPath}/`);
        for (const path of [found.overhead?.path, inPod ? undefined : found.sandbox?.path]) {
          if (path !== undefined) outside.push(await readFinal(layout, path, hostReads(layout, this.collectors, 'outside')));
        }
      }
      return finalHostRead(pod, outside);
    } catch {
      // An unreadable hierarchy: the record keeps the last collection's values.
      return undefined;
    }
  }
}

async function readFinal(layout: CgroupLayout, path: string, reads: ReturnType<typeof hostReads>): Promise<FinalCgroup | undefined> {
  const usage = await readCgroupUsage(layout, path, reads);
  if (usage instanceof SourceError) return undefined;
  const peakBytes = readCgroupMemoryPeak(layout, path);
  return peakBytes === undefined ? { usage } : { usage, peakBytes };
}
