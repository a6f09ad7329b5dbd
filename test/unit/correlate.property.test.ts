import fc from 'fast-check';
import { expect, test } from 'vitest';
import { correlate } from '../../src/translate/correlate.ts';
import { CounterState } from '../../src/translate/counters.ts';
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
                s.kubelet === 'missing'
                  ? []
                  : names.map((name) => kstat(p, name, s.kubelet === 'zero' ? 0 : lagged, 1e6, sampleTime)),
              );
        const shim: ShimOutcome =
          s.shim === 'ok'
            ? shimOk(guest(truthWork, { networkReceiveBytes: truthWork * 10, networkTransmitBytes: truthWork, diskReadBytes: truthWork * 3, diskWrittenBytes: truthWork * 7 }))
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
