/**
 * A pod's VM on real kernel cgroups, for the node lab in tests that run as root (the scenario's
 * `realCgroups: RealPodCgroups.create`; test support, never in the image): the sandbox cgroup
 * inside the pod cgroup and, with sandbox_cgroup_only=false, the overhead cgroup at the root, each
 * with a real process that burns CPU and holds memory. The exporter then reads numbers the kernel
 * itself accounted.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { RealVmCgroups, RealVmSpec } from '../../src/lab/node-lab.ts';
import { overheadCgroupPaths, podCgroupPath, sandboxChildNames } from '../../src/translate/cgroup-paths.ts';
import { RealCgroup } from './real-cgroups.ts';

/**
 * Busy for `cores` of each 20 ms slice, idle the rest; touches `bytes` of memory so it is resident.
 * It starts only once told to on stdin: memory is charged to the cgroup where it is first touched,
 * so the process must be inside its cgroup first.
 */
const BURNER = `
const cores = Math.min(1, Math.max(0, Number(process.argv[1])));
const slice = 20;
process.stdin.once('data', () => {
  const held = Buffer.alloc(Number(process.argv[2]), 1);
  (function loop() {
    const end = Date.now() + slice * cores;
    while (Date.now() < end) held[0] ^= 1;
    setTimeout(loop, slice * (1 - cores));
  })();
});
`;

/** The v1 cpuacct and memory mounts (the kubelet's hierarchy on a hybrid host), or the v2 root. */
export async function realHierarchies(root = '/sys/fs/cgroup'): Promise<string[]> {
  const exists = async (path: string) =>
    access(path).then(
      () => true,
      () => false,
    );
  for (const cpu of ['cpuacct', 'cpu,cpuacct']) {
    if ((await exists(join(root, cpu, 'cpuacct.usage'))) && (await exists(join(root, 'memory', 'memory.usage_in_bytes')))) {
      return [join(root, cpu), join(root, 'memory')];
    }
  }
  if (await exists(join(root, 'cgroup.controllers'))) return [root];
  throw new Error(`${root} has neither writable v1 cpuacct+memory mounts nor a v2 hierarchy: real cgroups need root on a Linux host`);
}

function startBurner(cores: number, bytes: number): ChildProcess {
  const child = spawn(process.execPath, ['-e', BURNER, String(cores), String(bytes)], { stdio: ['pipe', 'ignore', 'ignore'] });
  child.unref();
  return child;
}

async function attachAndStart(cgroup: RealCgroup, child: ChildProcess): Promise<void> {
  await cgroup.attach(child.pid!);
  child.stdin?.write('start\n');
}

export class RealPodCgroups implements RealVmCgroups {
  private constructor(
    private readonly cgroups: RealCgroup[],
    private readonly burners: ChildProcess[],
    readonly podPath: string,
    readonly sandboxPath: string,
    readonly overheadPath: string | undefined,
  ) {}

  static async create(options: RealVmSpec): Promise<RealPodCgroups> {
    const hierarchies = await realHierarchies();
    const podPath = podCgroupPath('cgroupfs', options.qos, options.uid);
    const [goName, rsName] = sandboxChildNames('cgroupfs', options.sandboxId);
    const sandboxPath = `${podPath}/${options.runtime === 'rs' ? rsName : goName}`;
    const overheadPath = options.sandboxCgroupOnly ? undefined : overheadCgroupPaths(options.sandboxId)[0];
    const cgroups: RealCgroup[] = [];
    const burners: ChildProcess[] = [];
    const pod = new RealPodCgroups(cgroups, burners, podPath, sandboxPath, overheadPath);
    try {
      const sandbox = await RealCgroup.create(hierarchies, sandboxPath);
      cgroups.push(sandbox);
      const vcpu = startBurner(options.workloadCores, options.workloadBytes);
      burners.push(vcpu);
      await attachAndStart(sandbox, vcpu);
      const vmmCgroup = overheadPath === undefined ? sandbox : await RealCgroup.create(hierarchies, overheadPath);
      if (vmmCgroup !== sandbox) cgroups.push(vmmCgroup);
      const vmm = startBurner(options.vmmCores, options.vmmBytes);
      burners.push(vmm);
      await attachAndStart(vmmCgroup, vmm);
    } catch (error) {
      await pod.destroy();
      throw error;
    }
    return pod;
  }

  /** Stops the processes and removes the cgroups created here (never anyone else's). */
  async destroy(): Promise<void> {
    await Promise.all(
      this.burners.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    for (const cgroup of this.cgroups.reverse()) await cgroup.destroy();
  }
}
