/**
 * The cgroup reader against the running kernel: a real process in real cgroups laid out as the
 * kubelet and Kata do (`/kubepods/burstable/pod<uid>/kata_<sandbox-id>`), in the v1 cpuacct and
 * memory hierarchies and in the v2 mount. Needs root and a writable cgroupfs; without them the
 * suite fails (it must never pass by skipping).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { RealCgroup } from '../support/real-cgroups.ts';
import { waitFor } from '../support/wait.ts';
import {
  DEFAULT_CGROUP_ROOT,
  SandboxCgroupLocations,
  detectCgroupLayout,
  findSandboxCgroups,
  indexPodCgroups,
  readCgroupUsage,
  type CgroupLayout,
} from '../../src/scrapers/cgroups.ts';
import { SourceError } from '../../src/scrapers/source-error.ts';
import { podCgroupPath } from '../../src/translate/cgroup-paths.ts';
import type { CgroupUsage } from '../../src/translate/records.ts';

const MiB = 1048576;
const HELD = 64 * MiB;
// Pages the child touches besides the buffer, and what the kernel may reclaim meanwhile.
const SLACK = 4 * MiB;

/**
 * Waits for "go" on stdin (so its memory is charged after it has been moved into the test
 * cgroups: charges do not move with a task on v1), touches HELD bytes, says "ready", then burns
 * CPU without allocating.
 */
const CHILD = `
process.stdin.once('data', () => {
  const held = Buffer.alloc(${HELD}, 1);
  process.stdout.write('ready ' + held.length + '\\n');
  let x = 1;
  for (;;) { x = (x * 1103515245 + 12345) % 2147483648; if (x === -1) process.stdout.write(String(held[0])); }
});
`;

const uid = randomUUID();
const sandboxId = randomBytes(32).toString('hex');
const podPath = podCgroupPath('cgroupfs', 'burstable', uid);
const sandboxPath = `${podPath}/kata_${sandboxId}`;

let v1: CgroupLayout;
let v2: CgroupLayout;
const cgroups: RealCgroup[] = [];
let child: ChildProcess | undefined;

function usageOf(result: CgroupUsage | SourceError): CgroupUsage {
  if (result instanceof SourceError) throw result;
  return result;
}

async function readKernel(dir: string, file: string): Promise<string> {
  return readFile(join(dir, sandboxPath, file), 'utf8');
}

function statValue(text: string, key: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${key} `));
  if (line === undefined) throw new Error(`no ${key} in memory.stat`);
  return Number(line.split(' ')[1]);
}

/** The first value `read` returns above `from`; bounded polling, never a wall-time assertion. */
async function pollUntilGrows(read: () => Promise<number>, from: number): Promise<number> {
  return waitFor(
    `a counter above ${from}`,
    async () => {
      const now = await read();
      return now > from ? now : undefined;
    },
    { intervalMs: 25, timeoutMs: 10_000 },
  );
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) {
    throw new Error('cgroups-real.test.ts must run as root: it creates cgroups under /sys/fs/cgroup (run the suite as root, as CI does)');
  }
  const host = await detectCgroupLayout(DEFAULT_CGROUP_ROOT);
  if (host.version !== 1 || !host.cpuDir || !host.memoryDir || !host.unifiedDir) {
    throw new Error(
      `cgroups-real.test.ts needs a hybrid host (v1 cpuacct + memory, v2 at ${DEFAULT_CGROUP_ROOT}/unified); found ${JSON.stringify(host)}`,
    );
  }
  v1 = host;
  v2 = await detectCgroupLayout(host.unifiedDir);
  // Pod first, then the Kata sandbox child inside it; destroy runs in reverse.
  try {
    cgroups.push(await RealCgroup.create([host.cpuDir, host.memoryDir], podPath));
    cgroups.push(await RealCgroup.create([host.cpuDir, host.memoryDir], sandboxPath));
    cgroups.push(await RealCgroup.create([host.unifiedDir], sandboxPath));
  } catch (err) {
    throw new Error(`cannot create test cgroups (is ${DEFAULT_CGROUP_ROOT} writable?): ${String(err)}`);
  }

  const proc = spawn(process.execPath, ['-e', CHILD], { stdio: ['pipe', 'pipe', 'inherit'] });
  child = proc;
  await once(proc, 'spawn');
  for (const cgroup of cgroups.slice(1)) await cgroup.attach(proc.pid as number);
  const ready = new Promise<void>((resolve, reject) => {
    proc.stdout?.once('data', () => resolve());
    proc.once('exit', (code, signal) => reject(new Error(`child exited early: ${code ?? signal}`)));
  });
  proc.stdin?.write('go\n');
  await ready;
});

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
  for (const cgroup of [...cgroups].reverse()) await cgroup.destroy();
});

describe('real cgroup v1 (cpuacct + memory)', () => {
  test('the host layout is hybrid and the kubelet hierarchy is v1', () => {
    expect(v1).toMatchObject({ kind: 'hybrid', version: 1 });
  });

  test('the pod index finds the pod by UID and the sandbox cgroup inside it', async () => {
    const pod = (await indexPodCgroups(v1)).get(uid);
    expect(pod).toEqual({ uid, path: podPath, qos: 'burstable', driver: 'cgroupfs' });
    expect((await findSandboxCgroups(v1, podPath, sandboxId)).sandbox).toEqual({ path: sandboxPath, foundBy: 'naming' });
  });

  test("CPU seconds lie between two reads of the kernel's cpuacct.usage, and grow", async () => {
    const cpuDir = v1.cpuDir as string;
    const before = BigInt((await readKernel(cpuDir, 'cpuacct.usage')).trim());
    const read = usageOf(await readCgroupUsage(v1, sandboxPath));
    const after = BigInt((await readKernel(cpuDir, 'cpuacct.usage')).trim());
    // ns → s by hand; 1 ns tolerance for the float conversion.
    expect(read.cpuSeconds).toBeGreaterThanOrEqual(Number(before) / 1e9 - 1e-9);
    expect(read.cpuSeconds).toBeLessThanOrEqual(Number(after) / 1e9 + 1e-9);
    const first = read.cpuSeconds as number;
    // The wait is the check: it throws, naming the counter, unless the CPU time grows past `first`.
    await pollUntilGrows(async () => usageOf(await readCgroupUsage(v1, sandboxPath)).cpuSeconds ?? 0, first);
  });

  test('the pod cgroup counts its sandbox child (hierarchical counters)', async () => {
    const sandbox = usageOf(await readCgroupUsage(v1, sandboxPath));
    const pod = usageOf(await readCgroupUsage(v1, podPath));
    expect(pod.cpuSeconds).toBeGreaterThanOrEqual(sandbox.cpuSeconds as number);
    expect(pod.memoryWorkingSetBytes).toBeGreaterThanOrEqual(HELD - SLACK);
  });

  test('memory working set holds the touched buffer and agrees with usage − total_inactive_file', async () => {
    const memDir = v1.memoryDir as string;
    const kernelWorkingSet = async () => {
      const usage = Number((await readKernel(memDir, 'memory.usage_in_bytes')).trim());
      return Math.max(usage - statValue(await readKernel(memDir, 'memory.stat'), 'total_inactive_file'), 0);
    };
    const before = await kernelWorkingSet();
    const read = usageOf(await readCgroupUsage(v1, sandboxPath));
    const after = await kernelWorkingSet();
    expect(read.memoryWorkingSetBytes).toBeGreaterThanOrEqual(HELD - SLACK);
    expect(read.memoryWorkingSetBytes).toBeGreaterThanOrEqual(Math.min(before, after) - MiB);
    expect(read.memoryWorkingSetBytes).toBeLessThanOrEqual(Math.max(before, after) + MiB);
    expect(read.memoryWorkingSetBytes).toBe((read.memoryUsageBytes as number) - (read.memoryInactiveFileBytes as number));
  });
});

describe('real cgroup v2 (unified mount)', () => {
  test("CPU seconds lie between two reads of the kernel's cpu.stat usage_usec, and grow", async () => {
    const dir = v2.cpuDir as string;
    const usageUsec = async () => statValue(await readKernel(dir, 'cpu.stat'), 'usage_usec');
    const before = await usageUsec();
    const read = usageOf(await readCgroupUsage(v2, sandboxPath));
    const after = await usageUsec();
    expect(read.version).toBe(2);
    expect(read.cpuSeconds).toBeGreaterThanOrEqual(before / 1e6 - 1e-9);
    expect(read.cpuSeconds).toBeLessThanOrEqual(after / 1e6 + 1e-9);
    const first = read.cpuSeconds as number;
    // The wait is the check: it throws, naming the counter, unless the CPU time grows past `first`.
    await pollUntilGrows(async () => usageOf(await readCgroupUsage(v2, sandboxPath)).cpuSeconds ?? 0, first);
  });

  test('memory follows the memory controller: undefined where it is not enabled, else the kernel value', async () => {
    const dir = v2.memoryDir as string;
    const current = await readKernel(dir, 'memory.current').catch(() => undefined);
    const read = usageOf(await readCgroupUsage(v2, sandboxPath));
    if (current === undefined) {
      expect(read.memoryUsageBytes).toBeUndefined();
      expect(read.memoryWorkingSetBytes).toBeUndefined();
    } else {
      expect(read.memoryWorkingSetBytes).toBeGreaterThanOrEqual(HELD - SLACK);
    }
  });

  test('a removed cgroup reads as not_found', async () => {
    const gone = await RealCgroup.create([v2.cpuDir as string], `${podPath}/kata_${'0'.repeat(64)}`);
    await gone.destroy();
    const result = await readCgroupUsage(v2, gone.relPath);
    expect(result).toBeInstanceOf(SourceError);
    expect((result as SourceError).reason).toBe('not_found');
  });
});

describe('sandbox cgroup locations on real cgroups', () => {
  test('a sandbox cgroup found once and then removed reads as not_found, and is not found once forgotten', async () => {
    const id = randomBytes(32).toString('hex');
    const hierarchies = [v1.cpuDir as string, v1.memoryDir as string];
    const cgroup = await RealCgroup.create(hierarchies, `${podPath}/kata_${id}`);
    const locations = new SandboxCgroupLocations();
    try {
      expect((await locations.find(v1, podPath, id)).sandbox).toEqual({ path: cgroup.relPath, foundBy: 'naming' });
    } finally {
      await cgroup.destroy();
    }
    // Kept until a read says it is gone: the owner then forgets it and the next find probes again.
    expect((await locations.find(v1, podPath, id)).sandbox?.path).toBe(cgroup.relPath);
    expect(await readCgroupUsage(v1, cgroup.relPath)).toMatchObject({ reason: 'not_found' });
    locations.forget(id);
    expect(await locations.find(v1, podPath, id)).toEqual({});
  });
});
