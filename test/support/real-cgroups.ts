/**
 * Real kernel cgroups for the tests that run as root (test support: it never ships in the image): create a cgroup at the same
 * relative path in several hierarchies (e.g. v1 cpuacct and memory, and the v2 unified mount),
 * attach processes, and tear down only what was created here.
 */
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { errorCode } from '../../src/scrapers/source-error.ts';
import { normaliseCgroupPath } from '../../src/translate/cgroup-paths.ts';

export interface DestroyReport {
  /** Directories this cgroup created and removed. */
  removed: string[];
  /** Directories it created but had to leave: someone else's cgroup appeared inside (ENOTEMPTY/EBUSY). */
  leftBehind: string[];
}

export class RealCgroup {
  private constructor(
    /** Hierarchy-relative path, e.g. /kubepods/burstable/pod<uid>. */
    readonly relPath: string,
    /** Mount points (hierarchy roots) the cgroup was created in. */
    readonly hierarchies: readonly string[],
    /** Every directory created here, parents before children (pre-existing ones are not listed). */
    private readonly created: string[],
  ) {}

  /** The absolute leaf directory in each hierarchy. */
  get dirs(): string[] {
    return this.hierarchies.map((h) => join(h, this.relPath));
  }

  /**
   * Creates `relPath` in each hierarchy, one level at a time, so that levels that existed before
   * (a kubelet's `kubepods`, another test's QoS level) are never claimed or removed later.
   */
  static async create(hierarchies: readonly string[], relPath: string): Promise<RealCgroup> {
    const rel = normaliseCgroupPath(relPath);
    if (rel === undefined || rel === '/') throw new Error(`not a cgroup path below a hierarchy root: ${relPath}`);
    const created: string[] = [];
    const cgroup = new RealCgroup(rel, hierarchies, created);
    try {
      for (const hierarchy of hierarchies) {
        let dir = hierarchy;
        for (const step of rel.split('/').filter(Boolean)) {
          dir = join(dir, step);
          try {
            await mkdir(dir);
            created.push(dir);
          } catch (err) {
            if (errorCode(err) !== 'EEXIST') throw err;
          }
        }
      }
    } catch (err) {
      await cgroup.destroy();
      throw err;
    }
    return cgroup;
  }

  /** Moves a process (all its threads) into the cgroup in every hierarchy. */
  async attach(pid: number): Promise<void> {
    for (const dir of this.dirs) await writeFile(join(dir, 'cgroup.procs'), `${pid}\n`);
  }

  /** The pids in the cgroup of the first hierarchy. */
  async pids(): Promise<number[]> {
    const first = this.dirs[0];
    if (first === undefined) return [];
    return parsePids(await readFile(join(first, 'cgroup.procs'), 'utf8'));
  }

  /**
   * Moves any process still inside to its hierarchy's root cgroup (a cgroup with members cannot be
   * removed), then removes the directories created here, deepest first. Safe to call twice.
   */
  async destroy(): Promise<DestroyReport> {
    const report: DestroyReport = { removed: [], leftBehind: [] };
    for (const hierarchy of this.hierarchies) {
      const leaf = join(hierarchy, this.relPath);
      let procs: number[] = [];
      try {
        procs = parsePids(await readFile(join(leaf, 'cgroup.procs'), 'utf8'));
      } catch (err) {
        if (errorCode(err) !== 'ENOENT') throw err;
      }
      for (const pid of procs) {
        try {
          await writeFile(join(hierarchy, 'cgroup.procs'), `${pid}\n`);
        } catch (err) {
          if (errorCode(err) !== 'ESRCH') throw err; // exited meanwhile
        }
      }
    }
    for (const dir of [...this.created].reverse()) {
      try {
        await rmdir(dir);
        report.removed.push(dir);
      } catch (err) {
        const code = errorCode(err);
        if (code === 'ENOENT') continue;
        if (code === 'ENOTEMPTY' || code === 'EBUSY') report.leftBehind.push(dir);
        else throw err;
      }
    }
    this.created.length = 0;
    return report;
  }
}

function parsePids(text: string): number[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^\d+$/.test(l))
    .map(Number);
}
