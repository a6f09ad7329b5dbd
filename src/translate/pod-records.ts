/**
 * Pods and RuntimeClasses, as the API server sends them (JSON), to the plain records correlation
 * reads. Pure: the objects come from a watch stream, so every nested field is read defensively and
 * a malformed part is skipped instead of throwing.
 */
import type {
  ContainerSpecRecord,
  ContainerStatusRecord,
  HostNamespace,
  NamespaceRecord,
  PodIsolation,
  PodRecord,
  RuntimeClassRecord,
} from './records.ts';
import { quantityToBytes, quantityToCores } from './quantity.ts';
import { NO_LABELS, publishedPodLabels, type LabelsAllowlist } from './pod-labels.ts';

/** RFC 3339 on the wire; a Date when the object went through the client's typed deserializer. */
export type Timestamp = string | Date;

/** A ResourceList (`{ cpu: "250m", memory: "320Mi" }`). */
export type QuantityMap = Record<string, string | undefined>;

export interface ContainerJson {
  name: string;
  image?: string;
  resources?: { requests?: QuantityMap; limits?: QuantityMap };
  securityContext?: { privileged?: boolean };
  volumeMounts?: { name: string; mountPath: string }[];
  /** Only on init containers: `Always` makes it a native sidecar (KEP-753). */
  restartPolicy?: string;
}

export interface ContainerStateJson {
  running?: { startedAt?: Timestamp };
  waiting?: { reason?: string; message?: string };
  terminated?: {
    exitCode?: number;
    reason?: string;
    startedAt?: Timestamp;
    finishedAt?: Timestamp;
    containerID?: string;
  };
}

export interface ContainerStatusJson {
  name: string;
  containerID?: string;
  image?: string;
  imageID?: string;
  ready?: boolean;
  started?: boolean;
  restartCount?: number;
  state?: ContainerStateJson;
  lastState?: ContainerStateJson;
}

/** The parts of a core/v1 Pod this exporter reads (plus what the lab sets for realism). */
export interface PodJson {
  apiVersion?: string;
  kind?: string;
  metadata: {
    uid: string;
    name: string;
    namespace: string;
    resourceVersion?: string;
    creationTimestamp?: Timestamp;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: {
    nodeName?: string;
    runtimeClassName?: string;
    overhead?: QuantityMap;
    containers?: ContainerJson[];
    initContainers?: ContainerJson[];
    ephemeralContainers?: ContainerJson[];
    restartPolicy?: string;
    hostNetwork?: boolean;
    hostPID?: boolean;
    hostIPC?: boolean;
    volumes?: VolumeJson[];
  };
  status?: {
    phase?: string;
    qosClass?: string;
    hostIP?: string;
    podIP?: string;
    startTime?: Timestamp;
    containerStatuses?: ContainerStatusJson[];
    initContainerStatuses?: ContainerStatusJson[];
  };
}

/** A pod volume; only the hostPath source matters here. */
export interface VolumeJson {
  name: string;
  hostPath?: { path: string; type?: string };
  emptyDir?: Record<string, unknown>;
  configMap?: { name: string };
  projected?: Record<string, unknown>;
}

/** A core/v1 Namespace. */
export interface NamespaceJson {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; uid?: string; resourceVersion?: string; creationTimestamp?: Timestamp; labels?: Record<string, string> };
  spec?: { finalizers?: string[] };
  status?: { phase?: string };
}

/** A node.k8s.io/v1 RuntimeClass. */
export interface RuntimeClassJson {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; resourceVersion?: string; uid?: string };
  handler: string;
  overhead?: { podFixed?: QuantityMap };
}

// ─── defensive readers ───────────────────────────────────────────────────────

/** The value as a plain JSON object, or undefined (arrays and null are not objects here). */
export function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function list(value: unknown): Record<string, unknown>[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((item): Record<string, unknown>[] => {
    const object = record(item);
    return object ? [object] : [];
  });
}

function seconds(value: unknown): number | undefined {
  const ms = value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : NaN;
  return Number.isFinite(ms) ? ms / 1000 : undefined;
}

function quantity(map: unknown, key: string, parse: (q: string) => number | undefined): number | undefined {
  const raw = record(map)?.[key];
  // A number can reach us from hand-written JSON; the API server always sends strings.
  if (typeof raw === 'number') return Number.isFinite(raw) ? raw : undefined;
  return typeof raw === 'string' ? parse(raw) : undefined;
}

function resourceOverhead(map: unknown): RuntimeClassRecord['overhead'] {
  const cpuCores = quantity(map, 'cpu', quantityToCores);
  const memoryBytes = quantity(map, 'memory', quantityToBytes);
  if (cpuCores === undefined && memoryBytes === undefined) return undefined;
  return { cpuCores, memoryBytes };
}

// ─── guards: identity must be there, everything else is optional ─────────────

function hasNamedMetadata(value: unknown, keys: readonly string[]): boolean {
  const metadata = record(record(value)?.metadata);
  return metadata !== undefined && keys.every((key) => text(metadata[key]) !== undefined);
}

export function isPodJson(value: unknown): value is PodJson {
  return hasNamedMetadata(value, ['uid', 'name', 'namespace']);
}

export function isNamespaceJson(value: unknown): value is NamespaceJson {
  return hasNamedMetadata(value, ['name']);
}

export function isRuntimeClassJson(value: unknown): value is RuntimeClassJson {
  return hasNamedMetadata(value, ['name']) && text(record(value)?.handler) !== undefined;
}

// ─── translation ─────────────────────────────────────────────────────────────

function toContainerSpec(container: Record<string, unknown>, init: boolean): ContainerSpecRecord | undefined {
  const name = text(container.name);
  if (name === undefined) return undefined;
  const resources = record(container.resources);
  const spec: ContainerSpecRecord = {
    name,
    init,
    cpuRequestCores: quantity(resources?.requests, 'cpu', quantityToCores),
    cpuLimitCores: quantity(resources?.limits, 'cpu', quantityToCores),
    memoryRequestBytes: quantity(resources?.requests, 'memory', quantityToBytes),
    memoryLimitBytes: quantity(resources?.limits, 'memory', quantityToBytes),
    privileged: record(container.securityContext)?.privileged === true,
  };
  if (init && container.restartPolicy === 'Always') spec.sidecar = true;
  return spec;
}

/** `containerd://4f1c…` → runtime `containerd`, id `4f1c…`. */
function splitContainerId(raw: string | undefined): Pick<ContainerStatusRecord, 'containerId' | 'containerRuntime'> {
  if (raw === undefined) return {};
  const at = raw.indexOf('://');
  if (at < 0) return { containerId: raw };
  return { containerId: text(raw.slice(at + 3)), containerRuntime: text(raw.slice(0, at)) };
}

function toContainerStatus(status: Record<string, unknown>): ContainerStatusRecord | undefined {
  const name = text(status.name);
  if (name === undefined) return undefined;
  const state = record(status.state);
  const restarts = status.restartCount;
  const result: ContainerStatusRecord = {
    name,
    ...splitContainerId(text(status.containerID)),
    restartCount: typeof restarts === 'number' && Number.isInteger(restarts) && restarts >= 0 ? restarts : 0,
    state: 'unknown',
  };
  const running = record(state?.running);
  if (running) {
    result.state = 'running';
    result.startedAt = seconds(running.startedAt);
  } else if (record(state?.terminated)) {
    result.state = 'terminated';
  } else if (record(state?.waiting)) {
    result.state = 'waiting';
  }
  return result;
}

/** The string entries of a labels or annotations map (anything else is dropped). */
function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, entry] of Object.entries(record(value) ?? {})) if (typeof entry === 'string') out[key] = entry;
  return out;
}

const KATA_ANNOTATION_PREFIX = 'io.katacontainers.';

function isolationOf(metadata: Record<string, unknown> | undefined, spec: Record<string, unknown> | undefined): PodIsolation {
  const hostNamespaces: HostNamespace[] = [];
  if (spec?.hostNetwork === true) hostNamespaces.push('network');
  if (spec?.hostPID === true) hostNamespaces.push('pid');
  if (spec?.hostIPC === true) hostNamespaces.push('ipc');
  const privileged = new Set<string>();
  for (const key of ['initContainers', 'containers', 'ephemeralContainers']) {
    for (const container of list(spec?.[key])) {
      const name = text(container.name);
      if (name !== undefined && record(container.securityContext)?.privileged === true) privileged.add(name);
    }
  }
  return {
    hostNamespaces,
    hostPathVolumes: list(spec?.volumes).filter((volume) => record(volume.hostPath) !== undefined).length,
    kataAnnotations: Object.keys(stringMap(metadata?.annotations))
      .filter((key) => key.startsWith(KATA_ANNOTATION_PREFIX))
      .sort(),
    privilegedContainers: [...privileged],
  };
}

/**
 * The pod on its own, before the RuntimeClass join (what a watcher stores per event), with the
 * labels `--pods.labels-allowlist` publishes (none by default).
 */
export function toBasePodRecord(pod: PodJson, labelsAllowlist: LabelsAllowlist = NO_LABELS): PodRecord {
  const spec = record(pod.spec);
  const status = record(pod.status);
  const overhead = resourceOverhead(spec?.overhead);
  const labels = stringMap(record(pod.metadata)?.labels);
  const published = publishedPodLabels(labels, labelsAllowlist);
  const startedAt = seconds(status?.startTime);
  const mapSpecs = (key: string, init: boolean) => list(spec?.[key]).flatMap((c) => toContainerSpec(c, init) ?? []);
  return {
    uid: pod.metadata.uid,
    namespace: pod.metadata.namespace,
    name: pod.metadata.name,
    nodeName: text(spec?.nodeName),
    phase: text(status?.phase),
    ...(startedAt === undefined ? {} : { startedAt }),
    qosClass: text(status?.qosClass),
    runtimeClassName: text(spec?.runtimeClassName),
    ...(overhead ? { overhead, overheadSource: 'pod' as const } : {}),
    containers: [...mapSpecs('initContainers', true), ...mapSpecs('containers', false)],
    containerStatuses: [...list(status?.initContainerStatuses), ...list(status?.containerStatuses)].flatMap(
      (s) => toContainerStatus(s) ?? [],
    ),
    labels,
    ...(Object.keys(published).length > 0 ? { publishedLabels: published } : {}),
    isolation: isolationOf(record(pod.metadata), spec),
  };
}

/**
 * Adds the RuntimeClass handler, and the class's overhead when the pod carries none of its own.
 * Idempotent: a record that already took the class overhead gets the current one.
 */
export function joinRuntimeClass(base: PodRecord, runtimeClasses: ReadonlyMap<string, RuntimeClassRecord>): PodRecord {
  const runtimeClass = base.runtimeClassName === undefined ? undefined : runtimeClasses.get(base.runtimeClassName);
  const joined: PodRecord = { ...base, runtimeHandler: runtimeClass?.handler };
  if (base.overheadSource !== 'pod') {
    delete joined.overhead;
    delete joined.overheadSource;
    if (runtimeClass?.overhead) {
      joined.overhead = runtimeClass.overhead;
      joined.overheadSource = 'runtime_class';
    }
  }
  return joined;
}

export function toPodRecord(pod: PodJson, runtimeClasses: ReadonlyMap<string, RuntimeClassRecord>): PodRecord {
  return joinRuntimeClass(toBasePodRecord(pod), runtimeClasses);
}

export function toNamespaceRecord(namespace: NamespaceJson): NamespaceRecord {
  return { name: namespace.metadata.name, labels: stringMap(record(namespace.metadata)?.labels) };
}

export function toRuntimeClassRecord(runtimeClass: RuntimeClassJson): RuntimeClassRecord {
  const overhead = resourceOverhead(record(runtimeClass.overhead)?.podFixed);
  return {
    name: runtimeClass.metadata.name,
    handler: runtimeClass.handler,
    ...(overhead ? { overhead } : {}),
  };
}
