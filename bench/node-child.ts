/**
 * Benchmark child: the simulated node (its servers) in a process of its own, so the exporter's
 * CPU and memory are measured alone. N Go + QEMU sandboxes with three containers each, a kubelet
 * covering every container, a cgroup tree, and one shim socket per sandbox that answers after
 * SHIM_LATENCY_MS with a ~144 KB body. The shims run in a child of this process
 * (bench/shims-child.ts), so the kubelet's rendering here never delays their answers.
 *
 * Protocol (IPC): argv[2] = N; sends { kind: 'ready', flags, env, sockets, latencyMs, bodyBytes };
 * { kind: 'served' } is relayed to the shims child (see there); on { kind: 'stop' } closes
 * everything and exits.
 */
import { fork } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NodeLab, type LabContainer, type LabPodScenario } from '../src/lab/node-lab.ts';
import { sandboxDir } from '../src/lab/sandbox-tree.ts';
import type { ShimsChildStart } from './shims-child.ts';

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
  // The lab's shims answer at once with a small body: each is replaced, at the same socket path, by
  // one in the shims child that answers after the emulated latency with a ~144 KB body.
  const sockets: string[] = [];
  const start: ShimsChildStart = { kind: 'start', latencyMs: SHIM_LATENCY_MS, shims: [] };
  let index = 0;
  for (const state of lab.pods.values()) {
    const i = index++;
    const target = join(sandboxDir(lab.endpoints, { id: state.sandboxId, runtime: 'go' }), 'shim-monitor.sock');
    await state.shim?.close();
    state.shim = undefined;
    start.shims.push({ socketPath: target, bindPath: join(lab.dir, `b${i}.sock`), payload: i });
    sockets.push(target);
  }
  const shims = fork(join(dirname(fileURLToPath(import.meta.url)), 'shims-child.ts'), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: process.execArgv,
  });
  const started = new Promise<{ kind: string; bodyBytes?: number; message?: string }>((resolve) => shims.once('message', resolve));
  shims.send(start);
  const reply = await started;
  if (reply.kind !== 'started') throw new Error(`bench: the shims child failed to start: ${reply.message}`);
  const bodyBytes = reply.bodyBytes ?? 0;
  process.on('message', (message: { kind: string }) => {
    if (message.kind === 'served') {
      // Relayed to the shims child, whose answer comes back the same way.
      shims.once('message', (answer) => process.send?.(answer));
      shims.send(message);
      return;
    }
    if (message.kind !== 'stop') return;
    const shimsExited = new Promise((resolve) => shims.once('exit', resolve));
    shims.send({ kind: 'stop' });
    void Promise.all([shimsExited, lab.close()]).finally(() => process.exit(0));
  });
  // The in-cluster configuration, as the DaemonSet runs: no kubeconfig, so no @kubernetes/client-node.
  const { flags, env } = lab.inCluster();
  process.send?.({ kind: 'ready', flags, env, sockets, latencyMs: SHIM_LATENCY_MS, bodyBytes, kubelet: lab.endpoints });
}

await main();
