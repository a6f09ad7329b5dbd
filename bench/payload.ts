/**
 * The benchmark's shim payload: the Go + QEMU fixture shape (test/fixtures/kata/go-qemu.prom,
 * rendered by the same lab renderer), grown to the ~144 KB reported per sandbox on large build
 * nodes with more vCPUs, disks, guest and VMM interfaces and RPC actions. Numbers vary per
 * sandbox so no two bodies are byte-identical.
 */
import {
  GUEST_CPU_ITEMS,
  renderShimPayload,
  type DiskValues,
  type GuestCpuItem,
  type NetdevValues,
  type ProcValues,
  type ShimPayloadValues,
} from '../src/lab/shim-payload.ts';

const MiB = 1024 * 1024;

const SHIM_ACTIONS = [
  'connect',
  'create',
  'start',
  'state',
  'stats',
  'wait',
  'exec',
  'kill',
  'delete',
  'pids',
  'update',
  'pause',
  'resume',
  'close_io',
  'resize_pty',
  'shutdown',
  'checkpoint',
  'cleanup',
];
const AGENT_ACTIONS = [
  'grpc.CheckRequest',
  'grpc.CreateContainerRequest',
  'grpc.CreateSandboxRequest',
  'grpc.GetMetricsRequest',
  'grpc.GuestDetailsRequest',
  'grpc.OnlineCPUMemRequest',
  'grpc.StartContainerRequest',
  'grpc.StatsContainerRequest',
  'grpc.UpdateInterfaceRequest',
  'grpc.UpdateRoutesRequest',
  'grpc.WaitProcessRequest',
  'grpc.ReadStreamRequest',
  'grpc.WriteStreamRequest',
  'grpc.SetGuestDateTimeRequest',
  'grpc.ExecProcessRequest',
  'grpc.SignalProcessRequest',
  'grpc.RemoveContainerRequest',
  'grpc.CopyFileRequest',
  'grpc.AddARPNeighborsRequest',
  'grpc.ListInterfacesRequest',
];

function cpus(count: number, seed: number): Record<GuestCpuItem, number>[] {
  return Array.from({ length: count }, (_, i) => {
    const row = {} as Record<GuestCpuItem, number>;
    for (const item of GUEST_CPU_ITEMS) row[item] = 0;
    row.user = 1_234_560 + seed * 10 + i * 10_010;
    row.system = 308_640 + i * 1_230;
    row.idle = 86_400_000 - i * 20_000 + seed * 10;
    row.iowait = 4_560 + i * 10;
    row.softirq = 2_340 + i * 20;
    row.nice = i % 2 === 0 ? 0 : 120;
    row.steal = 890 + i * 10;
    return row;
  });
}

function proc(rssMiB: number, seed: number, threads: number, fds: number | undefined): ProcValues {
  return {
    rssBytes: rssMiB * MiB,
    vsizeBytes: rssMiB * 4 * MiB,
    utimeTicks: 3_050 + seed,
    stimeTicks: 1_720 + seed,
    threads,
    ...(fds !== undefined ? { fds } : {}),
    readBytes: 98_304 + seed * 4096,
    writeBytes: 20_480 + seed * 512,
  };
}

function calls(actions: string[], seed: number): Record<string, { count: number; sumMs: number }> {
  return Object.fromEntries(actions.map((a, i) => [a, { count: 4 + seed + i * 3, sumMs: (4 + seed + i * 3) * (1.5 + (i % 7)) }]));
}

/** A large build VM: 16 vCPUs, 8 NICs, 8 disks with partitions, 3.32-era per-mount filesystem stats. */
const VCPUS = 16;
const MOUNTS = 14;

export function benchShimValues(index: number): ShimPayloadValues {
  const filesystems = Array.from({ length: MOUNTS }, (_, i) => {
    const id = (((index * 7919 + i) * 2654435761) >>> 0).toString(16).padStart(8, '0').repeat(8);
    const total = 64 * 2 ** 30;
    return {
      mount: `/run/kata-containers/shared/containers/${id}/rootfs`,
      device: `virtiofs-${i}`,
      total,
      free: total / 2 - i * 4096,
      avail: total / 2 - i * 8192,
    };
  });
  const netdev: Record<string, NetdevValues> = { lo: { recvBytes: 48_213, sentBytes: 48_213 } };
  for (let i = 0; i < 8; i++) netdev[`eth${i}`] = { recvBytes: 734_003_200 + index * 977 + i, sentBytes: 52_428_800 + index * 131 + i };
  const hypervisorNetdev: Record<string, NetdevValues> = { lo: { recvBytes: 0, sentBytes: 0 } };
  for (let i = 0; i < 8; i++) {
    hypervisorNetdev[`eth${i}`] = { recvBytes: 735_100_000 + index + i, sentBytes: 53_000_000 + index };
    hypervisorNetdev[`tap${i}_kata`] = { recvBytes: 53_000_000 + index, sentBytes: 735_100_000 + index + i };
  }
  const disks: Record<string, DiskValues> = {};
  for (const name of ['vda', 'vdb', 'vdc', 'vdd', 'vde', 'vdf', 'pmem0', 'pmem1']) {
    disks[name] = {
      reads: 5_120 + index,
      sectorsRead: 2_048_000 + index * 8,
      writes: 2_560 + index,
      sectorsWritten: 1_024_000 + index * 8,
    };
    disks[`${name}${name.startsWith('pmem') ? 'p' : ''}1`] = {
      reads: 5_000,
      sectorsRead: 2_000_000,
      writes: 2_500,
      sectorsWritten: 1_000_000,
    };
  }
  disks.loop0 = { reads: 40, sectorsRead: 3_000, writes: 0, sectorsWritten: 0 };
  return {
    runtime: 'go',
    hypervisor: 'qemu',
    guestCpuMs: cpus(VCPUS, index),
    meminfo: { mem_total: 17_179_869_184, mem_free: 9_871_017_472 + index * 4096, mem_available: 12_506_438_144 + index * 4096 },
    load: { load1: 1.42, load5: 0.87, load15: 0.51 },
    tasks: { cur: 187 + (index % 50), max: 4_194_304 },
    netdev,
    disks,
    shim: proc(50, index, 22, 41),
    hypervisorProc: proc(2_210, index * 7, 15, 88),
    hypervisorNetdev,
    virtiofsd: proc(24, index * 3, 9, 64),
    agent: proc(9, index, 14, undefined),
    overhead: { cpu: 3.2, memoryBytes: 180_355_072 },
    shimRpc: calls(SHIM_ACTIONS, index),
    agentRpc: calls(AGENT_ACTIONS, index),
    agentScrapeCount: 742 + index,
    filesystems,
  };
}

export function benchShimPayload(index: number): string {
  return renderShimPayload(benchShimValues(index));
}
