import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { FAMILIES } from '../../src/publish/families.ts';
import { vmMemoryFromCmdline } from '../../src/translate/hypervisor.ts';
import { decodeGoPersist, decodeRsState } from '../../src/translate/kata-state.ts';
import type { HostProcess, RawSandbox } from '../../src/translate/records.ts';
import { buildSandboxRecord } from '../../src/translate/sandbox-map.ts';
import type { NodeSnapshot, PodSnapshot } from '../../src/translate/snapshot.ts';
import { FIXTURE_NODE, IDS } from '../fixtures/sandboxes/node.ts';

const MiB = 2 ** 20;
const node = (path: string) => readFileSync(join(FIXTURE_NODE, path), 'utf8');
const proc = (cmdline: string[], pid = 7): HostProcess => ({ pid, comm: '', cmdline, threadNames: [] });
const QEMU = '/opt/kata/bin/qemu-system-x86_64';
const CLH = '/opt/kata/bin/cloud-hypervisor';

describe('vmMemoryFromCmdline', () => {
  test.each([
    [[QEMU, '-name', 'sandbox-x', '-m', '2048M,slots=10,maxmem=32768M'], 2048 * MiB],
    [[QEMU, '-m', 'size=4G,slots=2,maxmem=8G'], 4096 * MiB],
    [[QEMU, '-m', '512'], 512 * MiB], // QEMU's default unit is MiB
    [[QEMU, '-m=1024M'], 1024 * MiB],
    [[CLH, '--api-socket', '/run/x.sock', '--memory', 'size=1073741824,shared=on'], 1024 * MiB], // bytes without a suffix
    [[CLH, '--memory', 'size=2G,shared=on'], 2048 * MiB],
  ])('%j → %d', (cmdline, bytes) => {
    expect(vmMemoryFromCmdline(proc(cmdline))).toBe(bytes);
  });

  test.each([
    [[CLH, '--api-socket', '/run/x.sock']], // Kata starts Cloud Hypervisor through its API
    [['/opt/kata/bin/firecracker', '--api-sock', '/run/fc.sock']],
    [[QEMU, '-m']],
    [[QEMU, '-m', 'lots']],
    [[QEMU, '-m', '0']],
    [[QEMU, '-m', '99999999T']], // past any real VM
    [[CLH, '--memory', 'shared=on']],
    [['/usr/bin/sleep', '-m', '2048M']], // not a hypervisor
  ])('%j → nothing', (cmdline) => {
    expect(vmMemoryFromCmdline(proc(cmdline))).toBeUndefined();
  });
});

describe('the configured memory in Kata state files', () => {
  test('Go persist.json: Config.HypervisorConfig.MemorySize (MiB)', () => {
    expect(decodeGoPersist(node(`run/vc/sbs/${IDS.A}/persist.json`), IDS.A).vmMemoryBytes).toBe(2048 * MiB);
    expect(decodeGoPersist(JSON.stringify({ Config: { HypervisorConfig: { MemorySize: -1 } } }), 'x').vmMemoryBytes).toBeUndefined();
    expect(decodeGoPersist(JSON.stringify({ Config: { HypervisorConfig: { MemorySize: '2048' } } }), 'x').vmMemoryBytes).toBeUndefined();
  });
  test('runtime-rs state.json: hypervisor.config.memory_info.default_memory (MiB)', () => {
    expect(decodeRsState(node(`run/kata/${IDS.C}/state.json`)).vmMemoryBytes).toBe(2048 * MiB);
    expect(decodeRsState(JSON.stringify({ hypervisor: { config: {} } })).vmMemoryBytes).toBeUndefined();
  });
});

describe('buildSandboxRecord: the command line wins over the state file', () => {
  const raw = (processes: HostProcess[]): RawSandbox => ({
    id: 'sb1',
    runtime: 'go',
    dir: '/run/vc/sbs/sb1',
    stateText: JSON.stringify({ HypervisorState: { Type: 'qemu' }, Config: { HypervisorConfig: { MemorySize: 2048 } } }),
    processes,
  });
  test('the QEMU process started with -m 3072M', () => {
    const record = buildSandboxRecord(raw([proc([QEMU, '-name', 'sandbox-sb1', '-m', '3072M'])]));
    expect([record.vmMemoryBytes, record.vmMemorySource]).toEqual([3072 * MiB, 'cmdline']);
  });
  test('no process read: the state file', () => {
    const record = buildSandboxRecord(raw([]));
    expect([record.vmMemoryBytes, record.vmMemorySource]).toEqual([2048 * MiB, 'state']);
  });
  test('neither: absent', () => {
    const record = buildSandboxRecord({ ...raw([]), stateText: undefined });
    expect(record.vmMemoryBytes).toBeUndefined();
  });
});

describe('the exporter families', () => {
  const pod = (over: Partial<PodSnapshot>): PodSnapshot => ({ namespace: 'ci', pod: 'p', uid: 'u', gaps: [], containers: [], ...over });
  const snapshot = (pods: PodSnapshot[]): NodeSnapshot =>
    ({ takenAtMs: 0, pods, sandboxes: [], sources: {} as NodeSnapshot['sources'] }) as NodeSnapshot;
  const collect = (name: string, snap: NodeSnapshot) => {
    const out: Array<{ labels: Record<string, string>; value: number }> = [];
    FAMILIES.find((f) => f.name === name)!.collect(snap, (labels, value) => out.push({ labels, value }));
    return out;
  };

  test('pod_vm_memory_bytes: one series per pod that has it', () => {
    const snap = snapshot([pod({ pod: 'a', vmMemoryBytes: 2048 * MiB }), pod({ pod: 'b' })]);
    expect(collect('pod_vm_memory_bytes', snap)).toEqual([{ labels: { namespace: 'ci', pod: 'a' }, value: 2048 * MiB }]);
  });
  test('pod_labels: one info series per pod with allowlisted labels, none otherwise', () => {
    const snap = snapshot([pod({ pod: 'a', labels: { label_tenant: 'acme' } }), pod({ pod: 'b', labels: {} }), pod({ pod: 'c' })]);
    expect(collect('pod_labels', snap)).toEqual([{ labels: { namespace: 'ci', pod: 'a', label_tenant: 'acme' }, value: 1 }]);
  });
  test('container requests beside limits', () => {
    const snap = snapshot([pod({ containers: [{ name: 'c1', cpuRequestCores: 0.5, memoryRequestBytes: 256 * MiB }, { name: 'c2' }] })]);
    expect(collect('container_cpu_request_cores', snap)).toEqual([{ labels: { namespace: 'ci', pod: 'p', container: 'c1' }, value: 0.5 }]);
    expect(collect('container_memory_request_bytes', snap)).toEqual([
      { labels: { namespace: 'ci', pod: 'p', container: 'c1' }, value: 256 * MiB },
    ]);
  });
});
