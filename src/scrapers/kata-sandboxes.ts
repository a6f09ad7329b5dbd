/**
 * Finds the Kata sandboxes on this node and reads what each one is made of: its directory, its
 * shim socket, the runtime's state file, the CRI bundles that name its pod, and the host processes
 * whose command line names it. I/O only; translate/sandbox-map.ts decodes it.
 *
 * Sandboxes come and go while we read: a directory or process that vanishes (ENOENT, ESRCH) is
 * skipped silently. Every path is passed in, so a fixtures tree reads exactly like a node.
 */

import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import pLimit from 'p-limit';
import type { HostProcess, KataRuntime, RawSandbox } from '../translate/records.ts';
import { cmdlineMentionsSandbox } from '../translate/hypervisor.ts';
import { needsProcessScan } from '../translate/sandbox-map.ts';
import { FileTooLarge, pauseForIo, readTextSync } from './pseudo-fs.ts';
import { SourceError, errorCode } from './source-error.ts';

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
}

export const SANDBOX_DISCOVERY_DEFAULTS = {
  kataGoDir: '/run/vc/sbs',
  kataRsDir: '/run/kata',
  containerdTasksDir: '/run/containerd/io.containerd.runtime.v2.task',
  crioDir: '/run/containers/storage/overlay-containers',
  procDir: '/proc',
  maxFileBytes: 4 * 1024 * 1024,
} as const satisfies Required<Omit<SandboxDiscoveryOptions, 'onSettled'>>;

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
/** Parallel small reads of /proc and the sandbox directories. */
const READ_CONCURRENCY = 32;

const STATE_FILE: Record<KataRuntime, string> = { go: 'persist.json', rs: 'state.json' };
const SOCKET_FILE = 'shim-monitor.sock';

/** Churn, not failure: the file, directory or process went away between listing and reading. */
function isGone(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ESRCH' || code === 'ENOTDIR';
}

function ioError(path: string, error: unknown): SourceError {
  const code = errorCode(error);
  const hint =
    code === 'EACCES' || code === 'EPERM'
      ? 'run the exporter as root: Kata state and bundles are readable by root only'
      : undefined;
  return new SourceError('io', path, `cannot read: ${error instanceof Error ? error.message : String(error)}`, hint);
}

/**
 * Reads a whole file, refusing more than `maxBytes` (FileTooLarge) and anything but a regular
 * file. Undefined when the file is gone. Synchronous underneath: see pseudo-fs.ts.
 */
export async function readBounded(path: string, maxBytes: number): Promise<string | undefined> {
  try {
    return readTextSync(path, maxBytes);
  } catch (error) {
    if (isGone(error)) return undefined;
    throw error;
  }
}

/** readBounded for the optional files of a sandbox: errors are collected, never thrown. */
async function readOptional(path: string, maxBytes: number, errors: SourceError[]): Promise<string | undefined> {
  try {
    return await readBounded(path, maxBytes);
  } catch (error) {
    errors.push(
      error instanceof FileTooLarge
        ? new SourceError('oversize', path, `larger than ${maxBytes} bytes`, 'the file is not a Kata state or OCI bundle, or is corrupt')
        : ioError(path, error),
    );
    return undefined;
  }
}

/** Device and inode of the socket at path (the shim pool's connection identity), or undefined. */
function socketAt(path: string): string | undefined {
  try {
    const found = lstatSync(path, { bigint: true });
    return found.isSocket() ? `${found.dev}:${found.ino}` : undefined;
  } catch {
    return undefined;
  }
}

/** Sandbox directory names under a runtime root; a missing root is a runtime not installed. */
async function listSandboxIds(root: string, errors: SourceError[]): Promise<string[]> {
  try {
    const entries = readdirSync(root, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory() && SANDBOX_ID.test(e.name)).map((e) => e.name);
  } catch (error) {
    if (!isGone(error)) errors.push(ioError(root, error));
    return [];
  }
}

type Paths = Required<Omit<SandboxDiscoveryOptions, 'onSettled'>>;

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
  if (!SANDBOX_ID.test(id)) return undefined;
  const paths: Paths = { ...SANDBOX_DISCOVERY_DEFAULTS, ...definedOptions(options) };
  const dir = join(runtime === 'go' ? paths.kataGoDir : paths.kataRsDir, id);
  const local: SourceError[] = [];
  const socketPath = join(dir, SOCKET_FILE);
  await pauseForIo();
  const [socketIdentity, stateText, containerdConfig, crioConfig] = await Promise.all([
    socketAt(socketPath),
    readOptional(join(dir, STATE_FILE[runtime]), paths.maxFileBytes, local),
    readOptional(join(paths.containerdTasksDir, 'k8s.io', id, 'config.json'), paths.maxFileBytes, local),
    readOptional(join(paths.crioDir, id, 'userdata', 'config.json'), paths.maxFileBytes, local),
  ]);
  try {
    if (!lstatSync(dir).isDirectory()) return undefined;
  } catch {
    return undefined; // vanished: its read errors are churn too
  }
  errors.push(...local);
  const raw: Omit<RawSandbox, 'processes'> = { id, runtime, dir };
  if (socketIdentity !== undefined) {
    raw.socketPath = socketPath;
    raw.socketIdentity = socketIdentity;
  }
  if (stateText !== undefined) raw.stateText = stateText;
  if (containerdConfig !== undefined) raw.containerdConfig = containerdConfig;
  if (crioConfig !== undefined) raw.crioConfig = crioConfig;
  return raw;
}

function definedOptions(options: SandboxDiscoveryOptions): SandboxDiscoveryOptions {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
}

/** Thread names of one process, bounded; empty when it is gone. */
async function readThreadNames(procDir: string, pid: number): Promise<string[]> {
  const taskDir = join(procDir, String(pid), 'task');
  let tids: string[];
  try {
    tids = readdirSync(taskDir).filter((t) => PID.test(t)).slice(0, MAX_THREADS);
  } catch {
    return [];
  }
  const names = await Promise.all(
    tids.map((tid) => readBounded(join(taskDir, tid, 'comm'), COMM_MAX_BYTES).catch(() => undefined)),
  );
  return names.filter((n): n is string => n !== undefined).map((n) => n.trim());
}

/**
 * Every process's comm and cmdline, read once per collection. Processes that exit meanwhile,
 * and ones we may not read (hidepid), are left out.
 */
export async function readProcessTable(
  procDir: string,
  errors: SourceError[],
): Promise<Array<Omit<HostProcess, 'threadNames'>>> {
  let pids: string[];
  try {
    pids = readdirSync(procDir).filter((p) => PID.test(p));
  } catch (error) {
    errors.push(ioError(procDir, error));
    return [];
  }
  const limit = pLimit(READ_CONCURRENCY);
  const processes = await Promise.all(
    pids.map((pid) =>
      limit(async () => {
        try {
          const [comm, cmdline] = await Promise.all([
            readBounded(join(procDir, pid, 'comm'), COMM_MAX_BYTES),
            readBounded(join(procDir, pid, 'cmdline'), CMDLINE_MAX_BYTES),
          ]);
          if (comm === undefined || cmdline === undefined) return undefined;
          return { pid: Number(pid), comm: comm.trim(), cmdline: cmdline.split('\0').filter((a) => a !== '') };
        } catch {
          return undefined; // exited, unreadable, or a cmdline past the cap: not a VMM we can use
        }
      }),
    ),
  );
  return processes.filter((p) => p !== undefined);
}

/**
 * All Kata sandboxes of the node. Never throws: what could not be read is in `errors`.
 *
 * The state files are read first. The host's process table (every /proc/<pid>/comm and cmdline)
 * is read only when some state file does not name its sandbox's hypervisor (needsProcessScan):
 * then, and only then, the processes are the fallback. Otherwise every sandbox has no processes.
 */
export async function discoverSandboxes(options: SandboxDiscoveryOptions = {}): Promise<SandboxDiscovery> {
  const paths: Paths = { ...SANDBOX_DISCOVERY_DEFAULTS, ...definedOptions(options) };
  const errors: SourceError[] = [];
  const [goIds, rsIds] = await Promise.all([listSandboxIds(paths.kataGoDir, errors), listSandboxIds(paths.kataRsDir, errors)]);

  const limit = pLimit(READ_CONCURRENCY);
  const onSettled = options.onSettled;
  let scan = false;
  const read = async (runtime: KataRuntime, id: string): Promise<Omit<RawSandbox, 'processes'> | undefined> => {
    const sandbox = await readSandbox(runtime, id, paths, errors);
    if (sandbox === undefined) return undefined;
    if (needsProcessScan([sandbox])) scan = true;
    else onSettled?.({ ...sandbox, processes: [] });
    return sandbox;
  };
  const found = (
    await Promise.all([...goIds.map((id) => limit(() => read('go', id))), ...rsIds.map((id) => limit(() => read('rs', id)))])
  ).filter((s) => s !== undefined);

  if (!scan) return { sandboxes: found.map((s) => ({ ...s, processes: [] })), errors };

  const processTable = await readProcessTable(paths.procDir, errors);
  const threadCache = new Map<number, Promise<string[]>>();
  const threadsOf = (pid: number): Promise<string[]> => {
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
    const processes = await Promise.all(mine.map(async (p) => ({ ...p, threadNames: await threadsOf(p.pid) })));
    sandboxes.push({ ...sandbox, processes });
  }
  return { sandboxes, errors };
}
