/**
 * Reads the node's container runtime and Kata configuration for the isolation audit, the way each
 * program assembles its own: I/O only, parsing is translate/runtime-config.ts.
 *
 * - containerd: the main file, then its `imports` breadth-first as containerd loads them (relative
 *   to the importing file, `*` globbed), later files overriding earlier ones; at most
 *   MAX_FILES files and MAX_IMPORT_DEPTH levels.
 * - CRI-O (only when containerd's file is absent): the main file, then every file of `<path>.d`
 *   in lexical order (kata-deploy's is `99-kata-deploy`, without a suffix).
 * - Kata: a configuration file, then every file of the `config.d` beside it in lexical order, as
 *   the Go runtime's decodeDropIns does.
 * When any file of a set cannot be read, the whole set is unknown: a handler section may live in it.
 */

import { dirname, isAbsolute, join, normalize } from 'node:path';
import type { Logger } from '../log.ts';
import {
  hasGlobMeta,
  mergeKataConfigs,
  mergeRuntimeHandlers,
  parseContainerdConfig,
  parseCrioConfig,
  parseKataConfig,
  pathMatch,
  type ConfigFileStatus,
  type ConfigKind,
  type KataConfig,
  type KataView,
  type RuntimeHandlers,
  type RuntimeView,
} from '../translate/runtime-config.ts';
import { ConfigFileReader, exists, listDirectory } from './config-files.ts';

/** Files of one set (a runtime's config and its imports or drop-ins) read at most. */
export const MAX_FILES = 32;
/** Levels of containerd imports followed (an import's imports are level 2). */
export const MAX_IMPORT_DEPTH = 3;

export interface RuntimeConfigOptions {
  containerdConfigPath: string;
  crioConfigPath: string;
  logger: Logger;
  maxBytes?: number;
}

/** A set of layered files as read: what could be read, in order, and whether that was all of it. */
interface Layers<T> {
  values: T[];
  files: ConfigFileStatus[];
  complete: boolean;
}

export class RuntimeConfigSource {
  private readonly reader: ConfigFileReader;
  private readonly logged = new Map<string, string>();

  constructor(private readonly options: RuntimeConfigOptions) {
    this.reader = new ConfigFileReader(options.logger, { maxBytes: options.maxBytes });
  }

  /** containerd's configuration when its file exists, else CRI-O's, else none. */
  async runtime(): Promise<RuntimeView> {
    const { containerdConfigPath, crioConfigPath } = this.options;
    if (await exists(containerdConfigPath)) {
      this.note('runtime', 'containerd');
      const read = await this.containerd(containerdConfigPath);
      return { runtime: 'containerd', ...(read.complete ? { handlers: mergeRuntimeHandlers(read.values) } : {}), files: read.files };
    }
    if ((await exists(crioConfigPath)) || (await exists(`${crioConfigPath}.d`))) {
      this.note('runtime', 'crio');
      const read = await this.crio(crioConfigPath);
      return { runtime: 'crio', ...(read.complete ? { handlers: mergeRuntimeHandlers(read.values) } : {}), files: read.files };
    }
    this.note('runtime', 'none', () =>
      this.options.logger.warn(
        { source: 'audit', files: [containerdConfigPath, crioConfigPath] },
        `neither ${containerdConfigPath} (containerd) nor ${crioConfigPath} (CRI-O) exists: whether privileged containers get the host's devices, and whether Kata annotations reach Kata, is unknown; mount the runtime's configuration read-only into the exporter's pod at the same path, or set --path.containerd-config / --path.crio-config`,
      ),
    );
    return {
      runtime: 'none',
      files: [
        { config: 'containerd', path: containerdConfigPath, readable: false },
        { config: 'crio', path: crioConfigPath, readable: false },
      ],
    };
  }

  /** A Kata configuration file and its config.d drop-ins. */
  async kata(path: string): Promise<KataView> {
    const read = await this.layers<KataConfig>('kata', [path], join(dirname(path), 'config.d'), parseKataConfig);
    return { path, ...(read.complete ? { config: mergeKataConfigs(read.values) } : {}), files: read.files };
  }

  private async containerd(main: string): Promise<Layers<RuntimeHandlers>> {
    const result: Layers<RuntimeHandlers> = { values: [], files: [], complete: true };
    const loaded = new Set<string>();
    const pending = [{ path: main, depth: 0 }];
    while (pending.length > 0) {
      const { path, depth } = pending.shift()!;
      if (loaded.has(path)) continue; // containerd skips a file it has loaded (import cycles)
      if (loaded.size >= MAX_FILES) {
        result.complete = false;
        this.limitReached(`containerd imports more than ${MAX_FILES} files`);
        break;
      }
      loaded.add(path);
      const read = await this.reader.read(path, 'containerd', parseContainerdConfig);
      result.files.push({ config: 'containerd', path, readable: read.ok });
      if (!read.ok) {
        result.complete = false;
        continue;
      }
      result.values.push(read.value.runtimes);
      if (read.value.imports.length > 0 && depth >= MAX_IMPORT_DEPTH) {
        result.complete = false;
        this.limitReached(`containerd imports nest deeper than ${MAX_IMPORT_DEPTH} levels (at ${path})`);
        continue;
      }
      for (const entry of read.value.imports) {
        for (const imported of await resolveImport(path, entry)) pending.push({ path: imported, depth: depth + 1 });
      }
    }
    return result;
  }

  private crio(main: string): Promise<Layers<RuntimeHandlers>> {
    return this.layers('crio', [main], `${main}.d`, (text) => parseCrioConfig(text).runtimes, { mainOptional: true });
  }

  /** The main file(s), then every file of a drop-in directory in lexical order. */
  private async layers<T>(
    kind: ConfigKind,
    mains: string[],
    dropInDir: string,
    parse: (text: string) => T,
    options: { mainOptional?: boolean } = {},
  ): Promise<Layers<T>> {
    const result: Layers<T> = { values: [], files: [], complete: true };
    const paths: string[] = [];
    for (const main of mains) if (!options.mainOptional || (await exists(main))) paths.push(main);
    try {
      const names = (await listDirectory(dropInDir)) ?? [];
      if (names.length > MAX_FILES) {
        result.complete = false;
        this.limitReached(`${dropInDir} holds more than ${MAX_FILES} files`);
      }
      paths.push(...names.slice(0, MAX_FILES).map((name) => join(dropInDir, name)));
    } catch (error) {
      result.complete = false;
      result.files.push({ config: kind, path: dropInDir, readable: false });
      this.note(`dir:${dropInDir}`, 'unreadable', () =>
        this.options.logger.warn(
          { source: 'audit', config: kind, file: dropInDir, err: (error as Error).message },
          `${kind} drop-in directory ${dropInDir} cannot be listed: the isolation audit answers unknown where it needs it; mount it read-only into the exporter's pod at the same path`,
        ),
      );
    }
    for (const path of paths) {
      const read = await this.reader.read(path, kind, parse);
      result.files.push({ config: kind, path, readable: read.ok });
      if (read.ok) result.values.push(read.value);
      else result.complete = false;
    }
    return result;
  }

  private limitReached(message: string): void {
    this.note(`limit:${message}`, 'reached', () =>
      this.options.logger.warn(
        { source: 'audit' },
        `${message}: the exporter reads no further and the audit answers unknown where it needs it`,
      ),
    );
  }

  /** Runs `log` when the state under `key` changes (and on the first time, when given). */
  private note(key: string, state: string, log?: () => void): void {
    if (this.logged.get(key) === state) return;
    this.logged.set(key, state);
    log?.();
  }
}

/**
 * containerd's resolveImports: a relative path is relative to the importing file; a path with `*`
 * is globbed (Go's filepath.Glob: only what exists, sorted per directory).
 */
export async function resolveImport(parent: string, entry: string): Promise<string[]> {
  let path = normalize(entry);
  if (!isAbsolute(path)) path = join(dirname(parent), path);
  if (!path.includes('*')) return [path];
  let matches = ['/'];
  let globbing = false;
  for (const part of path.split('/').filter((p) => p !== '')) {
    if (!globbing && !hasGlobMeta(part)) {
      matches = matches.map((dir) => join(dir, part));
      continue;
    }
    // From the first pattern on, each part is matched against what the directory holds.
    globbing = true;
    const next: string[] = [];
    for (const dir of matches) {
      const names = await listDirectory(dir).catch(() => undefined);
      for (const name of names ?? []) if (pathMatch(part, name)) next.push(join(dir, name));
    }
    matches = next.slice(0, MAX_FILES);
  }
  return matches;
}
