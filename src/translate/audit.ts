/**
 * The isolation audit: which pods on this node weaken the VM boundary that Kata is there for.
 * Pure: the pods, namespaces and configuration views of one collection in, findings out.
 *
 * - Untrusted pods (the audit selectors) that do not run under a Kata handler, that share a host
 *   namespace, that mount hostPath volumes, or that carry `io.katacontainers.*` annotations (and
 *   whether the node would apply any of them).
 * - Privileged containers in any Kata pod: unless the handler sets
 *   `privileged_without_host_devices`, the runtime hands the host's block devices into the VM.
 *
 * Finished pods (Succeeded, Failed) raise nothing. An answer that needs a configuration the
 * exporter could not read is `unknown`, never a guess.
 */

import { isFinished } from './correlate.ts';
import { matchesLabels, type LabelSelector } from './label-selector.ts';
import type { Hypervisor, NamespaceRecord, PodRecord } from './records.ts';
import {
  pathMatch,
  type ConfigFileStatus,
  type KataConfig,
  type KataView,
  type RuntimeHandlerConfig,
  type RuntimeView,
} from './runtime-config.ts';
import type { AuditAnswer, AuditPodRef, AuditSnapshot } from './snapshot.ts';

export const HYPERVISOR_ANNOTATION_PREFIX = 'io.katacontainers.config.hypervisor.';

export interface AuditInput {
  namespaceSelector?: LabelSelector;
  podSelector?: LabelSelector;
  pods: Iterable<PodRecord>;
  /** Namespaces with their labels (read only with a namespace selector). */
  namespaces: ReadonlyMap<string, NamespaceRecord>;
  /** This collection's Kata pods (those correlation reports), by uid, with their hypervisor. */
  kataPods: ReadonlyMap<string, { hypervisor?: Hypervisor }>;
  runtime: RuntimeView;
  /** The Kata configurations read for kataConfigPaths(), by path. */
  kataConfigs: ReadonlyMap<string, KataView>;
  /** --path.kata-config: for handlers whose runtime configuration names none. */
  defaultKataConfigPath: string;
}

// ─── three-way logic ─────────────────────────────────────────────────────────

function and3(a: AuditAnswer, b: AuditAnswer): AuditAnswer {
  if (a === 'false' || b === 'false') return 'false';
  return a === 'true' && b === 'true' ? 'true' : 'unknown';
}

function or3(answers: readonly AuditAnswer[]): AuditAnswer {
  if (answers.includes('true')) return 'true';
  return answers.includes('unknown') ? 'unknown' : 'false';
}

// ─── runtime and Kata configuration ──────────────────────────────────────────

/** The runtime handler's section; 'unknown' when the runtime configuration could not be read. */
function handlerEntry(runtime: RuntimeView, handler: string | undefined): RuntimeHandlerConfig | undefined | 'unknown' {
  if (runtime.handlers === undefined) return 'unknown';
  return handler === undefined ? undefined : runtime.handlers.get(handler);
}

/** The Kata configuration a handler runs with; undefined when that cannot be known. */
export function kataConfigPathFor(runtime: RuntimeView, handler: string | undefined, defaultPath: string): string | undefined {
  const entry = handlerEntry(runtime, handler);
  if (entry === 'unknown' || entry === undefined) return undefined;
  return entry.kataConfigPath ?? defaultPath;
}

/** The Kata configurations of the handlers this node's Kata pods run under: what the audit reads. */
export function kataConfigPaths(input: Pick<AuditInput, 'pods' | 'kataPods' | 'runtime' | 'defaultKataConfigPath'>): string[] {
  const paths = new Set<string>();
  for (const pod of input.pods) {
    if (!input.kataPods.has(pod.uid)) continue;
    const path = kataConfigPathFor(input.runtime, pod.runtimeHandler, input.defaultKataConfigPath);
    if (path !== undefined) paths.add(path);
  }
  return [...paths].sort();
}

/** containerd passes a pod annotation to the runtime only when a `pod_annotations` glob matches. */
function passedToRuntime(runtime: RuntimeView, entry: RuntimeHandlerConfig | undefined | 'unknown', key: string): AuditAnswer {
  if (runtime.runtime === 'crio') return 'true'; // CRI-O hands the runtime every pod annotation
  if (runtime.runtime === 'none' || entry === 'unknown' || entry === undefined) return 'unknown';
  return (entry.podAnnotations ?? []).some((pattern) => pathMatch(pattern, key)) ? 'true' : 'false';
}

const KATA_SECTIONS: Record<Exclude<Hypervisor, 'unknown'>, readonly string[]> = {
  qemu: ['qemu'],
  'cloud-hypervisor': ['clh', 'cloud-hypervisor'], // Go runtime, runtime-rs
  firecracker: ['firecracker'],
  dragonball: ['dragonball'],
};

/** enable_annotations of the pod's hypervisor section, or of every section when that is not known. */
function enabledPatterns(config: KataConfig, hypervisor: Hypervisor | undefined): string[] {
  const own =
    hypervisor === undefined || hypervisor === 'unknown'
      ? []
      : KATA_SECTIONS[hypervisor].filter((s) => Object.hasOwn(config.hypervisors, s));
  const sections = own.length > 0 ? own : Object.keys(config.hypervisors);
  return sections.flatMap((section) => config.hypervisors[section]?.enableAnnotations ?? []);
}

/**
 * Kata applies `io.katacontainers.config.hypervisor.<name>` only when `<name>` matches one of the
 * regular expressions (unanchored, as Go's regexp.MatchString) in enable_annotations. A pattern
 * JavaScript cannot compile (RE2-only syntax) leaves the answer unknown unless another matches.
 */
function enabledByKata(patterns: readonly string[], name: string): AuditAnswer {
  let undecided = false;
  for (const pattern of patterns) {
    try {
      if (new RegExp(pattern).test(name)) return 'true';
    } catch {
      undecided = true;
    }
  }
  return undecided ? 'unknown' : 'false';
}

/** Whether the node would apply at least one of the pod's Kata annotations. */
function honoured(pod: PodRecord, keys: readonly string[], input: AuditInput): AuditAnswer {
  const kata = input.kataPods.get(pod.uid);
  if (kata === undefined) return 'false'; // no Kata runtime reads them
  const entry = handlerEntry(input.runtime, pod.runtimeHandler);
  const kataPath = kataConfigPathFor(input.runtime, pod.runtimeHandler, input.defaultKataConfigPath);
  const kataConfig = kataPath === undefined ? undefined : input.kataConfigs.get(kataPath)?.config;
  const applied = keys.map((key) => {
    // Only hypervisor annotations are gated by enable_annotations; runtime, agent and container
    // annotations apply once they reach the runtime.
    const accepted: AuditAnswer = !key.startsWith(HYPERVISOR_ANNOTATION_PREFIX)
      ? 'true'
      : kataConfig === undefined
        ? 'unknown'
        : enabledByKata(enabledPatterns(kataConfig, kata.hypervisor), key.slice(HYPERVISOR_ANNOTATION_PREFIX.length));
    return and3(passedToRuntime(input.runtime, entry, key), accepted);
  });
  return or3(applied);
}

/** Whether the runtime hands a privileged container the host's devices. */
function hostDevices(pod: PodRecord, runtime: RuntimeView): AuditAnswer {
  const entry = handlerEntry(runtime, pod.runtimeHandler);
  if (entry === 'unknown' || entry === undefined) return 'unknown';
  return entry.privilegedWithoutHostDevices === true ? 'false' : 'true';
}

// ─── the audit ───────────────────────────────────────────────────────────────

/** Untrusted: the namespace (already known) matches the namespace selector and the pod the pod selector. */
function isUntrusted(pod: PodRecord, input: AuditInput): boolean {
  if (input.namespaceSelector === undefined && input.podSelector === undefined) return false;
  if (input.namespaceSelector !== undefined) {
    const namespace = input.namespaces.get(pod.namespace);
    if (namespace === undefined || !matchesLabels(input.namespaceSelector, namespace.labels)) return false;
  }
  return input.podSelector === undefined || matchesLabels(input.podSelector, pod.labels ?? {});
}

/** Code-unit order, as `<` compares (not localeCompare): stable across locales. */
function byText(a: string, b: string): number {
  return a === b ? 0 : a < b ? -1 : 1;
}

function byPod(a: AuditPodRef, b: AuditPodRef): number {
  return byText(a.namespace, b.namespace) || byText(a.pod, b.pod);
}

export function auditNode(input: AuditInput): AuditSnapshot {
  const result: AuditSnapshot = {
    untrustedPods: 0,
    unsandboxed: [],
    privilegedContainers: [],
    hostNamespaces: [],
    hostPaths: [],
    kataAnnotations: [],
    configs: [],
  };
  for (const pod of input.pods) {
    if (isFinished(pod)) continue;
    const ref = { namespace: pod.namespace, pod: pod.name };
    const isolation = pod.isolation;
    const kata = input.kataPods.has(pod.uid);
    const privileged = kata ? (isolation?.privilegedContainers ?? []) : [];
    if (privileged.length > 0) {
      const devices = hostDevices(pod, input.runtime);
      for (const container of privileged) result.privilegedContainers.push({ ...ref, container, hostDevices: devices });
    }
    if (!isUntrusted(pod, input)) continue;
    result.untrustedPods++;
    if (!kata) {
      const runtimeHandler = pod.runtimeHandler ?? (pod.runtimeClassName === undefined ? 'default' : 'unknown');
      result.unsandboxed.push({ ...ref, runtimeHandler });
    }
    for (const kind of isolation?.hostNamespaces ?? []) result.hostNamespaces.push({ ...ref, kind });
    if ((isolation?.hostPathVolumes ?? 0) > 0) result.hostPaths.push(ref);
    const keys = isolation?.kataAnnotations ?? [];
    if (keys.length > 0) result.kataAnnotations.push({ ...ref, honoured: honoured(pod, keys, input) });
  }
  result.unsandboxed.sort(byPod);
  result.privilegedContainers.sort((a, b) => byPod(a, b) || byText(a.container, b.container));
  result.hostNamespaces.sort((a, b) => byPod(a, b) || byText(a.kind, b.kind));
  result.hostPaths.sort(byPod);
  result.kataAnnotations.sort(byPod);
  result.configs = configsRead(input);
  return result;
}

/** The runtime's files, then each Kata configuration's, once each. */
function configsRead(input: AuditInput): ConfigFileStatus[] {
  const seen = new Set<string>();
  const out: ConfigFileStatus[] = [];
  const kata = kataConfigPaths(input).flatMap((path) => input.kataConfigs.get(path)?.files ?? []);
  for (const file of [...input.runtime.files, ...kata]) {
    const key = `${file.config}\0${file.path}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(file);
  }
  return out;
}
