/**
 * The per-pod host families against the running kernel, as root, on this machine's hierarchy
 * (v1 cpu, cpuacct, memory; laid out as the kubelet and Kata do):
 * - a pod cgroup with a CPU quota and a busy process: the throttled counter grows, and equals the
 *   kernel's cpu.stat throttled_time read just before and after;
 * - a pod cgroup with a memory limit and a process that exceeds it: the OOM kill counter goes up
 *   by exactly one, as the kernel's memory.oom_control says;
 * - two network namespaces made here, joined by a veth pair, traffic between them only, and a
 *   process inside one of them standing in for the VMM (an executable named `firecracker`) in
 *   the sandbox's cgroup: the network counters equal the kernel's own per-interface statistics.
 * Needs root and a writable cgroupfs; without them it fails (it must never pass by skipping).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { RealCgroup } from '../support/real-cgroups.ts';
import { DEFAULT_CGROUP_ROOT, detectCgroupLayout, hostReads, readCgroupUsage, type CgroupLayout } from '../../src/scrapers/cgroups.ts';
import { SourceError } from '../../src/scrapers/source-error.ts';
import { VmmNetworkReader } from '../../src/scrapers/vmm-netdev.ts';
import { podCgroupPath } from '../../src/translate/cgroup-paths.ts';
import { ALL_HOST_COLLECTORS, type CgroupUsage } from '../../src/translate/records.ts';

const run = promisify(execFile);
const MiB = 1048576;
// Bounded polling (never a wall-time assertion): at most this many 25 ms pauses.
const MAX_POLLS = 400;

const tag = randomBytes(3).toString('hex');
const cgroups: RealCgroup[] = [];
const children: ChildProcess[] = [];
let layout: CgroupLayout;
let workDir: string;

function usageOf(result: CgroupUsage | SourceError): CgroupUsage {
  if (result instanceof SourceError) throw result;
  return result;
}

function flatValue(text: string, key: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${key} `));
  if (line === undefined) throw new Error(`no ${key} in ${text}`);
  return Number(line.split(' ')[1]);
}

async function poll<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  for (let i = 0; i < MAX_POLLS; i++) {
    const value = await read();
    if (done(value)) return value;
    await sleep(25);
  }
  return read();
}

/** A pod cgroup with a Kata sandbox child in the cpu, cpuacct and memory hierarchies, removed in afterAll. */
async function kataPod(): Promise<{ podPath: string; sandboxPath: string; sandboxCgroup: RealCgroup }> {
  const hierarchies = [layout.throttleDir!, layout.cpuDir!, layout.memoryDir!];
  const podPath = podCgroupPath('cgroupfs', 'burstable', randomUUID());
  const sandboxPath = `${podPath}/kata_${randomBytes(32).toString('hex')}`;
  cgroups.push(await RealCgroup.create(hierarchies, podPath));
  const sandboxCgroup = await RealCgroup.create(hierarchies, sandboxPath);
  cgroups.push(sandboxCgroup);
  return { podPath, sandboxPath, sandboxCgroup };
}

/** A node child that runs `script` once told "go" on stdin, after it was moved into its cgroup. */
async function childIn(cgroup: RealCgroup, script: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', `process.stdin.once('data', () => { ${script} });`], {
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  children.push(child);
  await once(child, 'spawn');
  await cgroup.attach(child.pid!);
  child.stdin!.write('go\n');
  return child;
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('cgroups-host-real.test.ts must run as root (cgroups, network namespaces)');
  layout = await detectCgroupLayout(DEFAULT_CGROUP_ROOT);
  if (layout.version !== 1 || !layout.cpuDir || !layout.memoryDir || !layout.throttleDir) {
    throw new Error(`cgroups-host-real.test.ts needs the v1 cpu, cpuacct and memory hierarchies; found ${JSON.stringify(layout)}`);
  }
  workDir = await mkdtemp(join(tmpdir(), 'kmb-host-real-'));
});

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
  }
  for (const cgroup of [...cgroups].reverse()) await cgroup.destroy();
  for (const ns of [`kmb-${tag}-a`, `kmb-${tag}-b`]) await run('ip', ['netns', 'delete', ns]).catch(() => undefined);
  if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
});

describe('real kernel: CPU quota', () => {
  test("the throttled counter grows and equals the kernel's cpu.stat throttled_time", async () => {
    const { podPath, sandboxCgroup } = await kataPod();
    const podCpuDir = join(layout.throttleDir!, podPath);
    // 10 ms of CPU per 100 ms period: a busy loop is throttled every period.
    await writeFile(join(podCpuDir, 'cpu.cfs_period_us'), '100000');
    await writeFile(join(podCpuDir, 'cpu.cfs_quota_us'), '10000');
    await childIn(sandboxCgroup, 'for (;;) {}');
    const reads = hostReads(layout, ALL_HOST_COLLECTORS, 'pod');
    const read = async () => usageOf(await readCgroupUsage(layout, podPath, reads)).cpuThrottledSeconds ?? 0;
    const first = await poll(read, (v) => v > 0);
    expect(first).toBeGreaterThan(0);

    const kernel = async () => flatValue(await readFile(join(podCpuDir, 'cpu.stat'), 'utf8'), 'throttled_time');
    const before = await kernel();
    const ours = await read();
    const after = await kernel();
    expect(ours).toBeGreaterThanOrEqual(before / 1e9 - 1e-9);
    expect(ours).toBeLessThanOrEqual(after / 1e9 + 1e-9);
    expect(await poll(read, (v) => v > ours)).toBeGreaterThan(ours);
  });
});

describe('real kernel: memory limit', () => {
  test('a process past the limit is OOM-killed and the counter goes up by exactly one', async () => {
    const { podPath, sandboxPath, sandboxCgroup } = await kataPod();
    const limit = 32 * MiB;
    await writeFile(join(layout.memoryDir!, podPath, 'memory.limit_in_bytes'), String(limit));
    const reads = hostReads(layout, ALL_HOST_COLLECTORS, 'pod');
    const before = usageOf(await readCgroupUsage(layout, podPath, reads));
    expect(before.memoryLimitBytes).toBe(limit);
    expect(before.oomKills).toBe(0);

    const hog = await childIn(sandboxCgroup, `const held = []; for (;;) held.push(Buffer.alloc(${4 * MiB}, 1));`);
    const [, signal] = (await once(hog, 'exit')) as [number | null, NodeJS.Signals | null];
    expect(signal).toBe('SIGKILL');

    const after = usageOf(await readCgroupUsage(layout, podPath, reads));
    expect(after.oomKills).toBe(1);
    // v1 counts the kill in the victim's cgroup (the sandbox child), not in the pod cgroup whose
    // limit it hit: the pod's figure is the sum over its subtree.
    const kernel = async (path: string) =>
      flatValue(await readFile(join(layout.memoryDir!, path, 'memory.oom_control'), 'utf8'), 'oom_kill');
    expect(await kernel(sandboxPath)).toBe(1);
    expect(after.oomKills).toBe((await kernel(podPath)) + (await kernel(sandboxPath)));
  });
});

describe("real kernel: the VMM's network namespace", () => {
  test("receive and transmit bytes equal the kernel's statistics of the pod interface", async () => {
    const [nsA, nsB] = [`kmb-${tag}-a`, `kmb-${tag}-b`];
    const [vethA, vethB] = [`kmb${tag}a`, `kmb${tag}b`];
    const ip = (...args: string[]) => run('ip', args);
    await ip('netns', 'add', nsA);
    await ip('netns', 'add', nsB);
    await ip('link', 'add', vethA, 'type', 'veth', 'peer', 'name', vethB);
    await ip('link', 'set', vethA, 'netns', nsA);
    await ip('link', 'set', vethB, 'netns', nsB);
    // Kata's plumbing beside the pod interface (a pair kept inside A): never counted.
    await ip('-n', nsA, 'link', 'add', 'tap0_kata', 'type', 'veth', 'peer', 'name', 'br0_kata');
    for (const [ns, dev, addr] of [
      [nsA, vethA, '10.213.77.1/30'],
      [nsB, vethB, '10.213.77.2/30'],
    ] as const) {
      await ip('-n', ns, 'addr', 'add', addr, 'dev', dev);
      await ip('-n', ns, 'link', 'set', dev, 'up');
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    for (const dev of ['tap0_kata', 'br0_kata']) await ip('-n', nsA, 'link', 'set', dev, 'up');

    // The stand-in VMM: an executable named firecracker (its comm), asleep in namespace A and in
    // the sandbox's cgroup.
    const { podPath, sandboxCgroup } = await kataPod();
    const vmmPath = join(workDir, 'firecracker');
    await copyFile('/usr/bin/sleep', vmmPath);
    const vmm = spawn('ip', ['netns', 'exec', nsA, vmmPath, '600'], { stdio: 'ignore' });
    children.push(vmm);
    await once(vmm, 'spawn');
    await poll(
      async () => (await readFile(`/proc/${vmm.pid}/comm`, 'utf8')).trim(),
      (comm) => comm === 'firecracker',
    );
    await sandboxCgroup.attach(vmm.pid!);

    // Traffic between the two namespaces only: UDP from B to A, and a reply from A to B.
    const server = `const s = require('dgram').createSocket('udp4'); s.on('message', (m, r) => s.send(m.subarray(0, 100), r.port, r.address)); s.bind(9999, '10.213.77.1', () => console.log('up'));`;
    const echo = spawn('ip', ['netns', 'exec', nsA, process.execPath, '-e', server], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(echo);
    await once(echo.stdout!, 'data');
    const client = `const s = require('dgram').createSocket('udp4'); let got = 0; s.on('message', () => { if (++got === 50) process.exit(0); }); for (let i = 0; i < 50; i++) s.send(Buffer.alloc(1200, i), 9999, '10.213.77.1'); setTimeout(() => process.exit(got > 0 ? 0 : 1), 5000);`;
    await run('ip', ['netns', 'exec', nsB, process.execPath, '-e', client]);
    echo.kill('SIGKILL');

    const reader = new VmmNetworkReader('/proc');
    reader.beginCollection();
    const hierarchyDirs = [join(layout.cpuDir!, podPath)];
    const stat = async (name: 'rx_bytes' | 'tx_bytes') =>
      Number((await run('ip', ['netns', 'exec', nsA, 'cat', `/sys/class/net/${vethA}/statistics/${name}`])).stdout.trim());
    const read = reader.read(podPath, hierarchyDirs, 'firecracker');
    const [rx, tx] = [await stat('rx_bytes'), await stat('tx_bytes')];
    expect(rx).toBeGreaterThan(50 * 1200);
    expect(read).toEqual({ state: 'ok', receiveBytes: rx, transmitBytes: tx });
  });
});
