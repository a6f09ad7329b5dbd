/**
 * `--demo`: the real exporter against a simulated node built in-process, so a newcomer sees
 * realistic /metrics with no cluster. The node (cgroup v2, so the host's pressure files exist)
 * mixes both Kata runtimes, all four hypervisors, and the cases the bridge exists for: a runtime-rs
 * QEMU sandbox that must never be scraped, an unmapped sandbox, a pod whose kubelet values are
 * zeros, and pods with one and two containers. Two builds run under Kata 4.0's default
 * (`kata-qemu-runtime-rs`, never scraped): one floods the network, one is OOM-killed on the host;
 * only host data shows either.
 *
 * The isolation audit is on: the `ci` namespace is labelled untrusted, and one pod shows each
 * finding once (an untrusted pod under runc with host networking, a privileged container whose
 * handler passes the host's devices, a hostPath volume, honoured Kata annotations), while the
 * other ci builds (build-7f9c4 first) are clean untrusted Kata pods that raise none. Two builds
 * carry a `repository` label, published through --pods.labels-allowlist.
 */

import type { KubeConfig } from '@kubernetes/client-node';
import { isAuditEnabled, parseCommandLine, type Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { NodeLab, QEMU_RUNTIME_RS, type LabScenario } from './node-lab.ts';

const MIB = 2 ** 20;

/** The label that marks the demo's untrusted namespaces, and the selector that reads it. */
export const DEMO_UNTRUSTED_LABEL = { key: 'kata-bridge.io/untrusted', value: 'true' } as const;

export const DEMO_SCENARIO: LabScenario = {
  nodeName: 'kata-demo-node',
  cgroupVersion: 2,
  namespaces: { ci: { [DEMO_UNTRUSTED_LABEL.key]: DEMO_UNTRUSTED_LABEL.value, team: 'platform' } },
  audit: { namespaceSelector: `${DEMO_UNTRUSTED_LABEL.key}=${DEMO_UNTRUSTED_LABEL.value}` },
  // Who a build belongs to, on kata_bridge_pod_labels: the repository label of the CI builds.
  labelsAllowlist: 'repository',
  pods: [
    { name: 'build-7f9c4', hypervisor: 'qemu', runtime: 'go', labels: { repository: 'web-frontend' } },
    {
      name: 'integration-x2k9p',
      hypervisor: 'cloud-hypervisor',
      runtime: 'go',
      labels: { repository: 'payments-api' },
      sandboxCgroupOnly: true,
      containers: [
        {
          name: 'test-runner',
          cpuCores: 1.2,
          memoryBytes: 900 * MIB,
          limits: { cpu: '2', memory: '2Gi' },
          requests: { cpu: '1', memory: '1Gi' },
        },
        {
          name: 'postgres',
          cpuCores: 0.3,
          memoryBytes: 400 * MIB,
          limits: { cpu: '1', memory: '1Gi' },
          requests: { cpu: '250m', memory: '512Mi' },
        },
      ],
    },
    // CRI-O with cAdvisor stats: the kubelet reports explicit zeros for Kata containers.
    { name: 'lint-zeros-5d2bq', hypervisor: 'firecracker', runtime: 'go', kubelet: 'zeros' },
    { name: 'notebook-0', namespace: 'tenant-a', hypervisor: 'dragonball', runtime: 'rs' },
    // Its VMM has outgrown the RuntimeClass's 130Mi overhead: it would be OOM-killed with the pod.
    { name: 'trainer-8k2lm', namespace: 'ml', hypervisor: 'cloud-hypervisor', runtime: 'rs', vmOverheadMemoryBytes: 150 * MIB },
    // runtime-rs + QEMU: GET /metrics would abort the shim (Kata issue 13708); never scraped by default.
    { name: 'fuzz-rs-qemu-0', namespace: 'security', hypervisor: 'qemu', runtime: 'rs', shim: { kind: 'status', status: 500 } },
    // Kata 4.0's default runtime (runtime-rs + QEMU, never scraped): only the host sees this build
    // send 90 MB/s, and the next one's VM processes OOM-killed by the host every 5 minutes.
    { name: 'mirror-sync-4k2xd', ...QEMU_RUNTIME_RS, networkTransmitBytesPerSecond: 90_000_000, networkReceiveBytesPerSecond: 3_000_000 },
    {
      name: 'webpack-oom-8s3fw',
      ...QEMU_RUNTIME_RS,
      hostOomKillEverySeconds: 300,
      containers: [
        {
          name: 'build',
          cpuCores: 1.1,
          memoryBytes: 1900 * MIB,
          limits: { cpu: '2', memory: '2Gi' },
          requests: { cpu: '1', memory: '1Gi' },
        },
      ],
    },
    // A VM that no source joins to a pod.
    { name: 'orphan', hypervisor: 'qemu', runtime: 'go', mapping: 'none', inApiServer: false },
    // ── isolation audit: one finding each (ci is untrusted) ──
    // No RuntimeClass: runc, no VM boundary; and it shares the host's network namespace.
    {
      name: 'e2e-hostnet-7d4kq',
      runtimeClassName: null,
      hostNamespaces: ['network'],
      containers: [{ name: 'e2e', cpuCores: 0.4, memoryBytes: 300 * MIB, limits: { cpu: '1', memory: '1Gi' } }],
    },
    // Docker-in-Docker: privileged, under kata-qemu whose containerd section passes host devices.
    {
      name: 'dind-5k8wz',
      hypervisor: 'qemu',
      containers: [{ name: 'docker', cpuCores: 0.6, memoryBytes: 800 * MIB, limits: { cpu: '2', memory: '2Gi' }, privileged: true }],
    },
    // A build cache on the host, shared into the VM.
    { name: 'cache-warm-2n8pd', hypervisor: 'qemu', hostPaths: { '/var/lib/ci-cache': 'ci-cache' } },
    // Asks Kata for the agent's debug console: kernel_params is in enable_annotations, so it applies.
    {
      name: 'build-debug-3k7mx',
      hypervisor: 'qemu',
      annotations: { 'io.katacontainers.config.hypervisor.kernel_params': 'agent.debug_console agent.debug_console_vport=1026' },
    },
  ],
};

/** Short builds that the demo runs one after another, so usage records appear (docs/usage-records.md). */
const SHORT_BUILD_SECONDS = 40;
const SHORT_BUILD_GAP_SECONDS = 5;

/**
 * One short CI build at a time: it runs SHORT_BUILD_SECONDS, succeeds, its VM goes a moment later,
 * then its pod; the next one starts. Each ending writes one usage record on the exporter's stdout.
 * Returns the function that stops the cycle.
 */
function runShortBuilds(lab: NodeLab, logger: Logger): () => void {
  let n = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const later = (seconds: number, step: () => Promise<void>) => {
    if (stopped) return;
    timer = setTimeout(
      () => step().catch((error: unknown) => logger.warn({ err: error }, 'demo: a short build failed to step')),
      seconds * 1000,
    );
    timer.unref();
  };
  const start = async () => {
    const name = `short-build-${++n}`;
    await lab.addPod({
      name,
      hypervisor: 'cloud-hypervisor',
      containers: [{ name: 'build', cpuCores: 1.2, memoryBytes: 600 * MIB, limits: { cpu: '2', memory: '1Gi' } }],
    });
    later(SHORT_BUILD_SECONDS, async () => {
      await lab.finishPod('ci', name, 'Succeeded');
      later(2, async () => {
        await lab.teardownSandbox('ci', name);
        await lab.removePod('ci', name);
        later(SHORT_BUILD_GAP_SECONDS, start);
      });
    });
  };
  later(SHORT_BUILD_GAP_SECONDS, start);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

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
  const stopShortBuilds = base.once ? () => undefined : runShortBuilds(lab, logger);
  const parsed = parseCommandLine(lab.flags(), {});
  if (parsed.kind !== 'run') throw new Error('the demo node produced no exporter configuration');
  // The demo audits its own untrusted namespace and publishes its builds' repository label, unless
  // the command line says otherwise.
  const selectors = isAuditEnabled(base) ? base : parsed.config;
  const labels = base.podLabelsAllowlist.all || base.podLabelsAllowlist.keys.size > 0 ? base : parsed.config;
  const config: Config = {
    ...base,
    ...pickPaths(parsed.config),
    auditNamespaceSelector: selectors.auditNamespaceSelector,
    auditPodSelector: selectors.auditPodSelector,
    podLabelsAllowlist: labels.podLabelsAllowlist,
    demo: true,
  };
  logger.info(
    { dir: lab.dir, pods: DEMO_SCENARIO.pods.length, kubelet: lab.endpoints.kubeletUrl, apiServer: lab.apiServer.url },
    'demo node started',
  );
  return {
    config,
    kubeConfig: lab.kubeConfig(),
    lab,
    close: () => {
      stopShortBuilds();
      return lab.close();
    },
  };
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
    containerdConfigPath: c.containerdConfigPath,
    crioConfigPath: c.crioConfigPath,
    kataConfigPath: c.kataConfigPath,
  };
}
