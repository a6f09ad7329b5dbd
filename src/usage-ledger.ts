/**
 * Which pods already have their usage record: what makes a record exactly once per pod, across
 * exporter restarts too (docs/usage-records.md). In memory always; with --usage.state-dir also in
 * a file there, `usage-ledger.log`: one `<uid> <end ms>` line per record written, appended and
 * fsynced after the record itself. A crash between the two writes leaves one record written and
 * not in the ledger, so the next exporter may write it once more (at least once, never lost; the
 * uid tells a duplicate). The ledger keeps a uid for RETENTION_MS and at most MAX_ENTRIES uids,
 * and is compacted when it opens.
 */

import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Long past the kubelet's removal of a finished pod's cgroups: a pod listed again after its entry
 * is dropped has no cgroups left, and a pod the exporter never saw alive gets a record only when
 * its cgroups are still there (usage-recorder.ts).
 */
export const RETENTION_MS = 7 * 24 * 3600 * 1000;
/** A busy node ends a pod every few seconds: a week of them, a few MiB of file. */
export const MAX_ENTRIES = 200_000;
export const LEDGER_FILE = 'usage-ledger.log';
/** A line longer than this is not one the ledger wrote. */
const MAX_LINE_CHARS = 200;
const LINE_RE = /^([0-9A-Za-z-]{1,64}) (\d{1,15})$/;

/** The uids a ledger text holds, with their end times; malformed lines (a torn last write) are skipped. */
export function parseLedger(text: string): Map<string, number> {
  const entries = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.length > MAX_LINE_CHARS) continue;
    const match = LINE_RE.exec(line);
    if (match !== null) entries.set(match[1]!, Number(match[2]));
  }
  return entries;
}

/** The entries to keep at `nowMs`: not older than RETENTION_MS, the newest MAX_ENTRIES. */
export function prune(entries: ReadonlyMap<string, number>, nowMs: number): Map<string, number> {
  const kept = [...entries].filter(([, endMs]) => nowMs - endMs <= RETENTION_MS).sort((a, b) => a[1] - b[1]);
  return new Map(kept.slice(Math.max(0, kept.length - MAX_ENTRIES)));
}

function ledgerLine(uid: string, endMs: number): string {
  return `${uid} ${Math.round(endMs)}\n`;
}

export class UsageLedger {
  private constructor(
    private entries: Map<string, number>,
    private readonly file: FileHandle | undefined,
    private readonly now: () => number,
  ) {}

  /** In memory only when `dir` is undefined; else the file in `dir`, created, read and compacted. */
  static async open(dir: string | undefined, now: () => number): Promise<UsageLedger> {
    if (dir === undefined) return new UsageLedger(new Map(), undefined, now);
    await mkdir(dir, { recursive: true });
    const path = join(dir, LEDGER_FILE);
    let text = '';
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const entries = prune(parseLedger(text), now());
    // Compacted through a new file renamed over the old one: a crash leaves one or the other.
    const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
    const compacted = await open(tmp, 'w');
    try {
      await compacted.writeFile([...entries].map(([uid, endMs]) => ledgerLine(uid, endMs)).join(''));
      await compacted.sync();
    } finally {
      await compacted.close();
    }
    await rename(tmp, path);
    return new UsageLedger(entries, await open(path, 'a'), now);
  }

  has(uid: string): boolean {
    return this.entries.has(uid);
  }

  /**
   * Records that `uid` has its record. `persist` false keeps it in memory only (a pod that got
   * none and never will, so this process does not look again).
   */
  async add(uid: string, endMs: number, persist = true): Promise<void> {
    this.entries.set(uid, endMs);
    if (this.entries.size > MAX_ENTRIES) this.entries = prune(this.entries, this.now());
    if (!persist || this.file === undefined) return;
    await this.file.appendFile(ledgerLine(uid, endMs));
    await this.file.sync();
  }

  async close(): Promise<void> {
    await this.file?.close();
  }
}
