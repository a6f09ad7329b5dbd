/**
 * The node's container runtime and Kata configuration files (TOML) → the few typed facts the
 * isolation audit needs. Pure: scrapers/runtime-config.ts reads the files and follows imports and
 * drop-ins; this module parses one file's text and merges layers.
 *
 * Where each fact lives:
 * - containerd (`/etc/containerd/config.toml`): the runtime handler `<h>` is the table
 *   `plugins.<cri>.containerd.runtimes.<h>`, with `<cri>` = `cri` (config version 1),
 *   `"io.containerd.grpc.v1.cri"` (version 2, containerd 1.x) or `"io.containerd.cri.v1.runtime"`
 *   (version 3, containerd 2.x). Keys: `privileged_without_host_devices` (default false),
 *   `pod_annotations` (globs of the pod annotations passed to the runtime, default none) and
 *   `options.ConfigPath` (the handler's own Kata configuration, as kata-deploy sets it).
 * - CRI-O (`/etc/crio/crio.conf` and `crio.conf.d/`): `crio.runtime.runtimes.<h>`, with
 *   `privileged_without_host_devices` and `runtime_config_path`.
 * - Kata (`configuration*.toml` and its `config.d/`): `hypervisor.<hv>.enable_annotations`, the
 *   regular expressions a hypervisor annotation's name must match to be applied.
 */

import { parse, TomlError } from 'smol-toml';

export type ConfigKind = 'containerd' | 'crio' | 'kata';

/** What one runtime handler's section says; undefined fields were not set. */
export interface RuntimeHandlerConfig {
  privilegedWithoutHostDevices?: boolean;
  /** containerd's `pod_annotations` globs. */
  podAnnotations?: string[];
  /** containerd `options.ConfigPath`, CRI-O `runtime_config_path`. */
  kataConfigPath?: string;
}

export type RuntimeHandlers = Record<string, RuntimeHandlerConfig>;

export interface ContainerdFile {
  /** `version`; undefined when the file has none (an old file, or a drop-in). */
  version?: number;
  /** `imports`, as written (relative, absolute or globs). */
  imports: string[];
  runtimes: RuntimeHandlers;
}

export interface KataConfig {
  /** `[hypervisor.<name>]` sections, by name. */
  hypervisors: Record<string, { enableAnnotations?: string[] }>;
}

/** Whether one file the audit needed could be read and parsed this collection. */
export interface ConfigFileStatus {
  config: ConfigKind;
  path: string;
  readable: boolean;
}

/** The node's container runtime configuration, as far as it could be read. */
export interface RuntimeView {
  /** Which configuration exists on the node: containerd's first, else CRI-O's. */
  runtime: 'containerd' | 'crio' | 'none';
  /** Runtime handler sections, merged over every file; undefined when not all could be read. */
  handlers?: ReadonlyMap<string, RuntimeHandlerConfig>;
  files: ConfigFileStatus[];
}

/** One Kata configuration file with its config.d drop-ins. */
export interface KataView {
  path: string;
  /** Undefined when not every file could be read. */
  config?: KataConfig;
  files: ConfigFileStatus[];
}

/** A file that is TOML but not the shape its program expects (the program would refuse it too). */
export class ConfigShapeError extends Error {
  override name = 'ConfigShapeError';
}

type Table = Record<string, unknown>;

function table(value: unknown): Table | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date) ? (value as Table) : undefined;
}

function own(t: Table | undefined, key: string): unknown {
  return t !== undefined && Object.hasOwn(t, key) ? t[key] : undefined;
}

/** Text that is not TOML; the message is one line (the parser's own carries a code excerpt). */
export class ConfigSyntaxError extends Error {
  override name = 'ConfigSyntaxError';

  constructor(
    readonly line: number,
    readonly column: number,
    reason: string,
  ) {
    super(`not valid TOML at line ${line}, column ${column}: ${reason}`);
  }
}

function parseToml(text: string): Table {
  try {
    // Keys such as __proto__ are dropped: the text comes from a host file, not from us.
    return parse(text, { unsafeKeyBehaviour: 'drop', maxDepth: 64 }) as Table;
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    const reason = error.message.split('\n')[0]!.replace(/^Invalid TOML document: /, '');
    throw new ConfigSyntaxError(error.line, error.column, reason);
  }
}

function optionalBoolean(t: Table, key: string, where: string): boolean | undefined {
  const value = own(t, key);
  if (value === undefined || typeof value === 'boolean') return value;
  throw new ConfigShapeError(`${where}.${key} must be true or false`);
}

function optionalString(t: Table | undefined, key: string, where: string): string | undefined {
  const value = own(t, key);
  if (value === undefined || typeof value === 'string') return value;
  throw new ConfigShapeError(`${where}.${key} must be a string`);
}

function optionalStrings(t: Table, key: string, where: string): string[] | undefined {
  const value = own(t, key);
  if (value === undefined) return undefined;
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  throw new ConfigShapeError(`${where}.${key} must be a list of strings`);
}

/** The sub-tables of a table, each with its dotted location for error messages. */
function subTables(t: Table | undefined, where: string): [string, Table, string][] {
  if (t === undefined) return [];
  return Object.keys(t).flatMap((name) => {
    const sub = table(t[name]);
    return sub === undefined ? [] : [[name, sub, `${where}.${name}`] as [string, Table, string]];
  });
}

/** A table at a dotted path, or undefined; a non-table value on the way is a shape error. */
function tableAt(root: Table, path: readonly string[], where: string): Table | undefined {
  let current: Table | undefined = root;
  for (const key of path) {
    const value = own(current, key);
    if (value === undefined) return undefined;
    current = table(value);
    if (current === undefined) throw new ConfigShapeError(`${where}: ${path.join('.')} must be a table`);
  }
  return current;
}

// ─── containerd ──────────────────────────────────────────────────────────────

const CONTAINERD_CRI_PLUGIN: Record<number, string> = {
  1: 'cri',
  2: 'io.containerd.grpc.v1.cri',
  3: 'io.containerd.cri.v1.runtime',
};

export function parseContainerdConfig(text: string): ContainerdFile {
  const root = parseToml(text);
  const rawVersion = own(root, 'version');
  if (rawVersion !== undefined && !(typeof rawVersion === 'number' && rawVersion in CONTAINERD_CRI_PLUGIN)) {
    throw new ConfigShapeError(`version = ${String(rawVersion)} is not a containerd config version this exporter reads (1, 2 or 3)`);
  }
  const version = rawVersion as number | undefined;
  const imports = optionalStrings(root, 'imports', 'the top level') ?? [];
  // Without `version` the file is an old version 1 file, or a drop-in whose version is its
  // importer's: look under every CRI plugin id, the newest last so that it wins.
  const pluginIds = version === undefined ? Object.values(CONTAINERD_CRI_PLUGIN) : [CONTAINERD_CRI_PLUGIN[version]!];
  const runtimes: RuntimeHandlers = {};
  for (const id of pluginIds) {
    const path = ['plugins', id, 'containerd', 'runtimes'];
    const where = `plugins."${id}".containerd.runtimes`;
    for (const [handler, section, at] of subTables(tableAt(root, path, where), where)) {
      const entry: RuntimeHandlerConfig = {};
      const privileged = optionalBoolean(section, 'privileged_without_host_devices', at);
      const podAnnotations = optionalStrings(section, 'pod_annotations', at);
      const options = own(section, 'options');
      if (options !== undefined && table(options) === undefined) throw new ConfigShapeError(`${at}.options must be a table`);
      const kataConfigPath = optionalString(table(options), 'ConfigPath', `${at}.options`);
      if (privileged !== undefined) entry.privilegedWithoutHostDevices = privileged;
      if (podAnnotations !== undefined) entry.podAnnotations = podAnnotations;
      if (kataConfigPath !== undefined) entry.kataConfigPath = kataConfigPath;
      runtimes[handler] = { ...runtimes[handler], ...entry };
    }
  }
  return { ...(version === undefined ? {} : { version }), imports, runtimes };
}

// ─── CRI-O ───────────────────────────────────────────────────────────────────

export function parseCrioConfig(text: string): { runtimes: RuntimeHandlers } {
  const root = parseToml(text);
  const where = 'crio.runtime.runtimes';
  const runtimes: RuntimeHandlers = {};
  for (const [handler, section, at] of subTables(tableAt(root, ['crio', 'runtime', 'runtimes'], where), where)) {
    const entry: RuntimeHandlerConfig = {};
    const privileged = optionalBoolean(section, 'privileged_without_host_devices', at);
    const kataConfigPath = optionalString(section, 'runtime_config_path', at);
    if (privileged !== undefined) entry.privilegedWithoutHostDevices = privileged;
    if (kataConfigPath !== undefined) entry.kataConfigPath = kataConfigPath;
    runtimes[handler] = entry;
  }
  return { runtimes };
}

/** Layers in load order: a later layer's keys override an earlier one's, key by key. */
export function mergeRuntimeHandlers(layers: readonly RuntimeHandlers[]): Map<string, RuntimeHandlerConfig> {
  const merged = new Map<string, RuntimeHandlerConfig>();
  for (const layer of layers) {
    for (const [handler, entry] of Object.entries(layer)) merged.set(handler, { ...merged.get(handler), ...entry });
  }
  return merged;
}

// ─── Kata ────────────────────────────────────────────────────────────────────

export function parseKataConfig(text: string): KataConfig {
  const root = parseToml(text);
  const hypervisors: KataConfig['hypervisors'] = {};
  for (const [name, section, at] of subTables(tableAt(root, ['hypervisor'], 'hypervisor'), 'hypervisor')) {
    const enableAnnotations = optionalStrings(section, 'enable_annotations', at);
    hypervisors[name] = enableAnnotations === undefined ? {} : { enableAnnotations };
  }
  return { hypervisors };
}

/** The main file then its config.d drop-ins: a later `enable_annotations` replaces an earlier one. */
export function mergeKataConfigs(layers: readonly KataConfig[]): KataConfig {
  const hypervisors: KataConfig['hypervisors'] = {};
  for (const layer of layers) {
    for (const [name, section] of Object.entries(layer.hypervisors)) hypervisors[name] = { ...hypervisors[name], ...section };
  }
  return { hypervisors };
}

// ─── globs (Go's path.Match, as containerd matches pod_annotations and imports) ─

type GlobPart =
  { kind: 'star' } | { kind: 'any' } | { kind: 'char'; char: string } | { kind: 'class'; negated: boolean; ranges: [string, string][] };

/** Parses a path.Match pattern; undefined when it is malformed (Go's ErrBadPattern). */
function parseGlob(pattern: string): GlobPart[] | undefined {
  const chars = [...pattern];
  const parts: GlobPart[] = [];
  let i = 0;
  // One class character: `\x` escapes; an unescaped `-` or `]` is malformed here.
  const classChar = (): string | undefined => {
    let c = chars[i];
    if (c === undefined || c === '-' || c === ']') return undefined;
    if (c === '\\') c = chars[++i];
    if (c === undefined) return undefined;
    i++;
    return c;
  };
  while (i < chars.length) {
    const c = chars[i]!;
    if (c === '*') {
      parts.push({ kind: 'star' });
      i++;
    } else if (c === '?') {
      parts.push({ kind: 'any' });
      i++;
    } else if (c === '\\') {
      const escaped = chars[i + 1];
      if (escaped === undefined) return undefined;
      parts.push({ kind: 'char', char: escaped });
      i += 2;
    } else if (c === '[') {
      i++;
      const negated = chars[i] === '^';
      if (negated) i++;
      const ranges: [string, string][] = [];
      while (!(chars[i] === ']' && ranges.length > 0)) {
        const lo = classChar();
        if (lo === undefined) return undefined;
        let hi = lo;
        if (chars[i] === '-') {
          i++;
          const end = classChar();
          if (end === undefined) return undefined;
          hi = end;
        }
        ranges.push([lo, hi]);
      }
      i++; // the closing ]
      parts.push({ kind: 'class', negated, ranges });
    } else {
      parts.push({ kind: 'char', char: c });
      i++;
    }
  }
  return parts;
}

function partMatches(part: Exclude<GlobPart, { kind: 'star' }>, c: string): boolean {
  switch (part.kind) {
    case 'any':
      return c !== '/';
    case 'char':
      return c === part.char;
    case 'class': {
      const inside = part.ranges.some(([lo, hi]) => lo <= c && c <= hi);
      return inside !== part.negated;
    }
  }
}

/**
 * Go's path.Match: the whole name must match; `*` and `?` never match `/`. A malformed pattern
 * matches nothing (containerd ignores the error, so the annotation is not passed).
 */
export function pathMatch(pattern: string, name: string): boolean {
  const parts = parseGlob(pattern);
  if (parts === undefined) return false;
  const chars = [...name];
  // reachable[j]: the parts so far can consume exactly the first j characters.
  let reachable = chars.map(() => false).concat(false);
  reachable[0] = true;
  for (const part of parts) {
    const next = reachable.map(() => false);
    for (let j = 0; j <= chars.length; j++) {
      if (!reachable[j]) continue;
      if (part.kind === 'star') {
        next[j] = true;
        for (let k = j; k < chars.length && chars[k] !== '/'; k++) next[k + 1] = true;
      } else if (j < chars.length && partMatches(part, chars[j]!)) {
        next[j + 1] = true;
      }
    }
    reachable = next;
  }
  return reachable[chars.length] === true;
}

/** Whether a path component is a pattern rather than a name (as Go's filepath.Glob decides). */
export function hasGlobMeta(component: string): boolean {
  return /[*?[\\]/.test(component);
}
