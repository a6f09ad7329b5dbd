/**
 * The runtime configuration reader against real files in a temporary directory: imports, drop-ins,
 * missing, unreadable, oversized and invalid files, and files rewritten between collections.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { CONFIG_FILE_MAX_BYTES, ConfigFileReader } from '../../src/scrapers/config-files.ts';
import { MAX_IMPORT_DEPTH, RuntimeConfigSource, resolveImport } from '../../src/scrapers/runtime-config.ts';

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

let dir: string;
let logs: LogLine[];
const logger = () => pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kmb-runtime-config-'));
  logs = [];
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function put(relative: string, text: string): Promise<string> {
  const path = join(dir, relative);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
  return path;
}

function source(): RuntimeConfigSource {
  return new RuntimeConfigSource({
    containerdConfigPath: join(dir, 'etc/containerd/config.toml'),
    crioConfigPath: join(dir, 'etc/crio/crio.conf'),
    logger: logger(),
  });
}

const v3 = (handler: string, keys: string) => `[plugins."io.containerd.cri.v1.runtime".containerd.runtimes."${handler}"]\n${keys}\n`;
const warnings = () => logs.filter((l) => l.level === 40);

describe('containerd', () => {
  test('main file, then imports breadth-first: absolute, relative and globbed; later files win', async () => {
    const dropIn = await put(
      'opt/kata/containerd/config.d/kata-deploy.toml',
      v3('kata-qemu', 'privileged_without_host_devices = true\npod_annotations = ["io.katacontainers.*"]'),
    );
    await put('etc/containerd/conf.d/20-local.toml', v3('kata-qemu', 'privileged_without_host_devices = false'));
    await put('etc/containerd/conf.d/10-gpu.toml', v3('nvidia', ''));
    await put('etc/containerd/conf.d/README', 'not imported: does not match *.toml');
    await put('etc/containerd/extra.toml', v3('kata-fc', 'privileged_without_host_devices = true'));
    await put('etc/containerd/config.toml', `version = 3\nimports = ["${dropIn}", "conf.d/*.toml", "./extra.toml"]\n${v3('runc', '')}`);

    const view = await source().runtime();
    expect(view.runtime).toBe('containerd');
    expect(view.files.map((f) => [f.path.slice(dir.length), f.readable])).toEqual([
      ['/etc/containerd/config.toml', true],
      ['/opt/kata/containerd/config.d/kata-deploy.toml', true],
      ['/etc/containerd/conf.d/10-gpu.toml', true],
      ['/etc/containerd/conf.d/20-local.toml', true],
      ['/etc/containerd/extra.toml', true],
    ]);
    expect(Object.fromEntries(view.handlers!)).toEqual({
      runc: {},
      // 20-local.toml comes after kata-deploy's drop-in: its false wins, pod_annotations stay.
      'kata-qemu': { privilegedWithoutHostDevices: false, podAnnotations: ['io.katacontainers.*'] },
      nvidia: {},
      'kata-fc': { privilegedWithoutHostDevices: true },
    });
    expect(warnings()).toEqual([]);
  });

  test('an import cycle loads each file once', async () => {
    await put('etc/containerd/b.toml', `imports = ["config.toml"]\n${v3('b', '')}`);
    await put('etc/containerd/config.toml', `version = 3\nimports = ["b.toml"]\n${v3('a', '')}`);
    const view = await source().runtime();
    expect(view.files.map((f) => f.path.slice(dir.length))).toEqual(['/etc/containerd/config.toml', '/etc/containerd/b.toml']);
    expect([...view.handlers!.keys()]).toEqual(['a', 'b']);
  });

  test(`imports nested deeper than ${MAX_IMPORT_DEPTH} levels: unknown, said once`, async () => {
    for (let level = 1; level <= MAX_IMPORT_DEPTH + 1; level++)
      await put(`etc/containerd/${level}.toml`, `imports = ["${level + 1}.toml"]\n`);
    await put('etc/containerd/config.toml', 'version = 3\nimports = ["1.toml"]\n');
    const reader = source();
    expect((await reader.runtime()).handlers).toBeUndefined();
    await reader.runtime();
    expect(warnings().map((l) => l.msg)).toEqual([expect.stringContaining(`nest deeper than ${MAX_IMPORT_DEPTH} levels`)]);
  });

  test('a missing import makes the whole configuration unknown, and is named once', async () => {
    await put('etc/containerd/config.toml', `version = 3\nimports = ["/nonexistent/kata-deploy.toml"]\n${v3('runc', '')}`);
    const reader = source();
    const view = await reader.runtime();
    expect(view.handlers).toBeUndefined();
    expect(view.files).toEqual([
      { config: 'containerd', path: join(dir, 'etc/containerd/config.toml'), readable: true },
      { config: 'containerd', path: '/nonexistent/kata-deploy.toml', readable: false },
    ]);
    await reader.runtime();
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toMatchObject({ file: '/nonexistent/kata-deploy.toml', config: 'containerd', problem: 'missing' });
    expect(warnings()[0]?.hint).toContain('--path.containerd-config');
  });

  test('a glob that matches nothing imports nothing (as containerd)', async () => {
    await put('etc/containerd/config.toml', `version = 3\nimports = ["conf.d/*.toml"]\n${v3('runc', '')}`);
    const view = await source().runtime();
    expect([...view.handlers!.keys()]).toEqual(['runc']);
  });
});

describe('CRI-O', () => {
  test("used when containerd's file is absent: main file, then every drop-in in lexical order", async () => {
    await put('etc/crio/crio.conf', '[crio.runtime.runtimes.kata]\nruntime_type = "vm"\n');
    await put('etc/crio/crio.conf.d/99-kata-deploy', '[crio.runtime.runtimes.kata]\nprivileged_without_host_devices = true\n');
    await put(
      'etc/crio/crio.conf.d/10-base.conf',
      '[crio.runtime.runtimes.kata]\nprivileged_without_host_devices = false\nruntime_config_path = "/k.toml"\n',
    );
    const view = await source().runtime();
    expect(view.runtime).toBe('crio');
    expect(view.files.map((f) => f.path.slice(dir.length))).toEqual([
      '/etc/crio/crio.conf',
      '/etc/crio/crio.conf.d/10-base.conf',
      '/etc/crio/crio.conf.d/99-kata-deploy',
    ]);
    expect(view.handlers?.get('kata')).toEqual({ privilegedWithoutHostDevices: true, kataConfigPath: '/k.toml' });
  });

  test('drop-ins alone are enough', async () => {
    await put('etc/crio/crio.conf.d/99-kata-deploy', '[crio.runtime.runtimes.kata-qemu]\nprivileged_without_host_devices = true\n');
    const view = await source().runtime();
    expect(view.runtime).toBe('crio');
    expect(view.files.map((f) => f.path.slice(dir.length))).toEqual(['/etc/crio/crio.conf.d/99-kata-deploy']);
    expect(view.handlers?.get('kata-qemu')).toEqual({ privilegedWithoutHostDevices: true });
  });
});

describe('neither runtime', () => {
  test('no handlers, both files reported unreadable, and one warning that names both', async () => {
    const reader = source();
    const view = await reader.runtime();
    expect(view).toEqual({
      runtime: 'none',
      files: [
        { config: 'containerd', path: join(dir, 'etc/containerd/config.toml'), readable: false },
        { config: 'crio', path: join(dir, 'etc/crio/crio.conf'), readable: false },
      ],
    });
    await reader.runtime();
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]?.msg).toContain(join(dir, 'etc/containerd/config.toml'));
    expect(warnings()[0]?.msg).toContain(join(dir, 'etc/crio/crio.conf'));
  });
});

describe('bad files', () => {
  test('a directory where the file should be: unreadable, named, and the audit answers unknown', async () => {
    await mkdir(join(dir, 'etc/containerd/config.toml'), { recursive: true });
    const view = await source().runtime();
    expect(view.runtime).toBe('containerd');
    expect(view.handlers).toBeUndefined();
    expect(view.files).toEqual([{ config: 'containerd', path: join(dir, 'etc/containerd/config.toml'), readable: false }]);
    expect(warnings()[0]).toMatchObject({ problem: 'unreadable', file: join(dir, 'etc/containerd/config.toml') });
  });

  test(`a file over ${CONFIG_FILE_MAX_BYTES} bytes is not read`, async () => {
    await put('etc/containerd/config.toml', `version = 3\n${'#'.repeat(CONFIG_FILE_MAX_BYTES)}\n`);
    const view = await source().runtime();
    expect(view.handlers).toBeUndefined();
    expect(warnings()[0]).toMatchObject({ problem: 'too_large' });
    expect(warnings()[0]?.err).toContain(`more than the ${CONFIG_FILE_MAX_BYTES}`);
  });

  test("invalid TOML: invalid, with the parser's position in the log", async () => {
    await put('etc/containerd/config.toml', 'version = 3\n[plugins\n');
    const view = await source().runtime();
    expect(view.handlers).toBeUndefined();
    expect(warnings()[0]).toMatchObject({ problem: 'invalid' });
    expect(warnings()[0]?.err).toBe('not valid TOML at line 2, column 9: illegal character in key');
  });

  test('the wrong shape is invalid too, naming the key', async () => {
    await put('etc/containerd/config.toml', `version = 3\n${v3('kata', 'privileged_without_host_devices = "no"')}`);
    await source().runtime();
    expect(warnings()[0]).toMatchObject({ problem: 'invalid' });
    expect(warnings()[0]?.err).toContain('runtimes.kata.privileged_without_host_devices must be true or false');
  });
});

describe('changes are picked up', () => {
  test('a rewrite (even of the same size) is read at the next collection; the state change is logged once each way', async () => {
    const path = await put('etc/containerd/config.toml', `version = 3\n${v3('kata-aaa', 'privileged_without_host_devices = true')}`);
    const reader = source();
    expect([...(await reader.runtime()).handlers!.keys()]).toEqual(['kata-aaa']);
    await writeFile(path, `version = 3\n${v3('kata-bbb', 'privileged_without_host_devices = true')}`);
    expect([...(await reader.runtime()).handlers!.keys()]).toEqual(['kata-bbb']);

    await writeFile(path, 'version = 3\n[plugins\n');
    expect((await reader.runtime()).handlers).toBeUndefined();
    expect((await reader.runtime()).handlers).toBeUndefined();
    await writeFile(path, `version = 3\n${v3('kata-ccc', '')}`);
    expect([...(await reader.runtime()).handlers!.keys()]).toEqual(['kata-ccc']);
    expect(logs.filter((l) => l.file === path).map((l) => [l.level, l.problem ?? 'ok'])).toEqual([
      [40, 'invalid'],
      [30, 'ok'],
    ]);
  });

  test('an unchanged file is parsed once', async () => {
    const path = await put('a.toml', 'x = 1\n');
    const reader = new ConfigFileReader(logger());
    let parses = 0;
    const parse = (text: string) => {
      parses++;
      return text.length;
    };
    for (let i = 0; i < 3; i++) expect(await reader.read(path, 'kata', parse)).toEqual({ path, ok: true, value: 6 });
    expect(parses).toBe(1);
  });
});

describe('Kata', () => {
  test('the file, then its config.d drop-ins in lexical order', async () => {
    const path = await put('kata/configuration-qemu.toml', '[hypervisor.qemu]\nenable_annotations = ["enable_iommu", "kernel_params"]\n');
    await put('kata/config.d/20-debug.toml', '[hypervisor.qemu]\nenable_annotations = ["kernel_params", "default_vcpus"]\n');
    await put('kata/config.d/10-agent.toml', '[agent.kata]\ndebug_console_enabled = true\n');
    const view = await source().kata(path);
    expect(view.config).toEqual({ hypervisors: { qemu: { enableAnnotations: ['kernel_params', 'default_vcpus'] } } });
    expect(view.files.map((f) => [f.path.slice(dir.length), f.readable])).toEqual([
      ['/kata/configuration-qemu.toml', true],
      ['/kata/config.d/10-agent.toml', true],
      ['/kata/config.d/20-debug.toml', true],
    ]);
  });

  test('a missing Kata configuration: no config, unreadable, and a hint about mounting it', async () => {
    const view = await source().kata(join(dir, 'opt/kata/configuration-qemu.toml'));
    expect(view.config).toBeUndefined();
    expect(view.files).toEqual([{ config: 'kata', path: join(dir, 'opt/kata/configuration-qemu.toml'), readable: false }]);
    expect(warnings()[0]?.hint).toContain('/opt/kata/share/defaults/kata-containers');
  });
});

describe("resolveImport (containerd's resolveImports)", () => {
  test('relative to the importing file; a path without * is taken as is, even when missing', async () => {
    expect(await resolveImport('/etc/containerd/config.toml', 'conf.d/x.toml')).toEqual(['/etc/containerd/conf.d/x.toml']);
    expect(await resolveImport('/etc/containerd/config.toml', '/abs/../abs/y.toml')).toEqual(['/abs/y.toml']);
  });

  test('globs in any component, only what exists, sorted', async () => {
    await put('opt/a/containerd/k.toml', '');
    await put('opt/b/containerd/k.toml', '');
    await put('opt/c/other/k.toml', '');
    expect(await resolveImport(join(dir, 'config.toml'), 'opt/*/containerd/k.toml')).toEqual([
      join(dir, 'opt/a/containerd/k.toml'),
      join(dir, 'opt/b/containerd/k.toml'),
    ]);
    expect(await resolveImport(join(dir, 'config.toml'), 'opt/[ab]/*/*.toml')).toEqual([
      join(dir, 'opt/a/containerd/k.toml'),
      join(dir, 'opt/b/containerd/k.toml'),
    ]);
  });
});
