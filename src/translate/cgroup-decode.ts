/**
 * Pure decoding of cgroup files into CgroupUsage (domain.md §3). No I/O: the scraper passes the
 * texts it read, or undefined for a file that does not exist (e.g. v2 without the memory controller).
 *
 * Counters are parsed as bigint: cpuacct.usage is in nanoseconds and passes 2^53 after ~104 days
 * of CPU time, which a busy pod on a large node reaches.
 */
import type { CgroupUsage, CgroupVersion } from './records.ts';

const UINT_RE = /^\d+$/;

/** A single-value file: a non-negative integer, or `max` (limits). Undefined when malformed or empty. */
export function parseSingleValue(text: string): bigint | 'max' | undefined {
  const value = text.trim();
  if (value === 'max') return 'max';
  return UINT_RE.test(value) ? BigInt(value) : undefined;
}

/**
 * A flat-keyed file (`cpu.stat`, `memory.stat`): one `key value` pair per line. Lines that are not
 * a key and an unsigned integer are skipped; the first occurrence of a key wins.
 */
export function parseFlatKeyed(text: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of text.split('\n')) {
    const [key, value, extra] = line.trim().split(/\s+/);
    if (key === undefined || value === undefined || extra !== undefined) continue;
    if (!UINT_RE.test(value) || out.has(key)) continue;
    out.set(key, BigInt(value));
  }
  return out;
}

/**
 * One key of a flat-keyed file: the same answer as `parseFlatKeyed(text).get(key)` without
 * splitting every line (memory.stat has ~40, read for every pod on every collection).
 */
export function flatKeyedValue(text: string, key: string): bigint | undefined {
  if (key === '') return undefined;
  for (let at = text.indexOf(key); at >= 0;) {
    const lineStart = at === 0 ? 0 : text.lastIndexOf('\n', at - 1) + 1;
    const nl = text.indexOf('\n', at);
    const lineEnd = nl < 0 ? text.length : nl;
    if (text.slice(lineStart, at).trim() === '') {
      const [found, value, extra] = text.slice(lineStart, lineEnd).trim().split(/\s+/);
      if (found === key && value !== undefined && extra === undefined && UINT_RE.test(value)) return BigInt(value);
    }
    at = nl < 0 ? -1 : text.indexOf(key, lineEnd);
  }
  return undefined;
}

/** Exact for whole seconds; the fraction keeps sub-unit precision without a float overflow. */
function toSeconds(value: bigint, perSecond: bigint): number {
  return Number(value / perSecond) + Number(value % perSecond) / Number(perSecond);
}

export function nanosecondsToSeconds(ns: bigint): number {
  return toSeconds(ns, 1_000_000_000n);
}

export function microsecondsToSeconds(us: bigint): number {
  return toSeconds(us, 1_000_000n);
}

/** usage − inactive_file, never below 0 (cAdvisor `setMemoryStats`, which the kubelet reports). */
export function workingSetBytes(usage: number | undefined, inactiveFile: number | undefined): number | undefined {
  if (usage === undefined) return undefined;
  if (inactiveFile === undefined) return usage;
  return usage > inactiveFile ? usage - inactiveFile : 0;
}

/** The raw texts of one cgroup's files; undefined = the file does not exist. */
export interface CgroupFileTexts {
  /** v2 `cpu.stat`, or v1 `cpuacct.usage`. */
  cpu?: string;
  /** v2 `memory.current`, or v1 `memory.usage_in_bytes`. */
  memoryUsage?: string;
  /** `memory.stat` of either version. */
  memoryStat?: string;
}

/** The file names each version reads, in the order of CgroupFileTexts. */
export const CGROUP_FILES: Record<CgroupVersion, { cpu: string; memoryUsage: string; memoryStat: string }> = {
  1: { cpu: 'cpuacct.usage', memoryUsage: 'memory.usage_in_bytes', memoryStat: 'memory.stat' },
  2: { cpu: 'cpu.stat', memoryUsage: 'memory.current', memoryStat: 'memory.stat' },
};

/** v1 memory.stat: the hierarchical `total_` key, as cAdvisor uses; v2 counts children already. */
const INACTIVE_FILE_KEY: Record<CgroupVersion, string> = { 1: 'total_inactive_file', 2: 'inactive_file' };

function decodeCpuSeconds(version: CgroupVersion, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (version === 1) {
    const ns = parseSingleValue(text);
    return typeof ns === 'bigint' ? nanosecondsToSeconds(ns) : undefined;
  }
  const us = flatKeyedValue(text, 'usage_usec');
  return us === undefined ? undefined : microsecondsToSeconds(us);
}

function toBytes(value: bigint | 'max' | undefined): number | undefined {
  return typeof value === 'bigint' ? Number(value) : undefined;
}

export function decodeCgroupUsage(path: string, version: CgroupVersion, files: CgroupFileTexts): CgroupUsage {
  const usage: CgroupUsage = { path, version };
  const cpuSeconds = decodeCpuSeconds(version, files.cpu);
  if (cpuSeconds !== undefined) usage.cpuSeconds = cpuSeconds;
  const memoryUsageBytes = files.memoryUsage === undefined ? undefined : toBytes(parseSingleValue(files.memoryUsage));
  if (memoryUsageBytes !== undefined) usage.memoryUsageBytes = memoryUsageBytes;
  const inactive = files.memoryStat === undefined ? undefined : toBytes(flatKeyedValue(files.memoryStat, INACTIVE_FILE_KEY[version]));
  if (inactive !== undefined) usage.memoryInactiveFileBytes = inactive;
  const workingSet = workingSetBytes(memoryUsageBytes, inactive);
  if (workingSet !== undefined) usage.memoryWorkingSetBytes = workingSet;
  return usage;
}
