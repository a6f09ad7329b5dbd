/**
 * The node lab's host side (issue 13): the files the exporter reads for the per-pod host families,
 * in the kernel's formats on cgroup v1 and v2, with values consistent with each pod's scenario, and
 * the VMM found through the sandbox cgroup's cgroup.procs and its net/dev in the lab's procfs.
 * The lying guest's host counters grow while its shim reports an idle VM; on the Kata 4 default
 * node every pod is runtime-rs with QEMU. Read straight from the files the lab wrote.
 */

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { abusivePods, calmPod, FLOOD, HOST_OOM_EVERY_SECONDS, kata4DefaultScenario, lyingGuestPod } from '../../src/lab/abuse-scenarios.ts';
import { renderV1BlkioServiceBytes, renderV2IoStat } from '../../src/lab/cgroup-tree.ts';
import { DEMO_SCENARIO } from '../../src/lab/demo.ts';
import { NodeLab, QEMU_RUNTIME_RS, type LabScenario } from '../../src/lab/node-lab.ts';
import { podNetDev, renderNetDev } from '../../src/lab/proc-tree.ts';

const MIB = 2 ** 20;
const GIB = 2 ** 30;
const START_MS = Date.parse('2026-06-01T12:00:00Z');

let lab: NodeLab | undefined;
let clockMs = START_MS;

afterEach(async () => {
  await lab?.close();
  lab = undefined;
});

async function startLab(scenario: LabScenario): Promise<NodeLab> {
  clockMs = START_MS;
  lab = await NodeLab.start(scenario, { now: () => clockMs });
  return lab;
}

async function advance(l: NodeLab, seconds: number): Promise<void> {
  clockMs += seconds * 1000;
  await l.tick();
}

function pod(l: NodeLab, name: string, namespace = 'ci') {
  const state = l.pods.get(`${namespace}/${name}`);
  if (state === undefined) throw new Error(`no pod ${namespace}/${name}`);
  return state;
}

/** `key value` lines (cpu.stat, memory.events, memory.oom_control) as a map. */
function keyed(text: string): Map<string, number> {
  return new Map(
    text
      .trim()
      .split('\n')
      .map((l) => l.split(' ') as [string, string])
      .map(([k, v]) => [k, Number(v)]),
  );
}

/** io.stat: the sum of one key over every device line. */
function ioStatSum(text: string, key: 'rbytes' | 'wbytes'): number {
  return [...text.matchAll(new RegExp(`\\b${key}=(\\d+)`, 'g'))].reduce((s, m) => s + Number(m[1]), 0);
}

/** net/dev: receive and transmit bytes of every interface but lo and Kata's taps. */
function podTraffic(text: string): { receive: number; transmit: number } {
  const lines = text
    .split('\n')
    .slice(2)
    .filter((l) => l.includes(':'));
  let receive = 0;
  let transmit = 0;
  for (const line of lines) {
    const [name, rest] = line.split(':') as [string, string];
    if (name.trim() === 'lo' || /^tap\d+_kata$/.test(name.trim())) continue;
    const cols = rest.trim().split(/\s+/).map(Number);
    receive += cols[0] ?? 0;
    transmit += cols[8] ?? 0;
  }
  return { receive, transmit };
}

/** The shim payload value of one guest series. */
function guestValue(payload: string, series: string): number {
  const line = payload.split('\n').find((l) => l.startsWith(`${series} `));
  if (line === undefined) throw new Error(`no ${series} in the shim payload`);
  return Number(line.slice(series.length + 1));
}

async function read(...parts: string[]): Promise<string> {
  return readFile(join(...parts), 'utf8');
}

/** The cgroups the exporter reads for a pod: its pod cgroup and, with sandbox_cgroup_only=false, /kata_overhead/<sandbox>. */
function hostCgroups(l: NodeLab, name: string, hierarchy = ''): string[] {
  const state = pod(l, name);
  const paths = l.cgroups.paths(state.uid)!;
  const overhead = paths.sandboxes[state.sandboxId]?.overhead;
  return [paths.pod, ...(overhead === undefined ? [] : [overhead])].map((p) => join(l.endpoints.cgroupRoot, hierarchy, p));
}

async function sumOver(dirs: string[], file: string, value: (text: string) => number): Promise<number> {
  let sum = 0;
  for (const dir of dirs) sum += value(await read(dir, file));
  return sum;
}

describe('cgroup v2: the pod cgroup and the VMM', () => {
  it('writes limits, throttling, OOM kills, pressure and I/O in the kernel formats, growing over time', async () => {
    const namespace = 'ci';
    const l = await startLab({
      cgroupVersion: 2,
      pods: [abusivePods(namespace).memory, abusivePods(namespace).mining, calmPod('calm', namespace)],
    });
    const dir = (name: string) => join(l.endpoints.cgroupRoot, l.cgroups.paths(pod(l, name).uid)!.pod);

    // The kubelet's pod limit: the containers' limits plus kata-qemu's 320Mi overhead.
    expect(await read(dir('leaky'), 'memory.max')).toBe(`${2 * GIB + 320 * MIB}\n`);
    expect(await read(dir('leaky'), 'cpu.max')).toBe('225000 100000\n');
    const events0 = keyed(await read(dir('leaky'), 'memory.events'));
    const miner0 = keyed(await read(dir('miner'), 'cpu.stat'));
    const calm0 = keyed(await read(dir('calm'), 'cpu.stat'));
    const psi0 = await read(dir('leaky'), 'memory.pressure');
    expect(psi0).toMatch(
      /^some avg10=\d+\.\d\d avg60=\d+\.\d\d avg300=\d+\.\d\d total=\d+\nfull avg10=\d+\.\d\d avg60=\d+\.\d\d avg300=\d+\.\d\d total=\d+\n$/,
    );

    await advance(l, 60);
    const events1 = keyed(await read(dir('leaky'), 'memory.events'));
    expect(events1.get('oom_kill')! - events0.get('oom_kill')!).toBe(60 / HOST_OOM_EVERY_SECONDS);
    // The miner runs at its quota: throttled; the calm build is not.
    const miner1 = keyed(await read(dir('miner'), 'cpu.stat'));
    expect(miner1.get('nr_periods')! - miner0.get('nr_periods')!).toBe(600);
    expect(miner1.get('throttled_usec')!).toBeGreaterThan(miner0.get('throttled_usec')!);
    expect(miner1.get('nr_throttled')!).toBeGreaterThan(miner0.get('nr_throttled')!);
    expect(keyed(await read(dir('calm'), 'cpu.stat')).get('throttled_usec')).toBe(calm0.get('throttled_usec'));
    const total = (text: string, kind: 'some' | 'full') => Number(new RegExp(`^${kind} .* total=(\\d+)$`, 'm').exec(text)?.[1]);
    expect(total(await read(dir('leaky'), 'memory.pressure'), 'some')).toBeGreaterThan(total(psi0, 'some'));
    expect(Number(await read(dir('leaky'), 'memory.peak'))).toBeGreaterThanOrEqual(Number(await read(dir('leaky'), 'memory.current')));
  });

  it('puts the VMM in the sandbox cgroup, named by its comm, with the pod traffic in its net/dev; the shim sees the node', async () => {
    const l = await startLab({ cgroupVersion: 2, pods: [abusivePods('ci').network, { name: 'db', hypervisor: 'dragonball' }] });
    for (const [name, comm] of [
      ['exfil', 'qemu-system-x86'],
      ['db', 'containerd-shim'],
    ] as const) {
      const state = pod(l, name);
      const sandbox = join(l.endpoints.cgroupRoot, l.cgroups.paths(state.uid)!.sandboxes[state.sandboxId]!.sandbox);
      const pids = (await read(sandbox, 'cgroup.procs')).trim().split('\n').map(Number);
      const vmm = [];
      for (const pid of pids) if ((await read(l.endpoints.procDir, String(pid), 'comm')) === `${comm}\n`) vmm.push(pid);
      expect(vmm, name).toHaveLength(1);
      const netDev = await read(l.endpoints.procDir, String(vmm[0]), 'net', 'dev');
      expect(netDev.split('\n').slice(0, 2).join('\n')).toBe(renderNetDev({}).trim());
      expect(netDev).toMatch(/^\s+eth0:/m);
      expect(netDev).toMatch(/^\s*tap0_kata:/m);
    }
    // The Go runtime's sandbox_cgroup_only=false on v2: the VMM in the sandbox cgroup, the shim and virtiofsd in the overhead cgroup.
    const exfil = pod(l, 'exfil');
    const paths = l.cgroups.paths(exfil.uid)!.sandboxes[exfil.sandboxId]!;
    const overheadPids = (await read(l.endpoints.cgroupRoot, paths.overhead!, 'cgroup.procs')).trim().split('\n').map(Number);
    const comms = await Promise.all(overheadPids.map((pid) => read(l.endpoints.procDir, String(pid), 'comm')));
    expect(comms.sort()).toEqual(['containerd-shim\n', 'virtiofsd\n']);
    // The shim's namespace is the host's: its counters are the node's, not the pod's.
    const shimPid = overheadPids[comms.indexOf('containerd-shim\n')]!;
    expect(await read(l.endpoints.procDir, String(shimPid), 'net', 'dev')).not.toMatch(/^\s+eth0:/m);

    const vmmPid = (await read(l.endpoints.cgroupRoot, paths.sandbox, 'cgroup.procs')).trim();
    const before = podTraffic(await read(l.endpoints.procDir, vmmPid, 'net', 'dev'));
    await advance(l, 30);
    const after = podTraffic(await read(l.endpoints.procDir, vmmPid, 'net', 'dev'));
    expect(after.transmit - before.transmit).toBeGreaterThan(30 * FLOOD.networkTransmitBytesPerSecond * 0.8);
  });
});

describe('cgroup v1: the same facts in v1 files', () => {
  it('writes throttled_time, the memory limit, oom_kill, the peak and blkio bytes per device', async () => {
    const l = await startLab({
      cgroupVersion: 1,
      pods: [
        abusivePods('ci').memory,
        abusivePods('ci').disk,
        { name: 'nolimit', containers: [{ name: 'b', cpuCores: 0.2, memoryBytes: 100 * MIB }] },
      ],
    });
    const root = l.endpoints.cgroupRoot;
    const podPath = (name: string) => l.cgroups.paths(pod(l, name).uid)!.pod;
    expect(await read(root, 'memory', podPath('leaky'), 'memory.limit_in_bytes')).toBe(`${2 * GIB + 320 * MIB}\n`);
    // No limits: the kernel's "unlimited" (PAGE_COUNTER_MAX in bytes).
    expect(await read(root, 'memory', podPath('nolimit'), 'memory.limit_in_bytes')).toBe('9223372036854771712\n');
    expect(keyed(await read(root, 'cpu,cpuacct', podPath('leaky'), 'cpu.stat')).has('throttled_time')).toBe(true);
    const oom0 = keyed(await read(root, 'memory', podPath('leaky'), 'memory.oom_control')).get('oom_kill')!;
    const blkio = (text: string, op: string) =>
      [...text.matchAll(new RegExp(`^\\d+:\\d+ ${op} (\\d+)$`, 'gm'))].reduce((s, m) => s + Number(m[1]), 0);
    const blkioFile = 'blkio.throttle.io_service_bytes_recursive';
    const written0 = await sumOver(hostCgroups(l, 'filler', 'blkio'), blkioFile, (t) => blkio(t, 'Write'));
    await advance(l, 20);
    expect(keyed(await read(root, 'memory', podPath('leaky'), 'memory.oom_control')).get('oom_kill')! - oom0).toBe(
      20 / HOST_OOM_EVERY_SECONDS,
    );
    expect((await sumOver(hostCgroups(l, 'filler', 'blkio'), blkioFile, (t) => blkio(t, 'Write'))) - written0).toBeGreaterThan(
      20 * FLOOD.diskWriteBytesPerSecond * 0.8,
    );
    const text = await read(hostCgroups(l, 'filler', 'blkio')[1]!, blkioFile);
    expect(Number(/^Total (\d+)$/m.exec(text)?.[1])).toBe(blkio(text, 'Total'));
    expect(Number(await read(root, 'memory', podPath('leaky'), 'memory.max_usage_in_bytes'))).toBeGreaterThanOrEqual(
      Number(await read(root, 'memory', podPath('leaky'), 'memory.usage_in_bytes')),
    );
    // cgroup v1 lists the VMM's process wherever one of its threads is: the vCPUs' sandbox cgroup and the overhead cgroup.
    const leaky = pod(l, 'leaky');
    const paths = l.cgroups.paths(leaky.uid)!.sandboxes[leaky.sandboxId]!;
    const inSandbox = (await read(root, 'memory', paths.sandbox, 'cgroup.procs')).trim().split('\n');
    const inOverhead = (await read(root, 'memory', paths.overhead!, 'cgroup.procs')).trim().split('\n');
    expect(inSandbox).toHaveLength(1);
    expect(inOverhead).toContain(inSandbox[0]);
  });
});

describe('the lying guest', () => {
  it('grows its host CPU, disk and network counters while its shim reports an idle VM', async () => {
    const l = await startLab({ cgroupVersion: 2, pods: [lyingGuestPod('liar', 'ci')] });
    const state = pod(l, 'liar');
    const paths = l.cgroups.paths(state.uid)!;
    const podDir = join(l.endpoints.cgroupRoot, paths.pod);
    const sandbox = join(l.endpoints.cgroupRoot, paths.sandboxes[state.sandboxId]!.sandbox);
    const vmm = (await read(sandbox, 'cgroup.procs'))
      .trim()
      .split('\n')
      .map(Number)
      .filter((pid) => pid !== state.processes?.shim.pid)[0]!;
    const host = async () => ({
      cpu: keyed(await read(podDir, 'cpu.stat')).get('usage_usec')! / 1e6,
      written: await sumOver(hostCgroups(l, 'liar'), 'io.stat', (t) => ioStatSum(t, 'wbytes')),
      transmit: podTraffic(await read(l.endpoints.procDir, String(vmm), 'net', 'dev')).transmit,
    });
    const guest = () => {
      const payload = l.shimPayload(state);
      const cpu =
        ['user', 'system', 'irq', 'softirq'].reduce(
          (s, item) => s + guestValue(payload, `kata_guest_cpu_time{cpu="total",item="${item}"}`),
          0,
        ) / 1000;
      return {
        cpu,
        written: guestValue(payload, 'kata_guest_diskstat{disk="vda",item="sectors_written"}') * 512,
        transmit: guestValue(payload, 'kata_guest_netdev_stat{interface="eth0",item="sent_bytes"}'),
        tasks: guestValue(payload, 'kata_guest_tasks{item="cur"}'),
      };
    };
    const [h0, g0] = [await host(), guest()];
    // Not a whole second: the counters of a real node are no round numbers either.
    const dt = 60.3;
    await advance(l, dt);
    const [h1, g1] = [await host(), guest()];
    // Its leak keeps the VM between 90 % and 100 % of the pod limit on the host, in whole pages.
    const workingSet =
      (await sumOver(hostCgroups(l, 'liar'), 'memory.current', (t) => Number(t))) -
      (await sumOver(hostCgroups(l, 'liar'), 'memory.stat', (t) => keyed(t).get('inactive_file')!));
    expect(Number.isInteger(workingSet / 4096)).toBe(true);
    expect(workingSet / Number(await read(podDir, 'memory.max'))).toBeGreaterThanOrEqual(0.9);
    expect(workingSet / Number(await read(podDir, 'memory.max'))).toBeLessThan(1);
    // The host: the whole CPU limit (2 cores), a disk and a network flood.
    expect((h1.cpu - h0.cpu) / dt).toBeGreaterThan(1.9);
    expect((h1.written - h0.written) / dt).toBeGreaterThan(FLOOD.diskWriteBytesPerSecond * 0.9);
    expect((h1.transmit - h0.transmit) / dt).toBeGreaterThan(FLOOD.networkTransmitBytesPerSecond * 0.9);
    // The guest: idle.
    expect((g1.cpu - g0.cpu) / dt).toBeLessThan(0.05);
    expect((g1.written - g0.written) / dt).toBeLessThan(10_000);
    expect((g1.transmit - g0.transmit) / dt).toBeLessThan(10_000);
    expect(g1.tasks).toBeLessThan(100);
    // And the kubelet relays the guest's story for the container.
    const relayed = /^container_memory_working_set_bytes\{container="build",namespace="ci",pod="liar"\} (\S+) /m.exec(l.kubeletPayload());
    expect(Number(relayed?.[1])).toBeLessThan(200 * MIB);
  });
});

describe('the Kata 4 default node', () => {
  it('runs every pod as runtime-rs with QEMU under kata-qemu-runtime-rs, with its 320Mi overhead in the pod limit', async () => {
    const l = await startLab(kata4DefaultScenario());
    expect(l.pods.size).toBeGreaterThanOrEqual(7);
    for (const state of l.pods.values()) {
      expect(state.scenario).toMatchObject(QEMU_RUNTIME_RS);
      expect(state.scenario.sandboxCgroupOnly).toBe(true);
      const memoryMax = await read(l.endpoints.cgroupRoot, l.cgroups.paths(state.uid)!.pod, 'memory.max');
      expect(memoryMax).toBe(`${2 * GIB + 320 * MIB}\n`);
      expect(await read(l.endpoints.procDir, String(state.processes!.vmm.pid), 'comm')).toBe('qemu-system-x86\n');
    }
  });
});

describe('the demo node', () => {
  it('runs on cgroup v2 with a network-flooding and a host-OOM-killed qemu-runtime-rs build', () => {
    expect(DEMO_SCENARIO.cgroupVersion).toBe(2);
    const kata4 = DEMO_SCENARIO.pods.filter((p) => p.runtimeClassName === QEMU_RUNTIME_RS.runtimeClassName);
    expect(kata4.some((p) => (p.networkTransmitBytesPerSecond ?? 0) >= FLOOD.networkTransmitBytesPerSecond / 2)).toBe(true);
    expect(kata4.some((p) => (p.hostOomKillEverySeconds ?? 0) > 0)).toBe(true);
  });
});

describe('file renderers', () => {
  it('io.stat leaves out idle devices; blkio ends with the total of every device', () => {
    expect(renderV2IoStat(0, 0)).toBe('');
    expect(ioStatSum(renderV2IoStat(1000, 3000), 'wbytes')).toBe(3000);
    expect(renderV2IoStat(1000, 3000).trim().split('\n')).toHaveLength(2);
    expect(renderV1BlkioServiceBytes(1000, 3000)).toMatch(/\nTotal 4000\n$/);
  });

  it('net/dev: the tap mirrors the CNI interface, so counting it would double the pod traffic', () => {
    const text = podNetDev({ receiveBytes: 5000, transmitBytes: 7000 }, 10);
    expect(podTraffic(text)).toEqual({ receive: 5000, transmit: 7000 });
    expect(text).toMatch(/tap0_kata:\s+7000\s/);
  });
});
