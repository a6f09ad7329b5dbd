/**
 * Abusive builds for the node lab, one per abuse class the alert rules catch (docs/runbooks.md),
 * each visible from host data alone: a miner, runaway memory killed by the host's OOM killer, a
 * network flood, a disk flood, a fork bomb, and a lying guest that does all of it on the host side
 * while its shim reports an idle VM. And the Kata 4 default node, where every sandbox is runtime-rs
 * with QEMU, whose shims must never be asked for metrics.
 */

import { QEMU_RUNTIME_RS, type LabContainer, type LabPodScenario, type LabScenario } from './node-lab.ts';

const MIB = 2 ** 20;

/** A build container with a 2-core, 2 GiB limit running at `cores`, holding `memoryBytes`. */
function build(cores: number, memoryBytes: number): LabContainer {
  return { name: 'build', cpuCores: cores, memoryBytes, limits: { cpu: '2', memory: '2Gi' }, requests: { cpu: '1', memory: '1Gi' } };
}

/** Rates well past the flood thresholds (deploy/prometheus/thresholds.ts: 50 MB/s out, 100 MB/s written). */
export const FLOOD = { networkTransmitBytesPerSecond: 120_000_000, diskWriteBytesPerSecond: 250_000_000 } as const;

/** The host OOM-kills one of the VM's processes this often (seconds). */
export const HOST_OOM_EVERY_SECONDS = 5;

export type AbuseClass = 'mining' | 'memory' | 'network' | 'disk' | 'fork-bomb';

/** One pod per abuse class, honest guests: each shows its abuse in the host's data and the guest's. */
export function abusivePods(namespace: string): Record<AbuseClass, LabPodScenario> {
  return {
    mining: { name: 'miner', namespace, flatCpu: true, containers: [build(2, 400 * MIB)] },
    // 1950 MiB in a 2 GiB + 320 MiB pod: above 90 % of the limit on the host, the VMM's memory included.
    memory: {
      name: 'leaky',
      namespace,
      containers: [build(0.6, 1950 * MIB)],
      hostOomKillEverySeconds: HOST_OOM_EVERY_SECONDS,
      guestOomKillEverySeconds: HOST_OOM_EVERY_SECONDS,
    },
    network: {
      name: 'exfil',
      namespace,
      containers: [build(0.5, 500 * MIB)],
      networkTransmitBytesPerSecond: FLOOD.networkTransmitBytesPerSecond,
    },
    disk: { name: 'filler', namespace, containers: [build(0.5, 500 * MIB)], diskWriteBytesPerSecond: FLOOD.diskWriteBytesPerSecond },
    'fork-bomb': {
      name: 'forker',
      namespace,
      flatCpu: true,
      containers: [build(2, 600 * MIB)],
      guestTasks: 30_000,
      memoryGrowthBytesPerSecond: 4 * MIB,
    },
  };
}

/**
 * A build that controls its guest: it burns its whole CPU limit, floods the network and writes to
 * disk at flood rates, and leaks memory between 91 % and 98 % of its pod limit, where the host's
 * OOM killer takes a process of its VM, while the shim (and the kubelet's per-container values,
 * which the guest relays) report an idle VM.
 */
export function lyingGuestPod(name: string, namespace: string): LabPodScenario {
  return {
    name,
    namespace,
    guestReports: 'idle',
    flatCpu: true,
    containers: [build(2, 1930 * MIB)],
    networkTransmitBytesPerSecond: FLOOD.networkTransmitBytesPerSecond,
    diskWriteBytesPerSecond: FLOOD.diskWriteBytesPerSecond,
    memoryGrowthBytesPerSecond: 2 * MIB,
    hostOomKillEverySeconds: HOST_OOM_EVERY_SECONDS,
  };
}

/** A calm build: below every threshold, to show the alerts pick the abusive pods only. */
export function calmPod(name: string, namespace: string): LabPodScenario {
  return { name, namespace, containers: [build(0.7, 600 * MIB)] };
}

/**
 * The Kata 4 default node (kata-deploy 4.0: runtime-rs with QEMU on every sandbox, cgroup v2 with
 * the systemd driver): the abusive builds, a lying guest and a calm build. No shim may be asked
 * for /metrics (Kata issue 13708), so everything the alerts see comes from the host.
 */
export function kata4DefaultScenario(namespace = 'ci'): LabScenario {
  const pods = [...Object.values(abusivePods(namespace)), lyingGuestPod('liar', namespace), calmPod('calm', namespace)];
  return {
    nodeName: 'kata4-node',
    cgroupVersion: 2,
    cgroupDriver: 'systemd',
    pods: pods.map((p) => ({ ...p, ...QEMU_RUNTIME_RS })),
  };
}
