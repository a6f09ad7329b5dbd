/**
 * Usage records, unit level: the accumulator (GiB-seconds, peaks, unions, the record's schema),
 * the final sum of a pod's cgroups, the final read on a lab cgroup tree, the ledger, and the
 * recorder's once-only rules with a fake output.
 */

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseCommandLine, type Config } from '../../src/config.ts';
import { LabCgroupTree } from '../../src/lab/cgroup-tree.ts';
import { silentLogger } from '../../src/log.ts';
import { FinalCgroupReader } from '../../src/scrapers/usage-final-read.ts';
import { ALL_HOST_COLLECTORS, type PodRecord } from '../../src/translate/records.ts';
import { SelfStats } from '../../src/translate/self-stats.ts';
import type { NodeSnapshot, PodSnapshot } from '../../src/translate/snapshot.ts';
import { finalHostRead } from '../../src/translate/usage-final.ts';
import { UsageAccumulator, type PodEnd, type UsageRecord } from '../../src/translate/usage.ts';
import { LEDGER_FILE, MAX_ENTRIES, RETENTION_MS, UsageLedger, parseLedger, prune } from '../../src/usage-ledger.ts';
import { UsageRecorder } from '../../src/usage-recorder.ts';

const GIB = 2 ** 30;
const T0 = Date.parse('2026-06-01T12:00:00Z');
const UID = '0b6e0f4e-1111-4222-8333-444455556666';

/** A fresh directory per test, for cgroup trees and ledgers. */
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kmb-usage-unit-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function pod(overrides: Partial<PodSnapshot> = {}): PodSnapshot {
  return { namespace: 'ci', pod: 'build', uid: UID, sandboxId: 'sb1', runtimeHandler: 'kata-qemu', gaps: [], containers: [], ...overrides };
}

function snapshot(atMs: number, pods: PodSnapshot[], extra: Partial<NodeSnapshot> = {}): NodeSnapshot {
  const up = { up: true, durationSeconds: 0 };
  return { takenAtMs: atMs, pods, sandboxes: [], sources: { kubelet: up, shims: up, cgroups: up, pods: up }, ...extra };
}

/** `startedAt` null: a pod without status.startTime. */
function end(atMs: number, startedAt: number | null = T0 / 1000): PodEnd {
  return {
    atMs,
    reason: 'succeeded',
    node: 'n1',
    pod: { namespace: 'ci', name: 'build', uid: UID, runtimeHandler: 'kata-qemu', ...(startedAt === null ? {} : { startedAt }) },
  };
}

describe('UsageAccumulator', () => {
  it('integrates the working set: held back to the start, trapezoids between observations, held to the end', () => {
    const acc = new UsageAccumulator();
    acc.observe(snapshot(T0 + 10_000, [pod({ hostMemoryWorkingSetBytes: 1 * GIB })]));
    acc.observe(snapshot(T0 + 20_000, [pod({ hostMemoryWorkingSetBytes: 3 * GIB })]));
    const record = acc.finish(end(T0 + 25_000), { memoryWorkingSetBytes: 3 * GIB });
    // 10 s × 1 GiB before the first, (1 + 3) / 2 × 10 s, then 3 GiB × 5 s to the final read.
    expect(record.host_memory_gib_seconds).toBe(10 + 20 + 15);
    expect(record.duration_seconds).toBe(25);
    expect(acc.size).toBe(0);
  });

  it("takes the kernel's peak when the final read has one, else the highest working set seen", () => {
    const acc = new UsageAccumulator();
    acc.observe(snapshot(T0 + 1000, [pod({ hostMemoryWorkingSetBytes: 5 * GIB })]));
    acc.observe(snapshot(T0 + 2000, [pod({ hostMemoryWorkingSetBytes: 2 * GIB })]));
    const observed = acc.finish(end(T0 + 3000), undefined);
    expect(observed).toMatchObject({ host_memory_peak_bytes: 5 * GIB, host_memory_peak_source: 'observed_working_set', final_read: false });
    acc.observe(snapshot(T0 + 1000, [pod({ hostMemoryWorkingSetBytes: 5 * GIB })]));
    const kernel = acc.finish(end(T0 + 3000), { memoryPeakBytes: 6 * GIB });
    expect(kernel).toMatchObject({ host_memory_peak_bytes: 6 * GIB, host_memory_peak_source: 'kernel', final_read: true });
  });

  it("unions the gap reasons and audit findings of the pod's life, and keeps each container's latest value and source", () => {
    const acc = new UsageAccumulator();
    const audit = {
      untrustedPods: 1,
      unsandboxed: [],
      privilegedContainers: [{ namespace: 'ci', pod: 'build', container: 'c', hostDevices: 'true' as const }],
      hostNamespaces: [],
      hostPaths: [{ namespace: 'ci', pod: 'other' }],
      kataAnnotations: [],
      configs: [],
    };
    acc.observe(
      snapshot(T0 + 1000, [pod({ gaps: ['shim_timeout'], containers: [{ name: 'c', cpuSeconds: 4, source: 'kubelet' }] })], { audit }),
    );
    acc.observe(
      snapshot(T0 + 2000, [
        pod({
          gaps: ['kubelet_unreachable'],
          containers: [{ name: 'c', gap: 'kubelet_unreachable', cpuSeconds: 5, source: 'guest_estimate' }],
        }),
      ]),
    );
    acc.observe(snapshot(T0 + 3000, [pod({ gaps: ['shim_timeout'], containers: [{ name: 'c', gap: 'kubelet_zero' }] })]));
    const record = acc.finish(end(T0 + 4000), undefined);
    expect(record.gaps).toEqual(['kubelet_unreachable', 'shim_timeout']);
    expect(record.container_gaps).toEqual({ c: ['kubelet_unreachable', 'kubelet_zero'] });
    expect(record.audit_findings).toEqual(['privileged_container:c:host_devices=true']);
    expect(record.containers).toEqual([
      { name: 'c', cpu_seconds: 5, source: 'guest_estimate', read_at: new Date(T0 + 2000).toISOString() },
    ]);
    expect(record.collections).toBe(3);
  });

  it("takes the host counters from the final read, splits the CPU since the last collection as the overhead's share was", () => {
    const acc = new UsageAccumulator();
    acc.observe(
      snapshot(T0 + 1000, [
        pod({ hostCpuSeconds: 10, overheadCpuSeconds: 2, hostOomKills: 0, guestOomKills: 1, hostNetworkReceiveBytes: 7 }),
      ]),
    );
    const record = acc.finish(end(T0 + 2000), {
      cpuSeconds: 15,
      oomKills: 2,
      cpuThrottledSeconds: 3,
      diskReadBytes: 8,
      diskWrittenBytes: 9,
    });
    expect(record).toMatchObject({
      host_cpu_seconds: 15,
      overhead_cpu_seconds: 3,
      host_oom_kills: 2,
      guest_oom_kills: 1,
      host_cpu_throttled_seconds: 3,
      host_network_receive_bytes: 7,
      host_network_transmit_bytes: null,
      host_disk_read_bytes: 8,
      host_disk_written_bytes: 9,
    });
  });

  it('ignores a collection taken before one it already has, and pods already recorded', () => {
    const acc = new UsageAccumulator();
    acc.observe(snapshot(T0 + 2000, [pod({ hostCpuSeconds: 20 })]));
    acc.observe(snapshot(T0 + 1000, [pod({ hostCpuSeconds: 10 })]));
    acc.observe(snapshot(T0 + 3000, [pod({ uid: 'other' })]), (uid) => uid === 'other');
    expect(acc.size).toBe(1);
    expect(acc.finish(end(T0 + 4000), undefined)).toMatchObject({ host_cpu_seconds: 20, collections: 1 });
  });

  it('writes every field of the schema, null when unknown, for a pod never observed', () => {
    const record = new UsageAccumulator().finish(end(T0 + 9000, null), undefined);
    const keys: (keyof UsageRecord)[] = [
      'kind',
      'schema',
      'namespace',
      'pod',
      'uid',
      'node',
      'runtime_handler',
      'sandbox_id',
      'labels',
      'start',
      'end',
      'duration_seconds',
      'end_reason',
      'final_read',
      'collections',
      'host_cpu_seconds',
      'overhead_cpu_seconds',
      'containers',
      'host_memory_peak_bytes',
      'host_memory_peak_source',
      'host_memory_gib_seconds',
      'host_cpu_throttled_seconds',
      'host_oom_kills',
      'guest_oom_kills',
      'host_network_receive_bytes',
      'host_network_transmit_bytes',
      'host_disk_read_bytes',
      'host_disk_written_bytes',
      'gaps',
      'container_gaps',
      'audit_findings',
    ];
    expect(Object.keys(record).sort()).toEqual([...keys].sort());
    expect(record).toMatchObject({
      sandbox_id: null,
      host_cpu_seconds: null,
      host_memory_gib_seconds: null,
      duration_seconds: 0,
      collections: 0,
    });
  });
});

describe('finalHostRead', () => {
  const usage = (cpuSeconds: number, ws: number) => ({
    path: '/p',
    version: 2 as const,
    cpuSeconds,
    memoryWorkingSetBytes: ws,
    oomKills: 1,
    diskReadBytes: 10,
  });

  it('sums the pod cgroup and the cgroups outside it, peaks included', () => {
    expect(finalHostRead({ usage: usage(5, 100), peakBytes: 300 }, [{ usage: usage(1, 20), peakBytes: 40 }])).toEqual({
      cpuSeconds: 6,
      memoryWorkingSetBytes: 120,
      memoryPeakBytes: 340,
      oomKills: 2,
      diskReadBytes: 20,
    });
  });

  it('gives no total when a part outside could not be read, and no peak when a part keeps none', () => {
    expect(finalHostRead({ usage: usage(5, 100), peakBytes: 300 }, [undefined])).toBeUndefined();
    expect(finalHostRead({ usage: usage(5, 100), peakBytes: 300 }, [{ usage: usage(1, 20) }])?.memoryPeakBytes).toBeUndefined();
  });
});

describe('FinalCgroupReader on a lab tree', () => {
  for (const version of [1, 2] as const) {
    it(`reads the pod and overhead cgroups with the kernel's peaks (cgroup v${version}), nothing once they are gone`, async () => {
      const tree = await LabCgroupTree.create(dir, { version, driver: 'cgroupfs' });
      const sandboxId = 'a'.repeat(64);
      await tree.addPod({
        uid: UID,
        qos: 'burstable',
        sandboxes: [
          {
            id: sandboxId,
            sandboxCgroupOnly: false,
            usage: { cpuSeconds: 12, memoryUsageBytes: 500, inactiveFileBytes: 100, memoryPeakBytes: 900 },
            overheadUsage: { cpuSeconds: 3, memoryUsageBytes: 50, memoryPeakBytes: 70 },
          },
        ],
      });
      const reader = new FinalCgroupReader(dir, ALL_HOST_COLLECTORS);
      expect(await reader.read(UID, sandboxId)).toMatchObject({ cpuSeconds: 15, memoryWorkingSetBytes: 450, memoryPeakBytes: 970 });
      expect(await reader.read(UID, undefined)).toMatchObject({ cpuSeconds: 12, memoryPeakBytes: 900 });
      await tree.removePod(UID);
      expect(await reader.read(UID, sandboxId)).toBeUndefined();
    });
  }
});

describe('UsageLedger', () => {
  it('parses its lines and skips what it did not write (a torn last line, junk)', () => {
    expect([...parseLedger(`${UID} 1000\nnot a line\n${'x'.repeat(300)} 5\n0b6e0f4e-11`)]).toEqual([[UID, 1000]]);
  });

  it('keeps a uid for the retention, and the newest entries past the bound', () => {
    const entries = new Map([
      ['old', 0],
      ['new', RETENTION_MS],
    ]);
    expect([...prune(entries, RETENTION_MS + 1).keys()]).toEqual(['new']);
    const many = new Map(Array.from({ length: MAX_ENTRIES + 2 }, (_, i) => [`u${i}`, i] as [string, number]));
    const kept = prune(many, MAX_ENTRIES);
    expect(kept.size).toBe(MAX_ENTRIES);
    expect(kept.has('u0')).toBe(false);
    expect(kept.has(`u${MAX_ENTRIES + 1}`)).toBe(true);
  });

  it('remembers what it persisted across a reopen, not what it only noted, and compacts when it opens', async () => {
    const stateDir = join(dir, 'state');
    const ledger = await UsageLedger.open(stateDir, () => T0);
    await ledger.add(UID, T0);
    await ledger.add('noted-only', T0, false);
    await ledger.close();
    await writeFile(
      join(stateDir, LEDGER_FILE),
      `${await readFile(join(stateDir, LEDGER_FILE), 'utf8')}expired ${T0 - RETENTION_MS - 1}\ntorn 12`,
    );
    const reopened = await UsageLedger.open(stateDir, () => T0);
    expect(reopened.has(UID)).toBe(true);
    expect(reopened.has('noted-only')).toBe(false);
    await reopened.close();
    expect(await readFile(join(stateDir, LEDGER_FILE), 'utf8')).toBe(`${UID} ${T0}\n`);
  });
});

describe('UsageRecorder', () => {
  const kataPod: PodRecord = {
    uid: UID,
    namespace: 'ci',
    name: 'build',
    runtimeClassName: 'kata-qemu',
    runtimeHandler: 'kata-qemu',
    containers: [],
    containerStatuses: [],
  };

  async function recorder(options: { final?: boolean; failWrite?: boolean } = {}) {
    const lines: string[] = [];
    const self = new SelfStats();
    const finalReads: string[] = [];
    const usage = new UsageRecorder({
      config: { nodeName: 'n1', runtimeHandlers: /^kata/ },
      logger: silentLogger,
      self,
      sink: {
        write: async (line) => {
          if (options.failWrite) throw new Error('disk full');
          lines.push(line);
        },
        close: async () => undefined,
      },
      ledger: await UsageLedger.open(undefined, () => T0),
      finalRead: async (uid) => {
        finalReads.push(uid);
        return options.final === false ? undefined : { cpuSeconds: 1 };
      },
      now: () => T0 + 5000,
    });
    return { usage, lines, self, finalReads };
  }

  it('writes one record for a pod that ends twice (Succeeded, then deleted), and none for a later snapshot of it', async () => {
    const { usage, lines, self } = await recorder();
    usage.observe(snapshot(T0 + 1000, [pod()]));
    usage.podEnded(kataPod, 'succeeded');
    usage.podEnded(kataPod, 'deleted');
    await usage.settled();
    usage.observe(snapshot(T0 + 2000, [pod()]));
    usage.podEnded(kataPod, 'deleted');
    await usage.settled();
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ uid: UID, end_reason: 'succeeded', collections: 1 });
    expect(self.usageRecords).toEqual(
      new Map([
        ['written', 1],
        ['failed', 0],
        ['missed', 0],
      ]),
    );
  });

  it('counts a pod that ended unseen with its cgroups gone as missed, and writes nothing for it', async () => {
    const { usage, lines, self } = await recorder({ final: false });
    usage.podEnded(kataPod, 'deleted');
    await usage.settled();
    expect(lines).toEqual([]);
    expect(self.usageRecords).toEqual(
      new Map([
        ['written', 0],
        ['failed', 0],
        ['missed', 1],
      ]),
    );
  });

  it('records a pod that ended unseen from its cgroups, and ignores pods out of scope', async () => {
    const { usage, lines, finalReads } = await recorder();
    usage.podEnded({ ...kataPod, uid: 'runc', runtimeClassName: undefined, runtimeHandler: undefined }, 'succeeded');
    usage.podEnded(kataPod, 'failed');
    await usage.settled();
    expect(finalReads).toEqual([UID]);
    expect(lines.map((line) => JSON.parse(line) as UsageRecord)).toMatchObject([
      { uid: UID, collections: 0, final_read: true, host_cpu_seconds: 1 },
    ]);
  });

  it('counts a record the output refused as failed, once', async () => {
    const { usage, self } = await recorder({ failWrite: true });
    usage.observe(snapshot(T0 + 1000, [pod()]));
    usage.podEnded(kataPod, 'succeeded');
    await usage.settled();
    usage.podEnded(kataPod, 'deleted');
    await usage.settled();
    expect(self.usageRecords).toEqual(
      new Map([
        ['written', 0],
        ['failed', 1],
        ['missed', 0],
      ]),
    );
  });
});

describe('--usage.output and --usage.state-dir', () => {
  const config = (...flags: string[]): Config => {
    const parsed = parseCommandLine(['--node.name=n1', '--kubelet.url=https://10.0.0.5:10250', ...flags], {});
    if (parsed.kind !== 'run') throw new Error('not a run');
    return parsed.config;
  };

  it('defaults to stdout without a ledger directory', () => {
    expect(config()).toMatchObject({ usageOutput: { kind: 'stdout' }, usageStateDir: undefined });
  });

  it('takes off, a file path and a ledger directory', () => {
    expect(config('--usage.output=off').usageOutput).toEqual({ kind: 'off' });
    expect(config('--usage.output=/var/log/usage.jsonl', '--usage.state-dir=/var/lib/kmb')).toMatchObject({
      usageOutput: { kind: 'file', path: '/var/log/usage.jsonl' },
      usageStateDir: '/var/lib/kmb',
    });
    expect(() => config('--usage.output=')).toThrow(/--usage.output must be stdout, off or a file path/);
  });
});
