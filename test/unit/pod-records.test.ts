import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import {
  isNamespaceJson,
  isPodJson,
  isRuntimeClassJson,
  joinRuntimeClass,
  toBasePodRecord,
  toNamespaceRecord,
  toPodRecord,
  toRuntimeClassRecord,
  type PodJson,
  type RuntimeClassJson,
} from '../../src/translate/pod-records.ts';
import type { PodRecord, RuntimeClassRecord } from '../../src/translate/records.ts';

const fixture = JSON.parse(readFileSync(new URL('../fixtures/pods/kata-qemu-ci-pod.json', import.meta.url), 'utf8')) as PodJson;

const MiB = 1024 * 1024;
const classes = new Map<string, RuntimeClassRecord>([
  ['kata-qemu', { name: 'kata-qemu', handler: 'kata-qemu', overhead: { cpuCores: 0.25, memoryBytes: 320 * MiB } }],
  ['kata-clh', { name: 'kata-clh', handler: 'kata-clh-v2', overhead: { cpuCores: 0.25, memoryBytes: 130 * MiB } }],
  ['kata-plain', { name: 'kata-plain', handler: 'kata' }],
]);

/** A minimal pod; `spec` and `status` replace the defaults. */
function pod(spec: PodJson['spec'], status: PodJson['status'] = {}): PodJson {
  return { metadata: { uid: 'u-1', name: 'p', namespace: 'ns' }, spec, status };
}

describe('toPodRecord on the kata-qemu fixture', () => {
  test('every field, hand-derived from the JSON', () => {
    // 2025-03-14T00:00:00Z = 20161 days × 86400 s = 1 741 910 400 s.
    const day = 1_741_910_400;
    const expected: PodRecord = {
      uid: '3b1d6a8e-52f4-4c1e-9a0d-7e2f1c9b4a61',
      namespace: 'ci',
      name: 'build-7f9c4-x2k8p',
      nodeName: 'worker-3',
      phase: 'Running',
      startedAt: day + 9 * 3600 + 26 * 60 + 53, // status.startTime 09:26:53
      qosClass: 'Burstable',
      runtimeClassName: 'kata-qemu',
      runtimeHandler: 'kata-qemu',
      overhead: { cpuCores: 0.25, memoryBytes: 335_544_320 },
      overheadSource: 'pod',
      containers: [
        {
          name: 'fetch-sources',
          init: true,
          cpuRequestCores: 0.1,
          cpuLimitCores: undefined,
          memoryRequestBytes: 64 * MiB,
          memoryLimitBytes: 128 * MiB,
          privileged: false,
        },
        {
          name: 'log-shipper',
          init: true,
          sidecar: true,
          cpuRequestCores: 0.05,
          cpuLimitCores: 0.2,
          memoryRequestBytes: 32 * MiB,
          memoryLimitBytes: 64 * MiB,
          privileged: false,
        },
        {
          name: 'build',
          init: false,
          cpuRequestCores: 1.5,
          cpuLimitCores: 2,
          memoryRequestBytes: 1_610_612_736,
          memoryLimitBytes: 2_147_483_648,
          privileged: true,
        },
        { name: 'cache', init: false, privileged: false },
      ],
      containerStatuses: [
        {
          name: 'fetch-sources',
          containerId: '9d2f0b7c61a84e53b2c1f0a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9',
          containerRuntime: 'containerd',
          restartCount: 0,
          state: 'terminated',
        },
        {
          name: 'log-shipper',
          containerId: '5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b',
          containerRuntime: 'containerd',
          restartCount: 1,
          state: 'running',
          startedAt: day + 9 * 3600 + 27 * 60 + 10,
        },
        {
          name: 'build',
          containerId: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
          containerRuntime: 'containerd',
          restartCount: 3,
          state: 'running',
          startedAt: day + 9 * 3600 + 31 * 60 + 40,
        },
        { name: 'cache', restartCount: 0, state: 'waiting' },
      ],
      labels: { app: 'ci-runner', job: 'build-7f9c4' },
      isolation: {
        hostNamespaces: [],
        hostPathVolumes: 0,
        kataAnnotations: ['io.katacontainers.config.hypervisor.default_vcpus'],
        privilegedContainers: ['build'],
      },
    };
    expect(toPodRecord(fixture, classes)).toEqual(expected);
  });
});

describe('RuntimeClass join', () => {
  test.each<[string, PodJson, Pick<PodRecord, 'runtimeHandler' | 'overhead' | 'overheadSource'>]>([
    [
      'known class: handler from the class, overhead from the pod',
      pod({ runtimeClassName: 'kata-clh', overhead: { cpu: '100m', memory: '100Mi' } }),
      { runtimeHandler: 'kata-clh-v2', overhead: { cpuCores: 0.1, memoryBytes: 100 * MiB }, overheadSource: 'pod' },
    ],
    [
      'pod without spec.overhead: the class overhead, marked as such',
      pod({ runtimeClassName: 'kata-clh' }),
      { runtimeHandler: 'kata-clh-v2', overhead: { cpuCores: 0.25, memoryBytes: 130 * MiB }, overheadSource: 'runtime_class' },
    ],
    [
      'class without overhead',
      pod({ runtimeClassName: 'kata-plain' }),
      { runtimeHandler: 'kata', overhead: undefined, overheadSource: undefined },
    ],
    [
      'unknown class: no handler, pod overhead kept',
      pod({ runtimeClassName: 'gvisor', overhead: { memory: '1Gi' } }),
      { runtimeHandler: undefined, overhead: { cpuCores: undefined, memoryBytes: 1024 * MiB }, overheadSource: 'pod' },
    ],
    ['no runtimeClassName (runc)', pod({}), { runtimeHandler: undefined, overhead: undefined, overheadSource: undefined }],
  ])('%s', (_, input, expected) => {
    const { runtimeHandler, overhead, overheadSource } = toPodRecord(input, classes);
    expect({ runtimeHandler, overhead, overheadSource }).toEqual(expected);
  });

  test('re-joining after the class changed takes the new class overhead, never a stale one', () => {
    const base = toBasePodRecord(pod({ runtimeClassName: 'kata-qemu' }));
    const joined = joinRuntimeClass(base, classes);
    expect(joined.overhead).toEqual({ cpuCores: 0.25, memoryBytes: 320 * MiB });
    const withoutOverhead = new Map([['kata-qemu', { name: 'kata-qemu', handler: 'kata-qemu' }]]);
    const rejoined = joinRuntimeClass(joined, withoutOverhead);
    expect(rejoined.overhead).toBeUndefined();
    expect(rejoined.overheadSource).toBeUndefined();
    expect(rejoined.runtimeHandler).toBe('kata-qemu');
  });
});

describe('defensive reading of malformed parts', () => {
  test.each<[string, PodJson, Partial<PodRecord>]>([
    [
      'containers that are not a list, and a container without a name',
      pod({ containers: 'build' as never, initContainers: [{ image: 'x' } as never, { name: 'ok' }] }),
      { containers: [{ name: 'ok', init: true, privileged: false }] },
    ],
    [
      'unparseable quantities are left out; a numeric one is taken as is',
      pod({ containers: [{ name: 'c', resources: { requests: { cpu: 'lots', memory: 2048 as never }, limits: null as never } }] }),
      { containers: [{ name: 'c', init: false, memoryRequestBytes: 2048, privileged: false }] },
    ],
    [
      'privileged only when exactly true',
      pod({ containers: [{ name: 'c', securityContext: { privileged: 'true' as never } }] }),
      { containers: [{ name: 'c', init: false, privileged: false }] },
    ],
    [
      'restartPolicy Always on a regular container is not a sidecar',
      pod({ containers: [{ name: 'c', restartPolicy: 'Always' }] }),
      { containers: [{ name: 'c', init: false, privileged: false }] },
    ],
  ])('%s', (_, input, expected) => {
    expect(toPodRecord(input, classes)).toMatchObject(expected);
    // toMatchObject ignores extra keys: pin the exact container list too.
    expect(toPodRecord(input, classes).containers).toEqual(expected.containers);
  });

  test.each<[string, PodJson['status'], PodRecord['containerStatuses']]>([
    [
      'empty state is unknown; a negative or string restartCount reads 0; an id without scheme is kept whole',
      {
        containerStatuses: [
          { name: 'a', state: {}, restartCount: -1, containerID: 'abc123' },
          { name: 'b', restartCount: '3' as never, state: { running: {} } },
          { image: 'no-name' } as never,
        ],
      },
      [
        { name: 'a', containerId: 'abc123', restartCount: 0, state: 'unknown' },
        { name: 'b', restartCount: 0, state: 'running', startedAt: undefined },
      ],
    ],
    [
      'Date timestamps (the typed client) and bad timestamps',
      {
        containerStatuses: [
          { name: 'a', restartCount: 2, state: { running: { startedAt: new Date('2024-01-01T00:00:00Z') } } },
          { name: 'b', restartCount: 0, state: { running: { startedAt: 'yesterday' } } },
        ],
      },
      [
        // 2024-01-01 = 19723 days × 86400 s after the epoch.
        { name: 'a', restartCount: 2, state: 'running', startedAt: 1_704_067_200 },
        { name: 'b', restartCount: 0, state: 'running', startedAt: undefined },
      ],
    ],
    ['statuses that are not a list', { containerStatuses: {} as never }, []],
  ])('%s', (_, status, expected) => {
    expect(toPodRecord(pod({}, status), classes).containerStatuses).toEqual(expected);
  });
});

describe('what the isolation audit reads', () => {
  test('host namespaces, hostPath volumes, Kata annotations and privileged containers of every kind', () => {
    const input: PodJson = {
      metadata: {
        uid: 'u-1',
        name: 'p',
        namespace: 'ns',
        labels: { tier: 'ci', bad: 7 as never },
        annotations: {
          'io.katacontainers.config.runtime.disable_guest_seccomp': 'true',
          'io.katacontainers.config.hypervisor.kernel_params': 'quiet',
          'iokatacontainers.x': 'not ours',
          'example.com/io.katacontainers.x': 'not ours either',
        },
      },
      spec: {
        hostNetwork: true,
        hostPID: 'yes' as never, // only exactly true counts
        hostIPC: true,
        volumes: [
          { name: 'docker-sock', hostPath: { path: '/var/run/docker.sock', type: 'Socket' } },
          { name: 'scratch', emptyDir: {} },
          { name: 'dev', hostPath: { path: '/dev' } },
          'junk' as never,
        ],
        initContainers: [{ name: 'setup', securityContext: { privileged: true } }],
        containers: [{ name: 'build' }, { name: 'dind', securityContext: { privileged: true } }],
        ephemeralContainers: [{ name: 'debugger', securityContext: { privileged: true } }],
      },
    };
    const result = toBasePodRecord(input);
    expect(result.labels).toEqual({ tier: 'ci' });
    expect(result.isolation).toEqual({
      hostNamespaces: ['network', 'ipc'],
      hostPathVolumes: 2,
      kataAnnotations: ['io.katacontainers.config.hypervisor.kernel_params', 'io.katacontainers.config.runtime.disable_guest_seccomp'],
      privilegedContainers: ['setup', 'dind', 'debugger'],
    });
    // Ephemeral containers are audited, never reported as workload containers.
    expect(result.containers.map((c) => c.name)).toEqual(['setup', 'build', 'dind']);
  });

  test('a pod without any of it', () => {
    expect(toBasePodRecord(pod({ volumes: null as never, hostNetwork: false })).isolation).toEqual({
      hostNamespaces: [],
      hostPathVolumes: 0,
      kataAnnotations: [],
      privilegedContainers: [],
    });
    expect(toBasePodRecord(pod({})).labels).toEqual({});
  });
});

describe('Namespace records', () => {
  test('name and string labels', () => {
    const ns = { metadata: { name: 'ci', labels: { 'kubernetes.io/metadata.name': 'ci', n: 1 as never } } };
    expect(isNamespaceJson(ns)).toBe(true);
    expect(toNamespaceRecord(ns)).toEqual({ name: 'ci', labels: { 'kubernetes.io/metadata.name': 'ci' } });
    expect(toNamespaceRecord({ metadata: { name: 'bare' } })).toEqual({ name: 'bare', labels: {} });
    expect(isNamespaceJson({ metadata: {} })).toBe(false);
  });
});

describe('RuntimeClass records', () => {
  test.each<[RuntimeClassJson, RuntimeClassRecord]>([
    [
      { metadata: { name: 'kata-qemu' }, handler: 'kata-qemu', overhead: { podFixed: { cpu: '250m', memory: '320Mi' } } },
      { name: 'kata-qemu', handler: 'kata-qemu', overhead: { cpuCores: 0.25, memoryBytes: 335_544_320 } },
    ],
    [
      { metadata: { name: 'kata-fc' }, handler: 'kata-fc', overhead: { podFixed: { memory: '130Mi' } } },
      { name: 'kata-fc', handler: 'kata-fc', overhead: { cpuCores: undefined, memoryBytes: 136_314_880 } },
    ],
    [
      { metadata: { name: 'runc' }, handler: 'runc' },
      { name: 'runc', handler: 'runc' },
    ],
    [
      { metadata: { name: 'odd' }, handler: 'odd', overhead: {} },
      { name: 'odd', handler: 'odd' },
    ],
  ])('%j', (input, expected) => {
    expect(toRuntimeClassRecord(input)).toEqual(expected);
  });
});

describe('guards', () => {
  test.each<[unknown, boolean]>([
    [fixture, true],
    [{ metadata: { uid: 'u', name: 'n', namespace: 'ns' } }, true],
    [{ metadata: { uid: 'u', name: 'n' } }, false],
    [{ metadata: { uid: '', name: 'n', namespace: 'ns' } }, false],
    [{ metadata: null }, false],
    [null, false],
    ['pod', false],
    [[], false],
  ])('isPodJson(%j) is %s', (value, expected) => {
    expect(isPodJson(value)).toBe(expected);
  });

  test.each<[unknown, boolean]>([
    [{ metadata: { name: 'kata' }, handler: 'kata' }, true],
    [{ metadata: { name: 'kata' } }, false],
    [{ metadata: { name: 'kata' }, handler: 7 }, false],
    [{ handler: 'kata' }, false],
  ])('isRuntimeClassJson(%j) is %s', (value, expected) => {
    expect(isRuntimeClassJson(value)).toBe(expected);
  });
});
