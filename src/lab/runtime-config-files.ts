/**
 * The simulated node's container runtime and Kata configuration, written into the lab tree where
 * the exporter's --path.containerd-config / --path.kata-config point: containerd 2.x's main file,
 * the drop-in kata-deploy adds to it, and the Kata configuration of each handler. No CRI-O
 * configuration (a containerd node), and no /etc/kata-containers/configuration.toml (every handler
 * names its own). Each file says where its shape comes from.
 */

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** The lab's RuntimeClass handlers (pod-builders.ts) and the Kata configuration each runs with. */
const HANDLERS = [
  { handler: 'kata-qemu', section: 'qemu', file: 'configuration-qemu.toml', rust: false, vmm: '/opt/kata/bin/qemu-system-x86_64' },
  { handler: 'kata-clh', section: 'clh', file: 'configuration-clh.toml', rust: false, vmm: '/opt/kata/bin/cloud-hypervisor' },
  { handler: 'kata-fc', section: 'firecracker', file: 'configuration-fc.toml', rust: false, vmm: '/opt/kata/bin/firecracker' },
  { handler: 'kata-dragonball', section: 'dragonball', file: 'configuration-dragonball.toml', rust: true, vmm: '' },
  // Kata 4.0's default: runtime-rs with QEMU.
  {
    handler: 'kata-qemu-runtime-rs',
    section: 'qemu',
    file: 'configuration-qemu-runtime-rs.toml',
    rust: true,
    vmm: '/opt/kata/bin/qemu-system-x86_64',
  },
] as const;

/** The handler whose section leaves out privileged_without_host_devices = true. */
export const HOST_DEVICES_HANDLER = 'kata-qemu';

/** Kata's build default (src/runtime/Makefile DEFENABLEANNOTATIONS), as kata-deploy ships it. */
export const KATA_ENABLE_ANNOTATIONS = ['enable_iommu', 'virtio_fs_extra_args', 'kernel_params'];

const HYPERVISOR_ANNOTATION_PREFIX = 'io.katacontainers.config.hypervisor.';

/** Whether this node's Kata VMs apply a pod annotation: every handler passes io.katacontainers.*, hypervisor ones only when enabled. */
export function labAppliesKataAnnotation(key: string): boolean {
  if (!key.startsWith('io.katacontainers.')) return false;
  return !key.startsWith(HYPERVISOR_ANNOTATION_PREFIX) || KATA_ENABLE_ANNOTATIONS.includes(key.slice(HYPERVISOR_ANNOTATION_PREFIX.length));
}

export interface LabRuntimeConfig {
  containerdConfig: string;
  containerdDropIn: string;
  /** Absent on this node: the exporter must pick containerd's. */
  crioConfig: string;
  /** Absent on this node: every handler names its own configuration. */
  kataDefaultConfig: string;
  /** The Kata configuration file of each handler. */
  kataConfigs: Record<string, string>;
}

const list = (items: readonly string[]) => `[${items.map((i) => `"${i}"`).join(', ')}]`;

function containerdMain(dropIn: string): string {
  return `# containerd 2.x main configuration (config version 3), trimmed from \`containerd config default\`.
# kata-deploy appended its drop-in to imports (tomlq '.imports |= . + ["…/kata-deploy.toml"]').
version = 3
root = "/var/lib/containerd"
state = "/run/containerd"
imports = ["${dropIn}"]

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins]
  [plugins."io.containerd.cri.v1.images"]
    snapshotter = "overlayfs"

  [plugins."io.containerd.cri.v1.runtime"]
    enable_selinux = false
    max_container_log_line_size = 16384

    [plugins."io.containerd.cri.v1.runtime".containerd]
      default_runtime_name = "runc"

      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
          SystemdCgroup = true
`;
}

function containerdDropIn(kataConfigs: Record<string, string>): string {
  const sections = HANDLERS.map(({ handler, rust }) => {
    const table = `plugins."io.containerd.cri.v1.runtime".containerd.runtimes."${handler}"`;
    return `[${table}]
runtime_type = "io.containerd.${handler}.v2"
runtime_path = "/opt/kata${rust ? '/runtime-rs' : ''}/bin/containerd-shim-kata-v2"
${handler === HOST_DEVICES_HANDLER ? '' : 'privileged_without_host_devices = true\n'}pod_annotations = ["io.katacontainers.*"]

[${table}.options]
ConfigPath = "${kataConfigs[handler]}"
`;
  });
  return `# The drop-in kata-deploy writes for containerd 2.x (/opt/kata/containerd/config.d/kata-deploy.toml,
# configure_containerd_runtime in kata-deploy.sh): one table per handler with runtime_type,
# runtime_path, privileged_without_host_devices, pod_annotations and options.ConfigPath, and no
# \`version\` of its own. kata-deploy sets privileged_without_host_devices = true on every handler;
# here ${HOST_DEVICES_HANDLER} lacks it, as on a node whose handler was configured by hand, so privileged
# containers under it get the host's devices.

${sections.join('\n')}`;
}

function kataConfig(section: string, vmm: string, rust: boolean, file: string): string {
  const origin = `src/runtime${rust ? '-rs' : ''}/config/${file}.in`;
  return `# Trimmed from Kata Containers' ${origin} as kata-deploy installs it under
# /opt/kata/share/defaults/kata-containers/: the hypervisor section with Kata's default
# enable_annotations, then the agent and runtime sections.
[hypervisor.${section}]
${vmm === '' ? '' : `path = "${vmm}"\nvalid_hypervisor_paths = ["${vmm}"]\n`}kernel = "/opt/kata/share/kata-containers/vmlinux.container"
image = "/opt/kata/share/kata-containers/kata-containers.img"
kernel_params = ""
enable_annotations = ${list(KATA_ENABLE_ANNOTATIONS)}
default_vcpus = 1
default_maxvcpus = 0
default_memory = 2048
shared_fs = "${section === 'firecracker' ? 'none' : 'virtio-fs'}"

[agent.kata]
dial_timeout = 45

[runtime]
internetworking_model = "tcfilter"
sandbox_cgroup_only = ${rust}
static_sandbox_resource_mgmt = ${section === 'firecracker'}
`;
}

async function put(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
}

/** Writes the node's runtime configuration under `dir` and says where each file is. */
export async function writeRuntimeConfig(dir: string): Promise<LabRuntimeConfig> {
  const defaults = join(dir, 'opt/kata/share/defaults/kata-containers');
  const kataConfigs = Object.fromEntries(
    HANDLERS.map(({ handler, file, rust }) => [handler, join(defaults, rust ? 'runtime-rs' : '', file)]),
  );
  const config: LabRuntimeConfig = {
    containerdConfig: join(dir, 'etc/containerd/config.toml'),
    containerdDropIn: join(dir, 'opt/kata/containerd/config.d/kata-deploy.toml'),
    crioConfig: join(dir, 'etc/crio/crio.conf'),
    kataDefaultConfig: join(dir, 'etc/kata-containers/configuration.toml'),
    kataConfigs,
  };
  await put(config.containerdConfig, containerdMain(config.containerdDropIn));
  await put(config.containerdDropIn, containerdDropIn(kataConfigs));
  for (const { handler, section, vmm, rust, file } of HANDLERS) await put(kataConfigs[handler]!, kataConfig(section, vmm, rust, file));
  return config;
}
