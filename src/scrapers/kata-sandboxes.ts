/**
 * Finds the Kata sandboxes on this node and reads what each one is made of: its directory, its
 * shim socket, the runtime's state file, the CRI bundles that name its pod, and the host processes
 * whose command line names it. I/O only; translate/sandbox-map.ts decodes it.
 *
 * Sandboxes come and go while we read: a directory or process that vanishes (ENOENT, ESRCH) is
 * skipped silently. Every path is passed in, so a fixtures tree reads exactly like a node.
 */

import { lstatSync, readdirSync, statSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import type { HostProcess, KataRuntime, RawSandbox } from '../translate/records.ts';
import { cmdlineMentionsSandbox } from '../translate/hypervisor.ts';
import { needsProcessScan } from '../translate/sandbox-map.ts';
import { identityOf, type FileIdentity } from '../file-identity.ts';
import { socketIdentityOf } from './kata-shim.ts';
import { FileTooLarge, pauseForIo, readTextSync } from './pseudo-fs.ts';
import { SourceError, errorCode, isGone } from './source-error.ts';

export interface SandboxDiscoveryOptions {
  /** --path.kata-go, default /run/vc/sbs. */
  kataGoDir?: string;
  /** --path.kata-rs, default /run/kata. */
  kataRsDir?: string;
  /** --path.containerd-tasks: bundles live in <dir>/k8s.io/<id>/config.json. */
  containerdTasksDir?: string;
  /** CRI-O's runroot containers: <dir>/<id>/userdata/config.json. */
  crioDir?: string;
  /** The host's /proc (mounted from the host, with hostPID). */
  procDir?: string;
  /** Cap on each state file and bundle. */
  maxFileBytes?: number;
  /**
   * Called as soon as a sandbox is read whose state file names its hypervisor, before the other
   * sandboxes are in: its record's hypervisor, socket, cgroup paths and pod mapping are then
   * settled. Its `processes` are empty here; the result may still attach some (when another
   * sandbox makes discovery read /proc), which only the record's `vmmPid` can use.
   */
  onSettled?: (sandbox: RawSandbox) => void;
  /**
   * State files and bundles kept from the caller's earlier discoveries: a file one stat shows
   * unchanged is not read again. Without it every file is read.
   */
  knownFiles?: KnownFiles;
}

export const SANDBOX_DISCOVERY_DEFAULTS = {
  kataGoDir: '/run/vc/sbs',
  kataRsDir: '/run/kata',
  containerdTasksDir: '/run/containerd/io.containerd.runtime.v2.task',
  crioDir: '/run/containers/storage/overlay-containers',
  procDir: '/proc',
  maxFileBytes: 4 * 1024 * 1024,
} as const satisfies Paths;

export interface SandboxDiscovery {
  sandboxes: RawSandbox[];
  errors: SourceError[];
}

/** A sandbox id is a CRI sandbox id (64 hex in practice); nothing else may become a path or label. */
const SANDBOX_ID = /^[A-Za-z0-9_-]{1,128}$/;
const PID = /^[1-9][0-9]{0,9}$/;
const CMDLINE_MAX_BYTES = 64 * 1024;
const COMM_MAX_BYTES = 64;
const MAX_THREADS = 1024;

const STATE_FILE: Record<KataRuntime, string> = { go: 'persist.json', rs: 'state.json' };
const SOCKET_FILE = 'shim-monitor.sock';

function ioError(path: string, error: unknown): SourceError {
  const code = errorCode(error);
  const hint =
    code === 'EACCES' || code === 'EPERM' ? 'run the exporter as root: Kata state and bundles are readable by root only' : undefined;
  return new SourceError('io', path, `cannot read: ${error instanceof Error ? error.message : String(error)}`, hint);
}

/**
 * Reads a whole file, refusing more than `maxBytes` (FileTooLarge) and anything but a regular
 * file. Undefined when the file is gone. Synchronous: see pseudo-fs.ts.
 */
export function readBounded(path: string, maxBytes: number): string | undefined {
  try {
    return readTextSync(path, maxBytes);
  } catch (error) {
    if (isGone(error)) return undefined;
    throw error;
  }
}

/** readBounded for the optional files of a sandbox: errors are collected, never thrown. */
function readOptional(path: string, maxBytes: number, errors: SourceError[]): string | undefined {
  try {
    return readBounded(path, maxBytes);
  } catch (error) {
    errors.push(
      error instanceof FileTooLarge
        ? new SourceError('oversize', path, `larger than ${maxBytes} bytes`, 'the file is not a Kata state or OCI bundle, or is corrupt')
        : ioError(path, error),
    );
    return undefined;
  }
}

/** A state file or bundle as last read, with the identity it had just before. */
interface KnownFile {
  identity: FileIdentity;
  text: string;
  /** needsProcessScan of this text, once asked: it parses the JSON. */
  needsScan?: boolean;
}

/** A file written this recently may still change within its timestamp's tick without its identity changing. */
const SETTLED_NS = 2_000_000_000n;

/**
 * State files and bundles by path, kept by their owner (the collector) across discovery passes.
 * Each pass keeps only the paths it looked at, so this holds the sandboxes present.
 */
export class KnownFiles {
  private readonly files = new Map<string, KnownFile>();
  private readonly seen = new Set<string>();

  /**
   * readOptional, re-read only when one stat shows the file changed: the same identity returns the
   * same string as last time (the collector's sandbox memo compares those by ===). Anything else
   * (changed, not a regular file, gone, a stat error) takes readOptional's path unchanged.
   */
  read(path: string, maxBytes: number, errors: SourceError[]): string | undefined {
    this.seen.add(path);
    let stat: BigIntStats | undefined;
    try {
      stat = statSync(path, { bigint: true, throwIfNoEntry: false });
    } catch {
      stat = undefined;
    }
    const known = this.files.get(path);
    if (stat !== undefined && known !== undefined && stat.isFile() && stat.size <= BigInt(maxBytes) && identityOf(stat) === known.identity)
      return known.text;
    const text = readOptional(path, maxBytes, errors);
    const settled = stat !== undefined && stat.mtimeNs < BigInt(Date.now()) * 1_000_000n - SETTLED_NS;
    if (text === undefined || stat === undefined || !stat.isFile() || !settled) this.files.delete(path);
    else this.files.set(path, { identity: identityOf(stat), text });
    return text;
  }

  /** needsProcessScan of one sandbox, answered once per state file kept (the same path and text). */
  needsScan(sandbox: Omit<RawSandbox, 'processes'>): boolean {
    const known = sandbox.stateText === undefined ? undefined : this.files.get(`${sandbox.dir}/${STATE_FILE[sandbox.runtime]}`);
    if (known === undefined || known.text !== sandbox.stateText) return needsProcessScan([sandbox]);
    return (known.needsScan ??= needsProcessScan([sandbox]));
  }

  /** Ends a discovery pass: drops the files it did not look at. */
  endPass(): void {
    for (const path of this.files.keys()) if (!this.seen.has(path)) this.files.delete(path);
    this.seen.clear();
  }
}

/**
 * What is at the socket path: nothing, or an entry, with its device and inode (the shim pool's
 * connection identity) when it is a socket.
 */
function socketAt(path: string): { exists: boolean; identity?: string } {
  try {
    const found = lstatSync(path, { bigint: true });
    return found.isSocket() ? { exists: true, identity: socketIdentityOf(found) } : { exists: true };
  } catch {
    return { exists: false };
  }
}

/**
 * The sandbox ids with a bundle under a CRI runtime's root, listed once per discovery so that a
 * bundle is opened only where it exists (a node runs containerd or CRI-O, so the other's 250
 * opens would all fail). Empty when the root is missing (that runtime is not installed);
 * undefined when it cannot be listed, and then each bundle is tried, and its error reported.
 */
function listBundles(root: string): ReadonlySet<string> | undefined {
  try {
    return new Set(readdirSync(root));
  } catch (error) {
    return isGone(error) ? new Set() : undefined;
  }
}

/** containerd's CRI namespace holds one bundle directory per task id. */
function containerdBundles(paths: Paths): string {
  return `${paths.containerdTasksDir}/k8s.io`;
}

/** Bundle ids per runtime; undefined: not listed, try every bundle. */
interface BundleIndex {
  containerd?: ReadonlySet<string>;
  crio?: ReadonlySet<string>;
}

/** Sandbox directory names under a runtime root; a missing root is a runtime not installed. */
function listSandboxIds(root: string, errors: SourceError[]): string[] {
  try {
    const entries = readdirSync(root, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory() && SANDBOX_ID.test(e.name)).map((e) => e.name);
  } catch (error) {
    if (!isGone(error)) errors.push(ioError(root, error));
    return [];
  }
}

type Paths = Required<Omit<SandboxDiscoveryOptions, 'onSettled' | 'knownFiles'>>;

/**
 * Reads one sandbox directory and its bundles. Undefined when the directory is gone by the end
 * of the read (the sandbox was torn down meanwhile): a half-read sandbox is not reported.
 */
export async function readSandbox(
  runtime: KataRuntime,
  id: string,
  options: SandboxDiscoveryOptions,
  errors: SourceError[],
): Promise<Omit<RawSandbox, 'processes'> | undefined> {
  return readSandboxAt(runtime, id, withDefaults(options), errors, {}, readOptional);
}

/** How a sandbox's optional files are read: plainly, or through a discovery pass's cache. */
type ReadFile = (path: string, maxBytes: number, errors: SourceError[]) => string | undefined;

async function readSandboxAt(
  runtime: KataRuntime,
  id: string,
  paths: Paths,
  errors: SourceError[],
  bundles: BundleIndex,
  read: ReadFile,
): Promise<Omit<RawSandbox, 'processes'> | undefined> {
  if (!SANDBOX_ID.test(id)) return undefined;
  // The id is a single path step (SANDBOX_ID), so plain concatenation cannot leave the roots.
  const dir = `${runtime === 'go' ? paths.kataGoDir : paths.kataRsDir}/${id}`;
  const local: SourceError[] = [];
  const socketPath = `${dir}/${SOCKET_FILE}`;
  await pauseForIo();
  const stateText = read(`${dir}/${STATE_FILE[runtime]}`, paths.maxFileBytes, local);
  const containerdConfig =
    bundles.containerd?.has(id) === false ? undefined : read(`${containerdBundles(paths)}/${id}/config.json`, paths.maxFileBytes, local);
  const crioConfig =
    bundles.crio?.has(id) === false ? undefined : read(`${paths.crioDir}/${id}/userdata/config.json`, paths.maxFileBytes, local);
  // Looked at last: a socket still there means the directory outlived the reads; without one, the
  // directory itself says whether the sandbox was torn down meanwhile.
  const socket = socketAt(socketPath);
  if (!socket.exists) {
    try {
      if (!lstatSync(dir).isDirectory()) return undefined;
    } catch {
      return undefined; // vanished: its read errors are churn too
    }
  }
  errors.push(...local);
  const raw: Omit<RawSandbox, 'processes'> = { id, runtime, dir };
  if (socket.identity !== undefined) {
    raw.socketPath = socketPath;
    raw.socketIdentity = socket.identity;
  }
  if (stateText !== undefined) raw.stateText = stateText;
  if (containerdConfig !== undefined) raw.containerdConfig = containerdConfig;
  if (crioConfig !== undefined) raw.crioConfig = crioConfig;
  return raw;
}

/** The options over the defaults, with the roots normalised once (no trailing slash) for concatenation. */
function withDefaults(options: SandboxDiscoveryOptions): Paths {
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as SandboxDiscoveryOptions;
  const paths: Paths = { ...SANDBOX_DISCOVERY_DEFAULTS, ...given };
  const root = (path: string): string => join(path).replace(/(?<=.)\/+$/, '');
  return {
    ...paths,
    kataGoDir: root(paths.kataGoDir),
    kataRsDir: root(paths.kataRsDir),
    containerdTasksDir: root(paths.containerdTasksDir),
    crioDir: root(paths.crioDir),
  };
}

/** Thread names of one process, bounded; empty when it is gone. */
function readThreadNames(procDir: string, pid: number): string[] {
  const taskDir = join(procDir, String(pid), 'task');
  let tids: string[];
  try {
    tids = readdirSync(taskDir)
      .filter((t) => PID.test(t))
      .slice(0, MAX_THREADS);
  } catch {
    return [];
  }
  const names: string[] = [];
  for (const tid of tids) {
    try {
      const name = readBounded(join(taskDir, tid, 'comm'), COMM_MAX_BYTES);
      if (name !== undefined) names.push(name.trim());
    } catch {
      // unreadable or oversized: not a thread name we can use
    }
  }
  return names;
}

/**
 * Every process's comm and cmdline, read once per collection. Processes that exit meanwhile,
 * and ones we may not read (hidepid), are left out.
 */
async function readProcessTable(procDir: string, errors: SourceError[]): Promise<Array<Omit<HostProcess, 'threadNames'>>> {
  let pids: string[];
  try {
    pids = readdirSync(procDir).filter((p) => PID.test(p));
  } catch (error) {
    errors.push(ioError(procDir, error));
    return [];
  }
  const processes: Array<Omit<HostProcess, 'threadNames'>> = [];
  for (const pid of pids) {
    await pauseForIo();
    try {
      const comm = readBounded(join(procDir, pid, 'comm'), COMM_MAX_BYTES);
      const cmdline = comm === undefined ? undefined : readBounded(join(procDir, pid, 'cmdline'), CMDLINE_MAX_BYTES);
      if (comm === undefined || cmdline === undefined) continue;
      processes.push({ pid: Number(pid), comm: comm.trim(), cmdline: cmdline.split('\0').filter((a) => a !== '') });
    } catch {
      // exited, unreadable, or a cmdline past the cap: not a VMM we can use
    }
  }
  return processes;
}

/**
 * All Kata sandboxes of the node. Never throws: what could not be read is in `errors`.
 *
 * The state files are read first. The host's process table (every /proc/<pid>/comm and cmdline)
 * is read only when some state file does not name its sandbox's hypervisor (needsProcessScan):
 * then, and only then, the processes are the fallback. Otherwise every sandbox has no processes.
 */
export async function discoverSandboxes(options: SandboxDiscoveryOptions = {}): Promise<SandboxDiscovery> {
  const paths = withDefaults(options);
  const errors: SourceError[] = [];
  const goIds = listSandboxIds(paths.kataGoDir, errors);
  const rsIds = listSandboxIds(paths.kataRsDir, errors);
  // After the sandboxes: a sandbox's bundle is written before its shim makes its directory.
  const bundles: BundleIndex = { containerd: listBundles(containerdBundles(paths)), crio: listBundles(paths.crioDir) };

  // One after another: the reads are synchronous and readSandbox pauses for pending I/O.
  let scan = false;
  const found: Omit<RawSandbox, 'processes'>[] = [];
  const known = options.knownFiles;
  const read: ReadFile = known === undefined ? readOptional : (path, maxBytes, local) => known.read(path, maxBytes, local);
  for (const [runtime, ids] of [
    ['go', goIds],
    ['rs', rsIds],
  ] as const) {
    for (const id of ids) {
      const sandbox = await readSandboxAt(runtime, id, paths, errors, bundles, read);
      if (sandbox === undefined) continue;
      found.push(sandbox);
      if (known === undefined ? needsProcessScan([sandbox]) : known.needsScan(sandbox)) scan = true;
      else options.onSettled?.({ ...sandbox, processes: [] });
    }
  }
  known?.endPass();

  if (!scan) return { sandboxes: found.map((s) => ({ ...s, processes: [] })), errors };

  const processTable = await readProcessTable(paths.procDir, errors);
  const threadCache = new Map<number, string[]>();
  const threadsOf = (pid: number): string[] => {
    let names = threadCache.get(pid);
    if (names === undefined) {
      names = readThreadNames(paths.procDir, pid);
      threadCache.set(pid, names);
    }
    return names;
  };

  const sandboxes: RawSandbox[] = [];
  for (const sandbox of found) {
    const mine = processTable.filter((p) => cmdlineMentionsSandbox(p.cmdline, sandbox.id));
    const processes = mine.map((p) => ({ ...p, threadNames: threadsOf(p.pid) }));
    sandboxes.push({ ...sandbox, processes });
  }
  return { sandboxes, errors };
}
