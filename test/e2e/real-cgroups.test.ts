/**
 * The node lab on real kernel cgroups (root only, as in CI): a pod's VM is a real process in
 * `/kubepods/burstable/pod<uid>/kata_<id>` and its VMM another in `/kata_overhead/<id>`. The
 * exporter's host view must agree with the kernel's own accounting and grow as they work.
 */

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { GUEST_KERNEL_BYTES } from '../../src/lab/node-lab.ts';
import { RealPodCgroups, realHierarchies } from '../support/real-pod.ts';
import { startLabExporter, type LabExporter } from '../support/lab-exporter.ts';
import { one } from '../support/scrape.ts';

const MIB = 2 ** 20;
let bridge: LabExporter;
let cpuacct: string;

async function kernelCpuSeconds(relPath: string): Promise<number> {
  return Number(BigInt((await readFile(join(cpuacct, relPath, 'cpuacct.usage'), 'utf8')).trim())) / 1e9;
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the real-cgroup end-to-end test needs root (CI runs as root)');
  const [first] = await realHierarchies();
  if (first === undefined) throw new Error('no cgroup hierarchy found');
  cpuacct = first;
  bridge = await startLabExporter({
    realCgroups: RealPodCgroups.create,
    pods: [
      {
        name: 'real-burner',
        hypervisor: 'qemu',
        runtime: 'go',
        sandboxCgroupOnly: false,
        containers: [{ name: 'build', cpuCores: 0.5, memoryBytes: 96 * MIB, limits: { cpu: '1', memory: '1Gi' } }],
        vmOverheadCores: 0.2,
        vmOverheadMemoryBytes: 32 * MIB,
      },
    ],
  });
});

afterAll(async () => {
  await bridge?.close();
});

test('the host CPU of a pod is its real pod cgroup plus its real overhead cgroup, and grows', async () => {
  const state = bridge.lab.pods.get('ci/real-burner')!;
  const real = state.real!;
  const hostKey = 'kata_bridge_pod_host_cpu_usage_seconds_total{namespace="ci",pod="real-burner"}';
  const before = (await kernelCpuSeconds(real.podPath)) + (await kernelCpuSeconds(real.overheadPath!));
  const first = one(await bridge.scrape(), hostKey);
  const after = (await kernelCpuSeconds(real.podPath)) + (await kernelCpuSeconds(real.overheadPath!));
  // The exporter read the kernel's counters between our two reads.
  expect(first).toBeGreaterThanOrEqual(before);
  expect(first).toBeLessThanOrEqual(after);
  // It grows as the processes work (bounded polling, not a timing assertion).
  await expect.poll(async () => one(await bridge.scrape(), hostKey), { timeout: 20_000, interval: 200 }).toBeGreaterThan(first + 0.2);
});

test('the host memory of a pod counts the memory its processes really hold', async () => {
  const key = 'kata_bridge_pod_host_memory_working_set_bytes{namespace="ci",pod="real-burner"}';
  // 96 MiB of workload + the guest kernel in the lab model, touched by the vCPU process, plus
  // 32 MiB by the VMM (the processes touch it once started inside their cgroups).
  await expect
    .poll(async () => one(await bridge.scrape(), key), { timeout: 20_000, interval: 200 })
    .toBeGreaterThanOrEqual(96 * MIB + GUEST_KERNEL_BYTES + 32 * MIB);
  expect(one(await bridge.scrape(), key)).toBeLessThan(1024 * MIB);
});
