/** Small builders for correlation inputs: each test states only what differs. */

import type { CorrelationInput, SandboxObservation, ShimOutcome } from '../../src/translate/correlate.ts';
import type {
  CgroupUsage,
  GuestStats,
  KubeletContainerStats,
  KubeletStats,
  PodRecord,
  SandboxRecord,
  ShimMetrics,
} from '../../src/translate/records.ts';

export const NOW = 1_700_000_000_000;

export function pod(name: string, containers: string[] = ['build'], overrides: Partial<PodRecord> = {}): PodRecord {
  return {
    uid: `uid-${name}`,
    namespace: 'ci',
    name,
    phase: 'Running',
    runtimeClassName: 'kata-qemu',
    runtimeHandler: 'kata-qemu',
    containers: containers.map((c) => ({ name: c, init: false, privileged: false, cpuLimitCores: 2, memoryLimitBytes: 2 ** 31 })),
    containerStatuses: containers.map((c) => ({ name: c, restartCount: 0, state: 'running' as const, startedAt: 1_699_999_000 })),
    ...overrides,
  };
}

export function kubelet(containers: KubeletContainerStats[] = []): KubeletStats {
  return {
    node: {},
    pods: new Map(),
    containers: new Map(containers.map((c) => [`${c.namespace}/${c.pod}/${c.container}`, c])),
    kubeletScrapeError: false,
    rejected: { zero_time: 0, implausible_value: 0, duplicate: 0 },
  };
}

export function kstat(
  p: PodRecord,
  container: string,
  cpuSeconds: number,
  memoryWorkingSetBytes: number,
  cpuTimestampMs = NOW - 5000,
): KubeletContainerStats {
  return {
    namespace: p.namespace,
    pod: p.name,
    container,
    cpuSeconds,
    cpuTimestampMs,
    memoryWorkingSetBytes,
    memoryTimestampMs: cpuTimestampMs,
  };
}

export function guest(busySeconds: number, overrides: Partial<GuestStats> = {}): GuestStats {
  return {
    cpu: { user: busySeconds, nice: 0, system: 0, idle: 1000, iowait: 3, irq: 0, softirq: 0, steal: 7, guest: 0, guestNice: 0 },
    memTotalBytes: 4 * 2 ** 30,
    memAvailableBytes: 3 * 2 ** 30,
    tasks: 120,
    networkReceiveBytes: 1000,
    networkTransmitBytes: 2000,
    diskReadBytes: 4096,
    diskWrittenBytes: 8192,
    ...overrides,
  };
}

export function shimOk(g: GuestStats): ShimOutcome {
  const metrics: ShimMetrics = { shim: {}, hypervisor: {}, guest: g, rejectedSamples: 0 };
  return { state: 'ok', metrics };
}

export function sandboxFor(
  p: PodRecord | undefined,
  id: string,
  shim: ShimOutcome | undefined,
  extra: Partial<SandboxObservation> = {},
  record: Partial<SandboxRecord> = {},
): SandboxObservation {
  return {
    sandbox: {
      id,
      runtime: 'go',
      dir: `/run/vc/sbs/${id}`,
      socketPath: `/run/vc/sbs/${id}/shim-monitor.sock`,
      hypervisor: 'qemu',
      hypervisorSource: 'state',
      sandboxCgroupOnly: false,
      annotations: {},
      ...record,
    },
    pod: p === undefined ? undefined : { sandboxId: id, uid: p.uid, namespace: p.namespace, name: p.name, source: 'containerd' },
    shim,
    ...extra,
  };
}

export function cgroup(cpuSeconds: number, memoryWorkingSetBytes: number): CgroupUsage {
  return { path: '/kubepods/pod', version: 1, cpuSeconds, memoryWorkingSetBytes };
}

export function input(overrides: Partial<CorrelationInput>): CorrelationInput {
  return {
    nowMs: NOW,
    runtimeHandlers: /^kata/,
    kubeletStaleAfterMs: 120_000,
    pods: [],
    podCgroups: new Map(),
    kubelet: kubelet(),
    sandboxes: [],
    ...overrides,
  };
}
