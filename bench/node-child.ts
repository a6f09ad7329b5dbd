/**
 * Benchmark child: the simulated node (its servers) in a process of its own, so the exporter's
 * CPU and memory are measured alone. N Go + QEMU sandboxes with three containers each, a kubelet
 * covering every container, a cgroup tree, and one shim socket per sandbox that answers after
 * SHIM_LATENCY_MS with a ~144 KB body (pre-rendered: the node must not eat the exporter's cores).
 *
 * Protocol (IPC): argv[2] = N; sends { kind: 'ready', flags, env, sockets, latencyMs, bodyBytes };
 * on { kind: 'stop' } closes everything and exits.
 */
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { startFakeShim } from '../src/lab/fake-shim.ts';
import { NodeLab, type LabContainer, type LabPodScenario } from '../src/lab/node-lab.ts';
import { sandboxDir } from '../src/lab/sandbox-tree.ts';
import { benchShimPayload } from './payload.ts';

export const SHIM_LATENCY_MS = 20;
const MIB = 2 ** 20;

function containers(i: number): LabContainer[] {
  return ['build', 'cache', 'sidecar'].map((name, c) => ({
    name,
    cpuCores: 0.2 + ((i + c) % 5) * 0.1,
    memoryBytes: (200 + c * 100) * MIB,
    limits: { cpu: '2', memory: '2Gi' },
    requests: { cpu: '500m', memory: '1Gi' },
  }));
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? '50');
  const pods: LabPodScenario[] = Array.from({ length: n }, (_, i) => ({
    name: `build-${String(i).padStart(4, '0')}`,
    namespace: `ci-${i % 10}`,
    hypervisor: 'qemu',
    runtime: 'go',
    containers: containers(i),
  }));
  const lab = await NodeLab.start({ nodeName: 'bench-node', pods, cgroupVersion: 2 });
  // The lab's shims answer at once with a small body: swap each for one that answers after the
  // emulated latency with a ~144 KB body, at the same socket path.
  const sockets: string[] = [];
  let index = 0;
  let bodyBytes = 0;
  for (const state of lab.pods.values()) {
    const i = index++;
    const body = Buffer.from(benchShimPayload(i));
    bodyBytes = body.length;
    const target = join(sandboxDir(lab.endpoints, { id: state.sandboxId, runtime: 'go' }), 'shim-monitor.sock');
    await state.shim?.close();
    const shortPath = join(lab.dir, `b${i}.sock`);
    state.shim = await startFakeShim({ socketPath: shortPath, payload: () => body, delayMs: SHIM_LATENCY_MS });
    await rename(shortPath, target);
    sockets.push(target);
  }
  process.on('message', (message: { kind: string }) => {
    if (message.kind !== 'stop') return;
    void lab.close().finally(() => process.exit(0));
  });
  // The in-cluster configuration, as the DaemonSet runs: no kubeconfig, so no @kubernetes/client-node.
  const { flags, env } = lab.inCluster();
  process.send?.({ kind: 'ready', flags, env, sockets, latencyMs: SHIM_LATENCY_MS, bodyBytes, kubelet: lab.endpoints });
}

await main();
