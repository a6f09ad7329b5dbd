/**
 * End to end: the real exporter against a simulated node, one test per correlation rule and per
 * gap reason. Expected values are read from what the lab serves (the kubelet payload, the shim
 * payload, the cgroup files), never from the exporter's own output.
 */

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { NodeLab } from '../../src/lab/node-lab.ts';
import { stableUid } from '../../src/lab/pod-builders.ts';
import { startLabExporter, type LabExporter } from '../support/lab-exporter.ts';
import { one, parseSamples, podSeries } from '../support/scrape.ts';

const MIB = 2 ** 20;

/** A sample from the lab kubelet's own payload. */
function kubeletValue(lab: NodeLab, family: string, pod: string, container: string): number {
  const sample = parseSamples(lab.kubeletPayload()).find(
    (s) => s.family === family && s.labels.pod === pod && s.labels.container === container,
  );
  if (sample === undefined) throw new Error(`lab kubelet has no ${family} for ${pod}/${container}`);
  return sample.value;
}

/** Guest busy CPU seconds and memory from the lab shim's own payload. */
function shimGuest(lab: NodeLab, namespace: string, pod: string): { busySeconds: number; usedBytes: number } {
  const state = lab.pods.get(`${namespace}/${pod}`)!;
  const samples = parseSamples(lab.shimPayload(state));
  const cpu = samples.filter((s) => s.family === 'kata_guest_cpu_time' && s.labels.cpu === 'total');
  const item = (name: string) => cpu.find((s) => s.labels.item === name)?.value ?? 0;
  const mem = samples.filter((s) => s.family === 'kata_guest_meminfo');
  const memItem = (name: string) => mem.find((s) => s.labels.item === name)!.value;
  return {
    busySeconds: (item('user') + item('nice') + item('system') + item('irq') + item('softirq')) / 1000,
    usedBytes: memItem('mem_total') - memItem('mem_available'),
  };
}

/** CPU seconds and working set read straight from the lab's cgroup v1 files. */
async function cgroupFiles(lab: NodeLab, relPath: string): Promise<{ cpu: number; workingSet: number }> {
  const root = lab.endpoints.cgroupRoot;
  const cpuNs = BigInt((await readFile(join(root, 'cpu,cpuacct', relPath, 'cpuacct.usage'), 'utf8')).trim());
  const usage = Number((await readFile(join(root, 'memory', relPath, 'memory.usage_in_bytes'), 'utf8')).trim());
  const stat = await readFile(join(root, 'memory', relPath, 'memory.stat'), 'utf8');
  const inactive = Number(/^total_inactive_file (\d+)$/m.exec(stat)?.[1] ?? 0);
  return { cpu: Number(cpuNs) / 1e9, workingSet: Math.max(0, usage - inactive) };
}

const key = (name: string, labels: string) => `kata_bridge_${name}{${labels}}`;

describe('a node with every rule and gap reason at once', () => {
  let bridge: LabExporter;
  let nowMs = Date.now();
  let series: Map<string, number>;

  beforeAll(async () => {
    bridge = await startLabExporter(
      {
        pods: [
          { name: 'first-hand', hypervisor: 'qemu', runtime: 'go' },
          { name: 'zeros', hypervisor: 'firecracker', runtime: 'go', kubelet: 'zeros' },
          {
            name: 'two-missing',
            hypervisor: 'cloud-hypervisor',
            sandboxCgroupOnly: true,
            kubelet: 'missing',
            containers: [
              { name: 'app', cpuCores: 1, memoryBytes: 500 * MIB, limits: { cpu: '2', memory: '1Gi' } },
              { name: 'db', cpuCores: 0.2, memoryBytes: 300 * MIB },
            ],
          },
          { name: 'stale', hypervisor: 'qemu', kubelet: 'stale' },
          { name: 'refused', hypervisor: 'qemu', shim: { kind: 'refuse' } },
          { name: 'hangs', hypervisor: 'qemu', shim: { kind: 'hang' } },
          { name: 'floods', hypervisor: 'qemu', shim: { kind: 'oversize', bytes: 8 * MIB } },
          { name: 'garbage', hypervisor: 'qemu', shim: { kind: 'garbage' } },
          { name: 'rs-qemu', hypervisor: 'qemu', runtime: 'rs' },
          { name: 'rs-dragonball', hypervisor: 'dragonball', runtime: 'rs' },
          { name: 'no-cgroup', hypervisor: 'qemu', podCgroup: false },
          { name: 'no-sandbox', hypervisor: 'qemu', sandbox: false },
          { name: 'ghost', hypervisor: 'qemu', mapping: 'none', inApiServer: false },
        ],
      },
      { flags: ['--shim.timeout=1s', '--shim.max-bytes=1048576', '--kubelet.timeout=3s', '--collect.deadline=4s'], now: () => nowMs },
    );
    series = await bridge.scrape();
  });

  afterAll(async () => {
    await bridge?.close();
  });

  test('first-hand: the kubelet container values are published as they are, with no gap', () => {
    const labels = 'container="build",namespace="ci",pod="first-hand"';
    expect(one(series, key('container_cpu_usage_seconds_total', labels))).toBeCloseTo(
      kubeletValue(bridge.lab, 'container_cpu_usage_seconds_total', 'first-hand', 'build'),
      9,
    );
    expect(one(series, key('container_memory_working_set_bytes', labels))).toBe(
      kubeletValue(bridge.lab, 'container_memory_working_set_bytes', 'first-hand', 'build'),
    );
    expect(podSeries(series, 'container_metrics_gap', 'first-hand').size).toBe(0);
    expect(one(series, key('container_cpu_limit_cores', labels))).toBe(2);
    expect(one(series, key('container_memory_limit_bytes', labels))).toBe(2 * 2 ** 30);
  });

  test('host usage is the pod cgroup plus /kata_overhead/<sandbox>, and overhead is host − containers', async () => {
    const state = bridge.lab.pods.get('ci/first-hand')!;
    const paths = bridge.lab.cgroups.paths(state.uid)!;
    const pod = await cgroupFiles(bridge.lab, paths.pod);
    const overhead = await cgroupFiles(bridge.lab, paths.sandboxes[state.sandboxId]!.overhead!);
    const host = one(series, key('pod_host_cpu_usage_seconds_total', 'namespace="ci",pod="first-hand"'));
    expect(host).toBeCloseTo(pod.cpu + overhead.cpu, 6);
    expect(one(series, key('pod_host_memory_working_set_bytes', 'namespace="ci",pod="first-hand"'))).toBe(
      pod.workingSet + overhead.workingSet,
    );
    const container = kubeletValue(bridge.lab, 'container_cpu_usage_seconds_total', 'first-hand', 'build');
    expect(one(series, key('pod_overhead_cpu_usage_seconds_total', 'namespace="ci",pod="first-hand"'))).toBeCloseTo(host - container, 6);
    const memory = kubeletValue(bridge.lab, 'container_memory_working_set_bytes', 'first-hand', 'build');
    expect(one(series, key('pod_overhead_memory_bytes', 'namespace="ci",pod="first-hand"'))).toBe(
      pod.workingSet + overhead.workingSet - memory,
    );
  });

  test('guest usage: non-idle guest CPU and total − available memory, from the shim', () => {
    const guest = shimGuest(bridge.lab, 'ci', 'first-hand');
    expect(one(series, key('pod_guest_cpu_usage_seconds_total', 'namespace="ci",pod="first-hand"'))).toBeCloseTo(guest.busySeconds, 6);
    expect(one(series, key('pod_guest_memory_used_bytes', 'namespace="ci",pod="first-hand"'))).toBe(guest.usedBytes);
    expect(one(series, key('pod_guest_tasks', 'namespace="ci",pod="first-hand"'))).toBe(60);
  });

  test('pod_info names the sandbox, runtime, hypervisor and cgroup mode; reservations come from spec.overhead', () => {
    const state = bridge.lab.pods.get('ci/first-hand')!;
    const info = [...podSeries(series, 'pod_info', 'first-hand').keys()];
    expect(info).toHaveLength(1);
    expect(info[0]).toContain(`sandbox_id="${state.sandboxId}"`);
    expect(info[0]).toContain(`uid="${stableUid('ci', 'first-hand')}"`);
    expect(info[0]).toContain('runtime="go"');
    expect(info[0]).toContain('hypervisor="qemu"');
    expect(info[0]).toContain('sandbox_cgroup_only="false"');
    expect(info[0]).toContain('runtime_handler="kata-qemu"');
    // kata-deploy's QEMU RuntimeClass overhead: 250m and 320Mi.
    expect(one(series, key('pod_overhead_cpu_reserved_cores', 'namespace="ci",pod="first-hand"'))).toBe(0.25);
    expect(one(series, key('pod_overhead_memory_reserved_bytes', 'namespace="ci",pod="first-hand"'))).toBe(320 * MIB);
  });

  test('kubelet zeros: a gap, and the guest value as the estimate of a single container', () => {
    expect(one(series, key('container_metrics_gap', 'container="build",namespace="ci",pod="zeros",reason="kubelet_zero"'))).toBe(1);
    expect(one(series, key('container_memory_working_set_bytes', 'container="build",namespace="ci",pod="zeros"'))).toBe(
      shimGuest(bridge.lab, 'ci', 'zeros').usedBytes,
    );
    expect(series.has(key('container_cpu_usage_seconds_total', 'container="build",namespace="ci",pod="zeros"'))).toBe(true);
  });

  test('kubelet missing, two containers: a gap on each and no per-container value', () => {
    for (const container of ['app', 'db']) {
      const labels = `container="${container}",namespace="ci",pod="two-missing"`;
      expect(one(series, key('container_metrics_gap', `${labels},reason="kubelet_missing"`))).toBe(1);
      expect(series.has(key('container_cpu_usage_seconds_total', labels))).toBe(false);
      expect(series.has(key('container_memory_working_set_bytes', labels))).toBe(false);
    }
    // The VM-level view still stands.
    expect(series.has(key('pod_guest_cpu_usage_seconds_total', 'namespace="ci",pod="two-missing"'))).toBe(true);
  });

  test('a stale kubelet sample is a gap', () => {
    expect(one(series, key('container_metrics_gap', 'container="build",namespace="ci",pod="stale",reason="kubelet_stale"'))).toBe(1);
  });

  test.each([
    ['refused', 'shim_unreachable'],
    ['hangs', 'shim_timeout'],
    ['floods', 'shim_oversize'],
    ['garbage', 'shim_malformed'],
    ['rs-qemu', 'shim_unsafe_runtime'],
    ['no-cgroup', 'cgroup_not_found'],
    ['no-sandbox', 'sandbox_unmapped'],
  ])('pod %s carries the gap reason %s', (pod, reason) => {
    expect(one(series, key('pod_metrics_gap', `namespace="ci",pod="${pod}",reason="${reason}"`))).toBe(1);
    expect(podSeries(series, 'pod_metrics_gap', pod).size).toBe(1);
  });

  test('the runtime-rs QEMU shim is never called; the Dragonball one is', () => {
    expect(bridge.lab.pods.get('ci/rs-qemu')!.shim!.stats.calls).toBe(0);
    expect(bridge.lab.pods.get('ci/rs-dragonball')!.shim!.stats.calls).toBeGreaterThan(0);
    expect(one(series, key('sandboxes', 'runtime="rs",state="unsafe_skipped"'))).toBe(1);
  });

  test('an unmapped sandbox is reported, never dropped', () => {
    const ghost = bridge.lab.pods.get('ci/ghost')!;
    expect(one(series, key('sandbox_unmapped', `runtime="go",sandbox_id="${ghost.sandboxId}"`))).toBe(1);
    expect(one(series, key('sandboxes', 'runtime="go",state="unmapped"'))).toBe(1);
  });

  test('failing shims are counted by reason and leave the healthy pods whole', () => {
    expect(one(series, key('shim_scrape_errors_total', 'reason="timeout"'))).toBe(1);
    expect(one(series, key('shim_scrape_errors_total', 'reason="oversize"'))).toBe(1);
    expect(one(series, key('shim_scrape_errors_total', 'reason="malformed"'))).toBe(1);
    expect(one(series, key('shim_scrape_errors_total', 'reason="unreachable"'))).toBe(1);
    for (const pod of ['first-hand', 'zeros', 'two-missing', 'rs-dragonball']) {
      expect(podSeries(series, 'pod_guest_cpu_usage_seconds_total', pod).size, pod).toBe(1);
    }
    expect(one(series, key('source_up', 'source="shims"'))).toBe(1);
  });
});

describe('over time', () => {
  let bridge: LabExporter;
  let nowMs = Date.now();

  beforeAll(async () => {
    bridge = await startLabExporter(
      {
        pods: [
          { name: 'steady', hypervisor: 'qemu' },
          { name: 'leaving', hypervisor: 'cloud-hypervisor' },
        ],
      },
      { now: () => nowMs },
    );
  });

  afterAll(async () => {
    await bridge?.close();
  });

  async function advance(seconds: number): Promise<Map<string, number>> {
    nowMs += seconds * 1000;
    await bridge.lab.tick();
    return bridge.scrape();
  }

  test('counters stay monotonic when the kubelet goes away and comes back; gaps come and go', async () => {
    const cpu = key('container_cpu_usage_seconds_total', 'container="build",namespace="ci",pod="steady"');
    const host = key('pod_host_cpu_usage_seconds_total', 'namespace="ci",pod="steady"');
    const overhead = key('pod_overhead_cpu_usage_seconds_total', 'namespace="ci",pod="steady"');
    const first = await advance(0);
    bridge.lab.kubelet.setFault({ kind: 'status', status: 500 });
    const down = await advance(30);
    expect(one(down, key('container_metrics_gap', 'container="build",namespace="ci",pod="steady",reason="kubelet_unreachable"'))).toBe(1);
    expect(one(down, key('pod_metrics_gap', 'namespace="ci",pod="steady",reason="kubelet_unreachable"'))).toBe(1);
    expect(one(down, key('source_up', 'source="kubelet"'))).toBe(0);
    // One app container: the guest estimate keeps the series alive during the gap.
    expect(one(down, cpu)).toBeGreaterThanOrEqual(one(first, cpu));
    bridge.lab.kubelet.setFault(undefined);
    const back = await advance(30);
    expect(podSeries(back, 'container_metrics_gap', 'steady').size).toBe(0);
    for (const k of [cpu, host, overhead]) {
      expect(one(down, k), k).toBeGreaterThanOrEqual(one(first, k));
      expect(one(back, k), k).toBeGreaterThanOrEqual(one(down, k));
    }
    // Host CPU moved with the cgroup files: 60 s at ~0.8 core of work plus VM cost.
    expect(one(back, host) - one(first, host)).toBeGreaterThan(30);
  });

  test("a deleted pod's series are gone at the next scrape", async () => {
    expect(podSeries(await advance(1), 'pod_info', 'leaving').size).toBe(1);
    await bridge.lab.removePod('ci', 'leaving');
    // The watch delivers the DELETED event; the next collection must not show the pod.
    await expect
      .poll(async () => [...(await advance(1)).keys()].filter((k) => k.includes('pod="leaving"')), { timeout: 10_000 })
      .toEqual([]);
  });
});
