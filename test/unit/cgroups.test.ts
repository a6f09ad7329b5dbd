import fc from 'fast-check';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, beforeEach, describe, expect, test, vi } from 'vitest';

import { LabCgroupTree } from '../../src/lab/cgroup-tree.ts';
import {
  SandboxCgroupLocations,
  detectCgroupLayout,
  findSandboxCgroups,
  indexPodCgroups,
  readCgroupUsage,
  type CgroupLayout,
} from '../../src/scrapers/cgroups.ts';
import { SourceError } from '../../src/scrapers/source-error.ts';
import {
  decodeCgroupUsage,
  microsecondsToSeconds,
  nanosecondsToSeconds,
  flatKeyedValue,
  parseFlatKeyed,
  parseSingleValue,
  workingSetBytes,
} from '../../src/translate/cgroup-decode.ts';
import {
  expandSlice,
  hintCandidates,
  parsePodCgroupName,
  podCgroupPath,
  podUidFromCgroupPath,
  systemdCgroupsPathToDir,
} from '../../src/translate/cgroup-paths.ts';
import type { CgroupUsage } from '../../src/translate/records.ts';

/** Every path lstat'd (node:fs is passed through, only watched): how cgroups are probed. */
const lstatted = vi.hoisted((): string[] => []);
vi.mock('node:fs', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:fs')>();
  const { recordingPaths } = await import('../support/fs-watch.ts');
  return { ...original, lstatSync: recordingPaths(original.lstatSync, lstatted) };
});

const FIXTURES = fileURLToPath(new URL('../fixtures/cgroups/', import.meta.url));
const MiB = 1048576;

// The spec the fixture trees were generated from (test/fixtures/cgroups/README.md).
const G = '3f0d2a51-7c1e-4b9a-9a57-1c2d3e4f5a6b';
const B = '8b1e6c4d-2a3f-4e5d-8c7b-9a0f1e2d3c4b';
const E = 'c5d4e3f2-1a0b-4c9d-8e7f-6a5b4c3d2e1f';
const SG = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const SB = '5feceb66ffc86f38d952786c6d696c79c2dbc239dd4e91b46729d73a27fb57e9';

/** Expected decoded values: working set = usage − inactive_file, worked out by hand. */
const POD_G = { cpuSeconds: 1834.75, memoryUsageBytes: 516 * MiB, memoryInactiveFileBytes: 64 * MiB, memoryWorkingSetBytes: 452 * MiB };
const POD_B = { cpuSeconds: 92.625, memoryUsageBytes: 302 * MiB, memoryInactiveFileBytes: 20 * MiB, memoryWorkingSetBytes: 282 * MiB };
// 8192000 − 9011200 < 0 → floored at 0.
const POD_E = { cpuSeconds: 3.125, memoryUsageBytes: 8192000, memoryInactiveFileBytes: 9011200, memoryWorkingSetBytes: 0 };
const SANDBOX_G = { cpuSeconds: 1834.25, memoryUsageBytes: 512 * MiB, memoryInactiveFileBytes: 64 * MiB, memoryWorkingSetBytes: 448 * MiB };
const SANDBOX_B = { cpuSeconds: 92.5, memoryUsageBytes: 300 * MiB, memoryInactiveFileBytes: 20 * MiB, memoryWorkingSetBytes: 280 * MiB };
const OVERHEAD_G = { cpuSeconds: 41.5, memoryUsageBytes: 150 * MiB, memoryInactiveFileBytes: MiB, memoryWorkingSetBytes: 149 * MiB };
const OVERHEAD_B = { cpuSeconds: 12.75, memoryUsageBytes: 100 * MiB, memoryInactiveFileBytes: 0, memoryWorkingSetBytes: 100 * MiB };

function usageOf(result: CgroupUsage | SourceError): CgroupUsage {
  if (result instanceof SourceError) throw result;
  return result;
}

// ─── pure decoding ────────────────────────────────────────────────────────────

describe('cgroup-decode', () => {
  test('single-value files: integers, max, and rubbish', () => {
    expect(parseSingleValue('536870912\n')).toBe(536870912n);
    expect(parseSingleValue('max\n')).toBe('max');
    expect(parseSingleValue('')).toBeUndefined();
    expect(parseSingleValue('-1\n')).toBeUndefined();
    expect(parseSingleValue('12 34\n')).toBeUndefined();
  });

  test('flat-keyed files: first key wins, malformed lines are skipped', () => {
    const parsed = parseFlatKeyed('usage_usec 10\nuser_usec 7\nbroken\nsystem_usec x\nusage_usec 99\nextra 1 2\n\n');
    expect([...parsed]).toEqual([
      ['usage_usec', 10n],
      ['user_usec', 7n],
    ]);
  });

  test('flatKeyedValue answers as parseFlatKeyed does, for any text and key', () => {
    const token = fc.constantFrom('usage_usec', 'inactive_file', 'total_inactive_file', 'x', '12', 'max', '-3', '');
    const blank = fc.constantFrom(' ', '  ', '\t', '');
    const line = fc.array(fc.tuple(blank, token), { maxLength: 4 }).map((parts) => parts.map(([b, t]) => b + t).join(' '));
    const text = fc.array(fc.oneof(line, fc.string({ maxLength: 12 })), { maxLength: 8 }).map((lines) => lines.join('\n'));
    fc.assert(
      fc.property(text, token, (body, key) => {
        expect(flatKeyedValue(body, key)).toBe(parseFlatKeyed(body).get(key));
      }),
      { numRuns: 2000 },
    );
    // The real case: v1 reads total_inactive_file, which contains inactive_file.
    const stat = 'cache 5\ninactive_file 7\ntotal_cache 9\ntotal_inactive_file 11\n';
    expect(flatKeyedValue(stat, 'total_inactive_file')).toBe(11n);
    expect(flatKeyedValue(stat, 'inactive_file')).toBe(7n);
  });

  test('time conversions keep precision past 2^53 nanoseconds', () => {
    // 10^18 ns + 5 ns: a float division would lose the 5 ns; whole seconds stay exact.
    expect(nanosecondsToSeconds(1_000_000_000_000_000_005n)).toBe(1_000_000_000 + 5e-9);
    expect(nanosecondsToSeconds(1_500_000_000n)).toBe(1.5);
    expect(microsecondsToSeconds(92_625_000n)).toBe(92.625);
  });

  test('working set floors at 0 and equals usage without inactive_file', () => {
    expect(workingSetBytes(100, 30)).toBe(70);
    expect(workingSetBytes(100, 130)).toBe(0);
    expect(workingSetBytes(100, undefined)).toBe(100);
    expect(workingSetBytes(undefined, 30)).toBeUndefined();
  });

  test('v1 uses total_inactive_file (the subtree), not the local inactive_file', () => {
    const stat = 'inactive_file 4096\nhierarchical_memory_limit 9223372036854771712\ntotal_inactive_file 1000\n';
    const usage = decodeCgroupUsage('/kubepods/podx', 1, { cpu: '2500000000\n', memoryUsage: '5000\n', memoryStat: stat });
    expect(usage).toEqual({
      path: '/kubepods/podx',
      version: 1,
      cpuSeconds: 2.5,
      memoryUsageBytes: 5000,
      memoryInactiveFileBytes: 1000,
      memoryWorkingSetBytes: 4000,
    });
  });

  test('v2 reads usage_usec and inactive_file; absent files leave fields undefined', () => {
    const usage = decodeCgroupUsage('/a', 2, { cpu: 'usage_usec 1250000\nuser_usec 1000000\nsystem_usec 250000\n' });
    expect(usage).toEqual({ path: '/a', version: 2, cpuSeconds: 1.25 });
  });
});

// ─── pure naming ──────────────────────────────────────────────────────────────

describe('cgroup-paths', () => {
  test('pod cgroup paths for both drivers and every QoS class', () => {
    expect(podCgroupPath('cgroupfs', 'guaranteed', G)).toBe(`/kubepods/pod${G}`);
    expect(podCgroupPath('cgroupfs', 'burstable', B)).toBe(`/kubepods/burstable/pod${B}`);
    expect(podCgroupPath('cgroupfs', 'besteffort', E)).toBe(`/kubepods/besteffort/pod${E}`);
    expect(podCgroupPath('systemd', 'guaranteed', G)).toBe('/kubepods.slice/kubepods-pod3f0d2a51_7c1e_4b9a_9a57_1c2d3e4f5a6b.slice');
    expect(podCgroupPath('systemd', 'burstable', B)).toBe(
      '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8b1e6c4d_2a3f_4e5d_8c7b_9a0f1e2d3c4b.slice',
    );
    expect(podCgroupPath('systemd', 'besteffort', E)).toBe(
      '/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podc5d4e3f2_1a0b_4c9d_8e7f_6a5b4c3d2e1f.slice',
    );
  });

  test('pod directory names parse back to the UID; other names do not', () => {
    expect(parsePodCgroupName(`pod${G}`)).toEqual({ uid: G, driver: 'cgroupfs' });
    expect(parsePodCgroupName('kubepods-besteffort-podc5d4e3f2_1a0b_4c9d_8e7f_6a5b4c3d2e1f.slice')).toEqual({
      uid: E,
      driver: 'systemd',
      qos: 'besteffort',
    });
    expect(parsePodCgroupName('kubepods-pod3f0d2a51_7c1e_4b9a_9a57_1c2d3e4f5a6b.slice')).toEqual({
      uid: G,
      driver: 'systemd',
      qos: 'guaranteed',
    });
    // Static pods have a 32-hex-digit UID.
    expect(parsePodCgroupName('pod6f9a1f3b2c4d5e6f7a8b9c0d1e2f3a4b')?.uid).toBe('6f9a1f3b2c4d5e6f7a8b9c0d1e2f3a4b');
    for (const name of ['burstable', 'kubepods-burstable.slice', 'podnot-a-uid', `kata_${SG}`, 'pod']) {
      expect(parsePodCgroupName(name)).toBeUndefined();
    }
  });

  test('systemd slices expand to nested directories', () => {
    expect(expandSlice('kubepods-burstable-podab_cd.slice')).toBe(
      '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podab_cd.slice',
    );
    expect(expandSlice('-.slice')).toBe('');
    expect(expandSlice('a--b.slice')).toBeUndefined();
    expect(systemdCgroupsPathToDir(`kubepods-podab_cd.slice:cri-containerd:${SB}`)).toBe(
      `/kubepods.slice/kubepods-podab_cd.slice/cri-containerd-${SB}.scope`,
    );
    expect(systemdCgroupsPathToDir(`kata-overhead.slice:runtime-rs:${SB}`)).toBe(`/kata.slice/kata-overhead.slice/runtime-rs-${SB}.scope`);
  });

  test('Kata hints: plain paths as is, systemd form as scope and as the 11325 literal directory', () => {
    expect(hintCandidates(`/kubepods/pod${G}/kata_${SG}/`)).toEqual([`/kubepods/pod${G}/kata_${SG}`]);
    expect(hintCandidates('/kubepods/../etc')).toEqual([]);
    expect(hintCandidates(`kubepods-podab_cd.slice:cri-containerd:${SB}`)).toEqual([
      `/kubepods.slice/kubepods-podab_cd.slice/cri-containerd-${SB}.scope`,
      `/kubepods-podab_cd.slice:cri-containerd:${SB}`,
    ]);
  });

  test('the pod UID can be read back from any sandbox cgroup path, 11325 included', () => {
    expect(podUidFromCgroupPath(`/kubepods/burstable/pod${B}/${SB}`)).toBe(B);
    expect(podUidFromCgroupPath(`/kubepods-burstable-pod8b1e6c4d_2a3f_4e5d_8c7b_9a0f1e2d3c4b.slice:cri-containerd:${SB}`)).toBe(B);
    expect(podUidFromCgroupPath(`/kata_overhead/${SB}`)).toBeUndefined();
  });
});

// ─── the fixture trees ────────────────────────────────────────────────────────

interface TreeCase {
  tree: string;
  kind: CgroupLayout['kind'];
  version: 1 | 2;
  driver: 'cgroupfs' | 'systemd';
  overhead: boolean;
  sandboxG: string;
  sandboxB: string;
}

function treeCase(tree: string, kind: CgroupLayout['kind'], version: 1 | 2, driver: 'cgroupfs' | 'systemd', overhead: boolean): TreeCase {
  const podG = podCgroupPath(driver, 'guaranteed', G);
  const podB = podCgroupPath(driver, 'burstable', B);
  return driver === 'cgroupfs'
    ? { tree, kind, version, driver, overhead, sandboxG: `${podG}/kata_${SG}`, sandboxB: `${podB}/${SB}` }
    : {
        tree,
        kind,
        version,
        driver,
        overhead,
        sandboxG: `${podG}/cri-containerd-${SG}.scope`,
        sandboxB: `${podB}/cri-containerd-${SB}.scope`,
      };
}

const TREES: TreeCase[] = [
  treeCase('v1-cgroupfs-sandbox-only', 'v1', 1, 'cgroupfs', false),
  treeCase('v1-cgroupfs-overhead', 'v1', 1, 'cgroupfs', true),
  treeCase('v1-systemd-sandbox-only', 'hybrid', 1, 'systemd', false),
  treeCase('v1-systemd-overhead', 'hybrid', 1, 'systemd', true),
  treeCase('v2-cgroupfs-sandbox-only', 'v2', 2, 'cgroupfs', false),
  treeCase('v2-cgroupfs-overhead', 'v2', 2, 'cgroupfs', true),
  treeCase('v2-systemd-sandbox-only', 'v2', 2, 'systemd', false),
  treeCase('v2-systemd-overhead', 'v2', 2, 'systemd', true),
];

describe.each(TREES)('fixture tree $tree', (c) => {
  const root = join(FIXTURES, c.tree);

  test('layout: kind, the kubelet hierarchy and its driver', async () => {
    const layout = await detectCgroupLayout(root);
    expect(layout.kind).toBe(c.kind);
    expect(layout.version).toBe(c.version);
    expect(layout.drivers).toEqual([c.driver]);
  });

  test('one index finds every pod by UID with its QoS class', async () => {
    const index = await indexPodCgroups(await detectCgroupLayout(root));
    expect(new Map([...index].map(([uid, p]) => [uid, [p.path, p.qos, p.driver]]))).toEqual(
      new Map([
        [G, [podCgroupPath(c.driver, 'guaranteed', G), 'guaranteed', c.driver]],
        [B, [podCgroupPath(c.driver, 'burstable', B), 'burstable', c.driver]],
        [E, [podCgroupPath(c.driver, 'besteffort', E), 'besteffort', c.driver]],
      ]),
    );
  });

  test('pod cgroups decode to the spec values', async () => {
    const layout = await detectCgroupLayout(root);
    for (const [uid, qos, want] of [
      [G, 'guaranteed', POD_G],
      [B, 'burstable', POD_B],
      [E, 'besteffort', POD_E],
    ] as const) {
      const path = podCgroupPath(c.driver, qos, uid);
      expect(usageOf(await readCgroupUsage(layout, path))).toEqual({ path, version: c.version, ...want });
    }
  });

  test('sandbox cgroups by the naming rules, overhead cgroups only with sandbox_cgroup_only=false', async () => {
    const layout = await detectCgroupLayout(root);
    const foundG = await findSandboxCgroups(layout, podCgroupPath(c.driver, 'guaranteed', G), SG);
    const foundB = await findSandboxCgroups(layout, podCgroupPath(c.driver, 'burstable', B), SB);
    expect(foundG.sandbox).toEqual({ path: c.sandboxG, foundBy: 'naming' });
    expect(foundB.sandbox).toEqual({ path: c.sandboxB, foundBy: 'naming' });
    expect(usageOf(await readCgroupUsage(layout, c.sandboxG))).toMatchObject(SANDBOX_G);
    expect(usageOf(await readCgroupUsage(layout, c.sandboxB))).toMatchObject(SANDBOX_B);
    if (c.overhead) {
      expect(foundG.overhead).toEqual({ path: `/kata_overhead/${SG}`, foundBy: 'naming' });
      expect(usageOf(await readCgroupUsage(layout, `/kata_overhead/${SG}`))).toMatchObject(OVERHEAD_G);
      expect(usageOf(await readCgroupUsage(layout, `/kata_overhead/${SB}`))).toMatchObject(OVERHEAD_B);
    } else {
      expect(foundG.overhead).toBeUndefined();
      expect(foundB.overhead).toBeUndefined();
    }
  });

  test('a Kata hint that exists wins; one that does not falls back to the naming rules', async () => {
    const layout = await detectCgroupLayout(root);
    const podG = podCgroupPath(c.driver, 'guaranteed', G);
    // The hint points at another existing cgroup, so following it is visible in the result.
    const hinted = await findSandboxCgroups(layout, podG, SG, { sandboxCgroupPath: c.sandboxB });
    expect(hinted.sandbox).toEqual({ path: c.sandboxB, foundBy: 'hint' });
    const stale = await findSandboxCgroups(layout, podG, SG, { sandboxCgroupPath: `${podG}/kata_gone` });
    expect(stale.sandbox).toEqual({ path: c.sandboxG, foundBy: 'naming' });
  });

  test('an unknown sandbox or a missing cgroup is reported, not thrown', async () => {
    const layout = await detectCgroupLayout(root);
    expect(await findSandboxCgroups(layout, podCgroupPath(c.driver, 'besteffort', E), 'f'.repeat(64))).toEqual({});
    const missing = await readCgroupUsage(layout, podCgroupPath(c.driver, 'burstable', 'deadbeef-0000-4000-8000-000000000000'));
    expect(missing).toBeInstanceOf(SourceError);
    expect((missing as SourceError).reason).toBe('not_found');
  });
});

describe('Kata issue 11325 tree (literal slice:cri-containerd:id directories at the root)', () => {
  const root = join(FIXTURES, 'v2-systemd-issue11325');
  const literalG = `/kubepods-pod3f0d2a51_7c1e_4b9a_9a57_1c2d3e4f5a6b.slice:cri-containerd:${SG}`;
  const literalB = `/kubepods-burstable-pod8b1e6c4d_2a3f_4e5d_8c7b_9a0f1e2d3c4b.slice:cri-containerd:${SB}`;

  test('the literal directories are not mistaken for pods', async () => {
    const index = await indexPodCgroups(await detectCgroupLayout(root));
    expect([...index.keys()].sort()).toEqual([G, B, E].sort());
  });

  test('the sandbox is found at the root by name and through the systemd-form hint', async () => {
    const layout = await detectCgroupLayout(root);
    const podB = podCgroupPath('systemd', 'burstable', B);
    expect(await findSandboxCgroups(layout, podB, SB)).toEqual({
      sandbox: { path: literalB, foundBy: 'systemd-literal' },
      overhead: { path: `/kata_overhead/${SB}`, foundBy: 'naming' },
    });
    // persist.json's SandboxCgroupPath in systemd form; no pod path known at all.
    const viaHint = await findSandboxCgroups(layout, undefined, SG, { sandboxCgroupPath: literalG.slice(1) });
    expect(viaHint.sandbox).toEqual({ path: literalG, foundBy: 'systemd-literal' });
    expect(usageOf(await readCgroupUsage(layout, literalG))).toMatchObject(SANDBOX_G);
  });

  test('the pod slice reads ~0: the VM is not in it', async () => {
    const layout = await detectCgroupLayout(root);
    expect(usageOf(await readCgroupUsage(layout, podCgroupPath('systemd', 'guaranteed', G)))).toMatchObject({
      cpuSeconds: 0,
      memoryUsageBytes: 0,
    });
  });
});

// ─── edge cases on writable temp trees ────────────────────────────────────────

// One writable temp dir for the tests that build or damage a tree.
let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'kmb-cgroups-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('layout and read edge cases', () => {
  test('no cgroup hierarchy at all is a not_found SourceError naming the root', async () => {
    const empty = join(tmp, 'empty');
    await mkdir(empty);
    await expect(detectCgroupLayout(empty)).rejects.toMatchObject({ name: 'SourceError', reason: 'not_found', target: empty });
  });

  test('hybrid host whose kubelet uses the unified mount reads v2 under unified/', async () => {
    const root = join(tmp, 'hybrid-v2');
    await LabCgroupTree.create(root, { version: 2, driver: 'systemd', hybrid: true }, [
      { uid: B, qos: 'burstable', usage: { cpuSeconds: 7.5, memoryUsageBytes: 10 * MiB, inactiveFileBytes: 2 * MiB } },
    ]);
    // The lab mounts the v1 controllers too (hybrid), empty of kubepods.
    const layout = await detectCgroupLayout(root);
    expect(layout).toMatchObject({ kind: 'hybrid', version: 2, cpuDir: join(root, 'unified'), drivers: ['systemd'] });
    const path = podCgroupPath('systemd', 'burstable', B);
    expect(usageOf(await readCgroupUsage(layout, path))).toMatchObject({ cpuSeconds: 7.5, memoryWorkingSetBytes: 8 * MiB });
  });

  test('hybrid host before the first pod: the kubelet will use v1', async () => {
    const root = join(tmp, 'hybrid-empty');
    await mkdir(join(root, 'cpuacct'), { recursive: true });
    await mkdir(join(root, 'memory'), { recursive: true });
    await mkdir(join(root, 'unified'), { recursive: true });
    await writeFile(join(root, 'unified', 'cgroup.controllers'), '\n');
    expect(await detectCgroupLayout(root)).toMatchObject({ kind: 'hybrid', version: 1, drivers: [], unifiedDir: join(root, 'unified') });
  });

  test('v2 without the memory controller: CPU only, memory fields undefined', async () => {
    const root = join(tmp, 'v2-nomem');
    await LabCgroupTree.create(root, { version: 2, driver: 'cgroupfs', memoryController: false }, [
      { uid: E, qos: 'besteffort', usage: { cpuSeconds: 2.25, memoryUsageBytes: MiB } },
    ]);
    const path = podCgroupPath('cgroupfs', 'besteffort', E);
    expect(await readCgroupUsage(await detectCgroupLayout(root), path)).toEqual({ path, version: 2, cpuSeconds: 2.25 });
  });

  test('a v1 cgroup gone from one hierarchy (torn down mid-read) is not_found, not half a reading', async () => {
    const root = join(tmp, 'v1-half');
    await cp(join(FIXTURES, 'v1-cgroupfs-sandbox-only'), root, { recursive: true });
    const path = podCgroupPath('cgroupfs', 'besteffort', E);
    await rm(join(root, 'memory', path), { recursive: true });
    const result = await readCgroupUsage(await detectCgroupLayout(root), path);
    expect(result).toBeInstanceOf(SourceError);
    expect((result as SourceError).reason).toBe('not_found');
  });

  test('a path that escapes the hierarchy is refused as malformed', async () => {
    const layout = await detectCgroupLayout(join(FIXTURES, 'v2-cgroupfs-overhead'));
    expect(await readCgroupUsage(layout, '/kubepods/../../etc')).toMatchObject({ reason: 'malformed' });
  });

  test('cgroups vanishing while being read never throw', async () => {
    const root = join(tmp, 'race');
    const tree = await LabCgroupTree.create(root, { version: 2, driver: 'cgroupfs' });
    const layout = await detectCgroupLayout(root);
    const outcomes = new Set<string>();
    for (let i = 0; i < 60; i++) {
      const uid = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
      const paths = await tree.addPod({ uid, qos: 'burstable', usage: { cpuSeconds: 1, memoryUsageBytes: MiB } });
      const [result] = await Promise.all([readCgroupUsage(layout, paths.pod), tree.removePod(uid)]);
      // Either a complete reading or not_found: never a throw, never a partial record.
      if (result instanceof SourceError) {
        expect(result.reason).toBe('not_found');
        outcomes.add('not_found');
      } else {
        expect(result).toEqual({
          path: paths.pod,
          version: 2,
          cpuSeconds: 1,
          memoryUsageBytes: MiB,
          memoryInactiveFileBytes: 0,
          memoryWorkingSetBytes: MiB,
        });
        outcomes.add('read');
      }
    }
    expect(outcomes.size).toBeGreaterThan(0);
  });
});

describe('SandboxCgroupLocations: where each sandbox cgroup is, kept between collections', () => {
  const podG = podCgroupPath('cgroupfs', 'guaranteed', G);
  const podB = podCgroupPath('cgroupfs', 'burstable', B);
  let root: string;
  let layout: CgroupLayout;
  let locations: SandboxCgroupLocations;

  beforeEach(async () => {
    root = await mkdtemp(join(tmp, 'locations-'));
    await cp(join(FIXTURES, 'v2-cgroupfs-overhead'), root, { recursive: true });
    layout = await detectCgroupLayout(root);
    locations = new SandboxCgroupLocations();
    lstatted.length = 0;
  });

  test('the same pod and hints find the same cgroups without probing again', async () => {
    const first = await locations.find(layout, podG, SG);
    expect(first).toEqual(await findSandboxCgroups(layout, podG, SG));
    expect(first).toEqual({
      sandbox: { path: `${podG}/kata_${SG}`, foundBy: 'naming' },
      overhead: { path: `/kata_overhead/${SG}`, foundBy: 'naming' },
    });
    lstatted.length = 0;
    expect(await locations.find(layout, podG, SG)).toEqual(first);
    expect(lstatted).toEqual([]);
  });

  test('a pod cgroup that changes makes it probe again', async () => {
    await locations.find(layout, podG, SG);
    await mkdir(join(root, podB, `kata_${SG}`));
    lstatted.length = 0;
    expect((await locations.find(layout, podB, SG)).sandbox).toEqual({ path: `${podB}/kata_${SG}`, foundBy: 'naming' });
    expect(lstatted.length).toBeGreaterThan(0);
  });

  test('hints that change make it probe again', async () => {
    await locations.find(layout, podG, SG);
    lstatted.length = 0;
    const hinted = await locations.find(layout, podG, SG, { sandboxCgroupPath: `${podB}/${SB}` });
    expect(hinted.sandbox).toEqual({ path: `${podB}/${SB}`, foundBy: 'hint' });
    expect(lstatted.length).toBeGreaterThan(0);
  });

  test('a cgroup not found is looked for again next time: absence is not kept', async () => {
    const id = 'a'.repeat(64);
    expect(await locations.find(layout, podG, id)).toEqual({});
    await mkdir(join(root, podG, `kata_${id}`));
    await mkdir(join(root, 'kata_overhead', id));
    expect(await locations.find(layout, podG, id)).toEqual({
      sandbox: { path: `${podG}/kata_${id}`, foundBy: 'naming' },
      overhead: { path: `/kata_overhead/${id}`, foundBy: 'naming' },
    });
  });

  test('only the part not found is probed again', async () => {
    const id = 'b'.repeat(64);
    await mkdir(join(root, podG, `kata_${id}`));
    await locations.find(layout, podG, id);
    lstatted.length = 0;
    expect(await locations.find(layout, podG, id)).toEqual({ sandbox: { path: `${podG}/kata_${id}`, foundBy: 'naming' } });
    expect(lstatted.length).toBeGreaterThan(0);
    expect(lstatted.every((p) => !p.startsWith(join(root, podG)))).toBe(true);
  });

  test('forget and keepOnly make it probe again', async () => {
    await locations.find(layout, podG, SG);
    locations.forget(SG);
    lstatted.length = 0;
    await locations.find(layout, podG, SG);
    expect(lstatted.length).toBeGreaterThan(0);
    locations.keepOnly(new Set([SG]));
    lstatted.length = 0;
    await locations.find(layout, podG, SG);
    expect(lstatted).toEqual([]);
    locations.keepOnly(new Set([SB]));
    await locations.find(layout, podG, SG);
    expect(lstatted.length).toBeGreaterThan(0);
  });

  test('a cgroup found once and then removed reads as not_found; once forgotten it is not found', async () => {
    const overhead = `/kata_overhead/${SG}`;
    expect((await locations.find(layout, podG, SG)).overhead?.path).toBe(overhead);
    await rm(join(root, overhead), { recursive: true });
    // Still the cached answer: the read of it is what says it is gone.
    expect((await locations.find(layout, podG, SG)).overhead?.path).toBe(overhead);
    expect(await readCgroupUsage(layout, overhead)).toMatchObject({ reason: 'not_found' });
    locations.forget(SG);
    expect((await locations.find(layout, podG, SG)).overhead).toBeUndefined();
  });
});

describe('lab cgroup tree', () => {
  test('values change over time and pods disappear', async () => {
    const root = join(tmp, 'lab');
    const tree = await LabCgroupTree.create(root, { version: 1, driver: 'cgroupfs' }, [
      {
        uid: B,
        qos: 'burstable',
        sandboxes: [
          {
            id: SB,
            sandboxCgroupOnly: false,
            usage: { cpuSeconds: 1, memoryUsageBytes: 4 * MiB },
            overheadUsage: { cpuSeconds: 2, memoryUsageBytes: 8 * MiB },
          },
        ],
      },
    ]);
    const layout = await detectCgroupLayout(root);
    const podPath = podCgroupPath('cgroupfs', 'burstable', B);
    const found = await findSandboxCgroups(layout, podPath, SB);
    expect(found.sandbox?.path).toBe(`${podPath}/kata_${SB}`);
    expect(found.overhead?.path).toBe(`/kata_overhead/${SB}`);
    // The pod follows the sum of its sandbox cgroups until given its own usage.
    await tree.updatePod(B, { sandboxes: { [SB]: { usage: { cpuSeconds: 3.5, memoryUsageBytes: 6 * MiB, inactiveFileBytes: MiB } } } });
    expect(usageOf(await readCgroupUsage(layout, podPath))).toMatchObject({ cpuSeconds: 3.5, memoryWorkingSetBytes: 5 * MiB });
    await tree.removePod(B);
    expect((await indexPodCgroups(layout)).size).toBe(0);
    expect(await findSandboxCgroups(layout, podPath, SB)).toEqual({});
  });
});
