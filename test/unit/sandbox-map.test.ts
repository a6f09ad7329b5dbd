import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { discoverSandboxes } from '../../src/scrapers/kata-sandboxes.ts';
import { shimScrapeDecision } from '../../src/translate/hypervisor.ts';
import type { RawSandbox, SandboxRecord } from '../../src/translate/records.ts';
import {
  buildSandboxRecord,
  buildSandboxRecords,
  isPodUid,
  mapSandboxToPod,
  needsProcessScan,
  podUidFromCgroupPath,
  resolveSandboxes,
  type SandboxPodMapping,
} from '../../src/translate/sandbox-map.ts';
import { FIXTURE_NODE, IDS, nodePaths } from '../fixtures/sandboxes/node.ts';

const FIXTURE = FIXTURE_NODE;
const { A, B, C, D, E, F, G } = IDS;

const UID = '2c71b018-7ad5-46ba-b632-8db6defec4f7';
const OTHER_UID = '9f0e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f';

describe('the fixture node, end to end', () => {
  let raw: Map<string, RawSandbox>;
  let resolved: Map<string, { record: SandboxRecord; mapping: SandboxPodMapping }>;

  beforeAll(async () => {
    const discovery = await discoverSandboxes(nodePaths());
    raw = new Map(discovery.sandboxes.map((s) => [s.id, s]));
    resolved = new Map(resolveSandboxes(discovery.sandboxes).map((r) => [r.record.id, r]));
  });

  test('records: hypervisor from state first, processes second, else unknown', () => {
    const summary = Object.fromEntries(
      [...resolved.values()].map(({ record }) => [
        record.id.slice(0, 8),
        [record.runtime, record.hypervisor, record.hypervisorSource, record.vmmPid],
      ]),
    );
    expect(summary).toEqual({
      f43aa350: ['go', 'qemu', 'state', 41002],
      c5c58a10: ['go', 'cloud-hypervisor', 'state', 42002],
      // runtime-rs persists no pid: the process that matches the state's hypervisor supplies it.
      b3b85e5b: ['rs', 'dragonball', 'state', 43001],
      '282af7b1': ['rs', 'cloud-hypervisor', 'state', 44002],
      efc8e9e3: ['rs', 'qemu', 'state', 45002],
      ad55ba1c: ['go', 'firecracker', 'process', 46002],
      '4c223d68': ['rs', 'unknown', 'unknown', undefined],
    });
  });

  test('records: cgroup facts and annotations from the state file', () => {
    expect(resolved.get(A)?.record).toMatchObject({
      dir: join(FIXTURE, 'run/vc/sbs', A),
      sandboxCgroupOnly: false,
      overheadCgroupPath: `/kata_overhead/${A}`,
      annotations: { 'io.kubernetes.cri.sandbox-uid': UID },
    });
    expect(resolved.get(B)?.record).toMatchObject({ sandboxCgroupOnly: true });
    expect(resolved.get(B)?.record.overheadCgroupPath).toBeUndefined();
    expect(resolved.get(E)?.record).toMatchObject({ sandboxCgroupOnly: false, overheadCgroupPath: `/kata_overhead/${E}` });
    expect(resolved.get(C)?.record.annotations).toEqual({});
    // No sockets in the committed tree.
    for (const { record } of resolved.values()) expect(record.socketPath).toBeUndefined();
  });

  test('mappings: every source in the fixture, and the unmapped sandbox', () => {
    const mapping = (id: string) => resolved.get(id)?.mapping;
    expect(mapping(A)).toEqual({
      mapped: true,
      ref: { sandboxId: A, source: 'containerd', uid: UID, name: 'build-runner-7f9c4', namespace: 'ci' },
    });
    // containerd 1.6: no sandbox-uid, so the uid comes from the systemd slice in the cgroup path.
    expect(mapping(B)).toEqual({
      mapped: true,
      ref: {
        sandboxId: B,
        source: 'containerd',
        uid: '3debea8a-c673-430e-9a34-aa0a26c94859',
        uidSource: 'cgroup-path',
        name: 'lint-job-x2k9p',
        namespace: 'ci',
      },
    });
    expect(mapping(C)).toEqual({
      mapped: true,
      ref: { sandboxId: C, source: 'crio', uid: 'a4b2d9f7-3a2c-4b28-b85c-aac58e76fd27', name: 'notebook-0', namespace: 'tenant-a' },
    });
    expect(mapping(D)).toEqual({
      mapped: true,
      ref: {
        sandboxId: D,
        source: 'containerd',
        uid: 'd3c2e59a-e8f7-49c3-b274-cdb726f56dbc',
        name: 'trainer-5d8b7-xk2lq',
        namespace: 'ml',
      },
    });
    expect(mapping(E)).toEqual({
      mapped: true,
      ref: { sandboxId: E, source: 'cgroup-path', uid: 'c951779c-39f1-4093-9081-2ad3e6f86552' },
    });
    expect(mapping(F)).toMatchObject({ mapped: false, sandboxId: F });
    // No state: the uid comes from the bundle's own linux.cgroupsPath.
    expect(mapping(G)).toEqual({
      mapped: true,
      ref: {
        sandboxId: G,
        source: 'containerd',
        uid: '2788fb6e-ae49-429f-9edb-016c1eaffa7a',
        uidSource: 'cgroup-path',
        name: 'fuzz-worker-0',
        namespace: 'security',
      },
    });
  });

  test('with sockets, safe mode would scrape the Go, Dragonball and CLH shims, not E (QEMU) or G (unknown)', () => {
    const scraped = [...raw.values()]
      .map((r) => buildSandboxRecord({ ...r, socketPath: `${r.dir}/shim-monitor.sock` }))
      .filter((record) => shimScrapeDecision(record, 'safe').scrape)
      .map((record) => record.id)
      .sort();
    expect(scraped).toEqual([A, B, C, D, F].sort());
  });

  test('buildSandboxRecords keeps order and count', () => {
    const list = [...raw.values()];
    expect(buildSandboxRecords(list).map((r) => r.id)).toEqual(list.map((r) => r.id));
  });
});

// ─── pure cases ───────────────────────────────────────────────────────────────

function record(overrides: Partial<SandboxRecord> = {}): SandboxRecord {
  return {
    id: 'sb1',
    runtime: 'go',
    dir: '/run/vc/sbs/sb1',
    hypervisor: 'qemu',
    hypervisorSource: 'state',
    annotations: {},
    ...overrides,
  };
}

const bundle = (annotations: Record<string, string>, cgroupsPath?: string) =>
  JSON.stringify({ ociVersion: '1.1.0', annotations, linux: cgroupsPath === undefined ? {} : { cgroupsPath } });

const containerdAnn = (uid: string | undefined, name: string, namespace: string) => ({
  ...(uid === undefined ? {} : { 'io.kubernetes.cri.sandbox-uid': uid }),
  'io.kubernetes.cri.sandbox-name': name,
  'io.kubernetes.cri.sandbox-namespace': namespace,
});

const crioAnn = (metadata: object, labels: object = {}) => ({
  'io.kubernetes.cri-o.Metadata': JSON.stringify(metadata),
  'io.kubernetes.cri-o.Labels': JSON.stringify(labels),
});

describe('mapSandboxToPod: order of trust', () => {
  const cgroup = `/kubepods/besteffort/pod${OTHER_UID}/sb1`;

  test('1. containerd wins over every other source', () => {
    const mapping = mapSandboxToPod(record({ annotations: containerdAnn(OTHER_UID, 'state-pod', 'other'), sandboxCgroupPath: cgroup }), {
      containerdConfig: bundle(containerdAnn(UID, 'web-0', 'prod')),
      crioConfig: bundle(crioAnn({ name: 'crio-pod', namespace: 'x', uid: OTHER_UID })),
    });
    expect(mapping).toEqual({ mapped: true, ref: { sandboxId: 'sb1', source: 'containerd', uid: UID, name: 'web-0', namespace: 'prod' } });
  });

  test('2. CRI-O Metadata when there is no containerd bundle', () => {
    const mapping = mapSandboxToPod(record({ sandboxCgroupPath: cgroup }), {
      crioConfig: bundle(crioAnn({ name: 'web-0', namespace: 'prod', uid: UID, attempt: 1 })),
    });
    expect(mapping).toEqual({ mapped: true, ref: { sandboxId: 'sb1', source: 'crio', uid: UID, name: 'web-0', namespace: 'prod' } });
  });

  test('2. CRI-O Labels fill what Metadata lacks', () => {
    const mapping = mapSandboxToPod(record(), {
      crioConfig: bundle(
        crioAnn({ name: 'web-0', namespace: 'prod' }, { 'io.kubernetes.pod.uid': UID, 'io.kubernetes.pod.name': 'web-0' }),
      ),
    });
    expect(mapping).toEqual({ mapped: true, ref: { sandboxId: 'sb1', source: 'crio', uid: UID, name: 'web-0', namespace: 'prod' } });
  });

  test('2. CRI-O Labels alone', () => {
    const labels = { 'io.kubernetes.pod.uid': UID, 'io.kubernetes.pod.name': 'web-0', 'io.kubernetes.pod.namespace': 'prod' };
    const mapping = mapSandboxToPod(record(), {
      crioConfig: bundle({ 'io.kubernetes.cri-o.Labels': JSON.stringify(labels) }),
    });
    expect(mapping).toMatchObject({ mapped: true, ref: { source: 'crio', uid: UID, name: 'web-0', namespace: 'prod' } });
  });

  test('3. Kata state annotations (containerd keys) when no bundle exists', () => {
    const mapping = mapSandboxToPod(record({ annotations: containerdAnn(UID, 'web-0', 'prod'), sandboxCgroupPath: cgroup }), {});
    expect(mapping).toEqual({ mapped: true, ref: { sandboxId: 'sb1', source: 'kata-state', uid: UID, name: 'web-0', namespace: 'prod' } });
  });

  test('3. Kata state annotations (CRI-O keys)', () => {
    const mapping = mapSandboxToPod(record({ annotations: crioAnn({ name: 'web-0', namespace: 'prod', uid: UID }) }), {});
    expect(mapping).toMatchObject({ mapped: true, ref: { source: 'kata-state', uid: UID } });
  });

  test('4. cgroupfs pod<uid> in the sandbox cgroup path', () => {
    const mapping = mapSandboxToPod(record({ sandboxCgroupPath: `/kubepods/burstable/pod${UID}/kata_sb1` }), {});
    expect(mapping).toEqual({ mapped: true, ref: { sandboxId: 'sb1', source: 'cgroup-path', uid: UID } });
  });

  test('4. systemd pod<uid_with_underscores>.slice, underscores back to dashes', () => {
    const slice = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replaceAll('-', '_')}.slice/cri-containerd-sb1.scope`;
    expect(mapSandboxToPod(record({ sandboxCgroupPath: slice }), {})).toEqual({
      mapped: true,
      ref: { sandboxId: 'sb1', source: 'cgroup-path', uid: UID },
    });
  });

  test('unmapped: nothing names a pod, and the result says so', () => {
    const mapping = mapSandboxToPod(record({ sandboxCgroupPath: '/kata_overhead/sb1' }), {
      containerdConfig: 'not json',
      crioConfig: bundle({}),
    });
    expect(mapping.mapped).toBe(false);
    expect(mapping.mapped === false && mapping.sandboxId).toBe('sb1');
    expect(mapping.mapped === false && mapping.reason).toMatch(/no pod UID/);
  });
});

describe('mapSandboxToPod: strictness and merging', () => {
  test('a malformed uid is dropped; name and namespace still map, and a later source fills the uid', () => {
    const mapping = mapSandboxToPod(record({ sandboxCgroupPath: `/kubepods/pod${UID}/sb1` }), {
      containerdConfig: bundle(containerdAnn('not-a-uid', 'web-0', 'prod')),
    });
    expect(mapping).toEqual({
      mapped: true,
      ref: { sandboxId: 'sb1', source: 'containerd', uid: UID, uidSource: 'cgroup-path', name: 'web-0', namespace: 'prod' },
    });
  });

  test('a later source that names another pod does not fill the uid', () => {
    const mapping = mapSandboxToPod(record({ annotations: containerdAnn(OTHER_UID, 'web-1', 'prod') }), {
      containerdConfig: bundle(containerdAnn(undefined, 'web-0', 'prod')),
    });
    expect(mapping).toEqual({ mapped: true, ref: { sandboxId: 'sb1', source: 'containerd', name: 'web-0', namespace: 'prod' } });
  });

  test('invalid names and namespaces are not labels: such a source is skipped', () => {
    const mapping = mapSandboxToPod(record({ sandboxCgroupPath: `/kubepods/pod${UID}/sb1` }), {
      containerdConfig: bundle(containerdAnn(undefined, 'Web_0!', 'prod\n')),
    });
    expect(mapping).toEqual({ mapped: true, ref: { sandboxId: 'sb1', source: 'cgroup-path', uid: UID } });
  });

  test('a name without a namespace is not enough', () => {
    const mapping = mapSandboxToPod(record(), {
      containerdConfig: bundle({ 'io.kubernetes.cri.sandbox-name': 'web-0' }),
    });
    expect(mapping.mapped).toBe(false);
  });

  test('upper-case uids are normalised to the API form', () => {
    const mapping = mapSandboxToPod(record(), {
      containerdConfig: bundle(containerdAnn(UID.toUpperCase(), 'web-0', 'prod')),
    });
    expect(mapping).toMatchObject({ ref: { uid: UID } });
  });

  test('CRI-O Metadata that is not JSON, or not an object, is ignored', () => {
    const bad = bundle({ 'io.kubernetes.cri-o.Metadata': '{"name":', 'io.kubernetes.cri-o.Labels': '[1]' });
    expect(mapSandboxToPod(record(), { crioConfig: bad }).mapped).toBe(false);
  });
});

describe('helpers', () => {
  test.each([
    [UID, true],
    [UID.toUpperCase(), true],
    [UID.replaceAll('-', '_'), false],
    [UID.replaceAll('-', ''), false],
    [`${UID}0`, false],
    ['', false],
  ])('isPodUid(%s) → %s', (value, expected) => {
    expect(isPodUid(value)).toBe(expected);
  });

  test.each([
    [`/kubepods/burstable/pod${UID}/kata_sb1`, UID],
    [`/kubepods/pod${UID}/sb1`, UID],
    [`/kubepods/pod${UID}`, UID],
    [`kubepods-besteffort-pod${UID.replaceAll('-', '_')}.slice:cri-containerd:sb1`, UID],
    // mixed separators are not a uid
    [`/kubepods/pod${UID.replace('-', '_')}/sb1`, undefined],
    [`/kubepods/pod${UID}x/sb1`, undefined],
    [`/kubepods/mypod${UID}/sb1`, undefined],
    ['/kata_overhead/sb1', undefined],
    [undefined, undefined],
  ])('podUidFromCgroupPath(%s) → %s', (path, expected) => {
    expect(podUidFromCgroupPath(path)).toBe(expected);
  });
});

describe('needsProcessScan', () => {
  const go = (stateText: string | undefined) => ({ id: 'x', runtime: 'go' as const, stateText });
  const rs = (stateText: string | undefined) => ({ id: 'y', runtime: 'rs' as const, stateText });
  test('false when every state file names a known hypervisor, or there is no sandbox', () => {
    expect(needsProcessScan([])).toBe(false);
    expect(
      needsProcessScan([
        go(JSON.stringify({ HypervisorState: { Type: 'qemu', Pid: 0 } })),
        rs(JSON.stringify({ hypervisor: { hypervisor_type: 'dragonball', pid: null } })),
      ]),
    ).toBe(false);
  });
  test('true when one state file is missing, unreadable or names no known hypervisor', () => {
    const ok = go(JSON.stringify({ HypervisorState: { Type: 'clh' } }));
    expect(needsProcessScan([ok, go(undefined)])).toBe(true);
    expect(needsProcessScan([ok, rs('{not json')])).toBe(true);
    expect(needsProcessScan([ok, rs(JSON.stringify({ hypervisor: { hypervisor_type: 'stratovirt' } }))])).toBe(true);
  });
});
