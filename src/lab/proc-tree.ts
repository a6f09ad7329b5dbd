/**
 * The host processes of simulated Kata sandboxes in the lab's procfs (what --path.procfs points
 * at): each VM's shim, VMM and virtiofsd with the `comm` and `cmdline` the real binaries show, and
 * `net/dev` of the network namespace each runs in. The VMM runs in the pod's namespace (CNI `eth0`,
 * Kata's `tap0_kata`, `lo`); the shim and virtiofsd stay in the host's, whose counters are the whole
 * node's: a reader that picks the wrong process counts the node's traffic for one pod.
 */

import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Hypervisor, KataRuntime } from '../translate/records.ts';

export interface LabNetdevCounters {
  receiveBytes: number;
  transmitBytes: number;
}

export interface LabProcess {
  pid: number;
  comm: string;
  cmdline: string[];
  /** Thread names (`task/<tid>/comm`), e.g. Dragonball's vCPUs inside the shim. */
  threads?: string[];
}

/** The processes of one sandbox on the host; for Dragonball the VMM is the shim itself. */
export interface LabSandboxProcesses {
  shim: LabProcess;
  vmm: LabProcess;
  virtiofsd?: LabProcess;
}

const SHIM_BIN: Record<KataRuntime, string> = {
  go: '/opt/kata/bin/containerd-shim-kata-v2',
  rs: '/opt/kata/runtime-rs/bin/containerd-shim-kata-v2',
};

/** What `ps` shows for each VMM: comm is cut to 15 characters by the kernel. */
function vmmIdentity(hypervisor: Exclude<Hypervisor, 'unknown' | 'dragonball'>, runtime: KataRuntime, id: string): Omit<LabProcess, 'pid'> {
  const vmDir = runtime === 'go' ? `/run/vc/vm/${id}` : `/run/kata/${id}`;
  switch (hypervisor) {
    case 'qemu':
      return {
        comm: 'qemu-system-x86',
        cmdline: [
          '/opt/kata/bin/qemu-system-x86_64',
          '-name',
          `sandbox-${id}`,
          '-uuid',
          id.slice(0, 36),
          '-machine',
          'q35,accel=kvm',
          '-m',
          '2048M,slots=10,maxmem=16G',
        ],
      };
    case 'cloud-hypervisor':
      return {
        comm: 'cloud-hyperviso',
        cmdline: ['/opt/kata/bin/cloud-hypervisor', '--api-socket', `${vmDir}/${runtime === 'go' ? 'clh-api.sock' : 'ch-api.sock'}`],
      };
    case 'firecracker':
      return {
        comm: 'firecracker',
        cmdline: [
          '/opt/kata/bin/firecracker',
          '--api-sock',
          `/run/vc/firecracker/${id.slice(0, 32)}/root/run/firecracker.socket`,
          '--config-file',
          `/run/vc/firecracker/${id.slice(0, 32)}/root/fcConfig.json`,
        ],
      };
  }
}

/** The shim, VMM and (with virtio-fs) virtiofsd of a sandbox, at pids base, base + 1, base + 2. */
export function sandboxProcesses(
  hypervisor: Exclude<Hypervisor, 'unknown'>,
  runtime: KataRuntime,
  id: string,
  basePid: number,
): LabSandboxProcesses {
  const shim: LabProcess = {
    pid: basePid,
    comm: 'containerd-shim',
    cmdline: [
      SHIM_BIN[runtime],
      '-namespace',
      'k8s.io',
      '-address',
      '/run/containerd/containerd.sock',
      '-publish-binary',
      '/usr/bin/containerd',
      '-id',
      id,
    ],
  };
  if (hypervisor === 'dragonball') return { shim: { ...shim, threads: ['containerd-shim', 'db_vcpu0', 'db_vcpu1'] }, vmm: shim };
  const vmm: LabProcess = { pid: basePid + 1, ...vmmIdentity(hypervisor, runtime, id) };
  if (hypervisor === 'firecracker') return { shim, vmm };
  const virtiofsd: LabProcess = {
    pid: basePid + 2,
    comm: 'virtiofsd',
    cmdline: [
      '/opt/kata/libexec/virtiofsd',
      `--socket-path=/run/vc/vm/${id}/vhost-fs.sock`,
      '--shared-dir',
      `/run/kata-containers/shared/sandboxes/${id}/shared`,
    ],
  };
  return { shim, vmm, virtiofsd };
}

/**
 * /proc/<pid>/net/dev as the kernel prints it (net/core/net-procfs.c): two header lines, then one
 * line per interface with 8 receive and 8 transmit columns.
 */
export function renderNetDev(interfaces: Record<string, LabNetdevCounters>): string {
  const header = [
    'Inter-|   Receive                                                |  Transmit',
    ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
  ];
  const rows = Object.entries(interfaces).map(([name, c]) => {
    const rx = Math.round(c.receiveBytes);
    const tx = Math.round(c.transmitBytes);
    const cols = [rx, Math.round(rx / 900), 0, 0, 0, 0, 0, 0, tx, Math.round(tx / 700), 0, 0, 0, 0, 0, 0];
    return `${name.padStart(6)}: ${cols.map((v, i) => String(v).padStart(i === 0 || i === 8 ? 8 : 7)).join(' ')}`;
  });
  return `${[...header, ...rows].join('\n')}\n`;
}

/**
 * The pod's namespace as the host kernel counts it: the CNI interface with the pod's traffic,
 * Kata's tap with the same traffic in the other direction (what the VM writes into the tap, the
 * host receives on it), and a little loopback.
 */
export function podNetDev(pod: LabNetdevCounters, loopbackBytes: number): string {
  return renderNetDev({
    lo: { receiveBytes: loopbackBytes, transmitBytes: loopbackBytes },
    eth0: pod,
    tap0_kata: { receiveBytes: pod.transmitBytes, transmitBytes: pod.receiveBytes },
  });
}

/** The host's own namespace, seen by processes that stay in it (shims, virtiofsd): the whole node. */
export function hostNetDev(seconds: number): string {
  return renderNetDev({
    lo: { receiveBytes: 9_000_000 + 4_000 * seconds, transmitBytes: 9_000_000 + 4_000 * seconds },
    ens5: { receiveBytes: 81_000_000_000 + 120_000_000 * seconds, transmitBytes: 23_000_000_000 + 40_000_000 * seconds },
    cni0: { receiveBytes: 4_000_000_000 + 2_000_000 * seconds, transmitBytes: 6_000_000_000 + 3_000_000 * seconds },
  });
}

async function writeAtomic(path: string, content: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, content);
  await rename(tmp, path);
}

/** Writes `<procDir>/<pid>/{comm,cmdline}` and the thread names (what discovery reads). */
export async function writeProcess(procDir: string, p: LabProcess): Promise<void> {
  const dir = join(procDir, String(p.pid));
  await mkdir(join(dir, 'net'), { recursive: true });
  await writeFile(join(dir, 'comm'), `${p.comm}\n`);
  await writeFile(join(dir, 'cmdline'), `${p.cmdline.join('\0')}\0`);
  for (const [i, name] of (p.threads ?? []).entries()) {
    const tid = join(dir, 'task', String(p.pid + i * 1000));
    await mkdir(tid, { recursive: true });
    await writeFile(join(tid, 'comm'), `${name}\n`);
  }
}

/** Rewrites a process's net/dev (its namespace's counters move). */
export async function writeNetDev(procDir: string, pid: number, text: string): Promise<void> {
  await writeAtomic(join(procDir, String(pid), 'net', 'dev'), text);
}

export async function removeProcess(procDir: string, pid: number): Promise<void> {
  await rm(join(procDir, String(pid)), { recursive: true, force: true });
}
