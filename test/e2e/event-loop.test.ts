/**
 * A collection reads hundreds of small files synchronously (sandbox state, bundles, cgroups). It
 * must let the event loop turn between groups of them, or the shim answers that arrive meanwhile
 * wait for the whole pass, and with them every next scrape. Counted in loop turns, not time: a
 * setImmediate ticker numbers the turns, and every file read is tagged with the turn it ran in.
 */

import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import type { LabPodScenario } from '../../src/lab/node-lab.ts';
import { READS_PER_PAUSE } from '../../src/scrapers/pseudo-fs.ts';
import { startLabExporter, type LabExporter } from '../support/lab-exporter.ts';

const reads: { turn: number; path: string }[] = [];
let turn = 0;

vi.mock('../../src/scrapers/pseudo-fs.ts', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/scrapers/pseudo-fs.ts')>();
  return {
    ...original,
    readTextSync: (path: string, maxBytes: number): string => {
      reads.push({ turn, path });
      return original.readTextSync(path, maxBytes);
    },
    readCgroupFileSync: (path: string, maxBytes: number): string => {
      reads.push({ turn, path });
      return original.readCgroupFileSync(path, maxBytes);
    },
  };
});

/** The most groups of reads between two pauses for I/O. */
const GROUPS_PER_TURN = READS_PER_PAUSE;
const PODS = 64;

const pods: LabPodScenario[] = Array.from({ length: PODS }, (_, i) => ({
  name: `build-${i}`,
  namespace: 'ci',
  hypervisor: 'qemu',
  runtime: 'go',
  containers: [{ name: 'build', cpuCores: 0.2, memoryBytes: 64 * 2 ** 20 }],
}));

describe(`one collection on a node of ${PODS} Kata pods`, () => {
  let bridge: LabExporter;
  const cgroupDirsByTurn = new Map<number, Set<string>>();
  const sandboxesByTurn = new Map<number, Set<string>>();

  beforeAll(async () => {
    bridge = await startLabExporter({ nodeName: 'loop-node', pods, cgroupVersion: 2 });
    const cgroupRoot = bridge.lab.endpoints.cgroupRoot;
    const kataRoot = bridge.lab.endpoints.kataGoDir;
    reads.length = 0;
    let ticking = true;
    const tick = (): void => {
      turn++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    await bridge.scrape();
    ticking = false;
    for (const { turn: t, path } of reads) {
      const group = (map: Map<number, Set<string>>, key: string) => map.set(t, (map.get(t) ?? new Set()).add(key));
      if (path.startsWith(`${cgroupRoot}/`)) group(cgroupDirsByTurn, path.slice(0, path.lastIndexOf('/')));
      else if (path.startsWith(`${kataRoot}/`)) group(sandboxesByTurn, path.slice(kataRoot.length + 1).split('/')[0]!);
    }
  }, 120_000);

  afterAll(async () => {
    await bridge?.close();
  });

  test('every pod cgroup and every sandbox overhead cgroup was read', () => {
    const dirs = new Set([...cgroupDirsByTurn.values()].flatMap((s) => [...s]));
    expect([...dirs].filter((d) => d.includes('kata_overhead')).length).toBe(PODS);
    expect([...dirs].filter((d) => /pod[0-9a-f-]{36}$/.test(d)).length).toBe(PODS);
  });

  test(`at most ${GROUPS_PER_TURN} cgroups are read in one turn of the event loop`, () => {
    const most = Math.max(...[...cgroupDirsByTurn.values()].map((s) => s.size));
    expect(most).toBeLessThanOrEqual(GROUPS_PER_TURN);
    expect(cgroupDirsByTurn.size).toBeGreaterThanOrEqual(Math.ceil((2 * PODS) / GROUPS_PER_TURN));
  });

  test(`at most ${GROUPS_PER_TURN} sandboxes are read in one turn of the event loop`, () => {
    const most = Math.max(...[...sandboxesByTurn.values()].map((s) => s.size));
    expect(most).toBeLessThanOrEqual(GROUPS_PER_TURN);
    expect([...sandboxesByTurn.values()].reduce((n, s) => n + s.size, 0)).toBe(PODS);
  });
});
