/**
 * Decodes the Kata runtimes' own state files. Pure; never throws: a malformed file or an
 * unexpected shape leaves the fields undefined.
 *
 * Go runtime `/run/vc/sbs/<id>/persist.json` (virtcontainers/persist/api SandboxState, written by
 * persist/fs ToDisk; Go field names, no JSON tags):
 *   SandboxContainer, SandboxCgroupPath, OverheadCgroupPath (Kata ≥ 2.1; CgroupPath before),
 *   HypervisorState{Type, Pid}, Config{HypervisorType, HypervisorConfig{MemorySize}, SandboxCgroupOnly,
 *   ContainerConfigs[{ID, Annotations}]}.
 * runtime-rs `/run/kata/<id>/state.json` (virt_container sandbox_persist SandboxState, serde):
 *   hypervisor{hypervisor_type, pid, config{memory_info{default_memory}}}, resource{cgroup_state{path, overhead_path, sandbox_cgroup_only}}.
 *   It keeps no OCI annotations.
 */

import { hypervisorFromType } from './hypervisor.ts';
import type { Hypervisor, KataRuntime } from './records.ts';

export interface KataStateInfo {
  /** Set only when the type string names a hypervisor we know. */
  hypervisor?: Hypervisor;
  /** The raw type string, for logs. */
  hypervisorType?: string;
  sandboxCgroupPath?: string;
  overheadCgroupPath?: string;
  sandboxCgroupOnly?: boolean;
  vmmPid?: number;
  /** The VM's configured (boot) memory: Go Config.HypervisorConfig.MemorySize, rs hypervisor.config.memory_info.default_memory (MiB). */
  vmMemoryBytes?: number;
  /** The sandbox (pause) container's OCI annotations; Go runtime only. */
  annotations: Record<string, string>;
}

type Json = Record<string, unknown>;

function parseObject(text: string | undefined): Json | undefined {
  if (text === undefined) return undefined;
  try {
    return asObject(JSON.parse(text));
  } catch {
    return undefined;
  }
}

export function asObject(value: unknown): Json | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : undefined;
}

/** A non-empty string: the Go runtime writes "" for unset fields. */
export function asString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function asBoolean(value: unknown): boolean | undefined {
  return typeof value === 'boolean' ? value : undefined;
}

/** A pid: a positive integer (the Go runtime writes 0 when the VMM is not running). */
function asPid(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

/** A configured memory size in MiB (a positive integer) as bytes. */
function mibAsBytes(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 && value <= 2 ** 24 ? value * 2 ** 20 : undefined;
}

/** Keeps only string values: annotations are map[string]string, anything else is noise. */
export function asStringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  const object = asObject(value);
  if (object === undefined) return out;
  for (const [key, v] of Object.entries(object)) if (typeof v === 'string') out[key] = v;
  return out;
}

function withHypervisorType(info: KataStateInfo, type: string | undefined): KataStateInfo {
  if (type === undefined) return info;
  const hypervisor = hypervisorFromType(type);
  return hypervisor === undefined ? { ...info, hypervisorType: type } : { ...info, hypervisorType: type, hypervisor };
}

const SANDBOX_TYPE_KEYS = ['io.kubernetes.cri.container-type', 'io.kubernetes.cri-o.ContainerType'];

/** The pause container: the one whose id is the sandbox's, else the one annotated as the sandbox. */
function sandboxAnnotations(containerConfigs: unknown, sandboxId: string): Record<string, string> {
  if (!Array.isArray(containerConfigs)) return {};
  const configs = containerConfigs.map(asObject).filter((c): c is Json => c !== undefined);
  const byId = configs.find((c) => c.ID === sandboxId);
  if (byId !== undefined) return asStringMap(byId.Annotations);
  const byType = configs.find((c) => {
    const annotations = asStringMap(c.Annotations);
    return SANDBOX_TYPE_KEYS.some((key) => annotations[key] === 'sandbox');
  });
  return byType === undefined ? {} : asStringMap(byType.Annotations);
}

/** The Go runtime's persist.json. `sandboxId` is the directory name, used when SandboxContainer is empty. */
export function decodeGoPersist(text: string | undefined, sandboxId: string): KataStateInfo {
  const state = parseObject(text);
  if (state === undefined) return { annotations: {} };
  const config = asObject(state.Config);
  const hypervisorState = asObject(state.HypervisorState);
  const info: KataStateInfo = {
    sandboxCgroupPath: asString(state.SandboxCgroupPath) ?? asString(state.CgroupPath),
    overheadCgroupPath: asString(state.OverheadCgroupPath),
    sandboxCgroupOnly: asBoolean(config?.SandboxCgroupOnly),
    vmmPid: asPid(hypervisorState?.Pid),
    vmMemoryBytes: mibAsBytes(asObject(config?.HypervisorConfig)?.MemorySize),
    annotations: sandboxAnnotations(config?.ContainerConfigs, asString(state.SandboxContainer) ?? sandboxId),
  };
  // A stopped QEMU saves an empty HypervisorState: the sandbox config still names the type.
  return withHypervisorType(info, asString(hypervisorState?.Type) ?? asString(config?.HypervisorType));
}

/** runtime-rs state.json. */
export function decodeRsState(text: string | undefined): KataStateInfo {
  const state = parseObject(text);
  if (state === undefined) return { annotations: {} };
  const hypervisor = asObject(state.hypervisor);
  const cgroup = asObject(asObject(state.resource)?.cgroup_state);
  const info: KataStateInfo = {
    sandboxCgroupPath: asString(cgroup?.path),
    overheadCgroupPath: asString(cgroup?.overhead_path),
    sandboxCgroupOnly: asBoolean(cgroup?.sandbox_cgroup_only),
    vmmPid: asPid(hypervisor?.pid),
    vmMemoryBytes: mibAsBytes(asObject(asObject(hypervisor?.config)?.memory_info)?.default_memory),
    annotations: {},
  };
  return withHypervisorType(info, asString(hypervisor?.hypervisor_type));
}

export function decodeKataState(runtime: KataRuntime, text: string | undefined, sandboxId: string): KataStateInfo {
  return runtime === 'go' ? decodeGoPersist(text, sandboxId) : decodeRsState(text);
}
