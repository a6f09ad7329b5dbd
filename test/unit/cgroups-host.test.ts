/**
 * The host families beyond CPU and memory usage: the decoders on the kernel's own formats, and
 * the cgroup reader on the fixture trees (v1, hybrid and v2, both drivers), with the numbers of
 * test/fixtures/cgroups/README.md ("Host files") worked out by hand.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, test } from 'vitest';

import { detectCgroupLayout, hostReads, readCgroupUsage, type CgroupLayout } from '../../src/scrapers/cgroups.ts';
import { SourceError } from '../../src/scrapers/source-error.ts';
import { podCgroupPath, type CgroupDriver } from '../../src/translate/cgroup-paths.ts';
import {
  decodeIoBytes,
  decodeMemoryLimit,
  decodeNetDev,
  decodeOomKills,
  decodePressure,
  decodeThrottledSeconds,
  isHostNamespace,
} from '../../src/translate/host-decode.ts';
import { addHostCounters, hostTotals } from '../../src/translate/host-totals.ts';
import { ALL_HOST_COLLECTORS, type CgroupUsage } from '../../src/translate/records.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/cgroups/', import.meta.url));
const G = '3f0d2a51-7c1e-4b9a-9a57-1c2d3e4f5a6b';
const B = '8b1e6c4d-2a3f-4e5d-8c7b-9a0f1e2d3c4b';
const SG = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

function fixture(...parts: string[]): string {
  return readFileSync(join(FIXTURES, ...parts), 'utf8');
}

describe('decoders', () => {
  const v2Pod = ['v2-cgroupfs-overhead', 'kubepods', `pod${G}`];
  const v1Memory = ['v1-cgroupfs-overhead', 'memory', 'kubepods', `pod${G}`];

  test('throttled time: v2 throttled_usec (µs), v1 throttled_time (ns), absent key undefined', () => {
    expect(decodeThrottledSeconds(2, fixture(...v2Pod, 'cpu.stat'))).toBe(12.5);
    expect(decodeThrottledSeconds(1, fixture('v1-cgroupfs-overhead', 'cpu,cpuacct', 'kubepods', `pod${G}`, 'cpu.stat'))).toBe(12.5);
    // A v2 cpu.stat without the cpu controller has only the usage keys.
    expect(decodeThrottledSeconds(2, 'usage_usec 5\nuser_usec 3\nsystem_usec 2\n')).toBeUndefined();
    // The unit is the version's: a v2 key read as v1 would be wrong by 1000.
    expect(decodeThrottledSeconds(1, 'throttled_usec 5\n')).toBeUndefined();
  });

  test('memory limit: bytes; v2 "max" and the v1 PAGE_COUNTER_MAX value are no limit', () => {
    expect(decodeMemoryLimit(fixture(...v2Pod, 'memory.max'))).toBe(1409286144);
    expect(decodeMemoryLimit(fixture(...v1Memory, 'memory.limit_in_bytes'))).toBe(1409286144);
    expect(decodeMemoryLimit('max\n')).toBeUndefined();
    expect(decodeMemoryLimit('9223372036854771712\n')).toBeUndefined();
    expect(decodeMemoryLimit('garbage')).toBeUndefined();
  });

  test('OOM kills: oom_kill of memory.events (not oom) and of v1 memory.oom_control', () => {
    expect(decodeOomKills(fixture(...v2Pod, 'memory.events'))).toBe(1);
    expect(decodeOomKills(fixture(...v1Memory, 'memory.oom_control'))).toBe(1);
    // Before 4.13 memory.oom_control has no oom_kill line.
    expect(decodeOomKills('oom_kill_disable 0\nunder_oom 0\n')).toBeUndefined();
  });

  test('pressure: total= of some and full in seconds; a malformed line is skipped', () => {
    expect(decodePressure(fixture(...v2Pod, 'cpu.pressure'))).toEqual({ some: 3, full: 1 });
    expect(decodePressure(fixture(...v2Pod, 'io.pressure'))).toEqual({ some: 0.5, full: 0.4 });
    // Kernels before 5.13 print no full line in cpu.pressure.
    expect(decodePressure('some avg10=1.50 avg60=0.20 avg300=0.00 total=2000000\n')).toEqual({ some: 2 });
    expect(decodePressure('some avg10=x total=5\nfull total=7\n')).toEqual({});
  });

  test('block I/O: every device summed; v1 Sync/Async/Total lines are not counted twice', () => {
    // Pod: 8:0 1 MiB read 4 MiB written, 253:0 512 KiB read.
    const want = { readBytes: 1572864, writtenBytes: 4194304 };
    expect(decodeIoBytes(2, fixture(...v2Pod, 'io.stat'))).toEqual(want);
    expect(
      decodeIoBytes(1, fixture('v1-cgroupfs-overhead', 'blkio', 'kubepods', `pod${G}`, 'blkio.throttle.io_service_bytes_recursive')),
    ).toEqual(want);
    // No I/O yet: v2 prints nothing, v1 a bare Total.
    expect(decodeIoBytes(2, '')).toEqual({ readBytes: 0, writtenBytes: 0 });
    expect(decodeIoBytes(1, 'Total 0\n')).toEqual({ readBytes: 0, writtenBytes: 0 });
    expect(decodeIoBytes(2, 'not io.stat at all\n')).toBeUndefined();
  });

  // proc(5) /proc/net/dev: the kernel's dev_seq_show layout, two header lines.
  const NET_DEV = [
    'Inter-|   Receive                                                |  Transmit',
    ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
    '    lo:     900      10    0    0    0     0          0         0      900      10    0    0    0     0       0          0',
    '  eth0: 5000000    4000    0    0    0     0          0         0   700000     900    0    0    0     0       0          0',
    'tap0_kata:  700000     900    0    0    0     0          0         0  5000000    4000    0    0    0     0       0          0',
    '  eth1:    1000       5    0    0    0     0          0         0     2000       6    0    0    0     0       0          0',
    '',
  ].join('\n');

  test('net/dev: the pod interfaces only (no lo, no *_kata plumbing), direction as the pod sees it', () => {
    expect(decodeNetDev(NET_DEV)).toEqual({
      receiveBytes: 5001000,
      transmitBytes: 702000,
      interfaces: ['eth0', 'eth1', 'lo', 'tap0_kata'],
    });
    expect(decodeNetDev('Inter-|\n face |\n')).toBeUndefined();
    // A line with too few fields or a non-number is skipped, not half-counted.
    expect(decodeNetDev(`${NET_DEV}  bad0: 1 2 3\n  bad1: x 0 0 0 0 0 0 0 9 0 0 0 0 0 0 0\n`)?.receiveBytes).toBe(5001000);
  });

  test("a namespace with exactly the host init's interfaces is the host's", () => {
    const pod = decodeNetDev(NET_DEV)!;
    const host = decodeNetDev(NET_DEV.replace('tap0_kata', 'cni0'))!;
    expect(isHostNamespace(pod, host)).toBe(false);
    expect(isHostNamespace(host, host)).toBe(true);
    expect(isHostNamespace(pod, undefined)).toBe(false);
  });
});

describe('host totals', () => {
  const pod: CgroupUsage = {
    path: '/p',
    version: 2,
    cpuThrottledSeconds: 2,
    oomKills: 0,
    diskReadBytes: 10,
    diskWrittenBytes: 20,
    memoryLimitBytes: 100,
    pressure: { cpu: { some: 1 } },
  };
  const overhead: CgroupUsage = {
    path: '/o',
    version: 2,
    cpuThrottledSeconds: 0,
    oomKills: 1,
    diskReadBytes: 1,
    diskWrittenBytes: 2,
    memoryLimitBytes: 5,
  };

  test("counters add the overhead cgroup; limit and pressure are the pod cgroup's own", () => {
    expect(hostTotals(pod, overhead)).toEqual({
      cpuThrottledSeconds: 2,
      oomKills: 1,
      diskReadBytes: 11,
      diskWrittenBytes: 22,
      memoryLimitBytes: 100,
      pressure: { cpu: { some: 1 } },
      fileMissing: false,
    });
  });

  test('a counter one part lacks is not published as a partial sum, and the missing file is said', () => {
    const lacking: CgroupUsage = { path: '/o', version: 2, cpuThrottledSeconds: 0, missingFiles: ['io.stat', 'memory.events'] };
    const totals = hostTotals(pod, lacking);
    expect(totals.diskWrittenBytes).toBeUndefined();
    expect(totals.oomKills).toBeUndefined();
    expect(totals.cpuThrottledSeconds).toBe(2);
    expect(totals.fileMissing).toBe(true);
    const summed = addHostCounters(overhead, lacking);
    expect(summed.oomKills).toBeUndefined();
    expect(summed.missingFiles).toEqual(['io.stat', 'memory.events']);
  });
});

interface HostTree {
  tree: string;
  kind: CgroupLayout['kind'];
  version: 1 | 2;
  driver: CgroupDriver;
}

const HOST_TREES: HostTree[] = [
  { tree: 'v1-cgroupfs-overhead', kind: 'v1', version: 1, driver: 'cgroupfs' },
  { tree: 'v1-systemd-overhead', kind: 'hybrid', version: 1, driver: 'systemd' },
  { tree: 'v2-cgroupfs-overhead', kind: 'v2', version: 2, driver: 'cgroupfs' },
  { tree: 'v2-systemd-overhead', kind: 'v2', version: 2, driver: 'systemd' },
];

describe.each(HOST_TREES)('host files in fixture tree $tree', (c) => {
  const root = join(FIXTURES, c.tree);
  const podG = podCgroupPath(c.driver, 'guaranteed', G);

  test("PSI is there only on v2 (the hybrid tree's kubelet uses v1)", async () => {
    expect((await detectCgroupLayout(root)).pressure).toBe(c.version === 2);
  });

  test('the pod cgroup reads every group of its version, each from its controller', async () => {
    const layout = await detectCgroupLayout(root);
    const usage = (await readCgroupUsage(layout, podG, hostReads(layout, ALL_HOST_COLLECTORS, 'pod'))) as CgroupUsage;
    expect(usage).not.toBeInstanceOf(SourceError);
    expect(usage).toMatchObject({
      cpuThrottledSeconds: 12.5,
      memoryLimitBytes: 1409286144,
      // v1 counts a kill only in the victim's cgroup: the pod's own 1 plus its sandbox child's 2.
      oomKills: c.version === 1 ? 3 : 1,
      diskReadBytes: 1572864,
      diskWrittenBytes: 4194304,
    });
    expect(usage.pressure).toEqual(
      c.version === 2 ? { cpu: { some: 3, full: 1 }, memory: { some: 0.25, full: 0.125 }, io: { some: 0.5, full: 0.4 } } : undefined,
    );
    expect(usage.missingFiles).toBeUndefined();
  });

  test('the overhead cgroup reads only the summed groups: no limit, no pressure', async () => {
    const layout = await detectCgroupLayout(root);
    const usage = (await readCgroupUsage(layout, `/kata_overhead/${SG}`, hostReads(layout, ALL_HOST_COLLECTORS, 'outside'))) as CgroupUsage;
    expect(usage).toMatchObject({ cpuThrottledSeconds: 0, oomKills: 1, diskReadBytes: 0, diskWrittenBytes: 2097152 });
    expect(usage.memoryLimitBytes).toBeUndefined();
    expect(usage.pressure).toBeUndefined();
    expect(usage.missingFiles).toBeUndefined();
  });

  test('an unlimited pod has no limit and no missing-file report for it; files it lacks are named', async () => {
    const layout = await detectCgroupLayout(root);
    const podB = podCgroupPath(c.driver, 'burstable', B);
    const usage = (await readCgroupUsage(
      layout,
      podB,
      hostReads(layout, { throttling: false, memory: true, pressure: false, disk: true, network: false }, 'pod'),
    )) as CgroupUsage;
    expect(usage.memoryLimitBytes).toBeUndefined();
    const names = c.version === 2 ? ['memory.events', 'io.stat'] : ['memory.oom_control', 'blkio.throttle.io_service_bytes_recursive'];
    expect(usage.missingFiles).toEqual(names);
  });

  test('a disabled collector reads nothing of its group', async () => {
    const layout = await detectCgroupLayout(root);
    const none = { throttling: false, memory: false, pressure: false, disk: false, network: false };
    const usage = (await readCgroupUsage(layout, podG, hostReads(layout, none, 'pod'))) as CgroupUsage;
    for (const field of [
      'cpuThrottledSeconds',
      'memoryLimitBytes',
      'oomKills',
      'pressure',
      'diskReadBytes',
      'diskWrittenBytes',
      'missingFiles',
    ] as const) {
      expect(usage[field]).toBeUndefined();
    }
  });
});

test('a v2 hierarchy without PSI files says so at the layout', async () => {
  expect((await detectCgroupLayout(join(FIXTURES, 'v2-cgroupfs-sandbox-only'))).pressure).toBe(false);
});
