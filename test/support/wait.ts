/** The one way tests wait for something: bounded polling on an observable state. */

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface WaitOptions {
  /** A generous bound (machines stall); how long it took is never asserted. Default 30 s. */
  timeoutMs?: number;
  /** Default 50 ms. */
  intervalMs?: number;
  /** The state to show when the time runs out (e.g. a process's last log lines). */
  describe?: () => string;
}

/**
 * Polls `probe` until it returns something other than undefined or false, and resolves with it.
 * A probe that throws counts as "not yet". After `timeoutMs` it throws, naming `what`, the last
 * error and `describe()`.
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  options: WaitOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail = options.describe?.() ?? '';
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `; last error: ${String(lastError)}` : ''}${detail ? `\n${detail}` : ''}`,
      );
    }
    await sleep(options.intervalMs ?? 50);
  }
}
