/**
 * The last good answer of each sandbox's shim, re-used in the collections between its calls
 * (`--shim.interval`), until it is older than the stale bound: then it is a gap (`shim_stale`).
 * A failed call drops it: the failure is what the next collections report. Pure: time comes in.
 */

/** A guest sample older than this many shim intervals is not re-published. */
export const STALE_AFTER_INTERVALS = 3;

export type HeldAnswer<T> = { answer: T; atMs: number } | 'stale' | undefined;

export class HeldAnswers<T> {
  private readonly held = new Map<string, { answer: T; atMs: number }>();

  constructor(private readonly staleAfterMs: number) {}

  /** An answer a call brought at `atMs`. */
  keep(sandboxId: string, answer: T, atMs: number): void {
    this.held.set(sandboxId, { answer, atMs });
  }

  drop(sandboxId: string): void {
    this.held.delete(sandboxId);
  }

  /** The answer to re-use at `nowMs`, 'stale' when it is too old, undefined when there is none. */
  get(sandboxId: string, nowMs: number): HeldAnswer<T> {
    const entry = this.held.get(sandboxId);
    if (entry === undefined) return undefined;
    return nowMs - entry.atMs > this.staleAfterMs ? 'stale' : entry;
  }

  /** Forgets the sandboxes that are gone. */
  keepOnly(present: ReadonlySet<string>): void {
    for (const id of this.held.keys()) if (!present.has(id)) this.held.delete(id);
  }
}
