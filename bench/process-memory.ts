/** This process's memory as the kernel counts it, from /proc/self/status (Linux). */
import { readFileSync } from 'node:fs';

export interface ProcessMemory {
  /** Resident now, and its anonymous (heap, malloc, stacks) and file-backed (node binary, libraries) parts. */
  rssBytes: number;
  anonBytes: number;
  fileBytes: number;
  /**
   * The resident high-water mark (VmHWM). Not getrusage's maxRSS: on Linux that survives execve,
   * so a forked child would report its parent's peak.
   */
  peakRssBytes: number;
}

export function processMemory(): ProcessMemory {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
  return { rssBytes: kib('VmRSS'), anonBytes: kib('RssAnon'), fileBytes: kib('RssFile'), peakRssBytes: kib('VmHWM') };
}

/** Resident bytes per mapped file (or [heap], [stack], anonymous), largest first: where RSS sits. */
export function residentByMapping(): { mapping: string; rssBytes: number }[] {
  const totals = new Map<string, number>();
  let current = '';
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) current = header[1] || '(anonymous)';
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) totals.set(current, (totals.get(current) ?? 0) + Number(rss[1]) * 1024);
  }
  return [...totals].map(([mapping, rssBytes]) => ({ mapping, rssBytes })).sort((a, b) => b.rssBytes - a.rssBytes);
}
