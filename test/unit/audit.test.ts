import { describe, expect, test } from 'vitest';
import { auditNode, kataConfigPaths, type AuditInput } from '../../src/translate/audit.ts';
import { parseLabelSelector } from '../../src/translate/label-selector.ts';
import type { Hypervisor, NamespaceRecord, PodIsolation, PodRecord } from '../../src/translate/records.ts';
import type { KataView, RuntimeHandlerConfig, RuntimeView } from '../../src/translate/runtime-config.ts';
import { pod } from '../support/correlation-builders.ts';

const UNTRUSTED = { 'kata-bridge.io/untrusted': 'true' };
const QEMU_CONFIG = '/opt/kata/share/defaults/kata-containers/configuration-qemu.toml';
const DEFAULT_KATA = '/etc/kata-containers/configuration.toml';

function isolation(overrides: Partial<PodIsolation> = {}): PodIsolation {
  return { hostNamespaces: [], hostPathVolumes: 0, kataAnnotations: [], privilegedContainers: [], ...overrides };
}

/** A Kata pod (kata-qemu) in ci; overrides say what differs. */
function kataPod(name: string, overrides: Partial<PodRecord> = {}): PodRecord {
  return pod(name, ['build'], { labels: {}, isolation: isolation(), ...overrides });
}

/** A pod whose RuntimeClass (named after its handler) is known. */
function handlerPod(name: string, handler: string, overrides: Partial<PodRecord> = {}): PodRecord {
  return kataPod(name, { runtimeClassName: handler, runtimeHandler: handler, ...overrides });
}

/** A pod without RuntimeClass: runc. */
function runcPod(name: string, overrides: Partial<PodRecord> = {}): PodRecord {
  return kataPod(name, { runtimeClassName: undefined, runtimeHandler: undefined, ...overrides });
}

function containerd(handlers: Record<string, RuntimeHandlerConfig> | undefined): RuntimeView {
  return {
    runtime: 'containerd',
    ...(handlers === undefined ? {} : { handlers: new Map(Object.entries(handlers)) }),
    files: [{ config: 'containerd', path: '/etc/containerd/config.toml', readable: handlers !== undefined }],
  };
}

const KATA_DEPLOY: Record<string, RuntimeHandlerConfig> = {
  'kata-qemu': { podAnnotations: ['io.katacontainers.*'], kataConfigPath: QEMU_CONFIG },
  'kata-clh': { privilegedWithoutHostDevices: true, podAnnotations: ['io.katacontainers.*'] },
  'kata-fc': { privilegedWithoutHostDevices: true },
  runc: {},
};

function kataView(path: string, hypervisors: Record<string, string[]> | undefined): KataView {
  return {
    path,
    ...(hypervisors === undefined
      ? {}
      : {
          config: {
            hypervisors: Object.fromEntries(Object.entries(hypervisors).map(([name, list]) => [name, { enableAnnotations: list }])),
          },
        }),
    files: [{ config: 'kata', path, readable: hypervisors !== undefined }],
  };
}

function namespaces(entries: Record<string, Record<string, string>>): Map<string, NamespaceRecord> {
  return new Map(
    Object.entries(entries).map(([name, labels]) => [name, { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } }]),
  );
}

/** Inputs for pods in ci (untrusted) and kube-system (trusted); Kata pods are those with a kata handler. */
function input(pods: PodRecord[], overrides: Partial<AuditInput> = {}, hypervisors: Record<string, Hypervisor> = {}): AuditInput {
  const kataPods = new Map(
    pods
      .filter((p) => /^kata/.test(p.runtimeHandler ?? p.runtimeClassName ?? ''))
      .map((p) => [p.uid, { hypervisor: hypervisors[p.name] ?? 'qemu' }]),
  );
  return {
    namespaceSelector: parseLabelSelector('kata-bridge.io/untrusted=true'),
    pods,
    namespaces: namespaces({ ci: UNTRUSTED, 'kube-system': {} }),
    kataPods,
    runtime: containerd(KATA_DEPLOY),
    kataConfigs: new Map([
      [QEMU_CONFIG, kataView(QEMU_CONFIG, { qemu: ['enable_iommu', 'virtio_fs_extra_args', 'kernel_params'] })],
      [DEFAULT_KATA, kataView(DEFAULT_KATA, { clh: ['^default_vcpus$'], qemu: ['kernel_params'] })],
    ]),
    defaultKataConfigPath: DEFAULT_KATA,
    ...overrides,
  };
}

const KERNEL_PARAMS = 'io.katacontainers.config.hypervisor.kernel_params';

describe('findings', () => {
  test('one pod per finding, and a clean untrusted Kata pod that raises none', () => {
    const pods = [
      kataPod('clean'),
      runcPod('runc'),
      handlerPod('gvisor', 'runsc'),
      kataPod('lost-class', { runtimeClassName: 'sandboxed', runtimeHandler: undefined }),
      kataPod('dind', { isolation: isolation({ privilegedContainers: ['setup', 'docker'] }) }),
      kataPod('hostns', { isolation: isolation({ hostNamespaces: ['network', 'pid', 'ipc'] }) }),
      kataPod('hostpath', { isolation: isolation({ hostPathVolumes: 2 }) }),
      kataPod('annotated', { isolation: isolation({ kataAnnotations: [KERNEL_PARAMS] }) }),
    ];
    expect(auditNode(input(pods))).toEqual({
      untrustedPods: 8,
      unsandboxed: [
        { namespace: 'ci', pod: 'gvisor', runtimeHandler: 'runsc' },
        { namespace: 'ci', pod: 'lost-class', runtimeHandler: 'unknown' },
        { namespace: 'ci', pod: 'runc', runtimeHandler: 'default' },
      ],
      privilegedContainers: [
        { namespace: 'ci', pod: 'dind', container: 'docker', hostDevices: 'true' },
        { namespace: 'ci', pod: 'dind', container: 'setup', hostDevices: 'true' },
      ],
      hostNamespaces: [
        { namespace: 'ci', pod: 'hostns', kind: 'ipc' },
        { namespace: 'ci', pod: 'hostns', kind: 'network' },
        { namespace: 'ci', pod: 'hostns', kind: 'pid' },
      ],
      hostPaths: [{ namespace: 'ci', pod: 'hostpath' }],
      kataAnnotations: [{ namespace: 'ci', pod: 'annotated', honoured: 'true' }],
      configs: [
        { config: 'containerd', path: '/etc/containerd/config.toml', readable: true },
        { config: 'kata', path: QEMU_CONFIG, readable: true },
      ],
    });
  });

  test('trusted pods raise only privileged containers (those in Kata pods, any namespace)', () => {
    const trusted = (name: string, o: Partial<PodRecord>) => ({ ...o, namespace: 'kube-system', uid: `uid-${name}` });
    const pods = [
      kataPod(
        'dind',
        trusted('dind', { isolation: isolation({ privilegedContainers: ['docker'], hostNamespaces: ['pid'], hostPathVolumes: 1 }) }),
      ),
      runcPod(
        'node-agent',
        trusted('node-agent', { isolation: isolation({ privilegedContainers: ['agent'], kataAnnotations: [KERNEL_PARAMS] }) }),
      ),
    ];
    const result = auditNode(input(pods));
    expect(result.untrustedPods).toBe(0);
    expect(result.privilegedContainers).toEqual([{ namespace: 'kube-system', pod: 'dind', container: 'docker', hostDevices: 'true' }]);
    expect([result.unsandboxed, result.hostNamespaces, result.hostPaths, result.kataAnnotations]).toEqual([[], [], [], []]);
  });

  test('host_devices follows the handler: false with privileged_without_host_devices, unknown for a handler the runtime does not list', () => {
    const privileged = isolation({ privilegedContainers: ['c'] });
    const pods = [handlerPod('clh', 'kata-clh', { isolation: privileged }), handlerPod('unlisted', 'kata-new', { isolation: privileged })];
    expect(auditNode(input(pods)).privilegedContainers.map((f) => [f.pod, f.hostDevices])).toEqual([
      ['clh', 'false'],
      ['unlisted', 'unknown'],
    ]);
  });

  test('finished pods raise nothing and are not counted', () => {
    const everything = isolation({
      privilegedContainers: ['c'],
      hostNamespaces: ['network'],
      hostPathVolumes: 1,
      kataAnnotations: [KERNEL_PARAMS],
    });
    const pods = [
      kataPod('done', { phase: 'Succeeded', isolation: everything }),
      runcPod('failed', { phase: 'Failed', isolation: everything }),
    ];
    const result = auditNode(input(pods));
    expect(result.untrustedPods).toBe(0);
    expect([result.unsandboxed, result.privilegedContainers, result.hostNamespaces, result.hostPaths, result.kataAnnotations]).toEqual([
      [],
      [],
      [],
      [],
      [],
    ]);
  });

  test('a pod whose namespace is not known yet is not untrusted (yet)', () => {
    const pods = [runcPod('early', { namespace: 'builds', uid: 'uid-early' })];
    expect(auditNode(input(pods)).untrustedPods).toBe(0);
    const known = input(pods, { namespaces: namespaces({ builds: UNTRUSTED }) });
    expect(auditNode(known).unsandboxed).toEqual([{ namespace: 'builds', pod: 'early', runtimeHandler: 'default' }]);
  });

  test('pods without the audit fields (built elsewhere) raise nothing but can be unsandboxed', () => {
    const bare = runcPod('bare', { labels: undefined, isolation: undefined });
    const result = auditNode(input([bare]));
    expect(result.unsandboxed).toEqual([{ namespace: 'ci', pod: 'bare', runtimeHandler: 'default' }]);
    expect(result.hostPaths).toEqual([]);
  });
});

describe('selectors', () => {
  const pods = [
    runcPod('a', { labels: { tier: 'ci' } }),
    runcPod('b', { labels: { tier: 'web' } }),
    runcPod('c', { labels: { tier: 'ci' }, namespace: 'kube-system', uid: 'uid-c' }),
  ];
  const unsandboxed = (overrides: Partial<AuditInput>) =>
    auditNode(input(pods, overrides)).unsandboxed.map((f) => `${f.namespace}/${f.pod}`);

  test('namespace selector alone', () => {
    expect(unsandboxed({})).toEqual(['ci/a', 'ci/b']);
  });

  test('pod selector alone (namespaces not needed)', () => {
    expect(unsandboxed({ namespaceSelector: undefined, podSelector: parseLabelSelector('tier=ci'), namespaces: new Map() })).toEqual([
      'ci/a',
      'kube-system/c',
    ]);
  });

  test('both: the namespace AND the pod must match', () => {
    expect(unsandboxed({ podSelector: parseLabelSelector('tier in (ci)') })).toEqual(['ci/a']);
  });

  test("the API server's name label selects namespaces by name", () => {
    expect(unsandboxed({ namespaceSelector: parseLabelSelector('kubernetes.io/metadata.name in (kube-system)') })).toEqual([
      'kube-system/c',
    ]);
  });

  test('no selector: nothing is untrusted', () => {
    expect(auditNode(input(pods, { namespaceSelector: undefined })).untrustedPods).toBe(0);
  });
});

describe('honoured: would the node apply one of the Kata annotations?', () => {
  function honoured(
    annotations: string[],
    overrides: Partial<AuditInput> = {},
    podOverrides: Partial<PodRecord> = {},
    hypervisor: Hypervisor = 'qemu',
  ) {
    const p = kataPod('p', { isolation: isolation({ kataAnnotations: annotations }), ...podOverrides });
    return auditNode(input([p], overrides, { p: hypervisor })).kataAnnotations.map((f) => f.honoured);
  }
  const RUNTIME_OVERRIDE = 'io.katacontainers.config.runtime.disable_guest_seccomp';

  test('passed by pod_annotations and enabled by enable_annotations: true', () => {
    expect(honoured([KERNEL_PARAMS])).toEqual(['true']);
  });

  test('a hypervisor annotation enable_annotations does not list: false', () => {
    expect(honoured(['io.katacontainers.config.hypervisor.default_memory'])).toEqual(['false']);
  });

  test('annotations other than hypervisor ones are not gated by enable_annotations', () => {
    expect(honoured([RUNTIME_OVERRIDE])).toEqual(['true']);
    // Not even when the Kata configuration cannot be read.
    expect(honoured([RUNTIME_OVERRIDE], { kataConfigs: new Map() })).toEqual(['true']);
  });

  test('containerd does not pass annotations its pod_annotations globs do not match: false', () => {
    const runtime = containerd({ ...KATA_DEPLOY, 'kata-qemu': { kataConfigPath: QEMU_CONFIG } });
    expect(honoured([KERNEL_PARAMS, RUNTIME_OVERRIDE], { runtime })).toEqual(['false']);
    const narrow = containerd({
      ...KATA_DEPLOY,
      'kata-qemu': { kataConfigPath: QEMU_CONFIG, podAnnotations: ['io.katacontainers.config.runtime.*'] },
    });
    expect(honoured([KERNEL_PARAMS], { runtime: narrow })).toEqual(['false']);
    expect(honoured([KERNEL_PARAMS, RUNTIME_OVERRIDE], { runtime: narrow })).toEqual(['true']);
  });

  test('CRI-O passes every annotation: the Kata configuration decides', () => {
    const crio: RuntimeView = { runtime: 'crio', handlers: new Map([['kata-qemu', { kataConfigPath: QEMU_CONFIG }]]), files: [] };
    expect(honoured([KERNEL_PARAMS], { runtime: crio })).toEqual(['true']);
    expect(honoured(['io.katacontainers.config.hypervisor.default_vcpus'], { runtime: crio })).toEqual(['false']);
  });

  test('the handler without ConfigPath runs with --path.kata-config', () => {
    const runtime = containerd({ ...KATA_DEPLOY, 'kata-qemu': { podAnnotations: ['io.katacontainers.*'] } });
    // The default file enables only kernel_params for qemu (and ^default_vcpus$ for clh).
    expect(honoured([KERNEL_PARAMS], { runtime })).toEqual(['true']);
    expect(honoured(['io.katacontainers.config.hypervisor.enable_iommu'], { runtime })).toEqual(['false']);
  });

  test("the pod's hypervisor section when it has one, else every section", () => {
    const runtime = containerd({ ...KATA_DEPLOY, 'kata-qemu': { podAnnotations: ['io.katacontainers.*'] } });
    const vcpus = 'io.katacontainers.config.hypervisor.default_vcpus';
    expect(honoured([vcpus], { runtime }, {}, 'qemu')).toEqual(['false']);
    expect(honoured([vcpus], { runtime }, {}, 'cloud-hypervisor')).toEqual(['true']); // [hypervisor.clh]
    expect(honoured([vcpus], { runtime }, {}, 'unknown')).toEqual(['true']); // union of qemu and clh
    expect(honoured([vcpus], { runtime }, {}, 'firecracker')).toEqual(['true']); // no firecracker section: union
  });

  test('enable_annotations are unanchored regular expressions, as Kata matches them', () => {
    const kataConfigs = new Map([[QEMU_CONFIG, kataView(QEMU_CONFIG, { qemu: ['params'] })]]);
    expect(honoured([KERNEL_PARAMS], { kataConfigs })).toEqual(['true']);
    const anchored = new Map([[QEMU_CONFIG, kataView(QEMU_CONFIG, { qemu: ['^params$'] })]]);
    expect(honoured([KERNEL_PARAMS], { kataConfigs: anchored })).toEqual(['false']);
  });

  test('a pattern JavaScript cannot compile leaves the answer unknown, unless another matches', () => {
    const kataConfigs = new Map([[QEMU_CONFIG, kataView(QEMU_CONFIG, { qemu: ['(?i)kernel', 'enable_iommu'] })]]);
    expect(honoured([KERNEL_PARAMS], { kataConfigs })).toEqual(['unknown']);
    expect(honoured([KERNEL_PARAMS, 'io.katacontainers.config.hypervisor.enable_iommu'], { kataConfigs })).toEqual(['true']);
  });

  test('unknown when the Kata configuration could not be read; true still wins', () => {
    const unreadable = new Map([[QEMU_CONFIG, kataView(QEMU_CONFIG, undefined)]]);
    expect(honoured([KERNEL_PARAMS], { kataConfigs: unreadable })).toEqual(['unknown']);
    expect(honoured([KERNEL_PARAMS, RUNTIME_OVERRIDE], { kataConfigs: unreadable })).toEqual(['true']);
  });

  test('unknown when the runtime configuration could not be read, or there is none', () => {
    expect(honoured([KERNEL_PARAMS], { runtime: containerd(undefined) })).toEqual(['unknown']);
    expect(honoured([RUNTIME_OVERRIDE], { runtime: { runtime: 'none', files: [] } })).toEqual(['unknown']);
  });

  test('on a pod that is not a Kata pod the annotations are inert: false', () => {
    expect(honoured([KERNEL_PARAMS], {}, { runtimeClassName: undefined, runtimeHandler: undefined })).toEqual(['false']);
  });
});

describe('unknown configurations', () => {
  test('no runtime configuration: every host_devices is unknown', () => {
    const pods = [kataPod('dind', { isolation: isolation({ privilegedContainers: ['docker'] }) })];
    const none: RuntimeView = {
      runtime: 'none',
      files: [
        { config: 'containerd', path: '/etc/containerd/config.toml', readable: false },
        { config: 'crio', path: '/etc/crio/crio.conf', readable: false },
      ],
    };
    const result = auditNode(input(pods, { runtime: none }));
    expect(result.privilegedContainers).toEqual([{ namespace: 'ci', pod: 'dind', container: 'docker', hostDevices: 'unknown' }]);
    expect(result.configs).toEqual(none.files);
  });

  test('an unreadable runtime configuration: unknown, and no Kata configuration can be named', () => {
    const pods = [kataPod('dind', { isolation: isolation({ privilegedContainers: ['docker'] }) })];
    const result = auditNode(input(pods, { runtime: containerd(undefined) }));
    expect(result.privilegedContainers[0]?.hostDevices).toBe('unknown');
    expect(result.configs).toEqual([{ config: 'containerd', path: '/etc/containerd/config.toml', readable: false }]);
  });
});

describe('which Kata configurations are read', () => {
  test('those of the handlers Kata pods run under, once each; not for runc pods or unlisted handlers', () => {
    const pods = [kataPod('a'), kataPod('b'), handlerPod('clh', 'kata-clh'), handlerPod('unlisted', 'kata-new'), runcPod('runc')];
    expect(kataConfigPaths(input(pods))).toEqual([DEFAULT_KATA, QEMU_CONFIG]);
    expect(kataConfigPaths(input(pods, { runtime: containerd(undefined) }))).toEqual([]);
  });
});
