/**
 * Host cgroup source: I/O only. Every path lives under a root (--path.cgroupfs, default
 * /sys/fs/cgroup), so the same code reads a fixture tree, the node lab's fake tree, or a real host.
 * Naming rules come from translate/cgroup-paths.ts, decoding from translate/cgroup-decode.ts.
 */
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { join } from 'node:path';

import { CGROUP_FILES, decodeCgroupUsage, parseSingleValue, type CgroupFileTexts } from '../translate/cgroup-decode.ts';
import {
  HOST_FILES,
  NO_HOST_READS,
  decodeHostFiles,
  pressureFileName,
  type HostFileTexts,
  type HostReads,
} from '../translate/host-decode.ts';
import {
  CGROUP_DRIVERS,
  QOS_LEVELS,
  hintCandidates,
  isSandboxId,
  kubepodsPath,
  normaliseCgroupPath,
  overheadCgroupPaths,
  parsePodCgroupName,
  qosCgroupPath,
  sandboxChildNames,
  systemdLiteralSandboxPath,
  type CgroupDriver,
  type PodQos,
} from '../translate/cgroup-paths.ts';
import { PRESSURE_RESOURCES, type CgroupUsage, type CgroupVersion, type HostCollectors } from '../translate/records.ts';
import { pauseForIo, readCgroupFileSync } from './pseudo-fs.ts';
import { SourceError, isGone } from './source-error.ts';

export const DEFAULT_CGROUP_ROOT = '/sys/fs/cgroup';

/** How the host mounts cgroups: v2 at the root, v1 per controller, or v1 beside a v2 `unified` mount. */
export type CgroupLayoutKind = 'v1' | 'v2' | 'hybrid';

export interface CgroupLayout {
  root: string;
  kind: CgroupLayoutKind;
  /** The hierarchy the kubelet uses, which every read goes to. */
  version: CgroupVersion;
  /** Absolute directory read for CPU: the v1 cpuacct mount, or the v2 hierarchy. */
  cpuDir?: string;
  /** Absolute directory read for memory: the v1 memory mount, or the v2 hierarchy. */
  memoryDir?: string;
  /** The v2 hierarchy when there is one (the root itself, or `<root>/unified`). */
  unifiedDir?: string;
  /** Drivers whose kubepods root existed at detection (empty before the kubelet's first pod). */
  drivers: CgroupDriver[];
  /** Absolute directory of the cpu controller (cpu.stat throttling): v1 `cpu` (or co-mounted), or v2. */
  throttleDir?: string;
  /** Absolute directory of block I/O: the v1 blkio mount, or the v2 hierarchy. */
  blkioDir?: string;
  /** Whether the kubelet's hierarchy has PSI files (v2 on a kernel with PSI on). */
  pressure: boolean;
}

/**
 * How a cgroup was found: a Kata hint that exists on disk, the naming rules, or (either way) a
 * literal `<slice>:cri-containerd:<id>` directory at the root (Kata issue 11325).
 */
export type CgroupFoundBy = 'hint' | 'naming' | 'systemd-literal';

export interface FoundCgroup {
  path: string;
  foundBy: CgroupFoundBy;
}

export interface SandboxCgroups {
  /** The sandbox cgroup (inside the pod cgroup, or the root directory of Kata issue 11325). */
  sandbox?: FoundCgroup;
  /** The overhead cgroup at the hierarchy root (sandbox_cgroup_only=false). */
  overhead?: FoundCgroup;
}

/** Paths from Kata's persist.json (Go) or state.json (runtime-rs), tried before the naming rules. */
export interface SandboxCgroupHint {
  sandboxCgroupPath?: string;
  overheadCgroupPath?: string;
}

export interface PodCgroup {
  uid: string;
  /** Relative to the hierarchy root. */
  path: string;
  qos: PodQos;
  driver: CgroupDriver;
}

// ─── small I/O helpers ────────────────────────────────────────────────────────

function ioError(target: string, err: unknown): SourceError {
  const detail = err instanceof Error ? err.message : String(err);
  return new SourceError('io', target, detail, 'check that the exporter runs as root with the host cgroupfs mounted read-only');
}

/** What is at the path, or undefined when it (or its cgroup) is gone. */
function entryAt(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if (isGone(err)) return undefined;
    throw ioError(path, err);
  }
}

function isDirectory(path: string): boolean {
  return entryAt(path)?.isDirectory() === true;
}

/** Far above any counter file the kernel writes (v1 memory.stat is a few KiB). */
const CGROUP_FILE_MAX_BYTES = 1024 * 1024;

/** The text of a counter file, or undefined when it (or its directory) does not exist. */
function readOptional(path: string): string | undefined {
  try {
    return readCgroupFileSync(path, CGROUP_FILE_MAX_BYTES);
  } catch (err) {
    if (isGone(err)) return undefined;
    throw ioError(path, err);
  }
}

/** Names of the subdirectories, or [] when the directory does not exist. */
function subdirectories(path: string): string[] {
  try {
    const entries = readdirSync(path, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (err) {
    if (isGone(err)) return [];
    throw ioError(path, err);
  }
}

/** Cgroups walked below one cgroup, and how deep: a Kata pod nests two or three levels. */
const MAX_DESCENDANTS = 64;
const MAX_DESCENDANT_DEPTH = 3;

/** The directories below `dir`, breadth first, bounded. */
function descendants(dir: string): string[] {
  const found: string[] = [];
  const queue = [{ dir, depth: 0 }];
  for (let i = 0; i < queue.length && found.length < MAX_DESCENDANTS; i++) {
    const { dir: at, depth } = queue[i]!;
    if (i > 0) found.push(at);
    if (depth < MAX_DESCENDANT_DEPTH) for (const name of subdirectories(at)) queue.push({ dir: join(at, name), depth: depth + 1 });
  }
  return found;
}

/** A cgroup's directory in a hierarchy; a normalised relPath ('/a/b') is simply appended. */
function abs(dir: string, relPath: string): string {
  return relPath.startsWith('/') && !dir.endsWith('/') ? dir + relPath : join(dir, relPath);
}

// ─── layout ───────────────────────────────────────────────────────────────────

/** v1 mounts cpuacct alone, or co-mounted with cpu under either name order (plus symlinks). */
const V1_CPUACCT_DIRS = ['cpuacct', 'cpu,cpuacct', 'cpuacct,cpu'];
/** Likewise the cpu controller, which holds cpu.stat (throttling). */
const V1_CPU_DIRS = ['cpu', 'cpu,cpuacct', 'cpuacct,cpu'];

function firstDirectory(root: string, names: readonly string[]): string | undefined {
  for (const name of names) {
    const dir = join(root, name);
    if (isDirectory(dir)) return dir;
  }
  return undefined;
}

function kubepodsDrivers(dir: string | undefined): CgroupDriver[] {
  if (dir === undefined) return [];
  const found: CgroupDriver[] = [];
  for (const driver of CGROUP_DRIVERS) {
    if (isDirectory(abs(dir, kubepodsPath(driver)))) found.push(driver);
  }
  return found;
}

/**
 * Detects the layout under `root` and the hierarchy the kubelet uses: on hybrid hosts the one that
 * holds kubepods, else v1 (the kubelet uses v2 only when the root itself is cgroup2).
 * Throws SourceError('not_found') when neither hierarchy is there.
 */
export async function detectCgroupLayout(root: string = DEFAULT_CGROUP_ROOT): Promise<CgroupLayout> {
  if (entryAt(join(root, 'cgroup.controllers')) !== undefined) {
    return v2Layout(root, 'v2', root, kubepodsDrivers(root));
  }
  const cpuDir = firstDirectory(root, V1_CPUACCT_DIRS);
  const memoryDir = firstDirectory(root, ['memory']);
  const unified = join(root, 'unified');
  const unifiedDir = entryAt(join(unified, 'cgroup.controllers')) !== undefined ? unified : undefined;
  if (cpuDir === undefined && memoryDir === undefined) {
    if (unifiedDir === undefined) {
      throw new SourceError(
        'not_found',
        root,
        'no cgroup v2 (cgroup.controllers) nor v1 controllers (cpuacct, memory) found',
        'point --path.cgroupfs at the host cgroup mount',
      );
    }
    return v2Layout(root, 'hybrid', unifiedDir, kubepodsDrivers(unifiedDir));
  }
  const kind: CgroupLayoutKind = unifiedDir === undefined ? 'v1' : 'hybrid';
  const v1Drivers = [...new Set([...kubepodsDrivers(cpuDir), ...kubepodsDrivers(memoryDir)])];
  if (v1Drivers.length === 0 && unifiedDir !== undefined) {
    const v2Drivers = kubepodsDrivers(unifiedDir);
    if (v2Drivers.length > 0) {
      return v2Layout(root, kind, unifiedDir, v2Drivers);
    }
  }
  const layout: CgroupLayout = { root, kind, version: 1, drivers: v1Drivers, pressure: false };
  const throttleDir = firstDirectory(root, V1_CPU_DIRS);
  const blkioDir = firstDirectory(root, ['blkio']);
  if (throttleDir !== undefined) layout.throttleDir = throttleDir;
  if (blkioDir !== undefined) layout.blkioDir = blkioDir;
  if (cpuDir !== undefined) layout.cpuDir = cpuDir;
  if (memoryDir !== undefined) layout.memoryDir = memoryDir;
  if (unifiedDir !== undefined) layout.unifiedDir = unifiedDir;
  return layout;
}

/**
 * The kubelet uses this v2 hierarchy. PSI is there when the root or a kubepods cgroup has
 * cpu.pressure (the root's files came later than the children's on some kernels).
 */
function v2Layout(root: string, kind: CgroupLayoutKind, dir: string, drivers: CgroupDriver[]): CgroupLayout {
  const pressure = [dir, ...drivers.map((d) => abs(dir, kubepodsPath(d)))].some(
    (d) => entryAt(join(d, pressureFileName('cpu'))) !== undefined,
  );
  return { root, kind, version: 2, cpuDir: dir, memoryDir: dir, unifiedDir: dir, throttleDir: dir, blkioDir: dir, drivers, pressure };
}

/** The hierarchy directories a cgroup of this layout lives in (one on v2, one per controller on v1). */
function hierarchyDirs(layout: CgroupLayout): string[] {
  return [...new Set([layout.cpuDir, layout.memoryDir].filter((d): d is string => d !== undefined))];
}

/** A cgroup exists when its directory is in any of the hierarchies read. */
function cgroupExists(layout: CgroupLayout, relPath: string): boolean {
  for (const dir of hierarchyDirs(layout)) {
    if (isDirectory(abs(dir, relPath))) return true;
  }
  return false;
}

// ─── pod index ────────────────────────────────────────────────────────────────

function addPodEntries(index: Map<string, PodCgroup>, driver: CgroupDriver, qos: PodQos, parent: string, names: string[]): void {
  for (const name of names) {
    const parsed = parsePodCgroupName(name);
    if (!parsed || parsed.driver !== driver) continue;
    // A systemd name carries its QoS; trust it only where the directory agrees.
    if (parsed.qos !== undefined && parsed.qos !== qos) continue;
    if (!index.has(parsed.uid)) index.set(parsed.uid, { uid: parsed.uid, path: `${parent}/${name}`, qos, driver });
  }
}

/**
 * One index per collection: UID → pod cgroup, from a few readdirs of the kubepods levels of both
 * drivers (kubepods may appear after start-up, so the drivers are probed again each time).
 */
export async function indexPodCgroups(layout: CgroupLayout): Promise<Map<string, PodCgroup>> {
  const index = new Map<string, PodCgroup>();
  const dir = layout.cpuDir ?? layout.memoryDir;
  if (dir === undefined) return index;
  for (const driver of CGROUP_DRIVERS) {
    const levels: PodQos[] = ['guaranteed', ...QOS_LEVELS];
    for (const qos of levels)
      addPodEntries(index, driver, qos, qosCgroupPath(driver, qos), subdirectories(abs(dir, qosCgroupPath(driver, qos))));
  }
  return index;
}

// ─── Kata sandbox cgroups ─────────────────────────────────────────────────────

function firstExisting(layout: CgroupLayout, candidates: string[], foundBy: CgroupFoundBy): FoundCgroup | undefined {
  for (const path of candidates) {
    if (cgroupExists(layout, path)) return { path, foundBy: path.includes(':') ? 'systemd-literal' : foundBy };
  }
  return undefined;
}

function podDriver(podPath: string): CgroupDriver {
  return podPath.endsWith('.slice') ? 'systemd' : 'cgroupfs';
}

/**
 * Finds a Kata sandbox's cgroups. Hints from Kata's own state are used first when they exist on
 * disk; otherwise the naming rules of both runtimes inside `podPath` (undefined when the pod
 * cgroup is unknown), then the literal root directory of Kata issue 11325, and the overhead
 * cgroup at the root.
 */
export async function findSandboxCgroups(
  layout: CgroupLayout,
  podPath: string | undefined,
  sandboxId: string,
  hint?: SandboxCgroupHint,
  /** Parts already found: only the others are probed. */
  known: SandboxCgroups = {},
): Promise<SandboxCgroups> {
  await pauseForIo();
  const result: SandboxCgroups = {};
  const sandbox = known.sandbox ?? findSandboxCgroup(layout, podPath, sandboxId, hint);
  if (sandbox) result.sandbox = sandbox;
  const overhead = known.overhead ?? findOverheadCgroup(layout, sandboxId, hint);
  if (overhead) result.overhead = overhead;
  return result;
}

function findSandboxCgroup(
  layout: CgroupLayout,
  podPath: string | undefined,
  sandboxId: string,
  hint?: SandboxCgroupHint,
): FoundCgroup | undefined {
  const sandboxHint = hint?.sandboxCgroupPath ? firstExisting(layout, hintCandidates(hint.sandboxCgroupPath), 'hint') : undefined;
  // An id that is not a single path step would let the naming rules escape the pod cgroup.
  if (sandboxHint !== undefined || podPath === undefined || !isSandboxId(sandboxId)) return sandboxHint;
  return firstExisting(
    layout,
    [
      ...sandboxChildNames(podDriver(podPath), sandboxId).map((name) => `${podPath}/${name}`),
      ...(podDriver(podPath) === 'systemd' ? [systemdLiteralSandboxPath(podPath.split('/').at(-1) ?? '', sandboxId)] : []),
    ],
    'naming',
  );
}

function findOverheadCgroup(layout: CgroupLayout, sandboxId: string, hint?: SandboxCgroupHint): FoundCgroup | undefined {
  const overheadHint = hint?.overheadCgroupPath ? firstExisting(layout, hintCandidates(hint.overheadCgroupPath), 'hint') : undefined;
  return overheadHint ?? (isSandboxId(sandboxId) ? firstExisting(layout, overheadCgroupPaths(sandboxId), 'naming') : undefined);
}

interface KnownLocation {
  layout: CgroupLayout;
  podPath: string | undefined;
  sandboxHint: string | undefined;
  overheadHint: string | undefined;
  found: SandboxCgroups;
}

/**
 * findSandboxCgroups with its answers kept per sandbox id: probing costs a few lstats per sandbox
 * per collection, and a sandbox's cgroups stay where they are for its life. An answer is reused
 * while the layout, pod cgroup and hints it came from come back. A part that was not found is
 * probed again each time (a cgroup may show up after its sandbox directory). The owner forgets a
 * sandbox whose cgroup read reports it gone, and keeps only the sandboxes still present.
 */
export class SandboxCgroupLocations {
  private readonly known = new Map<string, KnownLocation>();

  async find(layout: CgroupLayout, podPath: string | undefined, sandboxId: string, hint?: SandboxCgroupHint): Promise<SandboxCgroups> {
    const sandboxHint = hint?.sandboxCgroupPath;
    const overheadHint = hint?.overheadCgroupPath;
    const known = this.known.get(sandboxId);
    const same =
      known !== undefined &&
      known.layout === layout &&
      known.podPath === podPath &&
      known.sandboxHint === sandboxHint &&
      known.overheadHint === overheadHint;
    if (same && known.found.sandbox !== undefined && known.found.overhead !== undefined) return known.found;
    const found = await findSandboxCgroups(layout, podPath, sandboxId, hint, same ? known.found : {});
    this.known.set(sandboxId, { layout, podPath, sandboxHint, overheadHint, found });
    return found;
  }

  /** Its cgroup was reported gone: the next find probes again. */
  forget(sandboxId: string): void {
    this.known.delete(sandboxId);
  }

  /** Drops the sandboxes no longer present. */
  keepOnly(sandboxIds: ReadonlySet<string>): void {
    for (const id of this.known.keys()) if (!sandboxIds.has(id)) this.known.delete(id);
  }
}

// ─── reading ──────────────────────────────────────────────────────────────────

interface FileRead {
  dir: string | undefined;
  file: string;
}

/**
 * Which host file groups to read for a pod cgroup or for a cgroup outside it (overhead): only
 * what the enabled collectors need. Memory limit and pressure are the pod cgroup's alone (the
 * overhead cgroup has no limit that bounds the pod, and Kata does not set one); PSI only where the
 * hierarchy has it.
 */
export function hostReads(layout: CgroupLayout, collectors: HostCollectors, part: 'pod' | 'outside'): HostReads {
  return {
    throttling: collectors.throttling,
    memoryLimit: collectors.memory && part === 'pod',
    oomKills: collectors.memory,
    pressure: collectors.pressure && part === 'pod' && layout.version === 2 && layout.pressure,
    disk: collectors.disk,
  };
}

/** One host file to read, and where its text goes. */
interface HostFileRead extends FileRead {
  put(texts: HostFileTexts, text: string): void;
}

/** The host files of `reads` for one cgroup, besides the usage files (v2 throttling reuses cpu.stat). */
function hostFilesToRead(layout: CgroupLayout, relPath: string, reads: HostReads): HostFileRead[] {
  const names = HOST_FILES[layout.version];
  const at = (dir: string | undefined): string | undefined => (dir === undefined ? undefined : abs(dir, relPath));
  const plan: HostFileRead[] = [];
  if (reads.throttling && layout.version === 1)
    plan.push({ dir: at(layout.throttleDir), file: names.cpuStat, put: (t, text) => (t.cpuStat = text) });
  if (reads.memoryLimit) plan.push({ dir: at(layout.memoryDir), file: names.memoryLimit, put: (t, text) => (t.memoryLimit = text) });
  if (reads.oomKills) plan.push({ dir: at(layout.memoryDir), file: names.memoryEvents, put: (t, text) => (t.memoryEvents = text) });
  if (reads.pressure) {
    for (const resource of PRESSURE_RESOURCES) {
      plan.push({ dir: at(layout.unifiedDir), file: pressureFileName(resource), put: (t, text) => ((t.pressure ??= {})[resource] = text) });
    }
  }
  if (reads.disk) plan.push({ dir: at(layout.blkioDir), file: names.io, put: (t, text) => (t.io = text) });
  return plan;
}

function filesToRead(layout: CgroupLayout, relPath: string): { cpu: FileRead; memoryUsage: FileRead; memoryStat: FileRead } {
  const names = CGROUP_FILES[layout.version];
  const cpuDir = layout.cpuDir === undefined ? undefined : abs(layout.cpuDir, relPath);
  const memDir = layout.memoryDir === undefined ? undefined : abs(layout.memoryDir, relPath);
  return {
    cpu: { dir: cpuDir, file: names.cpu },
    memoryUsage: { dir: memDir, file: names.memoryUsage },
    memoryStat: { dir: memDir, file: names.memoryStat },
  };
}

/**
 * Reads one cgroup's CPU and memory counters, each file once. A file that does not exist leaves
 * its fields undefined (v2 without the memory controller). Never throws: returns
 * SourceError('not_found') when the cgroup is absent or vanished during the read (its numbers
 * would be half of a torn-down cgroup), SourceError('io') for any other failure.
 */
export async function readCgroupUsage(
  layout: CgroupLayout,
  relPath: string,
  reads: HostReads = NO_HOST_READS,
): Promise<CgroupUsage | SourceError> {
  const target = `cgroup ${relPath}`;
  const path = normaliseCgroupPath(relPath);
  if (path === undefined) return new SourceError('malformed', target, 'not a path inside the cgroup hierarchy');
  await pauseForIo();
  try {
    const plan = filesToRead(layout, path);
    const keys = ['cpu', 'memoryUsage', 'memoryStat'] as const;
    const texts = keys.map((k) => (plan[k].dir === undefined ? undefined : readOptional(`${plan[k].dir}/${plan[k].file}`)));
    const files: CgroupFileTexts = {};
    keys.forEach((k, i) => {
      const text = texts[i];
      if (text !== undefined) files[k] = text;
    });
    // A missing file is normal only while its directory is still there.
    const missingDirs = new Set(
      keys.filter((k, i) => texts[i] === undefined && plan[k].dir !== undefined).map((k) => plan[k].dir as string),
    );
    for (const dir of missingDirs) {
      if (!isDirectory(dir)) {
        return new SourceError(
          'not_found',
          target,
          `no cgroup directory ${dir}`,
          'the pod or sandbox was probably removed; it is gone at the next collection',
        );
      }
    }
    const usage = decodeCgroupUsage(path, layout.version, files);
    return hostFilesOf(layout, path, reads, usage, files.cpu);
  } catch (err) {
    return err instanceof SourceError ? err : ioError(target, err);
  }
}

/**
 * Adds the host groups of `reads` to a usage just read: each file once, a file that is not there
 * named in `missingFiles` (a controller not enabled for the cgroup, a kernel without the key).
 */
function hostFilesOf(layout: CgroupLayout, path: string, reads: HostReads, usage: CgroupUsage, cpuText: string | undefined): CgroupUsage {
  const texts: HostFileTexts = layout.version === 2 && cpuText !== undefined ? { cpuStat: cpuText } : {};
  for (const read of hostFilesToRead(layout, path, reads)) {
    const text = read.dir === undefined ? undefined : readOptional(`${read.dir}/${read.file}`);
    if (text !== undefined) read.put(texts, text);
  }
  if (reads.oomKills && layout.version === 1 && layout.memoryDir !== undefined && texts.memoryEvents !== undefined) {
    const file = HOST_FILES[1].memoryEvents;
    texts.memoryEventsBelow = descendants(abs(layout.memoryDir, path)).flatMap((dir) => readOptional(`${dir}/${file}`) ?? []);
  }
  const { fields, missing } = decodeHostFiles(layout.version, reads, texts);
  Object.assign(usage, fields);
  if (missing.length > 0) usage.missingFiles = missing;
  return usage;
}

/** Where the kernel keeps a cgroup's own memory peak: v2 `memory.peak` (kernel 5.19+), v1 `memory.max_usage_in_bytes`. */
export const MEMORY_PEAK_FILES: Record<CgroupVersion, string> = { 1: 'memory.max_usage_in_bytes', 2: 'memory.peak' };

/**
 * The kernel's highest memory usage of one cgroup since it was created, in bytes; undefined when
 * the kernel keeps none (v2 before 5.19), the cgroup is gone, or the file is malformed. Read only
 * at a pod's end (usage records), so not part of the per-collection reads.
 */
export function readCgroupMemoryPeak(layout: CgroupLayout, relPath: string): number | undefined {
  const path = normaliseCgroupPath(relPath);
  if (path === undefined || layout.memoryDir === undefined) return undefined;
  try {
    const text = readOptional(`${abs(layout.memoryDir, path)}/${MEMORY_PEAK_FILES[layout.version]}`);
    const value = text === undefined ? undefined : parseSingleValue(text);
    return typeof value === 'bigint' ? Number(value) : undefined;
  } catch {
    return undefined;
  }
}
