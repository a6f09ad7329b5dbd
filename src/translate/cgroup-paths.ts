/**
 * Pure naming rules for the host cgroups of Kubernetes pods and Kata sandboxes (domain.md §3).
 * Every path here is relative to the root of one cgroup hierarchy and starts with '/'.
 * No I/O: the scraper (src/scrapers/cgroups.ts) probes the candidates these functions name.
 */

/** The kubelet's --cgroup-driver. */
export type CgroupDriver = 'cgroupfs' | 'systemd';

/** The pod QoS classes, spelt as the kubelet names their cgroups. */
export type PodQos = 'guaranteed' | 'burstable' | 'besteffort';

export const CGROUP_DRIVERS: readonly CgroupDriver[] = ['cgroupfs', 'systemd'];

/** QoS classes that get their own level under kubepods (Guaranteed pods sit directly in it). */
export const QOS_LEVELS: readonly Exclude<PodQos, 'guaranteed'>[] = ['burstable', 'besteffort'];

/** Kata Go's overhead cgroup parent (virtcontainers/sandbox.go `resCtrlKataOverheadID`). */
export const KATA_OVERHEAD_DIR = '/kata_overhead';

/** runtime-rs's overhead cgroup with the systemd driver (resource/cgroups utils `gen_overhead_path`). */
const KATA_RS_OVERHEAD_SYSTEMD = 'kata-overhead.slice:runtime-rs:';

// Pod UIDs are RFC 4122 UUIDs, or 32 hex digits for static pods (a hash of the manifest).
const UID_RE = /^[0-9a-f]+(?:-[0-9a-f]+)*$/i;
const SYSTEMD_POD_RE = /^kubepods-(?:(burstable|besteffort)-)?pod([0-9a-f_]+)\.slice$/i;
const CGROUPFS_POD_RE = /^pod([0-9a-f-]+)$/i;
// A sandbox id is the CRI sandbox id: 64 hex digits with containerd, but never assume the length.
const SANDBOX_ID_RE = /^[0-9a-z][0-9a-z_.-]*$/i;

export function isPodUid(uid: string): boolean {
  return UID_RE.test(uid);
}

export function isSandboxId(id: string): boolean {
  return SANDBOX_ID_RE.test(id) && !id.includes('..');
}

/** systemd reads '-' in a unit name as a step in the slice hierarchy, so the kubelet writes '_'. */
export function uidToSystemd(uid: string): string {
  return uid.replaceAll('-', '_');
}

export function uidFromSystemd(escaped: string): string {
  return escaped.replaceAll('_', '-');
}

/** `/kubepods` (cgroupfs) or `/kubepods.slice` (systemd). */
export function kubepodsPath(driver: CgroupDriver): string {
  return driver === 'systemd' ? '/kubepods.slice' : '/kubepods';
}

/** The directory holding the pod cgroups of one QoS class. */
export function qosCgroupPath(driver: CgroupDriver, qos: PodQos): string {
  const root = kubepodsPath(driver);
  if (qos === 'guaranteed') return root;
  return driver === 'systemd' ? `${root}/kubepods-${qos}.slice` : `${root}/${qos}`;
}

export function podCgroupName(driver: CgroupDriver, qos: PodQos, uid: string): string {
  if (driver === 'cgroupfs') return `pod${uid}`;
  const qosPart = qos === 'guaranteed' ? '' : `${qos}-`;
  return `kubepods-${qosPart}pod${uidToSystemd(uid)}.slice`;
}

/** `/kubepods/burstable/pod<uid>` or `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice`. */
export function podCgroupPath(driver: CgroupDriver, qos: PodQos, uid: string): string {
  return `${qosCgroupPath(driver, qos)}/${podCgroupName(driver, qos, uid)}`;
}

export interface ParsedPodCgroupName {
  uid: string;
  driver: CgroupDriver;
  /** Known from a systemd name; a cgroupfs name does not carry it (the parent directory does). */
  qos?: PodQos;
}

/** Reads a pod cgroup directory name of either driver; undefined for anything else. */
export function parsePodCgroupName(name: string): ParsedPodCgroupName | undefined {
  const systemd = SYSTEMD_POD_RE.exec(name);
  if (systemd) {
    const uid = uidFromSystemd(systemd[2] ?? '').toLowerCase();
    if (!isPodUid(uid)) return undefined;
    const qos = (systemd[1]?.toLowerCase() as PodQos | undefined) ?? 'guaranteed';
    return { uid, driver: 'systemd', qos };
  }
  const cgroupfs = CGROUPFS_POD_RE.exec(name);
  if (cgroupfs) {
    const uid = (cgroupfs[1] ?? '').toLowerCase();
    return isPodUid(uid) ? { uid, driver: 'cgroupfs' } : undefined;
  }
  return undefined;
}

/** Finds the pod UID anywhere in a cgroup path (a last-resort sandbox → pod join, domain.md §4). */
export function podUidFromCgroupPath(path: string): string | undefined {
  // The 11325 directory name holds the pod slice before its first ':'.
  for (const segment of path.split(/[/:]/).reverse()) {
    const parsed = parsePodCgroupName(segment);
    if (parsed) return parsed.uid;
  }
  return undefined;
}

/**
 * Names Kata gives the sandbox cgroup inside the pod cgroup when sandbox_cgroup_only=true (and,
 * holding only the vCPU threads, when it is false), most likely first.
 * cgroupfs: Go prefixes `kata_` (resourcecontrol `RenameCgroupPath`); runtime-rs keeps the bare id.
 * systemd: the OCI path `<pod slice>:cri-containerd:<id>` becomes the scope `cri-containerd-<id>.scope`
 * (`crio-<id>.scope` under CRI-O).
 */
export function sandboxChildNames(driver: CgroupDriver, sandboxId: string): string[] {
  return driver === 'systemd' ? [`cri-containerd-${sandboxId}.scope`, `crio-${sandboxId}.scope`] : [`kata_${sandboxId}`, sandboxId];
}

/**
 * Where the VMM, shim and I/O threads go when sandbox_cgroup_only=false, at the hierarchy root:
 * Go `/kata_overhead/<id>`; runtime-rs with systemd `kata-overhead.slice:runtime-rs:<id>`, which
 * systemd nests as `/kata.slice/kata-overhead.slice/runtime-rs-<id>.scope`.
 */
export function overheadCgroupPaths(sandboxId: string): string[] {
  const rsSystemd = systemdCgroupsPathToDir(`${KATA_RS_OVERHEAD_SYSTEMD}${sandboxId}`);
  return [`${KATA_OVERHEAD_DIR}/${sandboxId}`, ...(rsSystemd === undefined ? [] : [rsSystemd])];
}

/**
 * Kata issue 11325: with the systemd driver and sandbox_cgroup_only=false the Go runtime hands the
 * systemd-form path to its cgroupfs code, which creates a literal directory of that name at the root.
 */
export function systemdLiteralSandboxPath(podSliceName: string, sandboxId: string): string {
  return `/${podSliceName}:cri-containerd:${sandboxId}`;
}

/** The `slice:prefix:name` form of an OCI cgroupsPath for the systemd driver (runc convention). */
export function isSystemdCgroupsPath(path: string): boolean {
  return !path.startsWith('/') && path.split(':').length === 3;
}

/**
 * Expands a slice unit name to its directory path: `a-b.slice` → `/a.slice/a-b.slice`
 * (systemd nests a slice under every '-'-separated prefix); `-.slice` is the root.
 */
export function expandSlice(slice: string): string | undefined {
  if (!slice.endsWith('.slice')) return undefined;
  const base = slice.slice(0, -'.slice'.length);
  if (base === '-' || base === '') return '';
  if (base.startsWith('-') || base.endsWith('-') || base.includes('--') || base.includes('/')) return undefined;
  let path = '';
  let prefix = '';
  for (const part of base.split('-')) {
    prefix = prefix === '' ? part : `${prefix}-${part}`;
    path += `/${prefix}.slice`;
  }
  return path;
}

/**
 * Turns `slice:prefix:name` into the directory systemd creates: the unit is `<prefix>-<name>.scope`,
 * or `name` itself when it already ends in `.slice`. An empty slice means `system.slice`.
 */
export function systemdCgroupsPathToDir(cgroupsPath: string): string | undefined {
  const [slice, prefix, name] = cgroupsPath.split(':');
  if (slice === undefined || prefix === undefined || name === undefined || name === '') return undefined;
  const parent = expandSlice(slice === '' ? 'system.slice' : slice);
  if (parent === undefined) return undefined;
  const unit = name.endsWith('.slice') ? name : `${prefix}-${name}.scope`;
  return `${parent}/${unit}`;
}

/** Normalises a hierarchy-relative path: one leading '/', no trailing '/', no '.' or '..' steps. */
export function normaliseCgroupPath(path: string): string | undefined {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return undefined;
  return `/${parts.join('/')}`;
}

/**
 * The directories a Kata hint (persist.json `SandboxCgroupPath` / `OverheadCgroupPath`) may denote:
 * a plain path as is; a systemd `slice:prefix:name` both as the expanded scope and as the literal
 * root directory of Kata issue 11325.
 */
export function hintCandidates(hint: string): string[] {
  if (hint.trim() === '') return [];
  if (isSystemdCgroupsPath(hint)) {
    const expanded = systemdCgroupsPathToDir(hint);
    const literal = hint.includes('/') ? undefined : `/${hint}`;
    return [expanded, literal].filter((p): p is string => p !== undefined);
  }
  const normalised = normaliseCgroupPath(hint);
  return normalised === undefined || normalised === '/' ? [] : [normalised];
}
