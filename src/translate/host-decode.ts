/**
 * Pure decoding of the host files behind the per-pod host families beyond CPU and memory usage
 * (domain.md §5): throttling, memory limit, OOM kills, pressure, block I/O, and the network
 * counters of the VMM's network namespace. No I/O: the scrapers pass the texts they read.
 *
 * Every file here is the kernel's own text (host truth), but a misbehaving kernel or a planted
 * file must still not crash the exporter: lines that do not parse are skipped, and line counts
 * are bounded.
 */
import { flatKeyedValue, microsecondsToSeconds, nanosecondsToSeconds, parseSingleValue } from './cgroup-decode.ts';
import {
  PRESSURE_RESOURCES,
  type CgroupVersion,
  type HostCgroupFields,
  type HostPressure,
  type PressureKind,
  type PressureResource,
} from './records.ts';

/** More lines than any device or interface list the kernel prints for one cgroup or namespace. */
export const MAX_LINES = 4096;

/** v2 `cpu.stat` `throttled_usec` (µs) or v1 `cpu.stat` `throttled_time` (ns), in seconds. */
export function decodeThrottledSeconds(version: CgroupVersion, cpuStat: string): number | undefined {
  if (version === 2) {
    const us = flatKeyedValue(cpuStat, 'throttled_usec');
    return us === undefined ? undefined : microsecondsToSeconds(us);
  }
  const ns = flatKeyedValue(cpuStat, 'throttled_time');
  return ns === undefined ? undefined : nanosecondsToSeconds(ns);
}

/**
 * v1 has no "max": an unlimited memory.limit_in_bytes reads PAGE_COUNTER_MAX × page size
 * (9223372036854771712 on 4 KiB pages). Anything from 2^60 bytes (1 EiB) up is no limit.
 */
const V1_UNLIMITED_FROM = 2n ** 60n;

/** `memory.max` (v2) or `memory.limit_in_bytes` (v1) in bytes; undefined when unlimited or malformed. */
export function decodeMemoryLimit(text: string): number | undefined {
  const value = parseSingleValue(text);
  if (typeof value !== 'bigint' || value >= V1_UNLIMITED_FROM) return undefined;
  return Number(value);
}

/** `oom_kill` of v2 `memory.events` or of v1 `memory.oom_control` (kernel 4.13+): both flat-keyed. */
export function decodeOomKills(text: string): number | undefined {
  const value = flatKeyedValue(text, 'oom_kill');
  return value === undefined ? undefined : Number(value);
}

const PRESSURE_LINE_RE = /^(some|full) avg10=\d+(?:\.\d+)? avg60=\d+(?:\.\d+)? avg300=\d+(?:\.\d+)? total=(\d+)$/;

/** A `*.pressure` file: the `total=` (µs) of its `some` and `full` lines, in seconds. */
export function decodePressure(text: string): Partial<Record<PressureKind, number>> {
  const out: Partial<Record<PressureKind, number>> = {};
  for (const line of text.split('\n', 8)) {
    const match = PRESSURE_LINE_RE.exec(line.trim());
    if (match === null) continue;
    const kind = match[1] as PressureKind;
    out[kind] ??= microsecondsToSeconds(BigInt(match[2]!));
  }
  return out;
}

/** The pressure files of one cgroup, by resource; a missing or malformed file leaves its resource out. */
export function decodePressureFiles(texts: Partial<Record<PressureResource, string>>): HostPressure {
  const out: HostPressure = {};
  for (const [resource, text] of Object.entries(texts) as [PressureResource, string | undefined][]) {
    if (text === undefined) continue;
    const decoded = decodePressure(text);
    if (decoded.some !== undefined || decoded.full !== undefined) out[resource] = decoded;
  }
  return out;
}

export interface IoBytes {
  readBytes: number;
  writtenBytes: number;
}

const DEVICE_RE = /^\d+:\d+$/;
const UINT_RE = /^\d+$/;
const IO_STAT_KEYS = { rbytes: 'readBytes', wbytes: 'writtenBytes' } as const;
const V1_IO_KEYS = { Read: 'readBytes', Write: 'writtenBytes' } as const;

/**
 * v2 `io.stat` (`<maj:min> rbytes=… wbytes=… rios=… …`, one line per device) or v1
 * `blkio.throttle.io_service_bytes_recursive` (`<maj:min> Read|Write|Sync|Async|Discard|Total <n>`
 * per device, then a bare `Total <n>`), summed over every device. An empty file is zero bytes
 * (no I/O yet); undefined only for a file with no line of the expected shape at all.
 */
export function decodeIoBytes(version: CgroupVersion, text: string): IoBytes | undefined {
  const sums = { readBytes: 0n, writtenBytes: 0n };
  let recognised = text.trim() === '';
  const lines = text.split('\n', MAX_LINES);
  for (const line of lines) {
    const fields = line.trim().split(/\s+/);
    if (!DEVICE_RE.test(fields[0] ?? '')) {
      if (version === 1 && fields[0] === 'Total') recognised = true;
      continue;
    }
    if (version === 2) {
      for (const field of fields.slice(1)) {
        const eq = field.indexOf('=');
        const key = IO_STAT_KEYS[field.slice(0, eq) as keyof typeof IO_STAT_KEYS];
        const value = field.slice(eq + 1);
        if (key === undefined || !UINT_RE.test(value)) continue;
        sums[key] += BigInt(value);
        recognised = true;
      }
    } else {
      const key = V1_IO_KEYS[fields[1] as keyof typeof V1_IO_KEYS];
      if (key === undefined || fields.length !== 3 || !UINT_RE.test(fields[2]!)) continue;
      sums[key] += BigInt(fields[2]!);
      recognised = true;
    }
  }
  return recognised ? { readBytes: Number(sums.readBytes), writtenBytes: Number(sums.writtenBytes) } : undefined;
}

/** The pod's traffic as the host counted it in the VMM's network namespace. */
export interface NetDevSums {
  receiveBytes: number;
  transmitBytes: number;
  /** Every interface name in the file (lo and Kata's plumbing included), sorted. */
  interfaces: string[];
}

/**
 * Interfaces that are not the pod's own traffic: loopback, and what Kata creates inside the pod's
 * network namespace to reach the VM (`tap<n>_kata`, `br<n>_kata`, `macvtap<n>_kata`: names end
 * in `_kata`, virtcontainers network.go). The CNI interface carries the same bytes once; the tap
 * a second time, so counting it would double the traffic.
 */
export function isPodInterface(name: string): boolean {
  return name !== 'lo' && !name.endsWith('_kata');
}

/**
 * `/proc/<pid>/net/dev`: two header lines, then `<name>: rx_bytes rx_packets … (8 fields) tx_bytes …`.
 * Direction is the namespace's own, which is the pod's: the CNI interface's receive is what the
 * pod received. Undefined when no interface line parses.
 */
export function decodeNetDev(text: string): NetDevSums | undefined {
  let rx = 0n;
  let tx = 0n;
  const interfaces: string[] = [];
  for (const line of text.split('\n', MAX_LINES)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const fields = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/);
    if (name === '' || name.includes('|') || fields.length < 16 || !UINT_RE.test(fields[0]!) || !UINT_RE.test(fields[8]!)) continue;
    interfaces.push(name);
    if (!isPodInterface(name)) continue;
    rx += BigInt(fields[0]!);
    tx += BigInt(fields[8]!);
  }
  if (interfaces.length === 0) return undefined;
  return { receiveBytes: Number(rx), transmitBytes: Number(tx), interfaces: interfaces.sort() };
}

/**
 * Whether a process's network namespace is the host's: the same interface names as the host
 * init's. A VMM in the host namespace (e.g. a shim whose main thread never entered the pod's)
 * would report the whole node's traffic as the pod's.
 */
export function isHostNamespace(vmm: NetDevSums, host: NetDevSums | undefined): boolean {
  if (host === undefined) return false;
  return vmm.interfaces.length === host.interfaces.length && vmm.interfaces.every((name, i) => name === host.interfaces[i]);
}

/** The host file groups read for one cgroup (a pod cgroup reads all enabled ones, an overhead cgroup the summable ones). */
export interface HostReads {
  throttling: boolean;
  memoryLimit: boolean;
  oomKills: boolean;
  pressure: boolean;
  disk: boolean;
}

export const NO_HOST_READS: HostReads = { throttling: false, memoryLimit: false, oomKills: false, pressure: false, disk: false };

/** The raw texts of a cgroup's host files; undefined = not read or not there. */
export interface HostFileTexts {
  /** The text of the file throttling is read from (v2: the cpu.stat already read for usage). */
  cpuStat?: string;
  memoryLimit?: string;
  memoryEvents?: string;
  /**
   * v1 only: memory.oom_control of each cgroup below, since v1 counts an OOM kill only in the
   * victim's own cgroup (v2 memory.events is hierarchical). A Kata pod's VMM is in a child.
   */
  memoryEventsBelow?: string[];
  pressure?: Partial<Record<PressureResource, string>>;
  io?: string;
}

/** The file names each version reads for each host group. */
export const HOST_FILES: Record<CgroupVersion, { cpuStat: string; memoryLimit: string; memoryEvents: string; io: string }> = {
  1: {
    cpuStat: 'cpu.stat',
    memoryLimit: 'memory.limit_in_bytes',
    memoryEvents: 'memory.oom_control',
    io: 'blkio.throttle.io_service_bytes_recursive',
  },
  2: { cpuStat: 'cpu.stat', memoryLimit: 'memory.max', memoryEvents: 'memory.events', io: 'io.stat' },
};

export function pressureFileName(resource: PressureResource): string {
  return `${resource}.pressure`;
}

/** The host fields of one cgroup from the texts read; `missing` names what was wanted but not decodable. */
export function decodeHostFiles(
  version: CgroupVersion,
  reads: HostReads,
  texts: HostFileTexts,
): { fields: HostCgroupFields; missing: string[] } {
  const names = HOST_FILES[version];
  const fields: HostCgroupFields = {};
  const missing: string[] = [];
  if (reads.throttling) {
    const seconds = texts.cpuStat === undefined ? undefined : decodeThrottledSeconds(version, texts.cpuStat);
    if (seconds === undefined) missing.push(names.cpuStat);
    else fields.cpuThrottledSeconds = seconds;
  }
  if (reads.memoryLimit) {
    // Unlimited is a valid answer (no series); only an absent file is missing.
    if (texts.memoryLimit === undefined) missing.push(names.memoryLimit);
    else {
      const limit = decodeMemoryLimit(texts.memoryLimit);
      if (limit !== undefined) fields.memoryLimitBytes = limit;
    }
  }
  if (reads.oomKills) {
    const kills = texts.memoryEvents === undefined ? undefined : decodeOomKills(texts.memoryEvents);
    if (kills === undefined) missing.push(names.memoryEvents);
    // A child that went or lacks the key adds nothing: its kills were its own cgroup's.
    else fields.oomKills = (texts.memoryEventsBelow ?? []).reduce((sum, text) => sum + (decodeOomKills(text) ?? 0), kills);
  }
  if (reads.pressure) {
    const pressure = decodePressureFiles(texts.pressure ?? {});
    for (const resource of PRESSURE_RESOURCES) if (pressure[resource] === undefined) missing.push(pressureFileName(resource));
    if (Object.keys(pressure).length > 0) fields.pressure = pressure;
  }
  if (reads.disk) {
    const io = texts.io === undefined ? undefined : decodeIoBytes(version, texts.io);
    if (io === undefined) missing.push(names.io);
    else {
      fields.diskReadBytes = io.readBytes;
      fields.diskWrittenBytes = io.writtenBytes;
    }
  }
  return { fields, missing };
}
