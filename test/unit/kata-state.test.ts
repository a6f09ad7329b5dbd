import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { decodeGoPersist, decodeKataState, decodeRsState } from '../../src/translate/kata-state.ts';
import { FIXTURE_NODE, IDS } from '../fixtures/sandboxes/node.ts';

const node = (path: string) => readFileSync(join(FIXTURE_NODE, path), 'utf8');

const { A, B, C, D, E } = IDS;

describe('Go runtime persist.json', () => {
  test('A: QEMU with sandbox_cgroup_only=false has an overhead cgroup', () => {
    const info = decodeGoPersist(node(`run/vc/sbs/${A}/persist.json`), A);
    expect(info).toEqual({
      hypervisor: 'qemu',
      hypervisorType: 'qemu',
      sandboxCgroupPath: `/kubepods/burstable/pod2c71b018-7ad5-46ba-b632-8db6defec4f7/kata_${A}`,
      overheadCgroupPath: `/kata_overhead/${A}`,
      sandboxCgroupOnly: false,
      vmmPid: 41002,
      vmMemoryBytes: 2048 * 2 ** 20, // MemorySize 2048 (MiB) in the fixture
      annotations: expect.objectContaining({
        'io.kubernetes.cri.container-type': 'sandbox',
        'io.kubernetes.cri.sandbox-uid': '2c71b018-7ad5-46ba-b632-8db6defec4f7',
        'io.kubernetes.cri.sandbox-name': 'build-runner-7f9c4',
      }),
    });
    // The pause container's annotations, not the app container listed before it.
    expect(info.annotations['io.kubernetes.cri.container-name']).toBeUndefined();
  });

  test('B: Cloud Hypervisor ("clh") with sandbox_cgroup_only=true has no overhead cgroup', () => {
    const info = decodeGoPersist(node(`run/vc/sbs/${B}/persist.json`), B);
    expect(info).toMatchObject({
      hypervisor: 'cloud-hypervisor',
      hypervisorType: 'clh',
      sandboxCgroupPath: `kubepods-besteffort-pod3debea8a_c673_430e_9a34_aa0a26c94859.slice:cri-containerd:${B}`,
      sandboxCgroupOnly: true,
      vmmPid: 42002,
    });
    expect(info.overheadCgroupPath).toBeUndefined();
    expect(info.annotations['io.kubernetes.cri.sandbox-uid']).toBeUndefined();
    expect(info.annotations['io.kubernetes.cri.sandbox-namespace']).toBe('ci');
  });

  test('a stopped QEMU saves an empty HypervisorState: the config still names the type', () => {
    const text = JSON.stringify({
      SandboxContainer: 'abc',
      HypervisorState: { Type: '', Pid: 0 },
      Config: { HypervisorType: 'qemu', SandboxCgroupOnly: true, ContainerConfigs: null },
    });
    expect(decodeGoPersist(text, 'abc')).toEqual({
      hypervisor: 'qemu',
      hypervisorType: 'qemu',
      sandboxCgroupOnly: true,
      annotations: {},
    });
  });

  test('older persist.json with CgroupPath instead of SandboxCgroupPath', () => {
    const info = decodeGoPersist(
      JSON.stringify({ CgroupPath: '/kubepods/podx/abc', HypervisorState: { Type: 'firecracker', Pid: 77 } }),
      'abc',
    );
    expect(info).toMatchObject({ sandboxCgroupPath: '/kubepods/podx/abc', hypervisor: 'firecracker', vmmPid: 77 });
  });

  test('a type we cannot vouch for is kept raw but names no hypervisor', () => {
    const info = decodeGoPersist(JSON.stringify({ HypervisorState: { Type: 'acrn' } }), 'abc');
    expect(info.hypervisor).toBeUndefined();
    expect(info.hypervisorType).toBe('acrn');
  });

  test('without a matching container id, the container annotated as sandbox is used', () => {
    const text = JSON.stringify({
      Config: {
        ContainerConfigs: [
          { ID: 'app', Annotations: { 'io.kubernetes.cri.container-type': 'container', x: '1' } },
          { ID: 'pause', Annotations: { 'io.kubernetes.cri-o.ContainerType': 'sandbox', y: '2', bad: 3 } },
        ],
      },
    });
    expect(decodeGoPersist(text, 'other').annotations).toEqual({ 'io.kubernetes.cri-o.ContainerType': 'sandbox', y: '2' });
  });
});

describe('runtime-rs state.json', () => {
  test('C: Dragonball, no pid persisted, sandbox_cgroup_only', () => {
    expect(decodeRsState(node(`run/kata/${C}/state.json`))).toEqual({
      hypervisor: 'dragonball',
      hypervisorType: 'dragonball',
      sandboxCgroupPath: `/kubepods/burstable/poda4b2d9f7-3a2c-4b28-b85c-aac58e76fd27/${C}`,
      sandboxCgroupOnly: true,
      vmMemoryBytes: 2048 * 2 ** 20, // default_memory 2048 (MiB) in the fixture
      annotations: {},
    });
  });

  test('D: Cloud Hypervisor spelled "cloud-hypervisor"', () => {
    expect(decodeRsState(node(`run/kata/${D}/state.json`))).toMatchObject({
      hypervisor: 'cloud-hypervisor',
      sandboxCgroupPath: `/kubepods/podd3c2e59a-e8f7-49c3-b274-cdb726f56dbc/${D}`,
      sandboxCgroupOnly: true,
    });
  });

  test('E: QEMU with sandbox_cgroup_only=false and an overhead path', () => {
    expect(decodeRsState(node(`run/kata/${E}/state.json`))).toMatchObject({
      hypervisor: 'qemu',
      sandboxCgroupPath: `/kubepods/besteffort/podc951779c-39f1-4093-9081-2ad3e6f86552/${E}`,
      overheadCgroupPath: `/kata_overhead/${E}`,
      sandboxCgroupOnly: false,
    });
  });

  test('older releases spell Cloud Hypervisor "clh"; a pid is kept when set', () => {
    expect(decodeRsState(JSON.stringify({ hypervisor: { hypervisor_type: 'clh', pid: 4242 } }))).toEqual({
      hypervisor: 'cloud-hypervisor',
      hypervisorType: 'clh',
      vmmPid: 4242,
      annotations: {},
    });
  });

  test('firecracker and remote', () => {
    expect(decodeRsState(JSON.stringify({ hypervisor: { hypervisor_type: 'firecracker' } })).hypervisor).toBe('firecracker');
    expect(decodeRsState(JSON.stringify({ hypervisor: { hypervisor_type: 'remote' } })).hypervisor).toBeUndefined();
  });
});

describe('malformed and unexpected input never throws and leaves fields undefined', () => {
  const empty = { annotations: {} };
  test.each([
    ['undefined', undefined],
    ['empty', ''],
    ['truncated', '{"SandboxContainer": "a'],
    ['array', '[1,2]'],
    ['string', '"hello"'],
    ['null', 'null'],
  ])('%s', (_name, text) => {
    expect(decodeKataState('go', text, 'a')).toEqual(empty);
    expect(decodeKataState('rs', text, 'a')).toEqual(empty);
  });

  test('wrong field types are ignored one by one', () => {
    const go = decodeGoPersist(
      JSON.stringify({
        SandboxCgroupPath: 42,
        OverheadCgroupPath: ['x'],
        HypervisorState: { Type: 7, Pid: '41002' },
        Config: { SandboxCgroupOnly: 'true', ContainerConfigs: { ID: 'a' } },
      }),
      'a',
    );
    expect(go).toEqual({
      sandboxCgroupPath: undefined,
      overheadCgroupPath: undefined,
      sandboxCgroupOnly: undefined,
      vmmPid: undefined,
      annotations: {},
    });
    const rs = decodeRsState(
      JSON.stringify({ hypervisor: { hypervisor_type: null, pid: -1 }, resource: { cgroup_state: { path: {}, sandbox_cgroup_only: 1 } } }),
    );
    expect(rs).toEqual({
      sandboxCgroupPath: undefined,
      overheadCgroupPath: undefined,
      sandboxCgroupOnly: undefined,
      vmmPid: undefined,
      annotations: {},
    });
  });

  test('decodeKataState picks the decoder by runtime', () => {
    expect(decodeKataState('go', node(`run/vc/sbs/${A}/persist.json`), A).hypervisor).toBe('qemu');
    // A Go persist.json read as runtime-rs state has none of the rs fields.
    expect(decodeKataState('rs', node(`run/vc/sbs/${A}/persist.json`), A).hypervisor).toBeUndefined();
  });
});
