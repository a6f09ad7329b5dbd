/**
 * Kata shim payload decoder. Expected values are recomputed here from the numbers visible in the
 * fixture files (test/fixtures/kata/*.prom), never copied from decoder output.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { decodeShimMetrics, isWholeDisk } from '../../src/translate/kata-decode.ts';
import { PromParseError } from '../../src/prom-text/index.ts';
import type { KataRuntime } from '../../src/translate/records.ts';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/kata');
const MiB = 1024 * 1024;

function decodeFixture(file: string, runtime: KataRuntime) {
  return decodeShimMetrics(readFileSync(join(fixtures, file)), runtime);
}

function decodeText(text: string, runtime: KataRuntime = 'go') {
  return decodeShimMetrics(Buffer.from(text), runtime);
}

describe('decodeShimMetrics on real-shape fixtures', () => {
  it('Go + QEMU: base units for guest, shim, QEMU, virtiofsd and agent', () => {
    const m = decodeFixture('go-qemu.prom', 'go');
    // kata_guest_cpu_time{cpu="total"} is in milliseconds.
    expect(m.guest.cpu?.user).toBeCloseTo(10_156_760 / 1000, 9);
    expect(m.guest.cpu?.system).toBeCloseTo(2_503_560 / 1000, 9);
    expect(m.guest.cpu?.idle).toBeCloseTo(690_640_000 / 1000, 9);
    expect(m.guest.cpu?.iowait).toBeCloseTo(36_760 / 1000, 9);
    expect(m.guest.cpu?.steal).toBeCloseTo(7_400 / 1000, 9);
    expect(m.guest.memTotalBytes).toBe(4_124_073_984);
    expect(m.guest.memAvailableBytes).toBe(3_506_438_144);
    expect(m.guest.tasks).toBe(187);
    expect(m.guest.tasksMax).toBe(4_194_304);
    expect(m.guest.load1).toBe(1.42);
    // eth0 only: lo (48213) is not traffic.
    expect(m.guest.networkReceiveBytes).toBe(734_003_200);
    expect(m.guest.networkTransmitBytes).toBe(52_428_800);
    // Whole disks pmem0 + vda; pmem0p1, vda1 and loop0 are skipped.
    expect(m.guest.diskReadBytes).toBe((409_600 + 2_048_000) * 512);
    expect(m.guest.diskWrittenBytes).toBe((0 + 1_024_000) * 512);
    // Go shim: ticks / 100, proc_status already in bytes (5.24288e+07), readbytes.
    expect(m.shim).toEqual({
      cpuSeconds: (3_050 + 1_720) / 100,
      residentBytes: 52_428_800,
      virtualBytes: 1_488_977_920,
      readBytes: 98_304,
      writeBytes: 20_480,
      threads: 22,
      fds: 41,
    });
    expect(m.hypervisor.cpuSeconds).toBeCloseTo((612_300 + 98_450) / 100, 9);
    expect(m.hypervisor.residentBytes).toBe(2_317_352_960);
    expect(m.hypervisor.readBytes).toBe(1_073_741_824);
    expect(m.virtiofsd?.cpuSeconds).toBeCloseTo((45_670 + 81_230) / 100, 9);
    expect(m.virtiofsd?.residentBytes).toBe(25_165_824);
    // The agent is Rust even under the Go shim: vmrss 9216 KiB, read_bytes.
    expect(m.agent).toEqual({
      cpuSeconds: (1_250 + 870) / 100,
      residentBytes: 9_216 * 1024,
      virtualBytes: 163_840 * 1024,
      readBytes: 4_096_000,
      writeBytes: 1_048_576,
      threads: 14,
    });
    expect(m.reportedOverhead).toEqual({ cpu: 3.2, memoryBytes: 180_355_072 });
    expect(m.firecrackerWindow).toBeUndefined();
    expect(m.vmmInShim).toBeUndefined();
    expect(m.rejectedSamples).toBe(0);
  });

  it('Go + Cloud Hypervisor: the wrapped pod overhead memory is refused, two NICs summed', () => {
    const m = decodeFixture('go-clh.prom', 'go');
    expect(m.reportedOverhead).toEqual({ cpu: 1.7 });
    expect(m.rejectedSamples).toBe(1);
    expect(m.guest.networkReceiveBytes).toBe(10_485_760 + 1_048_576);
    expect(m.guest.networkTransmitBytes).toBe(2_097_152 + 524_288);
    expect(m.guest.cpu?.user).toBeCloseTo(1_887_180 / 1000, 9);
    expect(m.hypervisor.cpuSeconds).toBeCloseTo((210_400 + 45_600) / 100, 9);
    expect(m.virtiofsd?.residentBytes).toBe(18 * MiB);
  });

  it('Go + Firecracker: window deltas kept apart, no virtiofsd, dm-0 not double counted', () => {
    const m = decodeFixture('go-firecracker.prom', 'go');
    expect(m.firecrackerWindow?.['net.rx_bytes_count']).toBe(262_144);
    expect(m.firecrackerWindow?.['block.read_bytes']).toBe(1_843_200);
    expect(m.firecrackerWindow?.['vcpu.exit_io_out']).toBe(9_823);
    expect(m.virtiofsd).toBeUndefined();
    expect(m.guest.diskReadBytes).toBe((500_000 + 120_000) * 512);
    expect(m.guest.diskWrittenBytes).toBe((80 + 90_000) * 512);
    expect(m.guest.networkReceiveBytes).toBe(3_145_728);
    expect(m.hypervisor.cpuSeconds).toBeCloseTo((98_100 + 21_300) / 100, 9);
  });

  it('runtime-rs + Dragonball: shim readings in KiB, read_bytes, the VMM lives in the shim', () => {
    const m = decodeFixture('rs-dragonball.prom', 'rs');
    expect(m.shim).toEqual({
      cpuSeconds: (150_200 + 30_400) / 100,
      residentBytes: 1_208_320 * 1024,
      virtualBytes: 3_993_600 * 1024,
      readBytes: 402_653_184,
      writeBytes: 100_663_296,
      threads: 21,
      fds: 57,
    });
    expect(m.hypervisor).toEqual({});
    expect(m.vmmInShim).toBe(true);
    expect(m.virtiofsd).toBeUndefined();
    expect(m.reportedOverhead).toBeUndefined();
    expect(m.guest.cpu?.user).toBeCloseTo(1_442_740 / 1000, 9);
    expect(m.guest.diskReadBytes).toBe((400_000 + 80_000) * 512);
    expect(m.rejectedSamples).toBe(0);
  });

  it('runtime-rs + Cloud Hypervisor: no hypervisor families at all, nvme partition skipped', () => {
    const m = decodeFixture('rs-clh.prom', 'rs');
    expect(m.hypervisor).toEqual({});
    expect(m.vmmInShim).toBeUndefined();
    expect(m.shim.residentBytes).toBe(36 * 1024 * 1024);
    expect(m.shim.cpuSeconds).toBeCloseTo((2_870 + 1_440) / 100, 9);
    expect(m.guest.diskReadBytes).toBe((150_000 + 90_000) * 512);
    expect(m.guest.diskWrittenBytes).toBe((30_000 + 40_000) * 512);
  });

  it('3.32-era payload with kata_guest_filesystem_bytes decodes; the new family is ignored', () => {
    const m = decodeFixture('go-qemu-3.32-filesystem.prom', 'go');
    expect(m.guest.cpu?.user).toBeCloseTo(504_500 / 1000, 9);
    expect(m.guest.diskReadBytes).toBe(200_000 * 512);
    expect(m.rejectedSamples).toBe(0);
  });
});

const family = (name: string, lines: string[]) => `# TYPE ${name} gauge\n${lines.map((l) => `${name}${l}`).join('\n')}\n`;

describe('units by origin', () => {
  const status = family('kata_shim_proc_status', ['{item="vmrss"} 2048']);

  it('proc_status is bytes from the Go shim and KiB from runtime-rs', () => {
    expect(decodeText(status, 'go').shim.residentBytes).toBe(2048);
    expect(decodeText(status, 'rs').shim.residentBytes).toBe(2048 * 1024);
  });

  it('the agent proc_status is KiB whichever shim relays it', () => {
    const agent = family('kata_agent_proc_status', ['{item="vmrss"} 100']);
    expect(decodeText(agent, 'go').agent?.residentBytes).toBe(100 * 1024);
    expect(decodeText(agent, 'rs').agent?.residentBytes).toBe(100 * 1024);
  });

  it('io_stat spelled readbytes (Go) or read_bytes (Rust)', () => {
    const go = decodeText(family('kata_hypervisor_io_stat', ['{item="readbytes"} 7', '{item="writebytes"} 9']));
    const rs = decodeText(family('kata_shim_io_stat', ['{item="read_bytes"} 11', '{item="write_bytes"} 13']), 'rs');
    expect([go.hypervisor.readBytes, go.hypervisor.writeBytes]).toEqual([7, 9]);
    expect([rs.shim.readBytes, rs.shim.writeBytes]).toEqual([11, 13]);
  });

  it('proc_stat ticks use the given USER_HZ', () => {
    const stat = family('kata_shim_proc_stat', ['{item="utime"} 300', '{item="stime"} 200']);
    expect(decodeText(stat).shim.cpuSeconds).toBe(5);
    expect(decodeShimMetrics(Buffer.from(stat), 'go', { userHz: 250 }).shim.cpuSeconds).toBe(2);
  });

  it("the Go shim's unprefixed process_* / go_threads are its own; under runtime-rs they are not", () => {
    const text =
      family('process_cpu_seconds_total', [' 12.5']) +
      family('process_resident_memory_bytes', [' 3.3554432e+07']) +
      family('process_open_fds', [' 40']) +
      family('go_threads', [' 18']) +
      family('kata_guest_load', ['{item="load1"} 0.5']);
    expect(decodeText(text, 'go').shim).toEqual({ cpuSeconds: 12.5, residentBytes: 33_554_432, fds: 40, threads: 18 });
    expect(decodeText(text, 'rs').shim).toEqual({});
  });

  it('Firecracker window values never leak into guest or hypervisor totals', () => {
    const m = decodeText(
      family('kata_firecracker_block', ['{item="read_bytes"} 4096']) + family('kata_firecracker_net', ['{item="rx_bytes_count"} 100']),
    );
    expect(m.firecrackerWindow).toEqual({ 'block.read_bytes': 4096, 'net.rx_bytes_count': 100 });
    expect(m.guest.diskReadBytes).toBeUndefined();
    expect(m.guest.networkReceiveBytes).toBeUndefined();
    expect(m.hypervisor.readBytes).toBeUndefined();
  });
});

describe('hostile payloads', () => {
  it('NaN, +Inf, negative and 1e300 are refused and counted, never propagated', () => {
    const m = decodeText(
      family('kata_guest_meminfo', ['{item="mem_total"} NaN', '{item="mem_free"} 1024']) +
        family('kata_guest_tasks', ['{item="cur"} +Inf', '{item="max"} 100']) +
        family('kata_guest_load', ['{item="load1"} -1']) +
        family('kata_shim_threads', [' 1e300']),
    );
    expect(m.guest.memTotalBytes).toBeUndefined();
    expect(m.guest.memFreeBytes).toBe(1024);
    expect(m.guest.tasks).toBeUndefined();
    expect(m.guest.tasksMax).toBe(100);
    expect(m.guest.load1).toBeUndefined();
    expect(m.shim.threads).toBeUndefined();
    expect(m.rejectedSamples).toBe(4);
  });

  it('a refused guest CPU item drops the whole row rather than skewing it', () => {
    const rows = ['user', 'system', 'idle'].map((item) => `{cpu="total",item="${item}"} ${item === 'system' ? '-Inf' : '1000'}`);
    const m = decodeText(family('kata_guest_cpu_time', rows));
    expect(m.guest.cpu).toBeUndefined();
    expect(m.rejectedSamples).toBe(1);
  });

  it('one refused interface value leaves the network sum unknown instead of too small', () => {
    const m = decodeText(
      family('kata_guest_netdev_stat', [
        '{interface="eth0",item="recv_bytes"} 100',
        '{interface="eth1",item="recv_bytes"} NaN',
        '{interface="eth0",item="sent_bytes"} 5',
      ]),
    );
    expect(m.guest.networkReceiveBytes).toBeUndefined();
    expect(m.guest.networkTransmitBytes).toBe(5);
    expect(m.rejectedSamples).toBe(1);
  });

  it('unknown items are ignored, even hostile ones', () => {
    const m = decodeText(family('kata_guest_meminfo', ['{item="bogus"} NaN', '{item="mem_total"} 4096']));
    expect(m.guest.memTotalBytes).toBe(4096);
    expect(m.rejectedSamples).toBe(0);
  });

  it('label injection attempts are inert data', () => {
    const m = decodeText(
      family('kata_guest_netdev_stat', [
        '{interface="eth0\\"} evil{x=\\"1",item="recv_bytes"} 5',
        '{interface="eth0",item="recv_bytes"} 10',
        '{interface="lo\\n",item="recv_bytes"} 7',
      ]),
    );
    // Neither odd name is `lo`, so both count; nothing else appears.
    expect(m.guest.networkReceiveBytes).toBe(5 + 10 + 7);
    expect(JSON.stringify(m)).not.toContain('evil');
  });

  it('10k distinct interfaces are aggregated, not stored', () => {
    const lines = Array.from({ length: 10_000 }, (_, i) => `{interface="veth${i}",item="recv_bytes"} 3`);
    const m = decodeText(family('kata_guest_netdev_stat', lines));
    expect(m.guest.networkReceiveBytes).toBe(30_000);
    expect(JSON.stringify(m).length).toBeLessThan(1_000);
  });

  it('families whose series are all unused (never built) still count as present', () => {
    const m = decodeText(
      family('kata_guest_cpu_time', ['{cpu="0",item="user"} 1']) + family('kata_virtiofsd_proc_stat', ['{item="minflt"} 1']),
    );
    expect(m.virtiofsd).toEqual({});
    expect(m.guest.cpu).toBeUndefined();
    expect(m.rejectedSamples).toBe(0);
  });

  it('parser limits bound cardinality: past maxSeries it is a PromParseError', () => {
    const lines = Array.from({ length: 500 }, (_, i) => `{disk="vd${i}",item="reads"} 1`);
    expect(() => decodeShimMetrics(Buffer.from(family('kata_guest_diskstat', lines)), 'go', { limits: { maxSeries: 100 } })).toThrow(
      PromParseError,
    );
  });

  it('HELP texts are not kept, but a bad HELP line of a kept family is still an error', () => {
    const load = 'kata_guest_load{item="load1"} 1\n';
    expect(decodeText(`# HELP kata_guest_load Load \\\\ avg.\\n\n${load}`).guest.load1).toBe(1);
    for (const help of ['# HELP kata_guest_load a\n# HELP kata_guest_load b\n', '# HELP kata_guest_load bad \\t\n']) {
      expect(() => decodeText(help + load)).toThrow(PromParseError);
    }
  });

  it('garbage bytes surface as PromParseError, whether or not a line looks like a kept family', () => {
    expect(() => decodeText('kata_guest_load{item="load1" 1\n\u0000\u00ff }}}{{{\n')).toThrow(PromParseError);
    expect(() => decodeText('\u0000\u0001{"not":"prometheus"}\n<html> }}}{{{\n')).toThrow(PromParseError);
    expect(() => decodeText('')).toThrow(PromParseError);
  });

  it('any kata_ family makes a Kata payload: one with only families the decoder does not read decodes to empty readings', () => {
    // The shape of a trimmed Go shim's output: go_* and kata_hypervisor_netdev (a family removed in Kata 3.3).
    const netdev = 'go_goroutines 27\nkata_hypervisor_netdev{interface="lo",item="recv_bytes"} 0\n';
    expect(decodeText(netdev)).toEqual({ shim: {}, hypervisor: {}, guest: {}, rejectedSamples: 0 });
    expect(decodeText('kata_agent_some_future_family 1\n', 'rs')).toEqual({ shim: {}, hypervisor: {}, guest: {}, rejectedSamples: 0 });
  });

  it('without any kata_ sample, or with a malformed kata_ line among unread families, it is not a Kata payload', () => {
    expect(() => decodeText('go_goroutines 27\n')).toThrow(PromParseError);
    expect(() => decodeText('# TYPE kata_hypervisor_netdev gauge\ngo_goroutines 27\n')).toThrow(PromParseError);
    expect(() => decodeText('go_goroutines 27\nkata_hypervisor_netdev{interface="lo" 0\n')).toThrow(PromParseError);
  });
});

describe('isWholeDisk', () => {
  it.each([
    ['vda', true],
    ['sdb', true],
    ['nvme0n1', true],
    ['pmem0', true],
    ['vda1', false],
    ['xvda2', false],
    ['nvme0n1p1', false],
    ['pmem0p1', false],
    ['mmcblk0p1', false],
    ['loop0', false],
    ['ram0', false],
    ['dm-0', false],
    ['sr0', false],
    ['zram0', false],
  ])('%s → %s', (name, whole) => {
    expect(isWholeDisk(name)).toBe(whole);
  });
});

describe('guest CPU unit across Kata 2.x (the agent names no version)', () => {
  const cpuRows = (values: Record<string, string>) =>
    family(
      'kata_guest_cpu_time',
      Object.entries(values).flatMap(([item, v]) => [`{cpu="0",item="${item}"} ${v}`, `{cpu="total",item="${item}"} ${v}`]),
    );

  it('2.5.0 on: whole multiples of 10 are milliseconds', () => {
    const m = decodeText(cpuRows({ user: '12340', system: '5670', idle: '900000' }));
    expect(m.guest.cpuUnit).toBe('milliseconds');
    expect(m.guest.cpu?.user).toBeCloseTo(12.34, 9);
  });

  it('2.4: whole numbers that are not all multiples of 10 are clock ticks (USER_HZ 100)', () => {
    const m = decodeText(cpuRows({ user: '1234', system: '567', idle: '90000' }));
    expect(m.guest.cpuUnit).toBe('ticks');
    expect(m.guest.cpu?.user).toBeCloseTo(12.34, 9);
    expect(m.guest.cpu?.idle).toBeCloseTo(900, 9);
  });

  it('2.2–2.3: fractions are seconds (procfs 0.7 f32)', () => {
    const m = decodeText(cpuRows({ user: '12.34000015258789', system: '5.670000076293945', idle: '900' }));
    expect(m.guest.cpuUnit).toBe('seconds');
    expect(m.guest.cpu?.user).toBeCloseTo(12.34, 6);
  });

  it('a row whose cpu label is no CPU number tells nothing: one forged value cannot flip the unit', () => {
    const forged = ['kata_guest_cpu_time{cpu="\u00f0(\u008c(",item="user"} 7', 'kata_guest_cpu_time{cpu="",item="idle"} 3'].join('\n');
    const m = decodeText(`${cpuRows({ user: '12340', system: '5670', idle: '900000' })}${forged}\n`);
    expect(m.guest.cpuUnit).toBe('milliseconds');
    expect(m.guest.cpu?.user).toBeCloseTo(12.34, 9);
  });

  it('too few non-zero values to tell: no guest CPU', () => {
    const m = decodeText(
      family('kata_guest_cpu_time', ['{cpu="total",item="user"} 0', '{cpu="total",item="system"} 0', '{cpu="total",item="idle"} 10']),
    );
    expect(m.guest.cpuUnit).toBe('unknown');
    expect(m.guest.cpu).toBeUndefined();
  });
});

describe('guest OOM kills', () => {
  it('kata_guest_vm_stat{item="oom_kill"} is the guest\'s count; the other vm_stat items are not read', () => {
    for (const [file, runtime] of [
      ['go-qemu.prom', 'go'],
      ['rs-dragonball.prom', 'rs'],
    ] as const) {
      expect(decodeFixture(file, runtime).guest.oomKills).toBe(0);
    }
    const m = decodeText(family('kata_guest_vm_stat', ['{item="pgfault"} 900', '{item="oom_kill"} 3']));
    expect(m.guest.oomKills).toBe(3);
    expect(decodeText(family('kata_guest_vm_stat', ['{item="oom_kill"} -2'])).guest.oomKills).toBeUndefined();
  });
});
