/**
 * `--demo`: the real exporter against a simulated node built in-process, so a newcomer sees
 * realistic /metrics with no cluster. The node mixes both Kata runtimes, all four hypervisors,
 * and the cases the bridge exists for: a runtime-rs QEMU sandbox that must never be scraped, an
 * unmapped sandbox, a pod whose kubelet values are zeros, and pods with one and two containers.
 */

import type { KubeConfig } from '@kubernetes/client-node';
import { parseCommandLine, type Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { NodeLab, type LabScenario } from './node-lab.ts';

const MIB = 2 ** 20;

export const DEMO_SCENARIO: LabScenario = {
  nodeName: 'kata-demo-node',
  pods: [
    { name: 'build-7f9c4', hypervisor: 'qemu', runtime: 'go' },
    {
      name: 'integration-x2k9p',
      hypervisor: 'cloud-hypervisor',
      runtime: 'go',
      sandboxCgroupOnly: true,
      containers: [
        { name: 'test-runner', cpuCores: 1.2, memoryBytes: 900 * MIB, limits: { cpu: '2', memory: '2Gi' }, requests: { cpu: '1', memory: '1Gi' } },
        { name: 'postgres', cpuCores: 0.3, memoryBytes: 400 * MIB, limits: { cpu: '1', memory: '1Gi' }, requests: { cpu: '250m', memory: '512Mi' } },
      ],
    },
    // CRI-O with cAdvisor stats: the kubelet reports explicit zeros for Kata containers.
    { name: 'lint-zeros-5d2bq', hypervisor: 'firecracker', runtime: 'go', kubelet: 'zeros' },
    { name: 'notebook-0', namespace: 'tenant-a', hypervisor: 'dragonball', runtime: 'rs' },
    // Its VMM has outgrown the RuntimeClass's 130Mi overhead: it would be OOM-killed with the pod.
    { name: 'trainer-8k2lm', namespace: 'ml', hypervisor: 'cloud-hypervisor', runtime: 'rs', vmOverheadMemoryBytes: 150 * MIB },
    // runtime-rs + QEMU: GET /metrics would abort the shim (Kata issue 13708); never scraped by default.
    { name: 'fuzz-rs-qemu-0', namespace: 'security', hypervisor: 'qemu', runtime: 'rs', shim: { kind: 'status', status: 500 } },
    // A VM that no source joins to a pod.
    { name: 'orphan', hypervisor: 'qemu', runtime: 'go', mapping: 'none', inApiServer: false },
  ],
};

export interface DemoNode {
  config: Config;
  kubeConfig: KubeConfig;
  lab: NodeLab;
  close(): Promise<void>;
}

/** Starts the simulated node and returns the exporter config pointed at it (listen flags kept). */
export async function startDemoNode(base: Config, logger: Logger): Promise<DemoNode> {
  const lab = await NodeLab.start(DEMO_SCENARIO);
  lab.startTicking(1000);
  const parsed = parseCommandLine(lab.flags(), {});
  if (parsed.kind !== 'run') throw new Error('the demo node produced no exporter configuration');
  const config: Config = {
    ...base,
    ...pickPaths(parsed.config),
    demo: true,
  };
  logger.info({ dir: lab.dir, pods: DEMO_SCENARIO.pods.length, kubelet: lab.endpoints.kubeletUrl, apiServer: lab.apiServer.url }, 'demo node started');
  return { config, kubeConfig: lab.kubeConfig(), lab, close: () => lab.close() };
}

function pickPaths(c: Config): Partial<Config> {
  return {
    nodeName: c.nodeName,
    kubeletUrl: c.kubeletUrl,
    kubeletTokenFile: c.kubeletTokenFile,
    kubeletCaFile: c.kubeletCaFile,
    kubeletInsecureSkipTlsVerify: false,
    kubeconfig: c.kubeconfig,
    cgroupRoot: c.cgroupRoot,
    kataGoDir: c.kataGoDir,
    kataRsDir: c.kataRsDir,
    containerdTasksDir: c.containerdTasksDir,
    crioDir: c.crioDir,
    procDir: c.procDir,
  };
}
