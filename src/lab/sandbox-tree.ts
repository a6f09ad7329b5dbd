/**
 * Writes the on-disk side of simulated Kata sandboxes: the sandbox directory with the runtime's
 * state file (Go `persist.json`, runtime-rs `state.json`) and containerd's bundle `config.json`,
 * in the shapes test/fixtures/sandboxes/README.md traces to their sources. Pure data + file writes.
 */

import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Hypervisor, KataRuntime } from '../translate/records.ts';

export interface LabSandboxPod {
  uid: string;
  name: string;
  namespace: string;
}

/** How the exporter can learn the sandbox's pod: containerd's bundle, Kata's own state, or not at all. */
export type LabMapping = 'containerd' | 'kata-state' | 'none';

export interface LabSandboxSpec {
  id: string;
  runtime: KataRuntime;
  hypervisor: Exclude<Hypervisor, 'unknown'>;
  sandboxCgroupOnly: boolean;
  pod: LabSandboxPod;
  mapping: LabMapping;
  sandboxCgroupPath: string;
  overheadCgroupPath?: string;
}

export interface LabSandboxDirs {
  kataGoDir: string;
  kataRsDir: string;
  containerdTasksDir: string;
}

const GO_TYPE: Record<LabSandboxSpec['hypervisor'], string> = {
  qemu: 'qemu',
  'cloud-hypervisor': 'clh',
  firecracker: 'firecracker',
  dragonball: 'dragonball',
};

function criAnnotations(spec: LabSandboxSpec): Record<string, string> {
  const { pod } = spec;
  return {
    'io.kubernetes.cri.container-type': 'sandbox',
    'io.kubernetes.cri.sandbox-id': spec.id,
    'io.kubernetes.cri.sandbox-log-directory': `/var/log/pods/${pod.namespace}_${pod.name}_${pod.uid}`,
    'io.kubernetes.cri.sandbox-name': pod.name,
    'io.kubernetes.cri.sandbox-namespace': pod.namespace,
    'io.kubernetes.cri.sandbox-uid': pod.uid,
  };
}

/** Every lab VM's configured memory (Kata's default_memory), as both runtimes persist it. */
export const LAB_VM_MEMORY_MIB = 2048;

/** Go runtime persist.json (virtcontainers/persist/api): Go field names, no JSON tags. */
export function goPersistJson(spec: LabSandboxSpec): string {
  const annotations = spec.mapping === 'kata-state' ? criAnnotations(spec) : {};
  return JSON.stringify({
    State: 'running',
    SandboxContainer: spec.id,
    SandboxCgroupPath: spec.sandboxCgroupPath,
    OverheadCgroupPath: spec.overheadCgroupPath ?? '',
    HypervisorState: { Type: GO_TYPE[spec.hypervisor], Pid: 0 },
    Config: {
      HypervisorType: GO_TYPE[spec.hypervisor],
      HypervisorConfig: { MemorySize: LAB_VM_MEMORY_MIB },
      SandboxCgroupOnly: spec.sandboxCgroupOnly,
      SystemdCgroup: false,
      ContainerConfigs: [{ ID: spec.id, Annotations: annotations }],
    },
    PersistVersion: 2,
  });
}

/** runtime-rs state.json (crates/runtimes/virt_container/src/sandbox_persist.rs). */
export function rsStateJson(spec: LabSandboxSpec): string {
  return JSON.stringify(
    {
      sandbox_type: 'VIRTCONTAINER',
      resource: {
        cgroup_state: {
          path: spec.sandboxCgroupPath,
          overhead_path: spec.overheadCgroupPath ?? null,
          sandbox_cgroup_only: spec.sandboxCgroupOnly,
        },
      },
      hypervisor: {
        hypervisor_type: spec.hypervisor,
        pid: null,
        id: spec.id,
        config: { memory_info: { default_memory: LAB_VM_MEMORY_MIB } },
      },
    },
    null,
    2,
  );
}

/** containerd's OCI bundle of the pause container, with the CRI annotations (containerd ≥ 1.7). */
export function containerdBundleJson(spec: LabSandboxSpec): string {
  return JSON.stringify({
    ociVersion: '1.1.0',
    process: { args: ['/pause'], cwd: '/' },
    root: { path: 'rootfs', readonly: true },
    annotations: criAnnotations(spec),
    linux: { cgroupsPath: spec.sandboxCgroupPath },
  });
}

export function sandboxDir(dirs: LabSandboxDirs, spec: Pick<LabSandboxSpec, 'id' | 'runtime'>): string {
  return join(spec.runtime === 'go' ? dirs.kataGoDir : dirs.kataRsDir, spec.id);
}

/** Writes a sandbox's directory, state file and (when mapped through containerd) its bundle. */
export async function writeSandbox(dirs: LabSandboxDirs, spec: LabSandboxSpec): Promise<string> {
  const dir = sandboxDir(dirs, spec);
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, spec.runtime === 'go' ? 'persist.json' : 'state.json'),
    spec.runtime === 'go' ? goPersistJson(spec) : rsStateJson(spec),
  );
  if (spec.mapping === 'containerd') {
    const bundle = join(dirs.containerdTasksDir, 'k8s.io', spec.id);
    await mkdir(bundle, { recursive: true });
    await writeFile(join(bundle, 'config.json'), containerdBundleJson(spec));
  }
  return dir;
}

export async function removeSandbox(dirs: LabSandboxDirs, spec: Pick<LabSandboxSpec, 'id' | 'runtime'>): Promise<void> {
  await rm(sandboxDir(dirs, spec), { recursive: true, force: true });
  await rm(join(dirs.containerdTasksDir, 'k8s.io', spec.id), { recursive: true, force: true });
}
