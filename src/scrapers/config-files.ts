/**
 * Small host configuration files, read for the isolation audit. Each collection stats the file
 * and re-reads and re-parses it only when its identity changed (file-identity.ts), so a node
 * reconfiguration shows without a restart and a steady node costs one stat per file. A file is
 * never read past a size bound.
 *
 * A missing, unreadable, oversized or invalid file is an answer, not an exception. Each file's
 * state change is logged once (not once per collection), naming the file and what to do.
 */

import { readdir, stat } from 'node:fs/promises';
import type { Logger } from '../log.ts';
import type { ConfigKind } from '../translate/runtime-config.ts';
import { identityOf, type FileIdentity } from '../file-identity.ts';
import { FileTooLarge, readTextSync } from './pseudo-fs.ts';
import { errorCode, isGone } from './source-error.ts';

export type FileProblem = 'missing' | 'unreadable' | 'too_large' | 'invalid';

export type FileRead<T> = { path: string; ok: true; value: T } | { path: string; ok: false; problem: FileProblem; message: string };

export const CONFIG_FILE_MAX_BYTES = 1024 * 1024;

/** What an operator does about an unreadable file, per kind. */
const MOUNT_HINTS: Record<ConfigKind, string> = {
  containerd: "mount it (and the files it imports) read-only into the exporter's pod at the same path, or set --path.containerd-config",
  crio: "mount /etc/crio read-only into the exporter's pod at the same path, or set --path.crio-config",
  kata: 'mount the Kata configuration directory (kata-deploy: /opt/kata/share/defaults/kata-containers) read-only at the same path, or set --path.kata-config for handlers that name none',
};

const INVALID_HINT = 'the runtime reads the same file: fix it there; until it parses, the audit answers unknown where it needs it';

/** Whether something is at the path (a file the exporter may still fail to read counts). */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    return !isGone(error);
  }
}

/** The entry names of a directory, sorted; undefined when it does not exist; throws when unreadable. */
export async function listDirectory(dir: string): Promise<string[] | undefined> {
  try {
    return (await readdir(dir)).sort();
  } catch (error) {
    if (isGone(error)) return undefined;
    throw error;
  }
}

interface Cached {
  identity: FileIdentity;
  result: FileRead<unknown>;
}

export class ConfigFileReader {
  private readonly cache = new Map<string, Cached>();
  private readonly states = new Map<string, string>();
  private readonly maxBytes: number;

  constructor(
    private readonly logger: Logger,
    options: { maxBytes?: number } = {},
  ) {
    this.maxBytes = options.maxBytes ?? CONFIG_FILE_MAX_BYTES;
  }

  /** Reads and parses a file (parse throws on invalid content), from cache while it is unchanged. */
  async read<T>(path: string, kind: ConfigKind, parse: (text: string) => T): Promise<FileRead<T>> {
    const key = `${kind}\0${path}`;
    let info;
    try {
      info = await stat(path, { bigint: true });
    } catch (error) {
      return this.settle(key, kind, this.failure(path, isGone(error) ? 'missing' : 'unreadable', (error as Error).message));
    }
    if (!info.isFile()) return this.settle(key, kind, this.failure(path, 'unreadable', 'not a regular file'));
    if (info.size > this.maxBytes) {
      return this.settle(
        key,
        kind,
        this.failure(path, 'too_large', `${info.size} bytes, more than the ${this.maxBytes} this exporter reads`),
      );
    }
    const identity = identityOf(info);
    const cached = this.cache.get(key);
    if (cached?.identity === identity) return cached.result as FileRead<T>;

    let result: FileRead<T>;
    try {
      // Bounded again: it may have grown since the stat. Read once per change of the file.
      result = { path, ok: true, value: parse(readTextSync(path, this.maxBytes)) };
    } catch (error) {
      const problem = error instanceof FileTooLarge ? 'too_large' : errorCode(error) !== undefined ? 'unreadable' : 'invalid';
      result = this.failure(path, problem, (error as Error).message);
    }
    this.cache.set(key, { identity, result });
    return this.settle(key, kind, result);
  }

  private failure(path: string, problem: FileProblem, message: string): FileRead<never> {
    return { path, ok: false, problem, message };
  }

  /** Logs a state change of this file, once. */
  private settle<T>(key: string, kind: ConfigKind, result: FileRead<T>): FileRead<T> {
    const state = result.ok ? 'ok' : result.problem;
    const previous = this.states.get(key);
    if (previous === state) return result;
    this.states.set(key, state);
    if (!result.ok) {
      this.logger.warn(
        {
          source: 'audit',
          config: kind,
          file: result.path,
          problem: result.problem,
          err: result.message,
          hint: result.problem === 'invalid' ? INVALID_HINT : MOUNT_HINTS[kind],
        },
        `${kind} configuration ${result.path} is ${result.problem.replace('_', ' ')}: the isolation audit answers unknown where it needs it`,
      );
    } else if (previous !== undefined) {
      this.logger.info({ source: 'audit', config: kind, file: result.path }, `${kind} configuration ${result.path} is readable again`);
    }
    return result;
  }
}
