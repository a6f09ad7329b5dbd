/**
 * The node lab: turns a short scenario into a whole simulated Kata node that the real exporter can
 * read exactly as it reads a real one, through its flags: a kubelet over real HTTPS with a token,
 * an API server speaking list/watch, real shim unix sockets, the sandbox and bundle files, and a
 * cgroup tree whose counters move over time the way real ones do. Used by `--demo` and the
 * end-to-end tests; each test states only what differs from the defaults.
 */

import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../config.ts';
import type { HostNamespace, Hypervisor, KataRuntime, KubeletContainerStats, KubeletPodStats } from '../translate/records.ts';
import type { PodQos, CgroupDriver } from '../translate/cgroup-paths.ts';
import { LabCgroupTree, type LabCgroupUsage } from './cgroup-tree.ts';
import { eventsSince, hostProfile, podCgroupLimits, podCgroupState, type HostProfile } from './host-activity.ts';
import { FakeApiServer } from './fake-apiserver.ts';
import { FakeKubelet } from './fake-kubelet.ts';
import { startFakeShim, type FakeShim, type ShimBehaviour } from './fake-shim.ts';
import { renderKubeletPayload } from './kubelet-payload.ts';
import {
  kataPod,
  kataRuntimeClasses,
  KATA_OVERHEAD,
  namespace as buildNamespace,
  podOverhead,
  runtimeClass,
  stableUid,
  type ContainerOptions,
} from './pod-builders.ts';
import {
  hostNetDev,
  podNetDev,
  removeProcess,
  sandboxProcesses,
  writeNetDev,
  writeProcess,
  type LabSandboxProcesses,
} from './proc-tree.ts';
import { writeRuntimeConfig, type LabRuntimeConfig } from './runtime-config-files.ts';
import { renderShimPayload, type GuestCpuItem, type ProcValues } from './shim-payload.ts';
import { removeSandbox, writeSandbox, type LabMapping, type LabSandboxSpec } from './sandbox-tree.ts';
import { createCertificateAuthority, createServerCertificate } from './tls.ts';

const REAL_CGROUP_ROOT = '/sys/fs/cgroup';

const MIB = 2 ** 20;
const GIB = 2 ** 30;
const PAGE = 4096;

export interface LabContainer {
  name: string;
  /** Cores the container burns on average; its CPU counter grows at about this rate. */
  cpuCores: number;
  memoryBytes: number;
  limits?: { cpu?: string; memory?: string };
  requests?: { cpu?: string; memory?: string };
  restartCount?: number;
  /** securityContext.privileged. */
  privileged?: boolean;
}

/**
 * What the kubelet says about a pod's containers: first-hand values, zeros (CRI-O/cAdvisor),
 * nothing, or samples taken five minutes ago (a kubelet whose stats stopped updating).
 */
export type LabKubeletView = 'first-hand' | 'zeros' | 'missing' | 'stale';

export interface LabPodScenario {
  name: string;
  namespace?: string;
  runtime?: KataRuntime;
  hypervisor?: Exclude<Hypervisor, 'unknown'>;
  /**
   * Default: kata-qemu / kata-clh / kata-fc / kata-dragonball after the hypervisor. null: no
   * RuntimeClass, so the runtime's default handler (runc): no VM, no sandbox, no shim.
   */
  runtimeClassName?: string | null;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** hostNetwork / hostPID / hostIPC. */
  hostNamespaces?: HostNamespace[];
  /** hostPath volumes: host path → volume name. */
  hostPaths?: Record<string, string>;
  containers?: LabContainer[];
  kubelet?: LabKubeletView;
  /** How the exporter can join the sandbox to the pod; `none` leaves an unmapped sandbox. */
  mapping?: LabMapping;
  /** Default: false for the Go runtime, true for runtime-rs (as each runtime defaults). */
  sandboxCgroupOnly?: boolean;
  /** Cores and memory the VMM, shim and I/O threads cost on top of the guest. */
  vmOverheadCores?: number;
  vmOverheadMemoryBytes?: number;
  guestTasks?: number;
  guestMemoryBytes?: number;
  /**
   * What the pod really does on the network and its disks, per second: what the host counts (the
   * VMM's net/dev, the cgroup's io.stat / blkio), and what an honest guest reports too.
   */
  networkReceiveBytesPerSecond?: number;
  networkTransmitBytesPerSecond?: number;
  diskReadBytesPerSecond?: number;
  diskWriteBytesPerSecond?: number;
  /**
   * What the guest reports (shim payload, the kubelet's per-container values, which the agent
   * relays): `honest`, or `idle`: a guest that lies, reporting an idle VM whatever it really does.
   */
  guestReports?: 'honest' | 'idle';
  /** Containers burn their CPU at a constant rate (a miner: no build phases, a flat line). */
  flatCpu?: boolean;
  /**
   * The workload's memory grows this fast (a leak, a fork bomb) up to the pod's memory limit, drops
   * back when the OOM killer strikes, and grows again: a sawtooth above the containers' memory.
   */
  memoryGrowthBytesPerSecond?: number;
  /** The host's OOM killer kills a process of the VM (VMM, virtiofsd) every this many seconds. */
  hostOomKillEverySeconds?: number;
  /** The guest kernel's OOM killer kills a process of the build every this many seconds. */
  guestOomKillEverySeconds?: number;
  /**
   * Share of CFS periods in which the pod cgroup is throttled. Default: 0.6 when the pod runs at
   * 90 % or more of its CPU quota (limits + RuntimeClass overhead), else 0.
   */
  cpuThrottledShare?: number;
  shim?: ShimBehaviour;
  /** Whether the pod object exists in the API server (false: a sandbox whose pod is unknown). */
  inApiServer?: boolean;
  /** Seconds the pod has been running when the lab starts. */
  ageSeconds?: number;
  /** false: the pod has no Kata sandbox on the node (its sandbox was never created or was lost). */
  sandbox?: boolean;
  /** false: the pod's host cgroup is missing (e.g. a different cgroup root than the kubelet's). */
  podCgroup?: boolean;
}

export interface LabScenario {
  nodeName?: string;
  pods: LabPodScenario[];
  /** Labels of namespaces (any namespace a pod uses exists, unlabelled unless listed here). */
  namespaces?: Record<string, Record<string, string>>;
  /** The isolation audit's selectors, passed as --audit.namespace-selector / --audit.pod-selector. */
  audit?: { namespaceSelector?: string; podSelector?: string };
  /** Pod labels to publish on kata_bridge_pod_labels, passed as --pods.labels-allowlist. */
  labelsAllowlist?: string;
  cgroupVersion?: 1 | 2;
  cgroupDriver?: CgroupDriver;
  /**
   * Root only: put each pod's VM in real kernel cgroups (under the host's /sys/fs/cgroup) with real
   * processes that burn its CPU and hold its memory, instead of a simulated cgroup tree. Tests pass
   * test/support/real-pod.ts here; the image carries no code that creates cgroups or processes.
   */
  realCgroups?: (spec: RealVmSpec) => Promise<RealVmCgroups>;
}

/** A pod's VM in real kernel cgroups, as the lab needs it: where its cgroups are, and teardown. */
export interface RealVmCgroups {
  readonly podPath: string;
  readonly sandboxPath: string;
  readonly overheadPath: string | undefined;
  destroy(): Promise<void>;
}

export interface RealVmSpec {
  uid: string;
  qos: PodQos;
  sandboxId: string;
  runtime: KataRuntime;
  sandboxCgroupOnly: boolean;
  workloadCores: number;
  workloadBytes: number;
  vmmCores: number;
  vmmBytes: number;
}

/** Where the exporter finds each part of the lab: what its flags point at. */
export type LabEndpoints = Required<
  Pick<
    Config,
    | 'nodeName'
    | 'kubeletUrl'
    | 'kubeletTokenFile'
    | 'kubeletCaFile'
    | 'kubeconfig'
    | 'serviceAccountDir'
    | 'cgroupRoot'
    | 'kataGoDir'
    | 'kataRsDir'
    | 'containerdTasksDir'
    | 'crioDir'
    | 'procDir'
    | 'containerdConfigPath'
    | 'crioConfigPath'
    | 'kataConfigPath'
  >
>;

/** The namespaces every cluster has. */
const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

interface LabPodState {
  scenario: Required<Omit<LabPodScenario, 'shim' | 'cpuThrottledShare'>> & Pick<LabPodScenario, 'cpuThrottledShare'>;
  /** Runs in a Kata VM (false: a runc pod without RuntimeClass). */
  kata: boolean;
  uid: string;
  sandboxId: string;
  startedAtMs: number;
  shim?: FakeShim;
  /** Extra container CPU set by a test (e.g. pin a pod at its limit). */
  cpuOverride: Map<string, number>;
  /** CPU seconds accumulated before an override changed the rate. */
  cpuBase: Map<string, { atMs: number; seconds: number }>;
  removed: boolean;
  /** When its containers ended (finishPod): every counter stays where it was then. */
  finishedAtMs?: number;
  real?: RealVmCgroups;
  /** Limits, throttling and pressure shares of the pod cgroup (Kata pods on the simulated tree). */
  host?: HostProfile;
  /** The sandbox's shim, VMM and virtiofsd in the lab's procfs. */
  processes?: LabSandboxProcesses;
}

/** The guest kernel and agent: memory the guest uses beyond its containers. */
export const GUEST_KERNEL_BYTES = 64 * MIB;

/**
 * What each VMM (with its shim and virtiofsd) costs on the host by default, chosen so a default pod
 * stays inside kata-deploy's RuntimeClass overhead (QEMU 320Mi, Cloud Hypervisor and Firecracker
 * 130Mi); a scenario that wants a VMM outgrowing its reservation says so.
 */
const VMM_MEMORY: Record<Exclude<Hypervisor, 'unknown'>, number> = {
  qemu: 150 * MIB,
  'cloud-hypervisor': 32 * MIB,
  firecracker: 24 * MIB,
  dragonball: 40 * MIB,
};

const RUNTIME_CLASS: Record<Exclude<Hypervisor, 'unknown'>, string> = {
  qemu: 'kata-qemu',
  'cloud-hypervisor': 'kata-clh',
  firecracker: 'kata-fc',
  dragonball: 'kata-dragonball',
};

function sandboxIdFor(namespace: string, name: string): string {
  return createHash('sha256').update(`sandbox/${namespace}/${name}`).digest('hex');
}

function qosOf(containers: LabContainer[]): PodQos {
  const full = containers.every(
    (c) =>
      c.limits?.cpu &&
      c.limits.memory &&
      (c.requests === undefined || (c.requests.cpu === c.limits.cpu && c.requests.memory === c.limits.memory)),
  );
  const any = containers.some((c) => c.limits !== undefined || c.requests !== undefined);
  return !any ? 'besteffort' : full ? 'guaranteed' : 'burstable';
}

/** A smooth, always-increasing work curve: rate × (t + small wave), so graphs are not flat lines. */
function work(rate: number, seconds: number): number {
  return rate * (seconds + 3 * Math.sin(seconds / 30));
}

/** The pid of the first sandbox's shim in the lab's procfs; each sandbox takes the next PIDS_PER_SANDBOX. */
const FIRST_SANDBOX_PID = 10_000;
const PIDS_PER_SANDBOX = 10;

/** The RuntimeClass kata-deploy 4.0 makes the default: runtime-rs with QEMU. */
export const QEMU_RUNTIME_RS = {
  runtime: 'rs',
  hypervisor: 'qemu',
  runtimeClassName: 'kata-qemu-runtime-rs',
} as const satisfies Partial<LabPodScenario>;

/** What a lying guest reports: an idle VM, whatever the host sees it do. */
const IDLE_GUEST = { cores: 0.005, memoryBytes: 120 * MIB, networkBytesPerSecond: 300, diskBytesPerSecond: 2_000 } as const;

/** The exporter flags a scenario asks for beyond the lab's paths. */
function scenarioFlags(scenario: LabScenario): string[] {
  const { audit, labelsAllowlist } = scenario;
  return [
    ...(audit?.namespaceSelector === undefined ? [] : [`--audit.namespace-selector=${audit.namespaceSelector}`]),
    ...(audit?.podSelector === undefined ? [] : [`--audit.pod-selector=${audit.podSelector}`]),
    ...(labelsAllowlist === undefined ? [] : [`--pods.labels-allowlist=${labelsAllowlist}`]),
  ];
}

export class NodeLab {
  readonly pods = new Map<string, LabPodState>();
  private ticker: NodeJS.Timeout | undefined;
  private tickInFlight: Promise<void> | undefined;
  private socketSeq = 0;
  private sandboxSeq = 0;

  private constructor(
    readonly dir: string,
    readonly endpoints: LabEndpoints,
    readonly kubelet: FakeKubelet,
    readonly apiServer: FakeApiServer,
    readonly cgroups: LabCgroupTree,
    /** Where the node's containerd and Kata configuration files are. */
    readonly runtimeConfig: LabRuntimeConfig,
    /** The exporter flags the scenario asks for beyond the paths (audit selectors, labels allowlist). */
    private readonly scenarioFlags: readonly string[],
    private readonly now: () => number,
    private readonly realCgroups: LabScenario['realCgroups'],
  ) {}

  static async start(scenario: LabScenario, options: { dir?: string; now?: () => number } = {}): Promise<NodeLab> {
    const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'kmb-lab-')));
    const now = options.now ?? Date.now;
    const nodeName = scenario.nodeName ?? 'kata-node-1';
    const ca = await createCertificateAuthority();
    const server = await createServerCertificate(ca);
    const token = createHash('sha256').update(`${dir}/token`).digest('hex');
    const endpoints: LabEndpoints = {
      nodeName,
      kubeletUrl: '',
      kubeletTokenFile: join(dir, 'token'),
      kubeletCaFile: join(dir, 'kubelet-ca.crt'),
      kubeconfig: join(dir, 'kubeconfig'),
      serviceAccountDir: join(dir, 'in-cluster-serviceaccount'),
      cgroupRoot: join(dir, 'cgroup'),
      kataGoDir: join(dir, 'sbs'),
      kataRsDir: join(dir, 'kata'),
      containerdTasksDir: join(dir, 'containerd'),
      crioDir: join(dir, 'crio'),
      procDir: join(dir, 'proc'),
      containerdConfigPath: '',
      crioConfigPath: '',
      kataConfigPath: '',
    };
    const runtimeConfig = await writeRuntimeConfig(dir);
    endpoints.containerdConfigPath = runtimeConfig.containerdConfig;
    endpoints.crioConfigPath = runtimeConfig.crioConfig;
    endpoints.kataConfigPath = runtimeConfig.kataDefaultConfig;
    for (const d of [endpoints.kataGoDir, endpoints.kataRsDir, endpoints.containerdTasksDir, endpoints.crioDir, endpoints.procDir]) {
      await mkdir(d, { recursive: true });
    }
    await writeFile(endpoints.kubeletTokenFile, token);
    await writeFile(endpoints.kubeletCaFile, ca.certPem);

    let lab: NodeLab | undefined;
    const kubelet = await FakeKubelet.start({
      certPem: server.certPem,
      keyPem: server.keyPem,
      token,
      payload: () => lab?.kubeletPayload() ?? '',
    });
    endpoints.kubeletUrl = kubelet.url;
    const apiServer = await FakeApiServer.start({ token, tls: server });
    await writeFile(endpoints.kubeconfig, apiServer.kubeconfigYaml());
    // What a pod's service account mount holds, for the in-cluster configuration.
    await mkdir(endpoints.serviceAccountDir, { recursive: true });
    await writeFile(join(endpoints.serviceAccountDir, 'token'), token);
    await writeFile(join(endpoints.serviceAccountDir, 'ca.crt'), ca.certPem);
    const kata4 = runtimeClass(QEMU_RUNTIME_RS.runtimeClassName, QEMU_RUNTIME_RS.runtimeClassName, KATA_OVERHEAD['qemu-runtime-rs']);
    for (const rc of [...kataRuntimeClasses(), runtimeClass('kata-dragonball', 'kata-dragonball'), kata4]) apiServer.addRuntimeClass(rc);
    for (const name of SYSTEM_NAMESPACES) apiServer.addNamespace(buildNamespace(name, scenario.namespaces?.[name]));
    for (const [name, labels] of Object.entries(scenario.namespaces ?? {})) {
      if (!apiServer.hasNamespace(name)) apiServer.addNamespace(buildNamespace(name, labels));
    }
    const cgroups = await LabCgroupTree.create(endpoints.cgroupRoot, {
      version: scenario.cgroupVersion ?? 1,
      driver: scenario.cgroupDriver ?? 'cgroupfs',
    });
    if (scenario.realCgroups) endpoints.cgroupRoot = REAL_CGROUP_ROOT;

    lab = new NodeLab(dir, endpoints, kubelet, apiServer, cgroups, runtimeConfig, scenarioFlags(scenario), now, scenario.realCgroups);
    for (const pod of scenario.pods) await lab.addPod(pod);
    return lab;
  }

  /** A KubeConfig for the lab's API server (what --kubeconfig points at). */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromString(this.apiServer.kubeconfigYaml());
    return kc;
  }

  /**
   * The exporter's command line and environment as a DaemonSet pod gets them: the in-cluster
   * configuration (service account files, KUBERNETES_SERVICE_HOST/PORT) instead of --kubeconfig.
   */
  inCluster(): { flags: string[]; env: Record<string, string> } {
    return {
      flags: [
        ...this.flags().filter((f) => !f.startsWith('--kubeconfig=')),
        `--kubeconfig.service-account-dir=${this.endpoints.serviceAccountDir}`,
      ],
      env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(this.apiServer.port) },
    };
  }

  /** The exporter's command line for this node. */
  flags(): string[] {
    const e = this.endpoints;
    return [
      `--node.name=${e.nodeName}`,
      `--kubelet.url=${e.kubeletUrl}`,
      `--kubelet.token-file=${e.kubeletTokenFile}`,
      `--kubelet.ca-file=${e.kubeletCaFile}`,
      `--kubeconfig=${e.kubeconfig}`,
      `--path.cgroupfs=${e.cgroupRoot}`,
      `--path.kata-go=${e.kataGoDir}`,
      `--path.kata-rs=${e.kataRsDir}`,
      `--path.containerd-tasks=${e.containerdTasksDir}`,
      `--path.crio=${e.crioDir}`,
      `--path.procfs=${e.procDir}`,
      `--path.containerd-config=${e.containerdConfigPath}`,
      `--path.crio-config=${e.crioConfigPath}`,
      `--path.kata-config=${e.kataConfigPath}`,
      ...this.scenarioFlags,
    ];
  }

  async addPod(input: LabPodScenario): Promise<LabPodState> {
    const namespace = input.namespace ?? 'ci';
    const hypervisor = input.hypervisor ?? 'qemu';
    const runtime = input.runtime ?? (hypervisor === 'dragonball' ? 'rs' : 'go');
    const kata = input.runtimeClassName !== null;
    const scenario: LabPodState['scenario'] = {
      name: input.name,
      namespace,
      runtime,
      hypervisor,
      runtimeClassName: input.runtimeClassName === undefined ? RUNTIME_CLASS[hypervisor] : input.runtimeClassName,
      labels: input.labels ?? {},
      annotations: input.annotations ?? {},
      hostNamespaces: input.hostNamespaces ?? [],
      hostPaths: input.hostPaths ?? {},
      containers: input.containers ?? [
        {
          name: 'build',
          cpuCores: 0.8,
          memoryBytes: 700 * MIB,
          limits: { cpu: '2', memory: '2Gi' },
          requests: { cpu: '500m', memory: '1Gi' },
        },
      ],
      kubelet: input.kubelet ?? 'first-hand',
      mapping: input.mapping ?? 'containerd',
      sandboxCgroupOnly: input.sandboxCgroupOnly ?? runtime === 'rs',
      vmOverheadCores: input.vmOverheadCores ?? 0.05,
      vmOverheadMemoryBytes: input.vmOverheadMemoryBytes ?? VMM_MEMORY[hypervisor],
      guestTasks: input.guestTasks ?? 60,
      guestMemoryBytes: input.guestMemoryBytes ?? 4 * GIB,
      networkReceiveBytesPerSecond: input.networkReceiveBytesPerSecond ?? 200_000,
      networkTransmitBytesPerSecond: input.networkTransmitBytesPerSecond ?? 40_000,
      diskReadBytesPerSecond: input.diskReadBytesPerSecond ?? 100_000,
      diskWriteBytesPerSecond: input.diskWriteBytesPerSecond ?? 300_000,
      guestReports: input.guestReports ?? 'honest',
      flatCpu: input.flatCpu ?? false,
      memoryGrowthBytesPerSecond: input.memoryGrowthBytesPerSecond ?? 0,
      hostOomKillEverySeconds: input.hostOomKillEverySeconds ?? 0,
      guestOomKillEverySeconds: input.guestOomKillEverySeconds ?? 0,
      ...(input.cpuThrottledShare === undefined ? {} : { cpuThrottledShare: input.cpuThrottledShare }),
      inApiServer: input.inApiServer ?? true,
      ageSeconds: input.ageSeconds ?? 600,
      sandbox: kata && (input.sandbox ?? true),
      podCgroup: input.podCgroup ?? true,
    };
    const uid = stableUid(namespace, input.name);
    const sandboxId = sandboxIdFor(namespace, input.name);
    const state: LabPodState = {
      scenario,
      kata,
      uid,
      sandboxId,
      startedAtMs: this.now() - scenario.ageSeconds * 1000,
      cpuOverride: new Map(),
      cpuBase: new Map(),
      removed: false,
    };
    this.pods.set(`${namespace}/${input.name}`, state);

    const qos = qosOf(scenario.containers);
    if (!this.apiServer.hasNamespace(namespace)) this.apiServer.addNamespace(buildNamespace(namespace));
    if (kata && !this.realCgroups) {
      state.host = this.hostProfileOf(state);
      if (scenario.sandbox)
        state.processes = sandboxProcesses(hypervisor, runtime, sandboxId, FIRST_SANDBOX_PID + PIDS_PER_SANDBOX * this.sandboxSeq++);
      for (const p of Object.values(state.processes ?? {})) await writeProcess(this.endpoints.procDir, p);
    }
    await this.cgroups.addPod({
      uid,
      qos,
      // A runc pod's cgroup holds its containers, not a VM.
      sandboxes: !kata
        ? []
        : [
            {
              id: sandboxId,
              runtime,
              sandboxCgroupOnly: scenario.sandboxCgroupOnly,
              usage: { cpuSeconds: 0, memoryUsageBytes: 0 },
              ...(scenario.sandboxCgroupOnly ? {} : { overheadUsage: { cpuSeconds: 0, memoryUsageBytes: 0 } }),
            },
          ],
    });
    if (this.realCgroups && kata) {
      state.real = await this.realCgroups({
        uid,
        qos,
        sandboxId,
        runtime,
        sandboxCgroupOnly: scenario.sandboxCgroupOnly,
        workloadCores: Math.min(
          1,
          scenario.containers.reduce((sum, c) => sum + c.cpuCores, 0),
        ),
        workloadBytes: this.guestUsedMemory(state),
        vmmCores: scenario.vmOverheadCores,
        vmmBytes: scenario.vmOverheadMemoryBytes,
      });
    }
    const paths = this.realPaths(state) ?? this.cgroups.paths(uid)!;
    const spec: LabSandboxSpec = {
      id: sandboxId,
      runtime,
      hypervisor,
      sandboxCgroupOnly: scenario.sandboxCgroupOnly,
      pod: { uid, name: input.name, namespace },
      mapping: scenario.mapping,
      sandboxCgroupPath: paths.sandboxes[sandboxId]?.sandbox ?? paths.pod,
      overheadCgroupPath: paths.sandboxes[sandboxId]?.overhead,
    };
    // Without any mapping the sandbox cgroup path must not name the pod either (a truly unknown VM).
    if (scenario.mapping === 'none') spec.sandboxCgroupPath = `/kata_unknown/${sandboxId}`;
    if (scenario.sandbox) {
      const dir = await writeSandbox(this.endpoints, spec);
      state.shim = await this.startShim(dir, state, input.shim);
    }
    await this.writeCgroups(state);
    if (!scenario.podCgroup) await this.cgroups.removePod(uid);

    if (scenario.inApiServer) {
      this.apiServer.addPod(
        kataPod({
          name: input.name,
          namespace,
          uid,
          nodeName: this.endpoints.nodeName,
          runtimeClassName: scenario.runtimeClassName,
          startTime: new Date(state.startedAtMs).toISOString().replace(/\.\d+Z$/, 'Z'),
          containers: scenario.containers.map((c): ContainerOptions => ({
            name: c.name,
            limits: c.limits,
            requests: c.requests,
            restartCount: c.restartCount,
            ...(c.privileged === undefined ? {} : { privileged: c.privileged }),
          })),
          labels: scenario.labels,
          ...(Object.keys(scenario.annotations).length > 0 ? { annotations: scenario.annotations } : {}),
          hostNamespaces: scenario.hostNamespaces,
          hostPaths: scenario.hostPaths,
        }),
      );
    }
    return state;
  }

  /** Binds the socket at a short path and moves it into place: sandbox paths pass the 108-byte limit. */
  private async startShim(dir: string, state: LabPodState, behaviour: ShimBehaviour | undefined): Promise<FakeShim> {
    return startFakeShim({
      socketPath: join(dir, 'shim-monitor.sock'),
      bindPath: join(this.dir, `s${this.socketSeq++}.sock`),
      payload: () => this.shimPayload(state),
      behaviour,
    });
  }

  async removePod(namespace: string, name: string): Promise<void> {
    const state = this.pods.get(`${namespace}/${name}`);
    if (state === undefined) return;
    this.pods.delete(`${namespace}/${name}`);
    if (state.scenario.inApiServer) this.apiServer.deletePod(namespace, name);
    await this.tearDown(state);
  }

  /**
   * A pod's containers end: its counters stop where they are, written now as the kernel's final
   * values, and the API server reports the phase with every container terminated. The VM, its
   * sandbox and cgroups stay until teardownSandbox; the pod object until removePod.
   */
  async finishPod(namespace: string, name: string, phase: 'Succeeded' | 'Failed' = 'Succeeded'): Promise<void> {
    const state = this.pods.get(`${namespace}/${name}`);
    if (state === undefined) throw new Error(`node lab: no pod ${namespace}/${name}`);
    const now = this.now();
    state.finishedAtMs = now;
    await this.tickInFlight;
    await this.writeCgroups(state);
    const finishedAt = new Date(now).toISOString().replace(/\.\d+Z$/, 'Z');
    const exitCode = phase === 'Succeeded' ? 0 : 1;
    this.apiServer.modifyPod(namespace, name, (pod) => {
      pod.status = { ...pod.status, phase };
      for (const status of pod.status.containerStatuses ?? []) {
        const startedAt = status.state?.running?.startedAt;
        status.state = {
          terminated: { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error', startedAt, finishedAt, containerID: status.containerID },
        };
        status.ready = false;
        status.started = false;
      }
    });
  }

  /** What the kubelet and Kata do a little after a pod finished: its VM, sandbox and cgroups go; the pod object stays. */
  async teardownSandbox(namespace: string, name: string): Promise<void> {
    const state = this.pods.get(`${namespace}/${name}`);
    if (state !== undefined) await this.tearDown(state);
  }

  private async tearDown(state: LabPodState): Promise<void> {
    if (state.removed) return;
    state.removed = true;
    await this.tickInFlight;
    await state.shim?.close();
    await removeSandbox(this.endpoints, { id: state.sandboxId, runtime: state.scenario.runtime });
    await this.cgroups.removePod(state.uid);
    for (const p of Object.values(state.processes ?? {})) await removeProcess(this.endpoints.procDir, p.pid);
    await state.real?.destroy();
  }

  /** Where a pod's real cgroups are, in the simulated tree's shape. */
  private realPaths(state: LabPodState): { pod: string; sandboxes: Record<string, { sandbox: string; overhead?: string }> } | undefined {
    const real = state.real;
    if (real === undefined) return undefined;
    const sandbox =
      real.overheadPath === undefined ? { sandbox: real.sandboxPath } : { sandbox: real.sandboxPath, overhead: real.overheadPath };
    return { pod: real.podPath, sandboxes: { [state.sandboxId]: sandbox } };
  }

  /** Makes a container burn this many cores from now on (e.g. pinned at its CPU limit). */
  setContainerCpu(namespace: string, pod: string, container: string, cores: number): void {
    const state = this.pods.get(`${namespace}/${pod}`);
    if (state === undefined) throw new Error(`node lab: no pod ${namespace}/${pod}`);
    const now = this.now();
    state.cpuBase.set(container, { atMs: now, seconds: this.containerCpu(state, container, now) });
    state.cpuOverride.set(container, cores);
  }

  async setShimBehaviour(namespace: string, pod: string, behaviour: ShimBehaviour): Promise<void> {
    await this.pods.get(`${namespace}/${pod}`)?.shim?.setBehaviour(behaviour);
  }

  // ─── the values, as functions of time ──────────────────────────────────────

  private seconds(state: LabPodState, atMs: number): number {
    return Math.max(0, (Math.min(atMs, state.finishedAtMs ?? atMs) - state.startedAtMs) / 1000);
  }

  private containerCpu(state: LabPodState, name: string, atMs: number): number {
    const container = state.scenario.containers.find((c) => c.name === name);
    if (container === undefined) return 0;
    const base = state.cpuBase.get(name);
    const override = state.cpuOverride.get(name);
    if (base !== undefined && override !== undefined)
      return base.seconds + override * Math.max(0, (Math.min(atMs, state.finishedAtMs ?? atMs) - base.atMs) / 1000);
    const t = this.seconds(state, atMs);
    return state.scenario.flatCpu ? container.cpuCores * t : work(container.cpuCores, t);
  }

  private workloadCpu(state: LabPodState, atMs: number): number {
    return state.scenario.containers.reduce((sum, c) => sum + this.containerCpu(state, c.name, atMs), 0);
  }

  /** The guest's own kernel and agent: a little CPU and memory beyond the containers. */
  private guestCpu(state: LabPodState, atMs: number): number {
    return this.workloadCpu(state, atMs) + 0.02 * this.seconds(state, atMs);
  }

  /**
   * Memory the guest uses: its containers and kernel, plus what a leak has added by `atMs` since
   * the last OOM kill; `'peak'`: the most it reaches.
   */
  private guestUsedMemory(state: LabPodState, atMs?: number | 'peak'): number {
    const containers = state.scenario.containers.reduce((sum, c) => sum + c.memoryBytes, 0);
    const room = Math.max(
      0,
      (state.host?.limits.memoryLimitBytes ?? containers + GIB) -
        containers -
        GUEST_KERNEL_BYTES -
        state.scenario.vmOverheadMemoryBytes -
        64 * MIB,
    );
    const rate = state.scenario.memoryGrowthBytesPerSecond;
    const growth = atMs === undefined || rate <= 0 || room <= 0 ? 0 : atMs === 'peak' ? room : (rate * this.seconds(state, atMs)) % room;
    // Whole pages, as the kernel counts memory.
    return containers + Math.floor(growth / PAGE) * PAGE + GUEST_KERNEL_BYTES;
  }

  /** The pod cgroup's limits and how hard the VM pushes against them, from the scenario. */
  private hostProfileOf(state: LabPodState): HostProfile {
    const s = state.scenario;
    const limits = podCgroupLimits(s.containers, podOverhead(s.runtimeClassName));
    const guestCores = s.containers.reduce((sum, c) => sum + c.cpuCores, 0) + 0.02;
    return hostProfile({
      limits,
      cpuDemandCores: guestCores * 1.03 + s.vmOverheadCores,
      workingSetBytes: this.guestUsedMemory(state) + 16 * MIB + s.vmOverheadMemoryBytes,
      memoryGrowing: s.memoryGrowthBytesPerSecond > 0,
      hostOomKills: s.hostOomKillEverySeconds > 0,
      diskBytesPerSecond: s.diskReadBytesPerSecond + s.diskWriteBytesPerSecond,
      ...(s.cpuThrottledShare === undefined ? {} : { cpuThrottledShare: s.cpuThrottledShare }),
    });
  }

  /** The guest's own CPU report for a container: the truth, or an idle VM's from a lying guest. */
  private reportedContainerCpu(state: LabPodState, name: string, atMs: number): number {
    return state.scenario.guestReports === 'idle' ? IDLE_GUEST.cores * this.seconds(state, atMs) : this.containerCpu(state, name, atMs);
  }

  private hostUsage(state: LabPodState, atMs: number): { sandbox: LabCgroupUsage; overhead: LabCgroupUsage } {
    const t = this.seconds(state, atMs);
    // vCPU threads run the guest; emulation costs a few percent on top.
    const vcpu = this.guestCpu(state, atMs) * 1.03;
    const vmm = work(state.scenario.vmOverheadCores, t);
    // Guest RAM the VM has touched: what the guest uses plus a little page cache it has freed.
    const guestRam = this.guestUsedMemory(state, atMs) + 16 * MIB;
    const vmmMemory = state.scenario.vmOverheadMemoryBytes;
    // The OOM killer's victims are the VM's host processes, charged where they run (the sandbox
    // cgroup, under the pod's limit). Block I/O is the VMM's and virtiofsd's, wherever they run.
    const oomKills = eventsSince(t, state.scenario.hostOomKillEverySeconds);
    const io = {
      diskReadBytes: Math.round(work(state.scenario.diskReadBytesPerSecond, t) + 4096 * t),
      diskWriteBytes: Math.round(work(state.scenario.diskWriteBytesPerSecond, t) * 1.02 + 8192 * t),
    };
    const p = state.processes;
    const vmmPids = p === undefined ? [] : [p.vmm.pid];
    const helperPids = p === undefined ? [] : [p.shim, p.virtiofsd].flatMap((x) => (x === undefined || x.pid === p.vmm.pid ? [] : [x.pid]));
    // The peak never goes down, even when a leak is reset by an OOM kill.
    const peakRam = this.guestUsedMemory(state, 'peak') + 16 * MIB;
    if (state.scenario.sandboxCgroupOnly) {
      const memoryUsageBytes = guestRam + vmmMemory + 40 * MIB;
      return {
        sandbox: {
          cpuSeconds: vcpu + vmm,
          memoryUsageBytes,
          inactiveFileBytes: 40 * MIB,
          memoryPeakBytes: peakRam + vmmMemory + 64 * MIB,
          oomKills,
          ...io,
          pids: [...helperPids, ...vmmPids].sort((a, b) => a - b),
        },
        overhead: { cpuSeconds: 0, memoryUsageBytes: 0 },
      };
    }
    // Only the vCPU threads stay in the sandbox cgroup: cgroup v1 lists their process there, and
    // cgroup v2 (Kata issue 4886) has the whole VMM there; the shim and virtiofsd are in the overhead cgroup.
    const v1 = this.cgroups.options.version === 1;
    return {
      sandbox: {
        cpuSeconds: vcpu,
        memoryUsageBytes: guestRam + 20 * MIB,
        inactiveFileBytes: 20 * MIB,
        memoryPeakBytes: peakRam + 44 * MIB,
        oomKills,
        pids: vmmPids,
      },
      overhead: {
        cpuSeconds: vmm,
        memoryUsageBytes: vmmMemory + 10 * MIB,
        inactiveFileBytes: 10 * MIB,
        ...io,
        pids: [...helperPids, ...(v1 ? vmmPids : [])].sort((a, b) => a - b),
      },
    };
  }

  /** A runc pod's cgroup: its containers, nothing else. */
  private runcUsage(state: LabPodState, atMs: number): LabCgroupUsage {
    return {
      cpuSeconds: this.workloadCpu(state, atMs),
      memoryUsageBytes: state.scenario.containers.reduce((sum, c) => sum + c.memoryBytes, 0),
    };
  }

  private async writeCgroups(state: LabPodState): Promise<void> {
    if (state.removed || !state.scenario.podCgroup) return;
    if (!state.kata) {
      await this.cgroups.updatePod(state.uid, { usage: this.runcUsage(state, this.now()) });
      return;
    }
    const now = this.now();
    const usage = this.hostUsage(state, now);
    const t = this.seconds(state, now);
    await this.cgroups.updatePod(state.uid, {
      ...(state.host === undefined ? {} : { limits: podCgroupState(state.host, t) }),
      sandboxes: {
        [state.sandboxId]: { usage: usage.sandbox, ...(state.scenario.sandboxCgroupOnly ? {} : { overheadUsage: usage.overhead }) },
      },
    });
    await this.writeNetDevs(state, t);
  }

  /** The VMM sees the pod's traffic (what the pod really does); the shim and virtiofsd see the node's. */
  private async writeNetDevs(state: LabPodState, t: number): Promise<void> {
    const p = state.processes;
    if (p === undefined) return;
    const s = state.scenario;
    const pod = {
      receiveBytes: work(s.networkReceiveBytesPerSecond, t) * 1.01,
      transmitBytes: work(s.networkTransmitBytesPerSecond, t) * 1.01,
    };
    await writeNetDev(this.endpoints.procDir, p.vmm.pid, podNetDev(pod, 50 * t));
    for (const helper of [p.shim, p.virtiofsd]) {
      if (helper !== undefined && helper.pid !== p.vmm.pid) await writeNetDev(this.endpoints.procDir, helper.pid, hostNetDev(t));
    }
  }

  /** Rewrites every cgroup counter to now. A pod removed meanwhile is skipped, never recreated. */
  async tick(): Promise<void> {
    for (const state of [...this.pods.values()]) {
      try {
        await this.writeCgroups(state);
      } catch (error) {
        // removePod deleted the directories under the write: that pod is gone anyway.
        if (!state.removed) throw error;
      }
      if (state.removed) await this.cgroups.removePod(state.uid);
    }
  }

  /** Keeps the cgroup files moving, as the kernel does. */
  startTicking(intervalMs = 1000): void {
    this.ticker ??= setInterval(() => {
      this.tickInFlight ??= this.tick()
        .catch(() => undefined) // the next tick rewrites everything; a failed one loses nothing
        .finally(() => {
          this.tickInFlight = undefined;
        });
    }, intervalMs);
    this.ticker.unref();
  }

  kubeletPayload(): string {
    const now = this.now();
    // The kubelet's stats lag its scrape by its housekeeping interval.
    const sampleMs = Math.floor((now - 5000) / 1000) * 1000;
    const pods: KubeletPodStats[] = [];
    const containers: KubeletContainerStats[] = [];
    for (const state of this.pods.values()) {
      const { namespace, name } = state.scenario;
      // cAdvisor reads the pod cgroup: with sandbox_cgroup_only=false the VMM is elsewhere.
      const podCgroup = state.kata ? this.hostUsage(state, sampleMs).sandbox : this.runcUsage(state, sampleMs);
      pods.push({
        namespace,
        pod: name,
        cpuSeconds: podCgroup.cpuSeconds,
        cpuTimestampMs: sampleMs,
        memoryWorkingSetBytes: podCgroup.memoryUsageBytes - (podCgroup.inactiveFileBytes ?? 0),
        memoryTimestampMs: sampleMs,
      });
      if (state.scenario.kubelet === 'missing') continue;
      const stale = state.scenario.kubelet === 'stale';
      for (const c of state.scenario.containers) {
        const zero = state.scenario.kubelet === 'zeros';
        const takenMs = stale ? sampleMs - 300_000 : sampleMs;
        containers.push({
          namespace,
          pod: name,
          container: c.name,
          cpuSeconds: zero ? 0 : this.reportedContainerCpu(state, c.name, takenMs),
          cpuTimestampMs: takenMs,
          memoryWorkingSetBytes: zero ? 0 : state.scenario.guestReports === 'idle' ? IDLE_GUEST.memoryBytes : c.memoryBytes,
          memoryTimestampMs: takenMs,
          startTimeSeconds: Math.floor(state.startedAtMs / 1000) + 2,
        });
      }
    }
    const nodeCpu = pods.reduce((s, p) => s + (p.cpuSeconds ?? 0), 0) + 1000;
    return renderKubeletPayload({ timestampMs: sampleMs, node: { cpuSeconds: nodeCpu, memoryWorkingSetBytes: 3 * GIB }, pods, containers });
  }

  shimPayload(state: LabPodState): string {
    const now = this.now();
    const t = this.seconds(state, now);
    const s = state.scenario;
    const vcpus = 2;
    const lying = s.guestReports === 'idle';
    const busyMs = (lying ? IDLE_GUEST.cores * t : this.guestCpu(state, now)) * 1000;
    const perCpu = (share: number): Record<GuestCpuItem, number> => {
      const busy = busyMs * share;
      const tens = (ms: number) => Math.round(ms / 10) * 10;
      const user = tens(busy * 0.8);
      const system = tens(busy * 0.15);
      const softirq = tens(busy * 0.03);
      const irq = tens(busy * 0.02);
      const steal = tens(t * 2);
      const iowait = tens(t * 5);
      const idle = tens(Math.max(0, t * 1000 - user - system - softirq - irq - steal - iowait));
      return { user, nice: 0, system, idle, iowait, irq, softirq, steal, guest: 0, guest_nice: 0 };
    };
    const memTotal = s.guestMemoryBytes;
    const used = lying ? IDLE_GUEST.memoryBytes : this.guestUsedMemory(state, now);
    const rate = (bytesPerSecond: number) => Math.round(lying ? IDLE_GUEST.networkBytesPerSecond * t : work(bytesPerSecond, t));
    const diskSectors = (bytesPerSecond: number) => Math.round((lying ? IDLE_GUEST.diskBytesPerSecond * t : work(bytesPerSecond, t)) / 512);
    const proc = (cpuSeconds: number, rss: number, threads: number): ProcValues => ({
      utimeTicks: Math.round(cpuSeconds * 70),
      stimeTicks: Math.round(cpuSeconds * 30),
      rssBytes: rss,
      vsizeBytes: rss * 4,
      threads,
      fds: 40,
      readBytes: Math.round(t * 1000),
      writeBytes: Math.round(t * 500),
    });
    const vmm = work(s.vmOverheadCores, t);
    return renderShimPayload({
      runtime: s.runtime,
      hypervisor: s.hypervisor,
      guestCpuMs: [perCpu(0.55), perCpu(0.45)].slice(0, vcpus),
      meminfo: { mem_total: memTotal, mem_free: Math.max(0, memTotal - used - 300 * MIB), mem_available: Math.max(0, memTotal - used) },
      load: { load1: Math.min(8, this.workloadCpu(state, now) / Math.max(1, t)), load5: 0.8, load15: 0.6 },
      tasks: { cur: s.guestTasks, max: 4_194_304 },
      vmstat: { oom_kill: lying ? 0 : eventsSince(t, s.guestOomKillEverySeconds) },
      netdev: {
        lo: { recvBytes: Math.round(t * 50), sentBytes: Math.round(t * 50) },
        eth0: { recvBytes: rate(s.networkReceiveBytesPerSecond), sentBytes: rate(s.networkTransmitBytesPerSecond) },
      },
      disks: {
        vda: {
          reads: Math.round(t * 3),
          sectorsRead: diskSectors(s.diskReadBytesPerSecond),
          writes: Math.round(t * 7),
          sectorsWritten: diskSectors(s.diskWriteBytesPerSecond),
        },
      },
      shim: proc(vmm * 0.1, 40 * MIB, 12),
      ...(s.hypervisor === 'dragonball' ? {} : { hypervisorProc: proc(vmm * 0.8, s.vmOverheadMemoryBytes, 8) }),
      ...(s.hypervisor === 'firecracker' || s.hypervisor === 'dragonball' ? {} : { virtiofsd: proc(vmm * 0.1, 20 * MIB, 6) }),
      agent: proc(t * 0.005, 30 * MIB, 10),
      ...(s.hypervisor === 'firecracker'
        ? { firecracker: { block: { read_bytes: 4096, write_bytes: 8192 }, net: { rx_bytes_count: 1500, tx_bytes_count: 900 } } }
        : {}),
    });
  }

  async close(): Promise<void> {
    if (this.ticker !== undefined) clearInterval(this.ticker);
    await this.tickInFlight;
    for (const state of this.pods.values()) {
      await state.shim?.close();
      await state.real?.destroy();
    }
    await this.kubelet.close();
    await this.apiServer.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}
