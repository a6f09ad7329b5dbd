import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { cp, mkdtemp, readFile, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test, vi } from 'vitest';
import { KnownFiles, discoverSandboxes, readBounded, readSandbox } from '../../src/scrapers/kata-sandboxes.ts';
import type { RawSandbox } from '../../src/translate/records.ts';
import type { SourceError } from '../../src/scrapers/source-error.ts';
import { FileTooLarge } from '../../src/scrapers/pseudo-fs.ts';
import { FIXTURE_NODE, IDS, nodePaths } from '../fixtures/sandboxes/node.ts';

/** Every path discovery opens or stats, in order (node:fs is passed through, only watched). */
const opened = vi.hoisted((): string[] => []);
const statted = vi.hoisted((): string[] => []);
vi.mock('node:fs', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:fs')>();
  const { recordingPaths } = await import('../support/fs-watch.ts');
  return { ...original, openSync: recordingPaths(original.openSync, opened), statSync: recordingPaths(original.statSync, statted) };
});

/** The sandbox ids whose state was decoded to decide on reading /proc. */
const scanAsked: string[] = [];
vi.mock('../../src/translate/sandbox-map.ts', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/translate/sandbox-map.ts')>();
  return {
    ...original,
    needsProcessScan: (raw: Parameters<typeof original.needsProcessScan>[0]) => {
      scanAsked.push(...raw.map((r) => r.id));
      return original.needsProcessScan(raw);
    },
  };
});

const FIXTURE = FIXTURE_NODE;
const { A, B, C, D, E, F, G } = IDS;

async function copyNode(): Promise<string> {
  const root = await mkdtemp(join(os.tmpdir(), 'kmb-sbx-'));
  await cp(FIXTURE, root, { recursive: true });
  return root;
}

/** Runs `use` on a fresh copy of the fixture node, removed afterwards whatever happens. */
async function onNodeCopy(use: (paths: ReturnType<typeof nodePaths>, root: string) => Promise<void>): Promise<void> {
  const root = await copyNode();
  try {
    await use(nodePaths(root), root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const servers: net.Server[] = [];

/** A real listening unix socket at `path`. Bound at a short path and renamed: sun_path holds 108 bytes. */
async function bindSocket(root: string, path: string): Promise<void> {
  const short = join(root, `s${servers.length}.sock`);
  const server = net.createServer();
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(short, resolve);
  });
  await rename(short, path);
}

function byId(sandboxes: RawSandbox[]): Map<string, RawSandbox> {
  return new Map(sandboxes.map((s) => [s.id, s]));
}

const pids = (s: RawSandbox | undefined) => (s?.processes ?? []).map((p) => p.pid).sort((x, y) => x - y);

describe('discoverSandboxes over a copy of the fixture node', () => {
  let root: string;
  let found: Map<string, RawSandbox>;
  let errors: SourceError[];

  beforeAll(async () => {
    root = await copyNode();
    const paths = nodePaths(root);
    for (const id of [A, B]) await bindSocket(root, join(paths.kataGoDir, id, 'shim-monitor.sock'));
    for (const id of [C, D, E, G]) await bindSocket(root, join(paths.kataRsDir, id, 'shim-monitor.sock'));
    // F gets a regular file with the socket's name: it is not a socket and must not count as one.
    await writeFile(join(paths.kataGoDir, F, 'shim-monitor.sock'), '');
    const result = await discoverSandboxes(paths);
    found = byId(result.sandboxes);
    errors = result.errors;
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    await rm(root, { recursive: true, force: true });
  });

  test('finds the seven sandboxes and ignores invalid names and plain files', () => {
    expect([...found.keys()].sort()).toEqual([A, B, C, D, E, F, G].sort());
    expect(errors).toEqual([]);
  });

  test('runtime and directory follow the root each id was found under', () => {
    const paths = nodePaths(root);
    expect(found.get(A)).toMatchObject({ runtime: 'go', dir: join(paths.kataGoDir, A) });
    expect(found.get(F)).toMatchObject({ runtime: 'go', dir: join(paths.kataGoDir, F) });
    for (const id of [C, D, E, G]) expect(found.get(id)).toMatchObject({ runtime: 'rs', dir: join(paths.kataRsDir, id) });
  });

  test('socketPath is set for real unix sockets only', () => {
    const paths = nodePaths(root);
    expect(found.get(A)?.socketPath).toBe(join(paths.kataGoDir, A, 'shim-monitor.sock'));
    expect(found.get(C)?.socketPath).toBe(join(paths.kataRsDir, C, 'shim-monitor.sock'));
    expect(found.get(F)?.socketPath).toBeUndefined();
  });

  test('reads persist.json for Go and state.json for runtime-rs, raw', () => {
    expect(JSON.parse(found.get(A)?.stateText ?? 'null')).toMatchObject({ SandboxContainer: A });
    expect(JSON.parse(found.get(C)?.stateText ?? 'null')).toMatchObject({ hypervisor: { hypervisor_type: 'dragonball' } });
    expect(found.get(F)?.stateText).toBeUndefined();
    expect(found.get(G)?.stateText).toBeUndefined();
  });

  test('reads the containerd bundle and the CRI-O config of the sandbox id', () => {
    expect(JSON.parse(found.get(A)?.containerdConfig ?? 'null').annotations['io.kubernetes.cri.sandbox-name']).toBe('build-runner-7f9c4');
    expect(found.get(A)?.crioConfig).toBeUndefined();
    expect(JSON.parse(found.get(C)?.crioConfig ?? 'null').annotations['io.kubernetes.cri-o.KubeName']).toBe('notebook-0');
    expect(found.get(C)?.containerdConfig).toBeUndefined();
    expect(found.get(E)?.containerdConfig).toBeUndefined();
  });

  test('attaches the processes whose command line names the sandbox', () => {
    // A: QEMU, virtiofsd and `crictl inspectp <id>`; the Go shim daemon carries no -id.
    expect(pids(found.get(A))).toEqual([41002, 41003, 47001]);
    expect(pids(found.get(B))).toEqual([42002]);
    expect(pids(found.get(C))).toEqual([43001]);
    expect(pids(found.get(D))).toEqual([44001, 44002]);
    expect(pids(found.get(E))).toEqual([45001, 45002]);
    // Go Firecracker names only the first 32 characters of the id.
    expect(pids(found.get(F))).toEqual([46002]);
    expect(pids(found.get(G))).toEqual([]);
  });

  test('process records carry comm, NUL-split cmdline and thread names', () => {
    const clh = found.get(B)?.processes[0];
    expect(clh).toEqual({
      pid: 42002,
      comm: 'cloud-hyperviso',
      cmdline: ['/opt/kata/bin/cloud-hypervisor', '--api-socket', `/run/vc/vm/${B}/clh-api.sock`],
      threadNames: expect.arrayContaining(['cloud-hyperviso', 'vcpu0', 'vcpu1']),
    });
    expect(clh?.threadNames).toHaveLength(3);
    const shim = found.get(C)?.processes[0];
    expect(shim?.threadNames.sort()).toEqual(['containerd-shim', 'db_vcpu0', 'db_vcpu1', 'db_vmm']);
    expect(found.get(D)?.processes.find((p) => p.pid === 44001)?.threadNames).toEqual([]);
  });
});

describe('discoverSandboxes edge cases', () => {
  test('absent runtime roots are a runtime not installed: no sandboxes, no errors', async () => {
    const root = await mkdtemp(join(os.tmpdir(), 'kmb-sbx-'));
    try {
      const result = await discoverSandboxes({ ...nodePaths(root), procDir: FIXTURE + '/proc' });
      expect(result).toEqual({ sandboxes: [], errors: [] });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  test('an absent proc dir is reported as an io error, sandboxes still found', async () => {
    const paths = nodePaths(FIXTURE);
    const procDir = join(FIXTURE, 'no-such-proc');
    const result = await discoverSandboxes({ ...paths, procDir });
    expect(result.sandboxes).toHaveLength(7);
    expect(result.errors.map((e) => [e.reason, e.target])).toEqual([['io', procDir]]);
  });

  test('no /proc read when every state file names its hypervisor: an absent proc dir is no error', async () => {
    await onNodeCopy(async (paths, root) => {
      // F (no state file) and G (no state file) are the only sandboxes that need the processes.
      await rm(join(paths.kataGoDir, F), { recursive: true, force: true });
      await rm(join(paths.kataRsDir, G), { recursive: true, force: true });
      const procDir = join(root, 'no-such-proc');
      const result = await discoverSandboxes({ ...paths, procDir });
      expect(result.errors).toEqual([]);
      expect(result.sandboxes.map((s) => s.id).sort()).toEqual([A, B, C, D, E].sort());
      for (const s of result.sandboxes) expect(s.processes).toEqual([]);
    });
  });

  test('one sandbox whose state names no hypervisor makes discovery read /proc', async () => {
    await onNodeCopy(async (paths) => {
      await rm(join(paths.kataRsDir, G), { recursive: true, force: true });
      const result = await discoverSandboxes(paths);
      expect(result.errors).toEqual([]);
      // F has no state file: its Firecracker process is found, and the others' processes with it.
      expect(pids(byId(result.sandboxes).get(F))).not.toEqual([]);
      expect(pids(byId(result.sandboxes).get(A))).not.toEqual([]);
    });
  });

  test('a bundle is opened only where its runtime root lists the sandbox id', async () => {
    const paths = nodePaths(FIXTURE);
    opened.length = 0;
    const result = await discoverSandboxes(paths);
    expect(result.sandboxes).toHaveLength(7);
    const containerd = opened.filter((p) => p.startsWith(`${paths.containerdTasksDir}/`)).map((p) => p.split('/').at(-2));
    const crio = opened.filter((p) => p.startsWith(`${paths.crioDir}/`)).map((p) => p.split('/').at(-3));
    // Exactly the fixture's bundles of its sandboxes, read off its tree.
    const ids = new Set(result.sandboxes.map((s) => s.id));
    const present = (dir: string) =>
      readdirSync(dir)
        .filter((id) => ids.has(id))
        .sort();
    expect(containerd.sort()).toEqual(present(join(paths.containerdTasksDir, 'k8s.io')));
    expect(crio.sort()).toEqual(present(paths.crioDir));
    expect(containerd.length + crio.length).toBeLessThan(2 * ids.size);
  });

  test('a bundle root that cannot be listed makes each bundle be tried, and its error reported', async () => {
    await onNodeCopy(async (paths) => {
      // A symlink to itself: readdir fails with ELOOP, which is not a runtime that is absent.
      await rm(paths.crioDir, { recursive: true, force: true });
      await symlink(paths.crioDir, paths.crioDir);
      opened.length = 0;
      const result = await discoverSandboxes(paths);
      expect(result.sandboxes).toHaveLength(7);
      const tried = result.sandboxes.map((s) => join(paths.crioDir, s.id, 'userdata', 'config.json')).sort();
      expect(opened.filter((p) => p.startsWith(`${paths.crioDir}/`)).sort()).toEqual(tried);
      expect(
        result.errors
          .filter((e) => e.target.startsWith(`${paths.crioDir}/`))
          .map((e) => [e.reason, e.target])
          .sort(),
      ).toEqual(tried.map((t) => ['io', t]));
      expect(result.sandboxes.every((s) => s.crioConfig === undefined)).toBe(true);
      expect(byId(result.sandboxes).get(A)?.containerdConfig).toBeDefined();
    });
  });

  test('a bundle root that is not there is a runtime not installed: no bundle of it is opened, no error', async () => {
    await onNodeCopy(async (paths) => {
      await rm(paths.crioDir, { recursive: true, force: true });
      opened.length = 0;
      const result = await discoverSandboxes(paths);
      expect(result.sandboxes).toHaveLength(7);
      expect(opened.filter((p) => p.startsWith(`${paths.crioDir}/`))).toEqual([]);
      expect(result.errors.filter((e) => e.target.startsWith(`${paths.crioDir}/`))).toEqual([]);
    });
  });

  test('a trailing slash on a root changes no path', async () => {
    const paths = nodePaths(FIXTURE);
    const slashed = await discoverSandboxes({ ...paths, kataGoDir: `${paths.kataGoDir}/`, kataRsDir: `${paths.kataRsDir}//` });
    const plain = await discoverSandboxes(paths);
    expect(slashed.sandboxes.map((s) => s.dir)).toEqual(plain.sandboxes.map((s) => s.dir));
    expect(slashed.sandboxes.map((s) => s.socketPath)).toEqual(plain.sandboxes.map((s) => s.socketPath));
  });

  test('files above the byte cap are refused as oversize, not read', async () => {
    const result = await discoverSandboxes({ ...nodePaths(FIXTURE), maxFileBytes: 200 });
    const a = result.sandboxes.find((s) => s.id === A);
    expect(a?.stateText).toBeUndefined();
    expect(a?.containerdConfig).toBeUndefined();
    const oversize = result.errors.filter((e) => e.reason === 'oversize').map((e) => e.target);
    expect(oversize).toContain(join(FIXTURE, 'run/vc/sbs', A, 'persist.json'));
    expect(oversize).toContain(join(FIXTURE, 'run/containerd/io.containerd.runtime.v2.task/k8s.io', A, 'config.json'));
    // 5 state files + 4 containerd bundles + 1 CRI-O config.
    expect(oversize).toHaveLength(10);
  });

  test('readSandbox of a directory that is already gone returns undefined, no error', async () => {
    const errors: SourceError[] = [];
    expect(await readSandbox('go', 'f'.repeat(64), nodePaths(FIXTURE), errors)).toBeUndefined();
    expect(errors).toEqual([]);
  });

  test('readSandbox refuses an id that is not a sandbox id', async () => {
    const errors: SourceError[] = [];
    expect(await readSandbox('go', '../etc', nodePaths(FIXTURE), errors)).toBeUndefined();
    expect(await readSandbox('go', 'bad.name', nodePaths(FIXTURE), errors)).toBeUndefined();
    expect(errors).toEqual([]);
  });

  test('a FIFO planted as a state file is refused at once, without blocking discovery', async () => {
    await onNodeCopy(async (paths) => {
      const state = join(paths.kataGoDir, A, 'persist.json');
      await rm(state);
      // Opened without O_NONBLOCK, a FIFO with no writer would block the read (and the event loop) forever.
      execFileSync('mkfifo', [state]);
      const result = await discoverSandboxes(paths);
      const fifoErrors = result.errors.filter((e) => e.target === state);
      expect(fifoErrors.map((e) => [e.reason, e.message])).toEqual([['io', expect.stringContaining('not a regular file')]]);
      const a = byId(result.sandboxes).get(A);
      expect(a?.stateText).toBeUndefined();
      // The sandbox itself is still there, and so is every other sandbox with its state.
      expect(a).toBeDefined();
      expect(byId(result.sandboxes).get(B)?.stateText).toBeDefined();
    });
  });

  test('directories removed concurrently with discovery never make it throw', async () => {
    for (let round = 0; round < 5; round++) {
      await onNodeCopy(async (paths) => {
        const discovery = discoverSandboxes(paths);
        await Promise.all([A, B, F].map((id) => rm(join(paths.kataGoDir, id), { recursive: true, force: true })));
        await rm(join(paths.kataRsDir, C), { recursive: true, force: true });
        const result = await discovery;
        expect(result.errors).toEqual([]);
        // Whatever was still there is complete; D, E and G were never touched.
        expect(result.sandboxes.map((s) => s.id)).toEqual(expect.arrayContaining([D, E, G]));
      });
    }
  });
});

describe('state files and bundles unchanged since the last discovery', () => {
  /** Long enough ago that the file cannot change without its identity changing. */
  const LONG_AGO = new Date(Date.now() - 3600_000);
  let root: string;
  let paths: ReturnType<typeof nodePaths>;
  let state: string;
  let bundle: string;
  let knownFiles: KnownFiles;

  const discover = (extra: { maxFileBytes?: number } = {}) => discoverSandboxes({ ...paths, ...extra, knownFiles });
  const stateOf = async () => byId((await discover()).sandboxes).get(A)?.stateText;

  beforeEach(async () => {
    root = await copyNode();
    paths = nodePaths(root);
    state = join(paths.kataGoDir, A, 'persist.json');
    bundle = join(paths.containerdTasksDir, 'k8s.io', A, 'config.json');
    for (const path of [state, bundle]) await utimes(path, LONG_AGO, LONG_AGO);
    knownFiles = new KnownFiles();
    await discover();
    opened.length = 0;
    statted.length = 0;
    scanAsked.length = 0;
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test("are stat'd, not opened, and read as before", async () => {
    const result = await discover();
    const a = byId(result.sandboxes).get(A);
    expect(a?.stateText).toBe(await readFile(state, 'utf8'));
    expect(a?.containerdConfig).toBe(await readFile(bundle, 'utf8'));
    expect(opened).not.toContain(state);
    expect(opened).not.toContain(bundle);
    expect(statted).toEqual(expect.arrayContaining([state, bundle]));
    expect(result.errors).toEqual([]);
    // Nor decoded again to decide on reading /proc.
    expect(scanAsked).not.toContain(A);
    expect(scanAsked.length).toBeGreaterThan(0);
  });

  test('a file rewritten in place with the same size (and its mtime put back) is read again', async () => {
    const before = await readFile(state, 'utf8');
    const after = before.replace(A, A.toUpperCase());
    expect(after).not.toBe(before);
    expect(after).toHaveLength(before.length);
    // Past the kernel's timestamp tick, so the change time differs from the one kept.
    await sleep(20);
    await writeFile(state, after);
    await utimes(state, LONG_AGO, LONG_AGO);
    expect(await stateOf()).toBe(after);
    expect(opened).toContain(state);
  });

  test('a file replaced by another (new inode) of the same size and mtime is read again', async () => {
    const before = await readFile(state, 'utf8');
    const after = before.replace(A, A.toUpperCase());
    const next = join(root, 'next.json');
    await writeFile(next, after);
    await utimes(next, LONG_AGO, LONG_AGO);
    await rename(next, state);
    expect(await stateOf()).toBe(after);
    expect(opened).toContain(state);
  });

  test('a file written in the last moments is read each time, as its identity may not show a change yet', async () => {
    await writeFile(state, await readFile(state, 'utf8'));
    await stateOf();
    opened.length = 0;
    await stateOf();
    expect(opened).toContain(state);
  });

  test('a FIFO planted where a kept state file was is refused', async () => {
    await rm(state);
    execFileSync('mkfifo', [state]);
    const result = await discover();
    expect(result.errors.filter((e) => e.target === state).map((e) => [e.reason, e.message])).toEqual([
      ['io', expect.stringContaining('not a regular file')],
    ]);
    expect(byId(result.sandboxes).get(A)?.stateText).toBeUndefined();
  });

  test('a kept file that is gone is gone; one past a smaller cap is oversize', async () => {
    await rm(bundle);
    const result = await discover({ maxFileBytes: 200 });
    const a = byId(result.sandboxes).get(A);
    expect(a?.containerdConfig).toBeUndefined();
    expect(a?.stateText).toBeUndefined();
    expect(result.errors.filter((e) => e.target === state).map((e) => e.reason)).toEqual(['oversize']);
    expect(result.errors.filter((e) => e.target === bundle)).toEqual([]);
  });

  test('a sandbox not seen by a discovery is forgotten: when it is back, its files are read', async () => {
    const held = join(root, 'held');
    await rename(join(paths.kataGoDir, A), held);
    await discover();
    await rename(held, join(paths.kataGoDir, A));
    opened.length = 0;
    expect(await stateOf()).toBe(await readFile(state, 'utf8'));
    expect(opened).toContain(state);
  });
});

describe('readBounded', () => {
  test('reads to EOF, returns undefined for a missing file, throws past the cap', () => {
    const cmdline = join(FIXTURE, 'proc/41002/cmdline');
    expect(readBounded(cmdline, 4096)?.split('\0')[0]).toBe('/opt/kata/bin/qemu-system-x86_64');
    expect(readBounded(join(FIXTURE, 'proc/99999/cmdline'), 4096)).toBeUndefined();
    expect(() => readBounded(cmdline, 10)).toThrow(FileTooLarge);
  });

  test('reads a file larger than its 64 KiB scratch buffer whole, and bounds it', async () => {
    const root = await mkdtemp(join(os.tmpdir(), 'kmb-read-'));
    try {
      const path = join(root, 'big.json');
      const text = `{"pad":"${'é'.repeat(100_000)}"}`;
      await writeFile(path, text);
      const bytes = Buffer.byteLength(text);
      expect(bytes).toBeGreaterThan(3 * 64 * 1024);
      expect(readBounded(path, bytes)).toBe(text);
      expect(() => readBounded(path, bytes - 1)).toThrow(`larger than ${bytes - 1} bytes`);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
