import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  ConfigShapeError,
  ConfigSyntaxError,
  mergeKataConfigs,
  mergeRuntimeHandlers,
  parseContainerdConfig,
  parseCrioConfig,
  parseKataConfig,
  pathMatch,
} from '../../src/translate/runtime-config.ts';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/runtime-config/${name}`, import.meta.url), 'utf8');

describe('containerd', () => {
  test('version 1 (no version key): plugins.cri', () => {
    expect(parseContainerdConfig(fixture('containerd-v1.toml'))).toEqual({
      imports: [],
      runtimes: {
        runc: {},
        kata: {
          privilegedWithoutHostDevices: true,
          podAnnotations: ['io.katacontainers.*'],
          kataConfigPath: '/etc/kata-containers/configuration.toml',
        },
      },
    });
  });

  test('version 2: io.containerd.grpc.v1.cri, and a stale version-1 table is not read', () => {
    const parsed = parseContainerdConfig(fixture('containerd-v2.toml'));
    expect(parsed.version).toBe(2);
    expect(parsed.runtimes).toEqual({
      runc: {},
      // The hand-written handler: nothing set, so containerd's defaults apply (host devices passed).
      kata: {},
      'kata-fc': {
        privilegedWithoutHostDevices: true,
        podAnnotations: ['io.katacontainers.config.hypervisor.default_vcpus', 'io.katacontainers.config.runtime.*'],
        kataConfigPath: '/opt/kata/share/defaults/kata-containers/configuration-fc.toml',
      },
    });
  });

  test('version 3: io.containerd.cri.v1.runtime, with its imports as written', () => {
    const parsed = parseContainerdConfig(fixture('containerd-v3.toml'));
    expect(parsed.version).toBe(3);
    expect(parsed.imports).toEqual(['/opt/kata/containerd/config.d/kata-deploy.toml', 'conf.d/*.toml']);
    expect(parsed.runtimes).toEqual({ runc: {} });
  });

  test("kata-deploy's drop-in has no version: its v3 tables are found", () => {
    expect(parseContainerdConfig(fixture('kata-deploy-containerd.toml'))).toEqual({
      imports: [],
      runtimes: {
        'kata-qemu': {
          privilegedWithoutHostDevices: true,
          podAnnotations: ['io.katacontainers.*'],
          kataConfigPath: '/opt/kata/share/defaults/kata-containers/configuration-qemu.toml',
        },
        'kata-dragonball': {
          privilegedWithoutHostDevices: true,
          podAnnotations: ['io.katacontainers.*'],
          kataConfigPath: '/opt/kata/share/defaults/kata-containers/runtime-rs/configuration-dragonball.toml',
        },
      },
    });
  });

  test('a file of only other settings has no runtimes', () => {
    expect(parseContainerdConfig('version = 2\n[grpc]\naddress = "/run/containerd/containerd.sock"\n')).toEqual({
      version: 2,
      imports: [],
      runtimes: {},
    });
  });

  test('main file then imports: a later file overrides key by key', () => {
    const main = parseContainerdConfig(fixture('containerd-v1.toml'));
    const dropIn = parseContainerdConfig(`[plugins.cri.containerd.runtimes.kata]\nprivileged_without_host_devices = false\n`);
    const merged = mergeRuntimeHandlers([main.runtimes, dropIn.runtimes]);
    expect(merged.get('kata')).toEqual({
      privilegedWithoutHostDevices: false,
      podAnnotations: ['io.katacontainers.*'],
      kataConfigPath: '/etc/kata-containers/configuration.toml',
    });
    expect(merged.get('runc')).toEqual({});
  });

  test.each([
    ['version = 4', /version = 4 is not a containerd config version/],
    ['version = "2"', /version = 2 is not/],
    ['imports = "conf.d/*.toml"', /imports must be a list of strings/],
    [
      'version = 3\n[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.kata]\nprivileged_without_host_devices = "yes"',
      /plugins."io.containerd.cri.v1.runtime".containerd.runtimes.kata.privileged_without_host_devices must be true or false/,
    ],
    [
      'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata]\npod_annotations = "io.katacontainers.*"',
      /runtimes.kata.pod_annotations must be a list/,
    ],
    ['version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata]\noptions = 3', /runtimes.kata.options must be a table/],
    [
      'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata.options]\nConfigPath = 7',
      /runtimes.kata.options.ConfigPath must be a string/,
    ],
    ['version = 2\n[plugins."io.containerd.grpc.v1.cri"]\ncontainerd = "x"', /must be a table/],
  ])('the wrong shape names the key: %s', (text, message) => {
    expect(() => parseContainerdConfig(text)).toThrow(ConfigShapeError);
    expect(() => parseContainerdConfig(text)).toThrow(message);
  });

  test('invalid TOML is a one-line error with its position', () => {
    const text = 'version = 2\n[plugins\nx = 1\n';
    expect(() => parseContainerdConfig(text)).toThrow(ConfigSyntaxError);
    expect(() => parseContainerdConfig(text)).toThrow(/^not valid TOML at line 2, column 9: illegal character in key$/);
    expect(() => parseKataConfig('enable_annotations = [')).toThrow(ConfigSyntaxError);
  });

  test('__proto__ keys are dropped, not merged into objects', () => {
    const parsed = parseContainerdConfig(
      'version = 3\n[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.__proto__]\nprivileged_without_host_devices = true\n',
    );
    expect(Object.keys(parsed.runtimes)).toEqual([]);
    expect(({} as Record<string, unknown>).privileged_without_host_devices).toBeUndefined();
  });
});

describe('CRI-O', () => {
  test('main file, then the kata-deploy drop-in (later wins)', () => {
    const main = parseCrioConfig(fixture('crio.conf')).runtimes;
    const dropIn = parseCrioConfig(fixture('crio.conf.d/99-kata-deploy')).runtimes;
    expect(main).toEqual({ crun: {}, kata: {} });
    const merged = mergeRuntimeHandlers([main, dropIn]);
    expect(merged.get('kata')).toEqual({ privilegedWithoutHostDevices: true });
    expect(merged.get('kata-qemu')).toEqual({
      privilegedWithoutHostDevices: true,
      kataConfigPath: '/opt/kata/share/defaults/kata-containers/configuration-qemu.toml',
    });
  });

  test('wrong shapes', () => {
    expect(() => parseCrioConfig('[crio.runtime.runtimes.kata]\nruntime_config_path = 1')).toThrow(
      /crio.runtime.runtimes.kata.runtime_config_path must be a string/,
    );
    expect(() => parseCrioConfig('[crio.runtime]\nruntimes = []')).toThrow(ConfigShapeError);
  });
});

describe('Kata', () => {
  test('enable_annotations per hypervisor section', () => {
    expect(parseKataConfig(fixture('configuration-qemu.toml'))).toEqual({
      hypervisors: { qemu: { enableAnnotations: ['enable_iommu', 'virtio_fs_extra_args', 'kernel_params'] } },
    });
    expect(parseKataConfig('[hypervisor.fc]\npath = "/x"\n')).toEqual({ hypervisors: { fc: {} } });
    expect(parseKataConfig('[runtime]\n')).toEqual({ hypervisors: {} });
  });

  test("config.d drop-ins replace a section's list and keep the rest", () => {
    const main = parseKataConfig(fixture('configuration-qemu.toml'));
    const dropIn = parseKataConfig('[hypervisor.qemu]\nenable_annotations = []\n[hypervisor.clh]\nenable_annotations = ["x"]\n');
    expect(mergeKataConfigs([main, dropIn])).toEqual({
      hypervisors: { qemu: { enableAnnotations: [] }, clh: { enableAnnotations: ['x'] } },
    });
    expect(mergeKataConfigs([main, parseKataConfig('[hypervisor.qemu]\nkernel_params = "quiet"\n')])).toEqual(main);
  });

  test('enable_annotations must be a list of strings', () => {
    expect(() => parseKataConfig('[hypervisor.qemu]\nenable_annotations = "kernel_params"')).toThrow(
      /hypervisor.qemu.enable_annotations must be a list of strings/,
    );
    expect(() => parseKataConfig('hypervisor = 1')).toThrow(/hypervisor must be a table/);
  });
});

describe("pathMatch (Go's path.Match, as containerd's pod_annotations)", () => {
  test.each<[string, string, boolean]>([
    ['io.katacontainers.*', 'io.katacontainers.config.hypervisor.kernel_params', true],
    ['io.katacontainers.*', 'io.katacontainers.', true],
    ['io.katacontainers.*', 'io.katacontainersX', false],
    ['io.katacontainers.*', 'example.com/io.katacontainers.x', false],
    ['*', 'a/b', false], // * stops at /
    ['*/*', 'a/b', true],
    ['a?c', 'abc', true],
    ['a?c', 'a/c', false],
    ['[a-c]x', 'bx', true],
    ['[^a-c]x', 'dx', true],
    ['[^a-c]x', 'ax', false],
    ['[a\\-]x', '-x', true],
    ['a\\*', 'a*', true],
    ['a\\*', 'ab', false],
    ['', '', true],
    ['abc', 'abc', true],
    ['abc', 'abcd', false],
    // Malformed patterns match nothing (Go's ErrBadPattern; containerd ignores the error).
    ['[]a]', 'a', false],
    ['[a-]', 'a', false],
    ['a\\', 'a', false],
    ['[abc', 'a', false],
  ])('%s ~ %s → %s', (pattern, name, expected) => {
    expect(pathMatch(pattern, name)).toBe(expected);
  });

  const text = fc.string({ unit: fc.constantFrom(...'ab./-_x'.split('')), maxLength: 12 });

  test('a pattern without metacharacters matches exactly itself', () => {
    fc.assert(
      fc.property(text, text, (a, b) => {
        expect(pathMatch(a, b)).toBe(a === b);
        expect(pathMatch(a, a)).toBe(true);
      }),
    );
  });

  test('`prefix*` matches exactly the names with that prefix and no / after it', () => {
    fc.assert(
      fc.property(text, text, (prefix, rest) => {
        expect(pathMatch(`${prefix}*`, prefix + rest)).toBe(!rest.includes('/'));
      }),
    );
  });
});
