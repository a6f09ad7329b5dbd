/**
 * Finding a sandbox's VMM in its cgroups and reading the pod's network counters from its
 * net/dev, on a small tree written here: a cgroup hierarchy (cgroup.procs files) and a procfs
 * (comm, net/dev) of the shapes the kernel prints (proc(5), cgroup-v2.rst "cgroup.procs").
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, test } from 'vitest';

import { VmmNetworkReader } from '../../src/scrapers/vmm-netdev.ts';
import { isVmmComm, parseCgroupProcs } from '../../src/translate/vmm.ts';

const HEADER = [
  'Inter-|   Receive                                                |  Transmit',
  ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
];

/** A net/dev of `[name, rxBytes, txBytes]` rows. */
function netDev(rows: [string, number, number][]): string {
  return [...HEADER, ...rows.map(([name, rx, tx]) => `${name.padStart(6)}: ${rx} 1 0 0 0 0 0 0 ${tx} 1 0 0 0 0 0 0`), ''].join('\n');
}

const POD_NETDEV = netDev([
  ['lo', 50, 50],
  ['eth0', 9000, 3000],
  ['tap0_kata', 3000, 9000],
]);
const HOST_NETDEV = netDev([
  ['lo', 1, 1],
  ['eth0', 123456789, 98765432],
  ['cni0', 5, 5],
]);

/** Runs collections until the read is ok, at most the retry period of a failed search. */
function collectUntilFound(
  reader: VmmNetworkReader,
  read: () => ReturnType<VmmNetworkReader['read']>,
): ReturnType<VmmNetworkReader['read']> {
  let answer = read();
  for (let i = 0; i < 4 && answer.state !== 'ok'; i++) {
    reader.beginCollection();
    answer = read();
  }
  return answer;
}

let dir: string;
let cg: string;
let proc: string;

async function processAt(pid: number, comm: string, netdev?: string): Promise<void> {
  await mkdir(join(proc, String(pid), 'net'), { recursive: true });
  await writeFile(join(proc, String(pid), 'comm'), `${comm}\n`);
  if (netdev !== undefined) await writeFile(join(proc, String(pid), 'net', 'dev'), netdev);
}

async function cgroupWith(rel: string, pids: number[]): Promise<string> {
  const path = join(cg, rel);
  await mkdir(path, { recursive: true });
  await writeFile(join(path, 'cgroup.procs'), pids.map((p) => `${p}\n`).join(''));
  return path;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kmb-vmm-'));
  cg = join(dir, 'cgroup');
  proc = join(dir, 'proc');
  await processAt(1, 'systemd', HOST_NETDEV);
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('VMM comm', () => {
  test("the hypervisor's comm, truncated by the kernel; Dragonball is the shim itself", () => {
    expect(isVmmComm('qemu-system-x86\n', 'qemu')).toBe(true);
    expect(isVmmComm('cloud-hyperviso', 'cloud-hypervisor')).toBe(true);
    expect(isVmmComm('firecracker', 'firecracker')).toBe(true);
    expect(isVmmComm('containerd-shim', 'dragonball')).toBe(true);
    // Another hypervisor's process, or the shim of a QEMU sandbox, is not its VMM.
    expect(isVmmComm('firecracker', 'qemu')).toBe(false);
    expect(isVmmComm('containerd-shim', 'qemu')).toBe(false);
    expect(isVmmComm('virtiofsd', 'unknown')).toBe(false);
    expect(isVmmComm('qemu-system-aar', 'unknown')).toBe(true);
  });

  test('cgroup.procs: one pid a line, bounded', () => {
    expect(parseCgroupProcs('12\n7\nx\n0\n', 10)).toEqual([12, 7]);
    expect(parseCgroupProcs('1\n2\n3\n', 2)).toEqual([1, 2]);
  });
});

describe('VmmNetworkReader', () => {
  test('finds the VMM below the pod cgroup and counts the pod interfaces only', async () => {
    const pod = await cgroupWith('kubepods/podU', []);
    await cgroupWith('kubepods/podU/kata_S', [200, 201, 202]);
    await processAt(200, 'containerd-shim', HOST_NETDEV);
    await processAt(201, 'virtiofsd', POD_NETDEV);
    await processAt(202, 'qemu-system-x86', POD_NETDEV);
    const reader = new VmmNetworkReader(proc);
    reader.beginCollection();
    expect(reader.read('S', [pod], 'qemu')).toEqual({ state: 'ok', receiveBytes: 9000, transmitBytes: 3000 });
  });

  test('the overhead cgroup is searched too (sandbox_cgroup_only=false)', async () => {
    const pod = await cgroupWith('kubepods/podU', []);
    const overhead = await cgroupWith('kata_overhead/S', [300]);
    await processAt(300, 'cloud-hyperviso', POD_NETDEV);
    const reader = new VmmNetworkReader(proc);
    reader.beginCollection();
    expect(reader.read('S', [overhead, pod], 'cloud-hypervisor')).toMatchObject({ state: 'ok', receiveBytes: 9000 });
  });

  test('no VMM process in the cgroups: not found, never a guess', async () => {
    const pod = await cgroupWith('kubepods/podU', [400]);
    await processAt(400, 'firecracker', POD_NETDEV);
    const reader = new VmmNetworkReader(proc);
    reader.beginCollection();
    expect(reader.read('S', [pod], 'qemu')).toEqual({ state: 'vmm_not_found' });
    // A VMM outside the sandbox's cgroups is not its VMM.
    await processAt(401, 'qemu-system-x86', POD_NETDEV);
    await cgroupWith('kubepods/podOther', [401]);
    expect(reader.read('S', [pod], 'qemu')).toEqual({ state: 'vmm_not_found' });
  });

  test("a pid that left the sandbox's cgroup (exited, pid reused) is dropped, and the new VMM found", async () => {
    const pod = await cgroupWith('kubepods/podU', [500]);
    await processAt(500, 'qemu-system-x86', POD_NETDEV);
    const reader = new VmmNetworkReader(proc);
    reader.beginCollection();
    expect(reader.read('S', [pod], 'qemu')).toMatchObject({ state: 'ok' });
    // pid 500 now belongs to some other process outside the cgroup, which has traffic of its own.
    await processAt(500, 'qemu-system-x86', netDev([['eth0', 1, 1]]));
    await writeFile(join(pod, 'cgroup.procs'), '');
    reader.beginCollection();
    expect(reader.read('S', [pod], 'qemu')).toEqual({ state: 'vmm_not_found' });
    await writeFile(join(pod, 'cgroup.procs'), '501\n');
    await processAt(501, 'qemu-system-x86', netDev([['eth0', 70, 80]]));
    expect(collectUntilFound(reader, () => reader.read('S', [pod], 'qemu'))).toEqual({ state: 'ok', receiveBytes: 70, transmitBytes: 80 });
  });

  test("a VMM in the host's network namespace is refused: its counters are the node's", async () => {
    const pod = await cgroupWith('kubepods/podU', [600]);
    await processAt(600, 'containerd-shim', HOST_NETDEV);
    const reader = new VmmNetworkReader(proc);
    reader.beginCollection();
    expect(reader.read('S', [pod], 'dragonball')).toEqual({ state: 'host_namespace' });
  });

  test("Kata's recorded pid is tried first: one comm read instead of one per process", async () => {
    const pids = Array.from({ length: 40 }, (_, i) => 700 + i);
    const pod = await cgroupWith('kubepods/podU', pids);
    for (const pid of pids) await processAt(pid, 'qemu-system-x86', netDev([['eth0', pid, pid]]));
    const reader = new VmmNetworkReader(proc);
    reader.beginCollection();
    // Every process qualifies; the recorded one wins over the first listed.
    expect(reader.read('S', [pod], 'qemu', 733)).toEqual({ state: 'ok', receiveBytes: 733, transmitBytes: 733 });
  });

  test('the walk is bounded: a cgroup tree deeper than the bound is not searched below it', async () => {
    const pod = await cgroupWith('kubepods/podU', []);
    await cgroupWith('kubepods/podU/a/b/c/d', [800]);
    await processAt(800, 'qemu-system-x86', POD_NETDEV);
    const reader = new VmmNetworkReader(proc);
    reader.beginCollection();
    expect(reader.read('S', [pod], 'qemu')).toEqual({ state: 'vmm_not_found' });
    await cgroupWith('kubepods/podU/a/b/c', [800]);
    expect(collectUntilFound(reader, () => reader.read('S', [pod], 'qemu'))).toMatchObject({ state: 'ok' });
  });

  test('after a failed search the sandbox is searched again only every fourth collection', async () => {
    const pod = await cgroupWith('kubepods/podU', []);
    const reader = new VmmNetworkReader(proc);
    reader.beginCollection();
    expect(reader.read('S', [pod], 'qemu')).toEqual({ state: 'vmm_not_found' });
    // The VMM shows up: the next three collections still answer the cached miss, the fourth finds it.
    await cgroupWith('kubepods/podU', [900]);
    await processAt(900, 'qemu-system-x86', POD_NETDEV);
    const answers = [1, 2, 3, 4].map(() => {
      reader.beginCollection();
      return reader.read('S', [pod], 'qemu').state;
    });
    expect(answers).toEqual(['vmm_not_found', 'vmm_not_found', 'vmm_not_found', 'ok']);
  });
});
