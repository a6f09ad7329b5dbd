/**
 * The per-pod host families in correlation: pod + overhead sums, monotonic counters, the gap
 * reasons that explain what is missing, and the guest's OOM kills beside the host's.
 */
import { describe, expect, test } from 'vitest';

import { correlate } from '../../src/translate/correlate.ts';
import { CounterState } from '../../src/translate/counters.ts';
import type { CgroupUsage } from '../../src/translate/records.ts';
import type { PodSnapshot } from '../../src/translate/snapshot.ts';
import { cgroup, guest, input, pod, sandboxFor, shimOk } from '../support/correlation-builders.ts';

function collectOnce(i: Parameters<typeof correlate>[0], counters = new CounterState()): PodSnapshot {
  counters.beginCollection();
  const result = correlate(i, counters);
  counters.endCollection();
  expect(result.pods).toHaveLength(1);
  return result.pods[0]!;
}

function podCgroup(extra: Partial<CgroupUsage>): CgroupUsage {
  return { ...cgroup(100, 1e9), version: 2, ...extra };
}

const p = pod('build');

describe('host families', () => {
  test('counters add the overhead cgroup; limit and pressure come from the pod cgroup', () => {
    const r = collectOnce(
      input({
        pods: [p],
        podCgroups: new Map([
          [
            p.uid,
            podCgroup({
              cpuThrottledSeconds: 4,
              oomKills: 0,
              diskReadBytes: 10,
              diskWrittenBytes: 20,
              memoryLimitBytes: 2e9,
              pressure: { io: { some: 1.5, full: 0.5 } },
            }),
          ],
        ]),
        sandboxes: [
          sandboxFor(p, 's1', shimOk(guest(50, { oomKills: 3 })), {
            overheadCgroup: { ...cgroup(5, 1e8), oomKills: 1, cpuThrottledSeconds: 0, diskReadBytes: 1, diskWrittenBytes: 2 },
            hostNetwork: { state: 'ok', receiveBytes: 700, transmitBytes: 800 },
          }),
        ],
      }),
    );
    expect(r).toMatchObject({
      hostCpuThrottledSeconds: 4,
      hostOomKills: 1,
      hostDiskReadBytes: 11,
      hostDiskWrittenBytes: 22,
      hostMemoryLimitBytes: 2e9,
      hostPressure: { io: { some: 1.5, full: 0.5 } },
      hostNetworkReceiveBytes: 700,
      hostNetworkTransmitBytes: 800,
      guestOomKills: 3,
    });
    expect(r.gaps).toEqual([]);
  });

  test('no VMM found, or a missing host file, is a gap reason of the pod', () => {
    const r = collectOnce(
      input({
        pods: [p],
        podCgroups: new Map([[p.uid, podCgroup({ cpuThrottledSeconds: 1, missingFiles: ['io.stat'] })]]),
        sandboxes: [sandboxFor(p, 's1', shimOk(guest(1)), { hostNetwork: { state: 'host_namespace' } })],
      }),
    );
    expect(r.gaps).toEqual(['host_file_missing', 'host_vmm_not_found']);
    expect(r.hostNetworkReceiveBytes).toBeUndefined();
    expect(r.hostDiskReadBytes).toBeUndefined();
    expect(r.hostCpuThrottledSeconds).toBe(1);
  });

  test('with the network collector off (no read), no network gap', () => {
    const r = collectOnce(
      input({ pods: [p], podCgroups: new Map([[p.uid, podCgroup({})]]), sandboxes: [sandboxFor(p, 's1', shimOk(guest(1)))] }),
    );
    expect(r.gaps).toEqual([]);
  });

  test('a host counter never goes backwards while the pod lives (a VMM restart resets net/dev)', () => {
    const counters = new CounterState();
    const at = (rx: number, kills: number) =>
      collectOnce(
        input({
          pods: [p],
          podCgroups: new Map([[p.uid, podCgroup({ oomKills: kills })]]),
          sandboxes: [sandboxFor(p, 's1', shimOk(guest(1)), { hostNetwork: { state: 'ok', receiveBytes: rx, transmitBytes: 0 } })],
        }),
        counters,
      );
    expect(at(1000, 1).hostNetworkReceiveBytes).toBe(1000);
    const after = at(100, 1);
    expect(after.hostNetworkReceiveBytes).toBeGreaterThanOrEqual(1000);
    expect(after.hostOomKills).toBe(1);
  });
});
