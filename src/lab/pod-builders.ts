/**
 * Builders for realistic core/v1 Pods and Namespaces and node.k8s.io/v1 RuntimeClasses, in the JSON
 * shape the API server sends (RFC 3339 strings, quantity strings, `containerd://` ids). Deterministic: the same
 * options give the same uid and container ids, so tests and the demo node are reproducible.
 */
import { createHash } from 'node:crypto';
import type {
  ContainerJson,
  ContainerStatusJson,
  NamespaceJson,
  PodJson,
  QuantityMap,
  RuntimeClassJson,
  VolumeJson,
} from '../translate/pod-records.ts';
import type { HostNamespace } from '../translate/records.ts';

function digest(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex');
}

/** A stable RFC 4122-shaped uid (version 4 layout) for a namespace/name. */
export function stableUid(namespace: string, name: string): string {
  const h = digest('uid', namespace, name);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** kata-deploy's default podFixed overheads (domain.md §3), by RuntimeClass name without `kata-`. */
export const KATA_OVERHEAD = {
  qemu: { cpu: '250m', memory: '320Mi' },
  'qemu-runtime-rs': { cpu: '250m', memory: '320Mi' },
  clh: { cpu: '250m', memory: '130Mi' },
  fc: { cpu: '250m', memory: '130Mi' },
} as const satisfies Record<string, QuantityMap>;

export function runtimeClass(name: string, handler: string, podFixed?: QuantityMap): RuntimeClassJson {
  return {
    apiVersion: 'node.k8s.io/v1',
    kind: 'RuntimeClass',
    metadata: { name, uid: stableUid('', name) },
    handler,
    ...(podFixed ? { overhead: { podFixed: { ...podFixed } } } : {}),
  };
}

/** A namespace as the API server returns it (the server adds `kubernetes.io/metadata.name`). */
export function namespace(name: string, labels: Record<string, string> = {}): NamespaceJson {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, uid: stableUid('namespace', name), creationTimestamp: '2025-01-06T08:00:00Z', labels: { ...labels } },
    spec: { finalizers: ['kubernetes'] },
    status: { phase: 'Active' },
  };
}

/** The classes kata-deploy installs for the three common hypervisors. */
export function kataRuntimeClasses(): RuntimeClassJson[] {
  return [
    runtimeClass('kata-qemu', 'kata-qemu', KATA_OVERHEAD.qemu),
    runtimeClass('kata-clh', 'kata-clh', KATA_OVERHEAD.clh),
    runtimeClass('kata-fc', 'kata-fc', KATA_OVERHEAD.fc),
  ];
}

export interface ContainerOptions {
  name: string;
  image?: string;
  requests?: QuantityMap;
  limits?: QuantityMap;
  privileged?: boolean;
  /** Init containers only: `Always` makes a native sidecar. */
  restartPolicy?: 'Always';
  /** Default running. */
  state?: 'running' | 'waiting' | 'terminated';
  restartCount?: number;
}

export interface PodOptions {
  name: string;
  namespace?: string;
  uid?: string;
  nodeName?: string;
  /** Default `kata-qemu`; null for a runc pod without a runtime class. */
  runtimeClassName?: string | null;
  /** Default: the class's kata-deploy overhead, as the RuntimeClass admission plugin sets it; null for none. */
  overhead?: QuantityMap | null;
  containers?: ContainerOptions[];
  initContainers?: ContainerOptions[];
  phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
  /** RFC 3339; also the containers' start time. */
  startTime?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** spec.hostNetwork / hostPID / hostIPC. */
  hostNamespaces?: HostNamespace[];
  /** hostPath volumes (host path → volume name), mounted by the first container. */
  hostPaths?: Record<string, string>;
}

const HOST_NAMESPACE_FIELDS: Record<HostNamespace, 'hostNetwork' | 'hostPID' | 'hostIPC'> = {
  network: 'hostNetwork',
  pid: 'hostPID',
  ipc: 'hostIPC',
};

const DEFAULT_START = '2025-03-14T09:26:53Z';

const DEFAULT_CONTAINER: ContainerOptions = {
  name: 'build',
  image: 'registry.example.com/ci/runner:2.4.1',
  requests: { cpu: '500m', memory: '1Gi' },
  limits: { cpu: '2', memory: '2Gi' },
};

/** The spec.overhead the RuntimeClass admission plugin gives a pod of this class (none for classes without one). */
export function podOverhead(runtimeClassName: string | null): QuantityMap | undefined {
  const hypervisor = runtimeClassName?.replace(/^kata-/, '');
  return hypervisor !== undefined && hypervisor in KATA_OVERHEAD
    ? { ...KATA_OVERHEAD[hypervisor as keyof typeof KATA_OVERHEAD] }
    : undefined;
}

/** The QoS class the API server computes (Guaranteed / Burstable / BestEffort), for cpu and memory. */
function qosClass(containers: ContainerOptions[]): string {
  const resources = ['cpu', 'memory'];
  const any = containers.some((c) => resources.some((r) => c.requests?.[r] ?? c.limits?.[r]));
  if (!any) return 'BestEffort';
  const guaranteed = containers.every((c) =>
    resources.every((r) => c.limits?.[r] !== undefined && (c.requests?.[r] ?? c.limits[r]) === c.limits[r]),
  );
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

function containerSpec(c: ContainerOptions): ContainerJson {
  return {
    name: c.name,
    image: c.image ?? DEFAULT_CONTAINER.image ?? 'busybox',
    resources: {
      ...(c.requests ? { requests: { ...c.requests } } : {}),
      ...(c.limits ? { limits: { ...c.limits } } : {}),
    },
    ...(c.privileged !== undefined ? { securityContext: { privileged: c.privileged } } : {}),
    ...(c.restartPolicy ? { restartPolicy: c.restartPolicy } : {}),
  };
}

function containerStatus(c: ContainerOptions, uid: string, startedAt: string): ContainerStatusJson {
  const id = `containerd://${digest('container', uid, c.name)}`;
  const state = c.state ?? 'running';
  return {
    name: c.name,
    image: c.image ?? DEFAULT_CONTAINER.image ?? 'busybox',
    imageID: `${c.image ?? DEFAULT_CONTAINER.image}@sha256:${digest('image', c.image ?? '')}`,
    ...(state === 'waiting' ? {} : { containerID: id }),
    ready: state === 'running',
    started: state === 'running',
    restartCount: c.restartCount ?? 0,
    state:
      state === 'running'
        ? { running: { startedAt } }
        : state === 'waiting'
          ? { waiting: { reason: 'ContainerCreating' } }
          : { terminated: { exitCode: 0, reason: 'Completed', startedAt, finishedAt: startedAt, containerID: id } },
  };
}

/** A pod as the API server returns it after scheduling, admission and kubelet status updates. */
export function kataPod(options: PodOptions): PodJson {
  const namespace = options.namespace ?? 'ci';
  const uid = options.uid ?? stableUid(namespace, options.name);
  const runtimeClassName = options.runtimeClassName === undefined ? 'kata-qemu' : options.runtimeClassName;
  const overhead = options.overhead === undefined ? podOverhead(runtimeClassName) : (options.overhead ?? undefined);
  const containers = options.containers ?? [DEFAULT_CONTAINER];
  const initContainers = options.initContainers ?? [];
  const startTime = options.startTime ?? DEFAULT_START;
  const phase = options.phase ?? 'Running';
  const volumes: VolumeJson[] = Object.entries(options.hostPaths ?? {}).map(([path, name]) => ({ name, hostPath: { path, type: '' } }));
  const specs = containers.map(containerSpec);
  if (volumes.length > 0 && specs[0] !== undefined) {
    specs[0] = { ...specs[0], volumeMounts: volumes.map((v) => ({ name: v.name, mountPath: v.hostPath!.path })) };
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: options.name,
      namespace,
      uid,
      creationTimestamp: startTime,
      labels: { app: options.name, ...options.labels },
      ...(options.annotations ? { annotations: { ...options.annotations } } : {}),
    },
    spec: {
      ...(options.nodeName !== undefined ? { nodeName: options.nodeName } : {}),
      ...(runtimeClassName !== null ? { runtimeClassName } : {}),
      ...(overhead ? { overhead } : {}),
      restartPolicy: 'Never',
      ...Object.fromEntries((options.hostNamespaces ?? []).map((kind) => [HOST_NAMESPACE_FIELDS[kind], true])),
      ...(volumes.length > 0 ? { volumes } : {}),
      initContainers: initContainers.map(containerSpec),
      containers: specs,
    },
    status: {
      phase,
      qosClass: qosClass([...initContainers, ...containers]),
      hostIP: '10.0.0.5',
      podIP: `10.244.1.${(parseInt(uid.slice(0, 2), 16) % 250) + 2}`,
      startTime,
      ...(initContainers.length > 0 ? { initContainerStatuses: initContainers.map((c) => containerStatus(c, uid, startTime)) } : {}),
      containerStatuses: containers.map((c) => containerStatus(c, uid, startTime)),
    },
  };
}
