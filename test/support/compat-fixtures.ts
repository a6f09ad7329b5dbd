/**
 * What cAdvisor (the kubelet's /metrics/cadvisor), kube-state-metrics and kata-metrics-bridge
 * serve for one node with a runc pod and Kata pods in the three cgroup layouts, for the
 * real-client compatibility test (test/e2e/compat-clients.test.ts). Two presentations of the same
 * pods, as two clusters of one Prometheus:
 *
 * - `kata`: what a Kata node really serves. cAdvisor's rows for a Kata pod, by layout
 *   (docs/compatibility.md; shapes as reported in kata-containers/packaging#1025 and
 *   google/cadvisor#2651):
 *   - cgroupfs, sandbox_cgroup_only=false (Go runtime default): every Kata cgroup is
 *     `…/pod<uid>/kata_<id>`; the container rows read zero, the sandbox row and the pod row hold
 *     only the vCPU threads (and on cgroup v1 almost no memory), the rest of the VM sits in
 *     `/kata_overhead/<sandbox>`, a row without pod labels;
 *   - cgroupfs, sandbox_cgroup_only=true: the same `kata_` rows, with the whole VM on the sandbox
 *     and pod rows, zero container rows;
 *   - systemd: the sandbox scope `cri-containerd-<sandbox>.scope` holds the whole VM and is
 *     labelled as the pod's sandbox (pause) row; there are no container rows at all.
 *   The exporter serves the true per-container values, the pod's host cost and its overhead.
 * - `oracle`: the same pods presented as runc pods with their true values: container rows hold
 *   the containers' values, the sandbox row the VM's overhead, the pod row the host cost. No
 *   exporter. A client shows the truth for a Kata pod when it shows the same as here.
 *
 * Counters grow linearly with the sample timestamp, so any rate over a fully covered window is
 * exactly the slope. Samples carry explicit timestamps from a compressed clock (`simulatedNow`):
 * the first seconds of a run replay `historySeconds` of past, so 5-minute windows fill soon (their
 * start holds the sparse replayed samples: a 5-minute rate reads a few per cent low, alike for
 * every series, since one target serves them all at once).
 */

import { createHash } from 'node:crypto';

export type Layout = 'runc' | 'cgroupfs-overhead' | 'cgroupfs-sandbox-only' | 'systemd';
export type Cluster = 'kata' | 'oracle';
export const CLUSTERS: readonly Cluster[] = ['kata', 'oracle'];

const MI = 1024 * 1024;
export const NODE = 'node-a';
export const PAUSE_IMAGE = 'registry.k8s.io/pause:3.10';

export interface FixtureContainer {
  name: string;
  image: string;
  /** True CPU use, cores. */
  cpu: number;
  /** True memory working set, bytes. */
  memory: number;
  rss: number;
  cache: number;
  requests: { cpu: number; memory: number };
  limits: { cpu: number; memory: number };
}

export interface FixturePod {
  namespace: string;
  name: string;
  deployment: string;
  layout: Layout;
  containers: FixtureContainer[];
  /** The VM (or, for runc, the sandbox) beyond the containers: cores and bytes. */
  overhead: { cpu: number; memory: number };
  /** cgroupfs without sandbox_cgroup_only: the share of the host CPU the vCPU threads (in the pod cgroup) take. */
  vcpuShare?: number;
}

function container(
  name: string,
  image: string,
  cpu: number,
  memoryMi: number,
  limits: { cpu: number; memoryMi: number },
): FixtureContainer {
  const memory = memoryMi * MI;
  return {
    name,
    image,
    cpu,
    memory,
    rss: Math.round(memory * 0.8),
    cache: Math.round(memory * 0.15),
    requests: { cpu: limits.cpu / 2, memory: (limits.memoryMi / 2) * MI },
    limits: { cpu: limits.cpu, memory: limits.memoryMi * MI },
  };
}

export const PODS: readonly FixturePod[] = [
  {
    namespace: 'web',
    name: 'frontend-5d8f7c9b4-x2x7q',
    deployment: 'frontend',
    layout: 'runc',
    containers: [container('nginx', 'docker.io/library/nginx:1.27', 0.25, 180, { cpu: 1, memoryMi: 512 })],
    overhead: { cpu: 0.001, memory: 1 * MI },
  },
  {
    namespace: 'ci',
    name: 'build-go-7c9f8d6b5-a1b2c',
    deployment: 'build-go',
    layout: 'cgroupfs-overhead',
    containers: [
      container('compile', 'registry.example/ci/golang:1.24', 1.5, 2048, { cpu: 2, memoryMi: 4096 }),
      container('cache-proxy', 'registry.example/ci/cache-proxy:3', 0.2, 256, { cpu: 0.5, memoryMi: 512 }),
    ],
    overhead: { cpu: 0.35, memory: 380 * MI },
    vcpuShare: 0.7,
  },
  {
    namespace: 'ci',
    name: 'lint-rs-6b7c8d9e0-d3e4f',
    deployment: 'lint-rs',
    layout: 'cgroupfs-sandbox-only',
    containers: [container('lint', 'registry.example/ci/rust:1.88', 0.8, 700, { cpu: 1, memoryMi: 1024 })],
    overhead: { cpu: 0.12, memory: 300 * MI },
  },
  {
    namespace: 'builds',
    name: 'test-sd-5f6a7b8c9-g5h6i',
    deployment: 'test-sd',
    layout: 'systemd',
    containers: [
      container('test', 'registry.example/ci/node:24', 2.2, 3072, { cpu: 4, memoryMi: 6144 }),
      container('db', 'docker.io/library/postgres:17', 0.4, 512, { cpu: 1, memoryMi: 1024 }),
    ],
    overhead: { cpu: 0.5, memory: 420 * MI },
  },
];

export const KATA_PODS = PODS.filter((p) => p.layout !== 'runc');

const hex = (text: string) => createHash('sha256').update(text).digest('hex');
export const podUid = (p: FixturePod) => {
  const h = hex(`uid/${p.namespace}/${p.name}`);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
};
const sandboxId = (p: FixturePod) => hex(`sandbox/${p.namespace}/${p.name}`);
const containerId = (p: FixturePod, c: FixtureContainer) => hex(`container/${p.namespace}/${p.name}/${c.name}`);
export const replicaSet = (p: FixturePod) => p.name.replace(/-[^-]+$/, '');

export const hostCpu = (p: FixturePod) => p.containers.reduce((s, c) => s + c.cpu, 0) + p.overhead.cpu;
export const hostMemory = (p: FixturePod) => p.containers.reduce((s, c) => s + c.memory, 0) + p.overhead.memory;

// ── exposition ──

type Labels = Record<string, string>;

class Exposition {
  private readonly families = new Map<string, { type: string; lines: string[] }>();
  constructor(readonly timestampMs: number) {}

  add(name: string, type: 'counter' | 'gauge', labels: Labels, value: number): void {
    let family = this.families.get(name);
    if (family === undefined) {
      family = { type, lines: [] };
      this.families.set(name, family);
    }
    const text = Object.entries(labels)
      .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`)
      .join(',');
    family.lines.push(`${name}{${text}} ${value} ${this.timestampMs}`);
  }

  text(): string {
    return [...this.families].map(([name, f]) => `# TYPE ${name} ${f.type}\n${f.lines.join('\n')}\n`).join('');
  }
}

/** Every counter counts from this instant, so its value at a timestamp is slope × elapsed seconds. */
const COUNTER_ORIGIN_MS = Date.now() - 86_400_000;
const counterAt = (slope: number, ms: number) => (slope * (ms - COUNTER_ORIGIN_MS)) / 1000;

/** One cAdvisor row: CPU and memory families with cAdvisor's labels. */
interface Row {
  id: string;
  container: string;
  image: string;
  name: string;
  pod?: FixturePod;
  cpu: number;
  memory: number;
  rss: number;
  cache: number;
}

function cgroups(p: FixturePod): { pod: string; child: (id: string) => string } {
  const uid = podUid(p);
  if (p.layout === 'systemd') {
    const pod = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid.replace(/-/g, '_')}.slice`;
    return { pod, child: (id) => `${pod}/cri-containerd-${id}.scope` };
  }
  const pod = `/kubepods/burstable/pod${uid}`;
  return { pod, child: (id) => `${pod}/${p.layout === 'runc' ? '' : 'kata_'}${id}` };
}

/** The rows cAdvisor serves for a pod as a runc pod with these values. */
function runcRows(p: FixturePod): Row[] {
  const cg = cgroups({ ...p, layout: 'runc' });
  const containers = p.containers.map((c): Row => ({
    id: cg.child(containerId(p, c)),
    container: c.name,
    image: c.image,
    name: containerId(p, c),
    pod: p,
    cpu: c.cpu,
    memory: c.memory,
    rss: c.rss,
    cache: c.cache,
  }));
  const sandbox: Row = {
    id: cg.child(sandboxId(p)),
    container: '',
    image: PAUSE_IMAGE,
    name: sandboxId(p),
    pod: p,
    cpu: p.overhead.cpu,
    memory: p.overhead.memory,
    rss: p.overhead.memory,
    cache: 0,
  };
  const podRow: Row = {
    id: cg.pod,
    container: '',
    image: '',
    name: '',
    pod: p,
    cpu: hostCpu(p),
    memory: hostMemory(p),
    rss: hostMemory(p),
    cache: 0,
  };
  return [podRow, sandbox, ...containers];
}

/** The rows cAdvisor serves for a Kata pod (see the file header). */
function kataRows(p: FixturePod): Row[] {
  const cg = cgroups(p);
  const host = { cpu: hostCpu(p), memory: hostMemory(p) };
  // cgroup v1 without sandbox_cgroup_only: the guest RAM is charged to /kata_overhead (Kata issue 4128).
  const inPod = p.layout === 'cgroupfs-overhead' ? { cpu: host.cpu * (p.vcpuShare ?? 1), memory: 4 * MI } : host;
  const zeros = { cpu: 0, memory: 0, rss: 0, cache: 0 };
  const rows: Row[] = [
    { id: cg.pod, container: '', image: '', name: '', pod: p, ...inPod, rss: inPod.memory, cache: 0 },
    { id: cg.child(sandboxId(p)), container: '', image: PAUSE_IMAGE, name: sandboxId(p), pod: p, ...inPod, rss: inPod.memory, cache: 0 },
  ];
  if (p.layout !== 'systemd') {
    rows.push(
      ...p.containers.map((c): Row => ({
        id: cg.child(containerId(p, c)),
        container: c.name,
        image: c.image,
        name: containerId(p, c),
        pod: p,
        ...zeros,
      })),
    );
  }
  if (p.layout === 'cgroupfs-overhead') {
    rows.push({
      id: `/kata_overhead/${sandboxId(p)}`,
      container: '',
      image: '',
      name: '',
      cpu: host.cpu - inPod.cpu,
      memory: host.memory - inPod.memory,
      rss: 0,
      cache: 0,
    });
  }
  return rows;
}

function cadvisor(out: Exposition, cluster: Cluster): void {
  const target = { cluster, job: 'kubelet', metrics_path: '/metrics/cadvisor', instance: '10.0.0.1:10250', node: NODE };
  const ms = out.timestampMs;
  const rows = PODS.flatMap((p) => (cluster === 'oracle' || p.layout === 'runc' ? runcRows(p) : kataRows(p)));
  const total = PODS.reduce((s, p) => s + hostCpu(p), 0);
  rows.push({ id: '/', container: '', image: '', name: '', cpu: total + 0.4, memory: 8192 * MI, rss: 6000 * MI, cache: 1000 * MI });
  for (const r of rows) {
    const labels: Labels = {
      ...target,
      container: r.container,
      id: r.id,
      image: r.image,
      name: r.name,
      namespace: r.pod?.namespace ?? '',
      pod: r.pod?.name ?? '',
    };
    out.add('container_cpu_usage_seconds_total', 'counter', { ...labels, cpu: 'total' }, counterAt(r.cpu, ms));
    out.add('container_memory_working_set_bytes', 'gauge', labels, r.memory);
    out.add('container_memory_rss', 'gauge', labels, r.rss);
    out.add('container_memory_cache', 'gauge', labels, r.cache);
  }
}

function kubeStateMetrics(out: Exposition, cluster: Cluster): void {
  const target = { cluster, job: 'kube-state-metrics', instance: '10.244.0.5:8080' };
  out.add(
    'kube_node_info',
    'gauge',
    {
      ...target,
      node: NODE,
      kernel_version: '6.12.0',
      os_image: 'Debian GNU/Linux 13',
      container_runtime_version: 'containerd://2.1.4',
      kubelet_version: 'v1.34.1',
      internal_ip: '10.0.0.1',
    },
    1,
  );
  out.add('kube_node_status_allocatable', 'gauge', { ...target, node: NODE, resource: 'cpu', unit: 'core' }, 16);
  out.add('kube_node_status_allocatable', 'gauge', { ...target, node: NODE, resource: 'memory', unit: 'byte' }, 64 * 1024 * MI);
  for (const ns of new Set(PODS.map((p) => p.namespace)))
    out.add('kube_namespace_status_phase', 'gauge', { ...target, namespace: ns, phase: 'Active' }, 1);
  for (const p of PODS) {
    const pod = { ...target, namespace: p.namespace, pod: p.name, uid: podUid(p) };
    const rs = replicaSet(p);
    out.add(
      'kube_pod_info',
      'gauge',
      {
        ...pod,
        node: NODE,
        host_ip: '10.0.0.1',
        pod_ip: '10.244.0.10',
        created_by_kind: 'ReplicaSet',
        created_by_name: rs,
        priority_class: '',
        host_network: 'false',
      },
      1,
    );
    out.add('kube_pod_owner', 'gauge', { ...pod, owner_kind: 'ReplicaSet', owner_name: rs, owner_is_controller: 'true' }, 1);
    out.add(
      'kube_replicaset_owner',
      'gauge',
      {
        ...target,
        namespace: p.namespace,
        replicaset: rs,
        owner_kind: 'Deployment',
        owner_name: p.deployment,
        owner_is_controller: 'true',
      },
      1,
    );
    for (const phase of ['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'])
      out.add('kube_pod_status_phase', 'gauge', { ...pod, phase }, phase === 'Running' ? 1 : 0);
    if (p.layout !== 'runc') out.add('kube_pod_runtimeclass_name_info', 'gauge', { ...pod, runtimeclass_name: 'kata' }, 1);
    for (const c of p.containers) {
      out.add(
        'kube_pod_container_info',
        'gauge',
        {
          ...pod,
          container: c.name,
          image: c.image,
          image_spec: c.image,
          image_id: `${c.image}@sha256:${hex(c.image)}`,
          container_id: `containerd://${containerId(p, c)}`,
        },
        1,
      );
      for (const [kind, values] of [
        ['requests', c.requests],
        ['limits', c.limits],
      ] as const) {
        out.add(
          `kube_pod_container_resource_${kind}`,
          'gauge',
          { ...pod, container: c.name, node: NODE, resource: 'cpu', unit: 'core' },
          values.cpu,
        );
        out.add(
          `kube_pod_container_resource_${kind}`,
          'gauge',
          { ...pod, container: c.name, node: NODE, resource: 'memory', unit: 'byte' },
          values.memory,
        );
      }
    }
  }
}

/** What kata-metrics-bridge serves for the node's Kata pods (docs/metrics.md), as the plain overlay labels it. */
function exporter(out: Exposition): void {
  const target = { cluster: 'kata', job: 'kata-metrics-bridge', instance: NODE, node: NODE };
  const ms = out.timestampMs;
  for (const p of KATA_PODS) {
    const pod = { ...target, namespace: p.namespace, pod: p.name };
    const runtime = p.layout === 'cgroupfs-overhead' ? 'go' : 'rs';
    out.add(
      'kata_bridge_pod_info',
      'gauge',
      {
        ...pod,
        uid: podUid(p),
        sandbox_id: sandboxId(p),
        runtime_handler: 'kata',
        runtime,
        hypervisor: 'qemu',
        sandbox_cgroup_only: String(p.layout !== 'cgroupfs-overhead'),
      },
      1,
    );
    out.add('kata_bridge_pod_host_cpu_usage_seconds_total', 'counter', pod, counterAt(hostCpu(p), ms));
    out.add('kata_bridge_pod_host_memory_working_set_bytes', 'gauge', pod, hostMemory(p));
    out.add('kata_bridge_pod_overhead_cpu_usage_seconds_total', 'counter', pod, counterAt(p.overhead.cpu, ms));
    out.add('kata_bridge_pod_overhead_memory_bytes', 'gauge', pod, p.overhead.memory);
    for (const c of p.containers) {
      out.add('kata_bridge_container_cpu_usage_seconds_total', 'counter', { ...pod, container: c.name }, counterAt(c.cpu, ms));
      out.add('kata_bridge_container_memory_working_set_bytes', 'gauge', { ...pod, container: c.name }, c.memory);
    }
  }
}

/**
 * Every job's series of both clusters, as one exposition whose samples all carry timestamp `ms`:
 * served by one target, scraped at once, so every series of a run has the same sample times and a
 * rate over a partly filled window reads alike for the Kata pods and their runc presentation.
 */
export function fixtureExposition(ms: number): string {
  const out = new Exposition(ms);
  for (const c of CLUSTERS) {
    cadvisor(out, c);
    kubeStateMetrics(out, c);
  }
  exporter(out);
  return out.text();
}

/**
 * The sample timestamp served at wall time `now` (ms) of a run that started at `startMs`: during
 * the first `catchUpSeconds` it runs fast from `historySeconds` in the past, then it is `now`.
 */
export function simulatedNow(now: number, startMs: number, historySeconds: number, catchUpSeconds: number): number {
  const lag = historySeconds * 1000 * Math.max(0, 1 - (now - startMs) / (catchUpSeconds * 1000));
  return Math.floor(now - lag);
}
