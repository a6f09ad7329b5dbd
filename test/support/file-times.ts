/** File timestamps in tests: the kernel's timestamp clock ticks coarsely on many filesystems. */
import { rm, stat, writeFile } from 'node:fs/promises';

/**
 * Resolves once the kernel's timestamp clock has moved past the file's ctime, so that a change
 * made next gets a later ctime. Bounded polling on the clock itself (a probe file beside it),
 * never a sleep: the one change no stat can see is a same-size rewrite within one tick, and the
 * tests that use this are about everything else.
 */
export async function pastCtimeTick(path: string): Promise<void> {
  const ctime = (await stat(path, { bigint: true })).ctimeNs;
  const probe = `${path}.tick-probe`;
  try {
    for (let i = 0; i < 100_000; i++) {
      await writeFile(probe, String(i));
      if ((await stat(probe, { bigint: true })).ctimeNs > ctime) return;
    }
    throw new Error(`the filesystem clock never moved past the ctime of ${path}`);
  } finally {
    await rm(probe, { force: true });
  }
}
