import fc from 'fast-check';
import { expect, test } from 'vitest';
import { correlate } from '../../src/translate/correlate.ts';
import { CounterState, PLAUSIBLE_CPU_MARGIN, PLAUSIBLE_SLACK_SECONDS } from '../../src/translate/counters.ts';
import type { ShimOutcome } from '../../src/translate/correlate.ts';
import type { PodSnapshot } from '../../src/translate/snapshot.ts';
import { NOW, cgroup, guest, input, kstat, kubelet, pod, sandboxFor, shimOk } from '../support/correlation-builders.ts';

/** One collection of a simulated pod: which sources answered, and how skewed they were. */
const step = fc.record({
  work: fc.double({ min: 0, max: 50, noNaN: true }), // CPU seconds the workload ran since the last step
  vmCost: fc.double({ min: 0, max: 5, noNaN: true }), // what the VMM spent on top
  kubelet: fc.constantFrom('ok', 'down', 'zero', 'missing', 'stale', 'old-sample'),
  kubeletLagSeconds: fc.double({ min: 0, max: 10, noNaN: true }), // the kubelet's sample lags the truth
  shim: fc.constantFrom('ok', 'ok', 'timeout'),
  overheadCgroup: fc.boolean(),
  restart: fc.boolean(),
  containers: fc.constantFrom(1, 2),
});

const POD_COUNTERS = [
  'hostCpuSeconds',
  'guestCpuSeconds',
  'overheadCpuSeconds',
  'guestNetworkReceiveBytes',
  'guestNetworkTransmitBytes',
  'guestDiskReadBytes',
  'guestDiskWrittenBytes',
] as const;

test('every republished counter is monotonic across source switches, skew and restarts', () => {
  fc.assert(
    fc.property(fc.array(step, { minLength: 1, maxLength: 40 }), fc.constantFrom(1, 2), (steps, containerCount) => {
      const counters = new CounterState();
      const names = containerCount === 1 ? ['build'] : ['build', 'cache'];
      let truthWork = 0;
      let truthVm = 0;
      let restarts = 0;
      let containerBase = 0; // workload CPU at the current container start
      let now = NOW;
      const lastPod = new Map<string, number>();
      const lastContainer = new Map<string, { epoch: number; value: number }>();

      for (const s of steps) {
        now += 15_000;
        truthWork += s.work;
        truthVm += s.vmCost;
        if (s.restart) {
          restarts++;
          containerBase = truthWork;
        }
        const p = pod('b', names);
        p.containerStatuses = names.map((name) => ({ name, restartCount: restarts, state: 'running' as const }));
        const perContainer = (truthWork - containerBase) / names.length;
        const lagged = Math.max(0, perContainer - s.kubeletLagSeconds);
        const sampleTime = s.kubelet === 'stale' ? now - 600_000 : s.kubelet === 'old-sample' ? now - 30_000 : now - 1000;
        const stats =
          s.kubelet === 'down'
            ? undefined
            : kubelet(
                s.kubelet === 'missing' ? [] : names.map((name) => kstat(p, name, s.kubelet === 'zero' ? 0 : lagged, 1e6, sampleTime)),
              );
        const shim: ShimOutcome =
          s.shim === 'ok'
            ? shimOk(
                guest(truthWork, {
                  networkReceiveBytes: truthWork * 10,
                  networkTransmitBytes: truthWork,
                  diskReadBytes: truthWork * 3,
                  diskWrittenBytes: truthWork * 7,
                }),
              )
            : { state: 'failed', reason: 'shim_timeout' };
        counters.beginCollection();
        const result = correlate(
          input({
            nowMs: now,
            pods: [p],
            kubelet: stats,
            podCgroups: new Map([[p.uid, cgroup(truthWork + truthVm * 0.6, 1e9)]]),
            sandboxes: [sandboxFor(p, 's', shim, s.overheadCgroup ? { overheadCgroup: cgroup(truthVm * 0.4, 1e8) } : {})],
          }),
          counters,
        );
        counters.endCollection();
        const snapshot: PodSnapshot = result.pods[0]!;

        for (const field of POD_COUNTERS) {
          const value = snapshot[field];
          if (value === undefined) continue;
          expect(value).toBeGreaterThanOrEqual(0);
          const previous = lastPod.get(field);
          if (previous !== undefined) expect(value, field).toBeGreaterThanOrEqual(previous);
          lastPod.set(field, value);
        }
        for (const c of snapshot.containers) {
          if (c.cpuSeconds === undefined) continue;
          const previous = lastContainer.get(c.name);
          if (previous !== undefined && previous.epoch === restarts) expect(c.cpuSeconds).toBeGreaterThanOrEqual(previous.value);
          lastContainer.set(c.name, { epoch: restarts, value: c.cpuSeconds });
        }
      }
    }),
    { numRuns: 300 },
  );
});

test('after one outlier from the kubelet or the guest, first sample included, every counter follows the host again within one collection', () => {
  const HOST_CPUS = 4;
  // Uniform over a range, in ms steps: fc.double draws uniformly among doubles, mostly near 0.
  const uniform = (max: number) => fc.integer({ min: 0, max: max * 1000 }).map((ms) => ms / 1000);
  const honest = fc.record({
    work: fc.array(fc.oneof(uniform(25), fc.double({ min: 0, max: 25, noNaN: true })), { minLength: 2, maxLength: 2 }), // per container, per 15 s
    vmCost: fc.oneof(uniform(3), fc.double({ min: 0, max: 3, noNaN: true })),
  });
  fc.assert(
    fc.property(
      fc.array(honest, { minLength: 5, maxLength: 12 }),
      fc.oneof(fc.constant(0), fc.nat()), // where the outlier comes; often the very first sample
      fc.constantFrom('container-0', 'container-1', 'guest'),
      fc.oneof(fc.double({ min: 0, max: 2 ** 40, noNaN: true }), uniform(200)), // huge, or within reach of the truth
      fc.constantFrom<'kubelet' | 'crio'>('kubelet', 'crio'),
      fc.constantFrom(1, 2),
      (steps, at, target, outlier, mode, containerCount) => {
        const names = containerCount === 1 ? ['build'] : ['build', 'cache'];
        // The first collection too: its sample has no baseline, only the time since the start.
        const outlierAt = at % (steps.length - 2);
        const counters = new CounterState();
        const p = pod('b', names);
        p.startedAt = NOW / 1000 - 5;
        for (const status of p.containerStatuses) status.startedAt = NOW / 1000 - 5;
        const truth = names.map(() => 1); // running containers that have run a little
        let vm = 0;
        let now = NOW;
        const published: { host: number; guest: number; overhead: number; containers: number[] }[] = [];
        const honestSteps: { host: number; guest: number; containers: number[] }[] = [];
        steps.forEach((s, index) => {
          now += 15_000;
          names.forEach((_, i) => (truth[i]! += s.work[i]!));
          vm += s.vmCost;
          const total = truth.reduce((a, b) => a + b, 0);
          const reported = (i: number) => (index === outlierAt && target === `container-${i}` ? outlier : truth[i]!);
          const stats = kubelet(names.map((name, i) => kstat(p, name, mode === 'crio' ? 0 : reported(i), 1e6, now - 1000)));
          const guestCpu = index === outlierAt && target === 'guest' ? outlier : total;
          counters.beginCollection(now);
          const result = correlate(
            input({
              nowMs: now,
              pods: [p],
              kubelet: stats,
              hostCpus: HOST_CPUS,
              podCgroups: new Map([[p.uid, cgroup(total + vm, 1e9)]]),
              sandboxes: [sandboxFor(p, 's', shimOk(guest(guestCpu)))],
            }),
            counters,
          );
          counters.endCollection();
          const r = result.pods[0]!;
          // No CPU counter a guest feeds is ever above what the node could have run since the pod
          // started: the rate over the elapsed time, plus the slack once per collection.
          const reach = HOST_CPUS * PLAUSIBLE_CPU_MARGIN * ((now - p.startedAt! * 1000) / 1000 + PLAUSIBLE_SLACK_SECONDS * (index + 1));
          for (const value of [r.guestCpuSeconds, ...r.containers.map((c) => c.cpuSeconds)]) expect(value ?? 0).toBeLessThanOrEqual(reach);
          // NaN: nothing published (a refused first sample, or a gap with no estimate).
          published.push({
            host: r.hostCpuSeconds!,
            guest: r.guestCpuSeconds ?? NaN,
            overhead: r.overheadCpuSeconds ?? NaN,
            containers: r.containers.map((c) => c.cpuSeconds ?? NaN),
          });
          honestSteps.push({ host: total + vm, guest: total, containers: [...truth] });
        });
        for (let j = 1; j < published.length; j++) {
          const [before, after] = [published[j - 1]!, published[j]!];
          // Never backwards, where both collections have a value (a zero outlier is a kubelet_zero gap).
          const notBackwards = (a: number, b: number) => {
            if (!Number.isNaN(a) && !Number.isNaN(b)) expect(a).toBeGreaterThanOrEqual(b);
          };
          notBackwards(after.guest, before.guest);
          notBackwards(after.overhead, before.overhead);
          after.containers.forEach((c, i) => notBackwards(c, before.containers[i]!));
          if (j < outlierAt + 2) continue;
          // From the collection after the one following the outlier: the host-based increments.
          const [hBefore, hAfter] = [honestSteps[j - 1]!, honestSteps[j]!];
          const close = (a: number, b: number) => expect(a).toBeCloseTo(b, 6);
          close(after.host - before.host, hAfter.host - hBefore.host);
          close(after.guest - before.guest, hAfter.guest - hBefore.guest);
          const workload =
            mode === 'crio' && names.length > 1
              ? hAfter.guest - hBefore.guest
              : after.containers.reduce((sum, c, i) => sum + c - before.containers[i]!, 0);
          if (mode === 'kubelet') {
            after.containers.forEach((c, i) => close(c - before.containers[i]!, hAfter.containers[i]! - hBefore.containers[i]!));
          }
          close(after.overhead - before.overhead, hAfter.host - hBefore.host - workload);
        }
      },
    ),
    { numRuns: 300 },
  );
});
