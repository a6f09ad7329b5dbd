/**
 * node:fs functions passed through and watched, for tests that count how a scraper touches the
 * filesystem (inside a vi.mock('node:fs') factory, imported there with `await import`).
 */

/** `fn` as is, with the path (or fd) of each call pushed to `paths`. */
export function recordingPaths<F extends (...args: never[]) => unknown>(fn: F, paths: string[]): F {
  return ((...args: Parameters<F>) => {
    paths.push(String(args[0]));
    return fn(...args);
  }) as F;
}
