/**
 * Sandbox id → pod (domain.md §4), and the SandboxRecord of each discovered sandbox. Pure.
 *
 * Sources in order of trust: containerd's bundle annotations, CRI-O's, the Kata state file's
 * annotations (the same OCI keys, kept by the Go runtime), then the pod UID inside the sandbox
 * cgroup path. The first source that names a pod is `source`; a later one may only fill a missing
 * uid, and only when it does not contradict the name and namespace already found.
 */

import { podUidFromCgroupPath as uidInCgroupPath } from './cgroup-paths.ts';
import { hypervisorFromProcesses, vmMemoryFromCmdline } from './hypervisor.ts';
import { asObject, asString, asStringMap, decodeKataState } from './kata-state.ts';
import type { RawSandbox, SandboxMappingSource, SandboxPodRef, SandboxRecord } from './records.ts';

export type SandboxPodMapping = { mapped: true; ref: SandboxPodRef } | { mapped: false; sandboxId: string; reason: string };

/** The bundle files a mapping may read; RawSandbox carries them. */
export type SandboxBundles = Pick<RawSandbox, 'containerdConfig' | 'crioConfig'>;

interface PodFields {
  uid?: string;
  name?: string;
  namespace?: string;
}

// ─── validation: the bundle is host data, but nothing unchecked becomes a label ─

const UID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/; // DNS-1123 label
const POD_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/; // DNS-1123 subdomain

/** A Kubernetes object UID as the API server generates it (RFC 4122 text form). */
export function isPodUid(value: string): boolean {
  return UID.test(value.toLowerCase());
}

function valid(raw: { uid?: unknown; name?: unknown; namespace?: unknown }): PodFields {
  const uid = asString(raw.uid)?.toLowerCase();
  const name = asString(raw.name);
  const namespace = asString(raw.namespace);
  return {
    uid: uid !== undefined && UID.test(uid) ? uid : undefined,
    name: name !== undefined && POD_NAME.test(name) ? name : undefined,
    namespace: namespace !== undefined && NAMESPACE.test(namespace) ? namespace : undefined,
  };
}

/** Enough to join to a pod: its UID, or its name and namespace. */
function usable(fields: PodFields): boolean {
  return fields.uid !== undefined || (fields.name !== undefined && fields.namespace !== undefined);
}

/** Fills the gaps of `first` from `second` when the two agree wherever both speak. */
function fill(first: PodFields, second: PodFields): PodFields {
  const agree = (['uid', 'name', 'namespace'] as const).every(
    (key) => first[key] === undefined || second[key] === undefined || first[key] === second[key],
  );
  if (!agree) return first;
  return {
    uid: first.uid ?? second.uid,
    name: first.name ?? second.name,
    namespace: first.namespace ?? second.namespace,
  };
}

// ─── annotation sources ───────────────────────────────────────────────────────

/** containerd CRI (pkg/cri/annotations): sandbox-uid exists from containerd 1.7. */
function fromContainerdAnnotations(annotations: Record<string, string>): PodFields {
  return valid({
    uid: annotations['io.kubernetes.cri.sandbox-uid'],
    name: annotations['io.kubernetes.cri.sandbox-name'],
    namespace: annotations['io.kubernetes.cri.sandbox-namespace'],
  });
}

function parseJsonObject(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    return asObject(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/**
 * CRI-O (pkg/annotations): `Metadata` is the CRI PodSandboxMetadata as JSON {name, uid, namespace,
 * attempt}; `Labels` the kubelet's labels as JSON (io.kubernetes.pod.uid, .name, .namespace).
 */
function fromCrioAnnotations(annotations: Record<string, string>): PodFields {
  const metadata = parseJsonObject(annotations['io.kubernetes.cri-o.Metadata']) ?? {};
  const labels = asStringMap(parseJsonObject(annotations['io.kubernetes.cri-o.Labels']));
  return fill(
    valid(metadata),
    valid({
      uid: labels['io.kubernetes.pod.uid'],
      name: labels['io.kubernetes.pod.name'],
      namespace: labels['io.kubernetes.pod.namespace'],
    }),
  );
}

/** The parts of an OCI runtime config.json that name the pod. */
export function readOciConfig(text: string | undefined): { annotations: Record<string, string>; cgroupsPath?: string } {
  const config = parseJsonObject(text);
  return {
    annotations: asStringMap(config?.annotations),
    cgroupsPath: asString(asObject(config?.linux)?.cgroupsPath),
  };
}

// ─── cgroup path source ───────────────────────────────────────────────────────

/**
 * cgroupfs `/kubepods/<qos>/pod<uid>/...`; systemd `kubepods-<qos>-pod<uid_with_underscores>.slice`
 * (as a path, or in the `slice:prefix:name` form of an OCI cgroupsPath).
 */
/** The pod UID inside a sandbox cgroup path (either driver), when it is a well-formed UID. */
export function podUidFromCgroupPath(path: string | undefined): string | undefined {
  const uid = path === undefined ? undefined : uidInCgroupPath(path);
  return uid === undefined ? undefined : valid({ uid: uid.replaceAll('_', '-') }).uid;
}

// ─── the mapping ──────────────────────────────────────────────────────────────

/** Maps one sandbox to its pod, or says explicitly why it could not. */
export function mapSandboxToPod(record: SandboxRecord, bundles: SandboxBundles): SandboxPodMapping {
  const containerd = readOciConfig(bundles.containerdConfig);
  const crio = readOciConfig(bundles.crioConfig);
  const cgroupPath = record.sandboxCgroupPath ?? containerd.cgroupsPath ?? crio.cgroupsPath;
  const sources: Array<[SandboxMappingSource, PodFields]> = [
    ['containerd', fromContainerdAnnotations(containerd.annotations)],
    ['crio', fromCrioAnnotations(crio.annotations)],
    ['kata-state', fill(fromContainerdAnnotations(record.annotations), fromCrioAnnotations(record.annotations))],
    ['cgroup-path', { uid: podUidFromCgroupPath(cgroupPath) }],
  ];

  const primaryAt = sources.findIndex(([, fields]) => usable(fields));
  const primary = sources[primaryAt];
  if (primary === undefined) {
    return {
      mapped: false,
      sandboxId: record.id,
      reason: 'no pod UID or name/namespace in the containerd or CRI-O bundle, the Kata state annotations or the sandbox cgroup path',
    };
  }
  const [source, fields] = primary;
  const ref: SandboxPodRef = { sandboxId: record.id, source, ...definedOnly(fields) };
  if (ref.uid === undefined) {
    for (const [later, laterFields] of sources.slice(primaryAt + 1)) {
      const filled = fill(fields, laterFields);
      if (filled.uid !== undefined) {
        ref.uid = filled.uid;
        ref.uidSource = later;
        break;
      }
    }
  }
  return { mapped: true, ref };
}

function definedOnly(fields: PodFields): PodFields {
  const out: PodFields = {};
  if (fields.uid !== undefined) out.uid = fields.uid;
  if (fields.name !== undefined) out.name = fields.name;
  if (fields.namespace !== undefined) out.namespace = fields.namespace;
  return out;
}

// ─── records ──────────────────────────────────────────────────────────────────

/**
 * Whether discovery must read the host's process table: only when some sandbox's state file does
 * not name a hypervisor we know, since buildSandboxRecord uses the processes as the fallback for
 * the hypervisor. When every state file names it, the records' hypervisor, source and every
 * published figure are the same without the scan; only `vmmPid`, which nothing publishes, is then
 * the state file's alone (runtime-rs persists none).
 */
export function needsProcessScan(raw: ReadonlyArray<Pick<RawSandbox, 'id' | 'runtime' | 'stateText'>>): boolean {
  return raw.some((r) => decodeKataState(r.runtime, r.stateText, r.id).hypervisor === undefined);
}

/**
 * The state file decides the hypervisor; the processes are the fallback; else 'unknown'. The
 * processes may be empty when discovery skipped the scan (see needsProcessScan).
 */
export function buildSandboxRecord(raw: RawSandbox): SandboxRecord {
  const state = decodeKataState(raw.runtime, raw.stateText, raw.id);
  const fromProcess = hypervisorFromProcesses(raw.processes);
  const record: SandboxRecord = {
    id: raw.id,
    runtime: raw.runtime,
    dir: raw.dir,
    hypervisor: state.hypervisor ?? fromProcess?.hypervisor ?? 'unknown',
    hypervisorSource: state.hypervisor !== undefined ? 'state' : fromProcess !== undefined ? 'process' : 'unknown',
    annotations: state.annotations,
  };
  if (raw.socketPath !== undefined) record.socketPath = raw.socketPath;
  if (raw.socketIdentity !== undefined) record.socketIdentity = raw.socketIdentity;
  if (state.sandboxCgroupPath !== undefined) record.sandboxCgroupPath = state.sandboxCgroupPath;
  if (state.overheadCgroupPath !== undefined) record.overheadCgroupPath = state.overheadCgroupPath;
  if (state.sandboxCgroupOnly !== undefined) record.sandboxCgroupOnly = state.sandboxCgroupOnly;
  // The process pid only when it is the same hypervisor the record names.
  const vmmPid = state.vmmPid ?? (fromProcess?.hypervisor === record.hypervisor ? fromProcess.pid : undefined);
  if (vmmPid !== undefined) record.vmmPid = vmmPid;
  // What the VMM was really started with wins over the configured size the runtime kept.
  const vmm = fromProcess?.hypervisor === record.hypervisor ? raw.processes.find((p) => p.pid === fromProcess.pid) : undefined;
  const fromCmdline = vmm === undefined ? undefined : vmMemoryFromCmdline(vmm);
  if (fromCmdline !== undefined) {
    record.vmMemoryBytes = fromCmdline;
    record.vmMemorySource = 'cmdline';
  } else if (state.vmMemoryBytes !== undefined) {
    record.vmMemoryBytes = state.vmMemoryBytes;
    record.vmMemorySource = 'state';
  }
  return record;
}

export function buildSandboxRecords(raw: readonly RawSandbox[]): SandboxRecord[] {
  return raw.map(buildSandboxRecord);
}

/** A discovered sandbox with its record and its pod mapping. */
export function resolveSandbox(raw: RawSandbox): { record: SandboxRecord; mapping: SandboxPodMapping } {
  const record = buildSandboxRecord(raw);
  return { record, mapping: mapSandboxToPod(record, raw) };
}

/** Each discovered sandbox with its record and its pod mapping, in discovery order. */
export function resolveSandboxes(raw: readonly RawSandbox[]): Array<{ record: SandboxRecord; mapping: SandboxPodMapping }> {
  return raw.map(resolveSandbox);
}
