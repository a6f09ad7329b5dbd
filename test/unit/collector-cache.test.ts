/**
 * What the collector keeps from one collection to the next, on a node lab: a sandbox read as the
 * same strings is not resolved again, and a sandbox's cgroups are not looked for again until a
 * read says they are gone. Each collection still gets its own observations.
 */

import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import type { LabPodScenario } from '../../src/lab/node-lab.ts';
import type { RawSandbox } from '../../src/translate/records.ts';
import { startLabExporter, type LabExporter } from '../support/lab-exporter.ts';

/** The ids resolveSandbox was called for (the module is passed through, only watched). */
const resolved: string[] = [];
vi.mock('../../src/translate/sandbox-map.ts', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/translate/sandbox-map.ts')>();
  return {
    ...original,
    resolveSandbox: (raw: RawSandbox) => {
      resolved.push(raw.id);
      return original.resolveSandbox(raw);
    },
  };
});

/** Every path lstat'd: how sandbox cgroups are probed. */
const lstatted = vi.hoisted((): string[] => []);
vi.mock('node:fs', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:fs')>();
  const { recordingPaths } = await import('../support/fs-watch.ts');
  return { ...original, lstatSync: recordingPaths(original.lstatSync, lstatted) };
});

const pods: LabPodScenario[] = ['a', 'b', 'c'].map((n) => ({
  name: `build-${n}`,
  namespace: 'ci',
  hypervisor: 'qemu',
  runtime: 'go',
  sandboxCgroupOnly: false,
  containers: [{ name: 'build', cpuCores: 0.2, memoryBytes: 64 * 2 ** 20 }],
}));

describe('a collector across collections', () => {
  let bridge: LabExporter;
  let kataGoDir: string;
  let cgroupRoot: string;

  const collect = async () => {
    resolved.length = 0;
    lstatted.length = 0;
    return bridge.exporter.snapshot();
  };
  const sandboxOf = async (name: string) => {
    const pod = (await collect()).pods.find((p) => p.pod === name);
    if (pod?.sandboxId === undefined) throw new Error(`no sandbox for ${name}`);
    return pod.sandboxId;
  };

  beforeAll(async () => {
    bridge = await startLabExporter({ nodeName: 'cache-node', pods, cgroupVersion: 2 });
    kataGoDir = bridge.lab.endpoints.kataGoDir;
    cgroupRoot = bridge.lab.endpoints.cgroupRoot;
  }, 60_000);

  afterAll(async () => {
    await bridge?.close();
  });

  test('a sandbox read as the same strings is not resolved again; a changed one is', async () => {
    await collect();
    const second = await collect();
    expect(resolved).toEqual([]);
    expect(second.sandboxes).toHaveLength(pods.length);
    const id = await sandboxOf('build-a');
    const state = join(kataGoDir, id, 'persist.json');
    await writeFile(state, `${await readFile(state, 'utf8')} `);
    const third = await collect();
    expect(resolved).toEqual([id]);
    expect(third.pods.find((p) => p.pod === 'build-a')?.hypervisor).toBe('qemu');
  });

  test('an overhead cgroup is not looked for again until a read says it is gone; each collection has its own observations', async () => {
    const id = await sandboxOf('build-b');
    const overhead = join(cgroupRoot, 'kata_overhead', id);
    const mine = () => lstatted.filter((p) => p.startsWith(`${cgroupRoot}/`) && p.includes(id));
    const host = async () => (await collect()).pods.find((p) => p.pod === 'build-b')?.hostMemoryWorkingSetBytes;

    expect(await host()).toBeGreaterThan(0);
    expect(mine()).toEqual([]);

    const saved = join(cgroupRoot, '..', 'saved-overhead');
    await cp(overhead, saved, { recursive: true });
    await rm(overhead, { recursive: true });
    // Read where it was, found gone (the host figure would be a partial sum), and forgotten...
    expect(await host()).toBeUndefined();
    expect(mine()).toEqual([overhead]);
    // ...so the next collection looks for every candidate again.
    expect(await host()).toBeUndefined();
    expect(mine().length).toBeGreaterThan(1);
    expect(mine().some((p) => p.includes('kata-overhead.slice'))).toBe(true);

    await cp(saved, overhead, { recursive: true });
    expect(await host()).toBeGreaterThan(0);
    expect(await host()).toBeGreaterThan(0);
    expect(mine()).toEqual([]);
  });
});
