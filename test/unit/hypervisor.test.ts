import { describe, expect, test } from 'vitest';
import {
  cmdlineMentionsSandbox,
  hypervisorFromProcesses,
  hypervisorFromType,
  hypervisorOfProcess,
  shimScrapeDecision,
  type ShimScrapeMode,
} from '../../src/translate/hypervisor.ts';
import type { HostProcess, Hypervisor, KataRuntime } from '../../src/translate/records.ts';

const ID = 'f43aa3501600a50eeddb1c2726e6e9390ba5e4085dfdbe2dbb2d18a09dd6ccf8';

const proc = (pid: number, comm: string, cmdline: string[], threadNames: string[] = []): HostProcess => ({
  pid,
  comm,
  cmdline,
  threadNames,
});

describe('hypervisorFromType', () => {
  test.each([
    ['qemu', 'qemu'],
    ['clh', 'cloud-hypervisor'],
    ['cloud-hypervisor', 'cloud-hypervisor'],
    ['firecracker', 'firecracker'],
    ['dragonball', 'dragonball'],
    ['QEMU', 'qemu'],
    ['acrn', undefined],
    ['remote', undefined],
    ['stratovirt', undefined],
    ['constructor', undefined],
    ['', undefined],
    [undefined, undefined],
  ])('%s → %s', (type, expected) => {
    expect(hypervisorFromType(type)).toBe(expected);
  });
});

describe('cmdlineMentionsSandbox', () => {
  test.each([
    ['QEMU -name', ['qemu-system-x86_64', '-name', `sandbox-${ID},debug-threads=on`], true],
    ['Go CLH api socket', ['cloud-hypervisor', '--api-socket', `/run/vc/vm/${ID}/clh-api.sock`], true],
    ['runtime-rs CLH api socket', ['cloud-hypervisor', '--api-socket', `/run/kata/${ID}/ch-api.sock`], true],
    ['runtime-rs shim -id', ['containerd-shim-kata-v2', '-id', ID, '-namespace', 'k8s.io'], true],
    [
      'Go Firecracker, id cut to 32',
      ['firecracker', '--api-sock', `/run/vc/firecracker/${ID.slice(0, 32)}/root/run/firecracker.socket`],
      true,
    ],
    ['an 8-character prefix', ['grep', ID.slice(0, 8)], false],
    ['a 33-character prefix', ['x', `/run/${ID.slice(0, 33)}/`], false],
    ['the id inside a longer hex string', ['x', `${ID}00`], false],
    ['an empty cmdline', [], false],
  ])('%s → %s', (_name, cmdline, expected) => {
    expect(cmdlineMentionsSandbox(cmdline, ID)).toBe(expected);
  });

  test('a short id only matches as a whole token', () => {
    expect(cmdlineMentionsSandbox(['x', '-id', 'abc'], 'abc')).toBe(true);
    expect(cmdlineMentionsSandbox(['x', '-id', 'abcd'], 'abc')).toBe(false);
    expect(cmdlineMentionsSandbox(['x'], '')).toBe(false);
  });
});

describe('hypervisorOfProcess', () => {
  test.each<[string, HostProcess, Hypervisor | undefined]>([
    ['QEMU by executable', proc(1, 'qemu-system-x86', ['/opt/kata/bin/qemu-system-x86_64', '-name', 'x']), 'qemu'],
    ['QEMU aarch64', proc(1, 'qemu-system-aar', ['/usr/bin/qemu-system-aarch64']), 'qemu'],
    ['RHEL qemu-kvm', proc(1, 'qemu-kvm', ['/usr/libexec/qemu-kvm']), 'qemu'],
    ['QEMU by truncated comm, cmdline unreadable', proc(1, 'qemu-system-x86', []), 'qemu'],
    ['Cloud Hypervisor', proc(1, 'cloud-hyperviso', ['/opt/kata/bin/cloud-hypervisor']), 'cloud-hypervisor'],
    ['Cloud Hypervisor by truncated comm', proc(1, 'cloud-hyperviso', []), 'cloud-hypervisor'],
    ['Firecracker', proc(1, 'firecracker', ['/opt/kata/bin/firecracker']), 'firecracker'],
    [
      'runtime-rs shim with Dragonball vCPU threads',
      proc(1, 'containerd-shim', ['/opt/kata/runtime-rs/bin/containerd-shim-kata-v2', '-id', ID], ['containerd-shim', 'db_vcpu0']),
      'dragonball',
    ],
    [
      'a shim without db_vcpu threads',
      proc(1, 'containerd-shim', ['/opt/kata/bin/containerd-shim-kata-v2'], ['containerd-shim']),
      undefined,
    ],
    [
      'a non-Kata shim with db_vcpu-named threads',
      proc(1, 'containerd-shim', ['/usr/bin/containerd-shim-runc-v2'], ['db_vcpu0']),
      undefined,
    ],
    ['virtiofsd', proc(1, 'virtiofsd', ['/opt/kata/libexec/virtiofsd']), undefined],
    ['crictl naming the id', proc(1, 'crictl', ['crictl', 'inspectp', ID]), undefined],
  ])('%s', (_name, process, expected) => {
    expect(hypervisorOfProcess(process)).toBe(expected);
  });
});

describe('hypervisorFromProcesses', () => {
  const qemu = proc(10, 'qemu-system-x86', ['/opt/kata/bin/qemu-system-x86_64']);
  const virtiofsd = proc(11, 'virtiofsd', ['/opt/kata/libexec/virtiofsd']);
  const fc = proc(12, 'firecracker', ['/opt/kata/bin/firecracker']);

  test('the one VMM among the sandbox processes, with its pid', () => {
    expect(hypervisorFromProcesses([virtiofsd, qemu])).toEqual({ hypervisor: 'qemu', pid: 10 });
  });
  test('none seen', () => {
    expect(hypervisorFromProcesses([virtiofsd])).toBeUndefined();
    expect(hypervisorFromProcesses([])).toBeUndefined();
  });
  test('two different VMMs: no guess', () => {
    expect(hypervisorFromProcesses([qemu, fc])).toBeUndefined();
  });
});

describe('shimScrapeDecision', () => {
  const runtimes: KataRuntime[] = ['go', 'rs'];
  const hypervisors: Hypervisor[] = ['qemu', 'cloud-hypervisor', 'firecracker', 'dragonball', 'unknown'];
  const modes: ShimScrapeMode[] = ['safe', 'all', 'none'];

  /** Handwritten from domain.md §2: the expected outcome for every cell with a socket present. */
  const expected: Record<KataRuntime, Record<Hypervisor, Record<ShimScrapeMode, true | 'shim_unsafe_runtime' | 'shim_disabled'>>> = {
    go: {
      qemu: { safe: true, all: true, none: true },
      'cloud-hypervisor': { safe: true, all: true, none: true },
      firecracker: { safe: true, all: true, none: true },
      dragonball: { safe: true, all: true, none: true },
      unknown: { safe: true, all: true, none: true },
    },
    rs: {
      qemu: { safe: 'shim_unsafe_runtime', all: true, none: 'shim_disabled' },
      'cloud-hypervisor': { safe: true, all: true, none: 'shim_disabled' },
      firecracker: { safe: 'shim_unsafe_runtime', all: true, none: 'shim_disabled' },
      dragonball: { safe: true, all: true, none: 'shim_disabled' },
      unknown: { safe: 'shim_unsafe_runtime', all: true, none: 'shim_disabled' },
    },
  };

  const cells = runtimes.flatMap((runtime) =>
    hypervisors.flatMap((hypervisor) => modes.map((mode) => [runtime, hypervisor, mode] as const)),
  );

  test.each(cells)('%s × %s × %s, socket present', (runtime, hypervisor, mode) => {
    const decision = shimScrapeDecision({ runtime, hypervisor, socketPath: '/run/x/shim-monitor.sock' }, mode);
    const want = expected[runtime][hypervisor][mode];
    if (want === true) expect(decision).toEqual({ scrape: true });
    else expect(decision).toMatchObject({ scrape: false, reason: want });
  });

  test.each(cells)('%s × %s × %s, no socket: shim_socket_missing', (runtime, hypervisor, mode) => {
    expect(shimScrapeDecision({ runtime, hypervisor }, mode)).toMatchObject({ scrape: false, reason: 'shim_socket_missing' });
  });

  test('in safe mode a runtime-rs QEMU or Firecracker sandbox is never selected', () => {
    for (const hypervisor of ['qemu', 'firecracker', 'unknown'] as const) {
      const decision = shimScrapeDecision({ runtime: 'rs', hypervisor, socketPath: '/s' }, 'safe');
      expect(decision.scrape).toBe(false);
    }
  });

  test('details say why and which flag changes it', () => {
    const unsafe = shimScrapeDecision({ runtime: 'rs', hypervisor: 'qemu', socketPath: '/s' }, 'safe');
    expect(unsafe.scrape === false && unsafe.detail).toMatch(/QEMU.*13708.*--shim\.runtime-rs=all/s);
    const unknown = shimScrapeDecision({ runtime: 'rs', hypervisor: 'unknown', socketPath: '/s' }, 'safe');
    expect(unknown.scrape === false && unknown.detail).toMatch(/could not be identified.*--shim\.runtime-rs=all/s);
    const disabled = shimScrapeDecision({ runtime: 'rs', hypervisor: 'dragonball', socketPath: '/s' }, 'none');
    expect(disabled.scrape === false && disabled.detail).toMatch(/--shim\.runtime-rs=none/);
    const missing = shimScrapeDecision({ runtime: 'go', hypervisor: 'qemu' }, 'all');
    expect(missing.scrape === false && missing.detail).toMatch(/shim-monitor\.sock/);
  });
});
