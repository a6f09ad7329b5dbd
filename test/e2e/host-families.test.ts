/**
 * The whole exporter against a small node (the lab's kubelet, API server and cgroup tree) whose
 * Kata pod cgroup and overhead cgroup hold the host files written here, on cgroup v1 and v2, and
 * whose VMM (a procfs entry listed in the overhead cgroup's cgroup.procs) has a net/dev: every
 * per-pod host family appears with the values in those files, and the node says whether PSI is
 * there. Expected values are worked out by hand from the texts below.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

import { afterEach, describe, expect, test } from 'vitest';

import { NodeLab } from '../../src/lab/node-lab.ts';
import { startExporterOn } from '../support/lab-exporter.ts';
import { one, seriesKey, toSeriesMap } from '../support/scrape.ts';

const POD = 'host-build';
const VMM_PID = 4242;
const NET_DEV = [
  'Inter-|   Receive                                                |  Transmit',
  ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
  '    lo:     640       8    0    0    0     0          0         0      640       8    0    0    0     0       0          0',
  '  eth0: 7340032    5000    0    0    0     0          0         0  1048576    2000    0    0    0     0       0          0',
  'tap0_kata: 1048576    2000    0    0    0     0          0         0  7340032    5000    0    0    0     0       0          0',
  '',
].join('\n');
const PSI = (some: number, full: number) =>
  `some avg10=0.00 avg60=0.00 avg300=0.00 total=${some}\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=${full}\n`;

let lab: NodeLab | undefined;
let close: (() => Promise<void>) | undefined;

afterEach(async () => {
  await close?.();
  await lab?.close();
  lab = undefined;
  close = undefined;
});

async function put(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
}

/** Writes the host files of the one pod in the lab's tree, and its VMM in the lab's procfs. */
async function writeHostFiles(node: NodeLab, version: 1 | 2): Promise<void> {
  const state = node.pods.get(`ci/${POD}`)!;
  const paths = node.cgroups.paths(state.uid)!;
  const overhead = paths.sandboxes[state.sandboxId]!.overhead!;
  const root = node.endpoints.cgroupRoot;
  if (version === 2) {
    const cpuStat = join(root, paths.pod, 'cpu.stat');
    await put(cpuStat, (await readFile(cpuStat, 'utf8')).replace('throttled_usec 0', 'throttled_usec 7250000'));
    await put(join(root, paths.pod, 'memory.max'), '2147483648\n');
    await put(join(root, paths.pod, 'memory.events'), 'low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n');
    await put(join(root, overhead, 'memory.events'), 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 1\noom_group_kill 0\n');
    await put(join(root, 'cpu.pressure'), PSI(0, 0));
    await put(join(root, paths.pod, 'cpu.pressure'), PSI(4000000, 1500000));
    await put(join(root, paths.pod, 'memory.pressure'), PSI(20000, 10000));
    await put(join(root, paths.pod, 'io.pressure'), PSI(600000, 500000));
    await put(join(root, paths.pod, 'io.stat'), '8:0 rbytes=3145728 wbytes=1048576 rios=48 wios=16 dbytes=0 dios=0\n');
    await put(join(root, overhead, 'io.stat'), '8:0 rbytes=0 wbytes=9437184 rios=0 wios=144 dbytes=0 dios=0\n');
    await put(join(root, overhead, 'cgroup.procs'), `${VMM_PID}\n`);
  } else {
    const cpu = join(root, 'cpu,cpuacct');
    await put(join(cpu, paths.pod, 'cpu.stat'), 'nr_periods 900\nnr_throttled 90\nthrottled_time 7250000000\n');
    await put(join(cpu, overhead, 'cpu.stat'), 'nr_periods 0\nnr_throttled 0\nthrottled_time 0\n');
    await put(join(root, 'memory', paths.pod, 'memory.limit_in_bytes'), '2147483648\n');
    await put(join(root, 'memory', paths.pod, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 1\n');
    await put(join(root, 'memory', overhead, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 1\n');
    const blkio = (r: number, w: number) =>
      `8:0 Read ${r}\n8:0 Write ${w}\n8:0 Sync ${w}\n8:0 Async ${r}\n8:0 Discard 0\n8:0 Total ${r + w}\nTotal ${r + w}\n`;
    await put(join(root, 'blkio', paths.pod, 'blkio.throttle.io_service_bytes_recursive'), blkio(3145728, 1048576));
    await put(join(root, 'blkio', overhead, 'blkio.throttle.io_service_bytes_recursive'), blkio(0, 9437184));
    await put(join(cpu, overhead, 'cgroup.procs'), `${VMM_PID}\n`);
  }
  await put(join(node.endpoints.procDir, String(VMM_PID), 'comm'), 'qemu-system-x86\n');
  await put(join(node.endpoints.procDir, String(VMM_PID), 'net', 'dev'), NET_DEV);
}

async function scrapeOnce(node: NodeLab): Promise<Map<string, number>> {
  const running = await startExporterOn(node);
  close = () => running.exporter.close();
  return running.scrape();
}

const labels = { namespace: 'ci', pod: POD };
const key = (name: string, extra: Record<string, string> = {}) => seriesKey(`kata_bridge_${name}`, { ...labels, ...extra });

describe.each([1, 2] as const)('cgroup v%i', (version) => {
  test('every host family appears with the values in the files', async () => {
    lab = await NodeLab.start({
      pods: [{ name: POD, namespace: 'ci', runtime: 'go', hypervisor: 'qemu', sandboxCgroupOnly: false }],
      cgroupVersion: version,
    });
    await writeHostFiles(lab, version);
    const series = await scrapeOnce(lab);

    expect(one(series, key('pod_host_cpu_throttled_seconds_total'))).toBe(7.25);
    expect(one(series, key('pod_host_memory_limit_bytes'))).toBe(2147483648);
    // One kill in the pod cgroup, one in the overhead cgroup (the VMM's).
    expect(one(series, key('pod_host_oom_kills_total'))).toBe(2);
    expect(one(series, key('pod_host_disk_read_bytes_total'))).toBe(3145728);
    expect(one(series, key('pod_host_disk_written_bytes_total'))).toBe(1048576 + 9437184);
    // eth0 only: lo and tap0_kata are not the pod's traffic.
    expect(one(series, key('pod_host_network_receive_bytes_total'))).toBe(7340032);
    expect(one(series, key('pod_host_network_transmit_bytes_total'))).toBe(1048576);
    expect(one(series, 'kata_bridge_node_host_pressure_supported{}')).toBe(version === 2 ? 1 : 0);
    const pressure = [...series.keys()].filter((k) => k.startsWith('kata_bridge_pod_host_pressure_seconds_total{'));
    if (version === 2) {
      expect(one(series, key('pod_host_pressure_seconds_total', { resource: 'cpu', kind: 'some' }))).toBe(4);
      expect(one(series, key('pod_host_pressure_seconds_total', { resource: 'cpu', kind: 'full' }))).toBe(1.5);
      expect(one(series, key('pod_host_pressure_seconds_total', { resource: 'memory', kind: 'some' }))).toBe(0.02);
      expect(one(series, key('pod_host_pressure_seconds_total', { resource: 'io', kind: 'full' }))).toBe(0.5);
      expect(pressure).toHaveLength(6);
    } else {
      expect(pressure).toEqual([]);
    }
    // Nothing is missing, so no host gap.
    const gaps = [...series.keys()].filter((k) => k.startsWith('kata_bridge_pod_metrics_gap{') && k.includes(`pod="${POD}"`));
    expect(gaps).toEqual([]);
  });
});

/**
 * The lab writes every host file and a VMM for each sandbox: take away the pod cgroup's io.stat
 * and the VMM's process, as on a node without the io controller for the pod and with a VMM the
 * exporter cannot see.
 */
async function removeIoStatAndVmm(node: NodeLab): Promise<void> {
  const state = node.pods.get(`ci/${POD}`)!;
  await rm(join(node.endpoints.cgroupRoot, node.cgroups.paths(state.uid)!.pod, 'io.stat'));
  await rm(join(node.endpoints.procDir, String(state.processes!.vmm.pid)), { recursive: true });
}

test('without the files or a VMM, the pod says why instead of going silent', async () => {
  lab = await NodeLab.start({
    pods: [{ name: POD, namespace: 'ci', runtime: 'go', hypervisor: 'qemu', sandboxCgroupOnly: false }],
    cgroupVersion: 2,
  });
  await removeIoStatAndVmm(lab);
  const series = await scrapeOnce(lab);
  expect(one(series, key('pod_metrics_gap', { reason: 'host_file_missing' }))).toBe(1);
  expect(one(series, key('pod_metrics_gap', { reason: 'host_vmm_not_found' }))).toBe(1);
  expect(series.has(key('pod_host_network_receive_bytes_total'))).toBe(false);
  expect(series.has(key('pod_host_disk_read_bytes_total'))).toBe(false);
});

test('--no-collector.host-network reads no VMM and raises no network gap', async () => {
  lab = await NodeLab.start({
    pods: [{ name: POD, namespace: 'ci', runtime: 'go', hypervisor: 'qemu', sandboxCgroupOnly: false }],
    cgroupVersion: 2,
  });
  await removeIoStatAndVmm(lab);
  const running = await startExporterOn(lab, {
    flags: ['--no-collector.host-network', '--no-collector.host-memory', '--no-collector.host-disk'],
  });
  close = () => running.exporter.close();
  const series = await running.scrape();
  expect(series.has(key('pod_metrics_gap', { reason: 'host_vmm_not_found' }))).toBe(false);
  // Nor a file gap: io.stat belongs to the disk collector, which is off too.
  expect(series.has(key('pod_metrics_gap', { reason: 'host_file_missing' }))).toBe(false);
  // Throttling (cpu.stat, written by the lab) is still read.
  expect(one(series, key('pod_host_cpu_throttled_seconds_total'))).toBe(0);
});
