import { describe, expect, test } from 'vitest';
import { correlate, guestBusySeconds, outsideUsage } from '../../src/translate/correlate.ts';
import type { CgroupUsage } from '../../src/translate/records.ts';
import { CounterState } from '../../src/translate/counters.ts';
import type { PodSnapshot } from '../../src/translate/snapshot.ts';
import { NOW, cgroup, guest, input, kstat, kubelet, pod, sandboxFor, shimOk } from '../support/correlation-builders.ts';

function once(i: Parameters<typeof correlate>[0], counters = new CounterState()) {
  counters.beginCollection();
  const result = correlate(i, counters);
  counters.endCollection();
  return result;
}

function only(pods: PodSnapshot[]): PodSnapshot {
  expect(pods).toHaveLength(1);
  return pods[0]!;
}

describe('scope', () => {
  test('pods whose handler matches are in; others only when a Kata sandbox maps to them', () => {
    const kata = pod('kata-build');
    const runc = pod('runc-build', ['app'], { runtimeClassName: undefined, runtimeHandler: undefined });
    const mapped = pod('odd-handler', ['app'], { runtimeClassName: 'vm', runtimeHandler: 'vm' });
    const result = once(input({ pods: [kata, runc, mapped], sandboxes: [sandboxFor(mapped, 's1', shimOk(guest(1)))] }));
    expect(result.pods.map((p) => p.pod)).toEqual(['kata-build', 'odd-handler']);
  });

  test('finished pods keep no series', () => {
    const done = pod('done', ['app'], { phase: 'Succeeded' });
    expect(once(input({ pods: [done] })).pods).toEqual([]);
  });
});

describe('containers', () => {
  test('first-hand kubelet values are published as they are', () => {
    const p = pod('b');
    const r = only(once(input({ pods: [p], kubelet: kubelet([kstat(p, 'build', 42, 300e6)]) })).pods);
    expect(r.containers).toEqual([
      { name: 'build', cpuLimitCores: 2, memoryLimitBytes: 2 ** 31, source: 'kubelet', cpuSeconds: 42, memoryWorkingSetBytes: 300e6 },
    ]);
  });

  test('a missing series is a gap; a one-container pod gets the guest value as estimate', () => {
    const p = pod('b');
    const g = guest(30);
    const r = only(once(input({ pods: [p], sandboxes: [sandboxFor(p, 's', shimOk(g))] })).pods);
    const c = r.containers[0]!;
    expect(c.gap).toBe('kubelet_missing');
    expect(c.source).toBe('guest_estimate');
    expect(c.memoryWorkingSetBytes).toBe(2 ** 30); // 4 GiB total − 3 GiB available
    expect(c.cpuSeconds).toBe(30); // the container's first life: the guest total is all it ran
  });

  test('after a restart the estimate starts at zero: the guest total also holds the earlier lives', () => {
    const p = pod('b');
    p.containerStatuses[0]!.restartCount = 1;
    const r = only(once(input({ pods: [p], sandboxes: [sandboxFor(p, 's', shimOk(guest(30)))] })).pods);
    expect(r.containers[0]!.source).toBe('guest_estimate');
    expect(r.containers[0]!.cpuSeconds).toBe(0);
  });

  test('a running container reading zero CPU is a gap (CRI-O / cAdvisor case)', () => {
    const p = pod('b');
    const r = only(once(input({ pods: [p], kubelet: kubelet([kstat(p, 'build', 0, 0)]) })).pods);
    expect(r.containers[0]!.gap).toBe('kubelet_zero');
    expect(r.containers[0]!.source).toBeUndefined(); // no shim data: nothing to estimate from
  });

  test('a sample older than the stale bound is a gap', () => {
    const p = pod('b');
    const r = only(once(input({ pods: [p], kubelet: kubelet([kstat(p, 'build', 5, 1, NOW - 121_000)]) })).pods);
    expect(r.containers[0]!.gap).toBe('kubelet_stale');
  });

  test('an unreachable kubelet is a gap for every running container and for the pod', () => {
    const p = pod('b', ['a', 'b']);
    const r = only(once(input({ pods: [p], kubelet: undefined, sandboxes: [sandboxFor(p, 's', shimOk(guest(3)))] })).pods);
    expect(r.containers.map((c) => c.gap)).toEqual(['kubelet_unreachable', 'kubelet_unreachable']);
    expect(r.gaps).toContain('kubelet_unreachable');
    // Two app containers: the VM total cannot be split, so no per-container value.
    expect(r.containers.map((c) => c.cpuSeconds)).toEqual([undefined, undefined]);
  });

  test('init containers are not app containers', () => {
    const p = pod('b', ['app']);
    p.containers.push({ name: 'clone', init: true, privileged: false });
    const r = only(once(input({ pods: [p], sandboxes: [sandboxFor(p, 's', shimOk(guest(3)))] })).pods);
    expect(r.containers.map((c) => [c.name, c.source])).toEqual([['app', 'guest_estimate']]);
  });
});

describe('pod host, guest and overhead', () => {
  test('host usage is the pod cgroup plus /kata_overhead/<sandbox>', () => {
    const p = pod('b');
    const i = input({
      pods: [p],
      podCgroups: new Map([[p.uid, cgroup(10, 100e6)]]),
      sandboxes: [sandboxFor(p, 's', shimOk(guest(3)), { overheadCgroup: cgroup(4, 250e6) })],
      kubelet: kubelet([kstat(p, 'build', 8, 80e6)]),
    });
    const r = only(once(i).pods);
    expect(r.hostCpuSeconds).toBe(14);
    expect(r.hostMemoryWorkingSetBytes).toBe(350e6);
    expect(r.overheadCpuSeconds).toBe(6); // 14 − 8
    expect(r.overheadMemoryBytes).toBe(270e6); // 350e6 − 80e6
  });

  test('guest CPU counts busy time only (not idle, iowait, steal, or guest time twice)', () => {
    const cpu = { user: 10, nice: 1, system: 2, idle: 500, iowait: 9, irq: 0.5, softirq: 0.25, steal: 40, guest: 3, guestNice: 1 };
    expect(guestBusySeconds(cpu)).toBe(13.75);
  });

  test('overhead memory is never negative', () => {
    const p = pod('b');
    const i = input({ pods: [p], podCgroups: new Map([[p.uid, cgroup(1, 50e6)]]), kubelet: kubelet([kstat(p, 'build', 0.5, 90e6)]) });
    expect(only(once(i).pods).overheadMemoryBytes).toBe(0);
  });

  test('without per-container values the overhead is host − guest', () => {
    const p = pod('b', ['a', 'b']);
    const i = input({
      pods: [p],
      kubelet: undefined,
      podCgroups: new Map([[p.uid, cgroup(20, 3 * 2 ** 30)]]),
      sandboxes: [sandboxFor(p, 's', shimOk(guest(15)))],
    });
    const r = only(once(i).pods);
    expect(r.overheadCpuSeconds).toBe(5);
    expect(r.overheadMemoryBytes).toBe(2 * 2 ** 30); // 3 GiB host − 1 GiB guest used
  });

  test('guest activity and reservations are published per pod', () => {
    const p = pod('b', ['app'], { overhead: { cpuCores: 0.25, memoryBytes: 320 * 2 ** 20 } });
    const r = only(once(input({ pods: [p], sandboxes: [sandboxFor(p, 's', shimOk(guest(3)))] })).pods);
    expect(r).toMatchObject({
      guestTasks: 120,
      guestNetworkReceiveBytes: 1000,
      guestNetworkTransmitBytes: 2000,
      guestDiskReadBytes: 4096,
      guestDiskWrittenBytes: 8192,
      guestMemoryUsedBytes: 2 ** 30,
      overheadCpuReservedCores: 0.25,
      overheadMemoryReservedBytes: 320 * 2 ** 20,
      sandboxId: 's',
      runtime: 'go',
      hypervisor: 'qemu',
    });
  });

  test('a container restart resets its counter without making the overhead jump', () => {
    const counters = new CounterState();
    const p = pod('b');
    const step = (host: number, cpu: number, restarts: number) =>
      only(
        once(
          input({
            pods: [{ ...p, containerStatuses: [{ name: 'build', restartCount: restarts, state: 'running' }] }],
            podCgroups: new Map([[p.uid, cgroup(host, 1)]]),
            kubelet: kubelet([kstat(p, 'build', cpu, 1)]),
          }),
          counters,
        ).pods,
      );
    expect(step(100, 90, 0)).toMatchObject({ overheadCpuSeconds: 10 });
    const restarted = step(110, 2, 1); // the old container had counted 90, plus 8 more before it died
    expect(restarted.containers[0]!.cpuSeconds).toBe(2);
    // host +10, workload: 90 retired + 2 new − 90 before = +2 → overhead +8 = 18 (not +98).
    expect(restarted.overheadCpuSeconds).toBe(18);
  });
});

describe('gaps and sandboxes', () => {
  test.each([
    ['shim_unreachable', { state: 'failed', reason: 'shim_unreachable' }],
    ['shim_timeout', { state: 'failed', reason: 'shim_timeout' }],
    ['shim_oversize', { state: 'failed', reason: 'shim_oversize' }],
    ['shim_malformed', { state: 'failed', reason: 'shim_malformed' }],
    ['shim_unsafe_runtime', { state: 'skipped', reason: 'shim_unsafe_runtime' }],
  ] as const)('a shim outcome %s is a pod gap', (reason, outcome) => {
    const p = pod('b');
    const r = only(
      once(
        input({
          pods: [p],
          podCgroups: new Map([[p.uid, cgroup(1, 1)]]),
          kubelet: kubelet([kstat(p, 'build', 1, 1)]),
          sandboxes: [sandboxFor(p, 's', outcome)],
        }),
      ).pods,
    );
    expect(r.gaps).toEqual([reason]);
    expect(r.guestCpuSeconds).toBeUndefined();
  });

  test('a running Kata pod with no sandbox and no cgroup has both gaps', () => {
    const p = pod('b');
    expect(only(once(input({ pods: [p], kubelet: kubelet([kstat(p, 'build', 1, 1)]) })).pods).gaps).toEqual([
      'cgroup_not_found',
      'sandbox_unmapped',
    ]);
  });

  test('an unmapped sandbox is reported, never dropped', () => {
    const result = once(input({ sandboxes: [sandboxFor(undefined, 'orphan', undefined)] }));
    expect(result.sandboxes).toEqual([{ id: 'orphan', runtime: 'go', hypervisor: 'qemu', state: 'unmapped' }]);
  });

  test('two sandboxes of one pod: the one whose shim answered wins, the other is superseded', () => {
    const p = pod('b');
    const stale = sandboxFor(p, 'aaa', { state: 'failed', reason: 'shim_unreachable' });
    const live = sandboxFor(p, 'bbb', shimOk(guest(2)));
    const result = once(input({ pods: [p], sandboxes: [stale, live] }));
    expect(only(result.pods).sandboxId).toBe('bbb');
    expect(result.sandboxes.map((s) => [s.id, s.state])).toEqual([
      ['aaa', 'superseded'],
      ['bbb', 'scraped'],
    ]);
  });
});

describe('sandbox to pod by name', () => {
  test('a mapping without a UID (containerd < 1.7) finds the pod by namespace and name', () => {
    const p = pod('b');
    const observation = sandboxFor(p, 's', shimOk(guest(2)));
    observation.pod = { sandboxId: 's', namespace: 'ci', name: 'b', source: 'containerd' };
    const result = once(input({ pods: [p], sandboxes: [observation] }));
    expect(only(result.pods).sandboxId).toBe('s');
    expect(result.sandboxes[0]!.state).toBe('scraped');
  });
});

describe('overhead during an estimate', () => {
  test('a one-container pod on a guest estimate measures overhead against the guest, not against a counter that started at zero', () => {
    const p = pod('b');
    const i = input({
      pods: [p],
      kubelet: kubelet([kstat(p, 'build', 0, 0)]),
      podCgroups: new Map([[p.uid, cgroup(500, 2 ** 31)]]),
      sandboxes: [sandboxFor(p, 's', shimOk(guest(460)))],
    });
    const r = only(once(i).pods);
    expect(r.containers[0]!.source).toBe('guest_estimate');
    expect(r.overheadCpuSeconds).toBe(40); // 500 host − 460 guest
    expect(r.overheadMemoryBytes).toBe(2 ** 30); // 2 GiB host − 1 GiB guest used
  });
});

describe('pod spec details', () => {
  test('a native sidecar (init container with restartPolicy Always) is an app container', () => {
    const p = pod('b', ['app']);
    p.containers.push({ name: 'proxy', init: true, sidecar: true, privileged: false });
    const r = only(once(input({ pods: [p], kubelet: kubelet([kstat(p, 'app', 3, 1), kstat(p, 'proxy', 1, 1)]) })).pods);
    expect(r.containers.map((c) => [c.name, c.cpuSeconds])).toEqual([
      ['app', 3],
      ['proxy', 1],
    ]);
  });

  test('a RuntimeClass overhead the pod does not carry in spec.overhead was never reserved', () => {
    const p = pod('b', ['app'], { overhead: { cpuCores: 0.25, memoryBytes: 1 }, overheadSource: 'runtime_class' });
    const r = only(once(input({ pods: [p] })).pods);
    expect(r.overheadCpuReservedCores).toBeUndefined();
    expect(r.overheadMemoryReservedBytes).toBeUndefined();
  });
});

describe('partial host readings', () => {
  test('an overhead cgroup without its pod cgroup is not published as the host total', () => {
    const p = pod('b');
    const i = input({ pods: [p], sandboxes: [sandboxFor(p, 's', shimOk(guest(1)), { overheadCgroup: cgroup(4, 150e6) })] });
    const r = only(once(i).pods);
    expect(r.hostCpuSeconds).toBeUndefined();
    expect(r.hostMemoryWorkingSetBytes).toBeUndefined();
    expect(r.gaps).toContain('cgroup_not_found');
  });

  test('an overhead cgroup that vanished mid-read withholds the host values for that collection', () => {
    const p = pod('b');
    const i = input({
      pods: [p],
      podCgroups: new Map([[p.uid, cgroup(10, 1e9)]]),
      sandboxes: [sandboxFor(p, 's', shimOk(guest(1)), { overheadCgroupIncomplete: true })],
    });
    const r = only(once(i).pods);
    expect(r.hostCpuSeconds).toBeUndefined();
    expect(r.gaps).toContain('cgroup_not_found');
  });
});

describe('outsideUsage: what a VM spends outside its pod cgroup', () => {
  const part = (cpuSeconds: number | undefined, memoryWorkingSetBytes: number | undefined): CgroupUsage => ({
    path: '/kata_overhead/s',
    version: 2,
    ...(cpuSeconds === undefined ? {} : { cpuSeconds }),
    ...(memoryWorkingSetBytes === undefined ? {} : { memoryWorkingSetBytes }),
  });

  test('the parts read are summed', () => {
    const out = outsideUsage([part(2, 10), part(3, 5)], false);
    expect(out.incomplete).toBe(false);
    expect(out.total).toMatchObject({ cpuSeconds: 5, memoryWorkingSetBytes: 15 });
  });

  test('nothing outside the pod cgroup is complete and has no total', () => {
    expect(outsideUsage([], false)).toEqual({ incomplete: false });
  });

  test('a part that could not be read, a named overhead cgroup that is missing, or a partial sum is incomplete', () => {
    expect(outsideUsage([part(2, 10), undefined], false).incomplete).toBe(true);
    expect(outsideUsage([], true).incomplete).toBe(true);
    const partial = outsideUsage([part(2, 10), part(undefined, 5)], false);
    expect(partial).toEqual({ incomplete: true });
  });
});

describe('guest CPU unit', () => {
  test('a guest whose CPU unit is unknown publishes no guest CPU and says why', () => {
    const p = pod('b');
    const g = guest(30, { cpuUnit: 'unknown' });
    delete g.cpu;
    const r = only(once(input({ pods: [p], sandboxes: [sandboxFor(p, 's', shimOk(g))] })).pods);
    expect(r.guestCpuSeconds).toBeUndefined();
    expect(r.gaps).toContain('guest_cpu_unit_unknown');
  });
});

describe('the first sample of a life is bounded by what the node could have run since it started', () => {
  // A 4-CPU node; the pod and its containers started 60 s ago: at most 6 × (60 + 10) = 420 s of CPU.
  const at = (p: ReturnType<typeof pod>) => {
    p.startedAt = NOW / 1000 - 60;
    for (const s of p.containerStatuses) s.startedAt = NOW / 1000 - 60;
    return p;
  };
  const collectOnce = (i: Partial<Parameters<typeof correlate>[0]>) => {
    const counters = new CounterState();
    counters.beginCollection(NOW);
    return correlate(input({ hostCpus: 4, ...i }), counters);
  };

  test('an inflated first kubelet sample is refused, counted and flagged; the other container is published', () => {
    const p = at(pod('b', ['build', 'cache']));
    const result = collectOnce({ pods: [p], kubelet: kubelet([kstat(p, 'build', 2 ** 40, 1e6), kstat(p, 'cache', 400, 1e6)]) });
    const [build, cache] = only(result.pods).containers;
    expect(build).toMatchObject({ gap: 'implausible_increase' });
    expect(build!.cpuSeconds).toBeUndefined();
    expect(cache).toMatchObject({ source: 'kubelet', cpuSeconds: 400 });
    expect(result.refused).toEqual({ kubelet: 1, guest: 0 });
  });

  test("without the container's start, the pod's start bounds it", () => {
    const p = at(pod('b', ['build', 'cache']));
    for (const s of p.containerStatuses) delete s.startedAt;
    const result = collectOnce({ pods: [p], kubelet: kubelet([kstat(p, 'build', 421, 1e6), kstat(p, 'cache', 420, 1e6)]) });
    expect(only(result.pods).containers.map((c) => c.cpuSeconds)).toEqual([undefined, 420]);
  });

  test("an inflated first guest total is refused: neither the guest CPU nor a one-container pod's estimate publishes it", () => {
    const p = at(pod('b'));
    const result = collectOnce({
      pods: [p],
      kubelet: kubelet([kstat(p, 'build', 0, 1e6)]), // CRI-O: zeros, so the estimate would be the guest total
      sandboxes: [sandboxFor(p, 's', shimOk(guest(2 ** 40)))],
    });
    const r = only(result.pods);
    expect(r.guestCpuSeconds).toBeUndefined();
    expect(r.gaps).toContain('implausible_increase');
    expect(r.containers[0]!.gap).toBe('kubelet_zero');
    expect(r.containers[0]!.cpuSeconds).toBeUndefined();
    expect(result.refused).toEqual({ kubelet: 0, guest: 1 });
  });

  test('an honest first guest total is the estimate of the container in its first life', () => {
    const p = at(pod('b'));
    const result = collectOnce({
      pods: [p],
      kubelet: kubelet([kstat(p, 'build', 0, 1e6)]),
      sandboxes: [sandboxFor(p, 's', shimOk(guest(300)))],
    });
    expect(only(result.pods).containers[0]).toMatchObject({ source: 'guest_estimate', cpuSeconds: 300 });
  });
});
