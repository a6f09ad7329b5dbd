/**
 * The order of each collection's shim calls, so that hanging shims cannot starve honest ones
 * (docs/security.md, "No starvation"). A call that times out holds a pool slot for the whole
 * --shim.timeout; honest calls queued behind enough of them would miss the collection deadline.
 * So a shim that has never timed out and answered its last call is asked first, and a shim that
 * timed out is asked last, and only every 1, 2, 4, then 8 collections while it keeps timing out.
 *
 * Pure: counted in collections, no clock. State is one small record per sandbox present.
 */

/** How a shim call ended, as far as the schedule cares. */
export type ShimCallEnd = 'answered' | 'timed_out' | 'failed';

/**
 * The class of a sandbox's shim in this collection, asked in this order (lower first):
 * 0 `trusted`: answered its last call and never timed out (asked as soon as it is discovered);
 * 1 `new`: never asked;
 * 2 `recovered`: answered its last call, but timed out before in its life;
 * 3 `retry`: its last call failed;
 * `backed_off`: its last calls timed out and its next try is in a later collection: not asked.
 */
export type ShimStanding = 'trusted' | 'new' | 'recovered' | 'retry' | 'backed_off';

/** The order in which the classes are asked. */
export const ASKED_IN_ORDER: readonly Exclude<ShimStanding, 'backed_off'>[] = ['trusted', 'new', 'recovered', 'retry'];

/** Most collections between two tries of a shim that keeps timing out. */
export const MAX_BACKOFF_COLLECTIONS = 8;

interface ShimHistory {
  last: ShimCallEnd;
  /** Timed out at least once while this sandbox was present. */
  everTimedOut: boolean;
  /** Timeouts in a row, up to the last call. */
  timeoutsInARow: number;
  /** The collection of the last call. */
  lastCalled: number;
}

export class ShimSchedule {
  private collection = 0;
  private readonly history = new Map<string, ShimHistory>();

  beginCollection(): void {
    this.collection++;
  }

  standing(sandboxId: string): ShimStanding {
    const h = this.history.get(sandboxId);
    if (h === undefined) return 'new';
    if (h.last === 'answered') return h.everTimedOut ? 'recovered' : 'trusted';
    if (h.last === 'timed_out' && this.collection - h.lastCalled < backoffCollections(h.timeoutsInARow)) return 'backed_off';
    return 'retry';
  }

  /** The end of a call made in this collection (a call never started because the deadline passed is not recorded). */
  record(sandboxId: string, end: ShimCallEnd): void {
    const previous = this.history.get(sandboxId);
    const timedOut = end === 'timed_out';
    this.history.set(sandboxId, {
      last: end,
      everTimedOut: timedOut || previous?.everTimedOut === true,
      timeoutsInARow: timedOut ? (previous?.timeoutsInARow ?? 0) + 1 : 0,
      lastCalled: this.collection,
    });
  }

  /** Forgets the sandboxes that are gone. */
  keepOnly(present: ReadonlySet<string>): void {
    for (const id of this.history.keys()) if (!present.has(id)) this.history.delete(id);
  }
}

/** Collections from one try of a shim to the next after `timeouts` timeouts in a row: 1, 2, 4, 8, 8… */
export function backoffCollections(timeouts: number): number {
  return Math.min(2 ** Math.max(0, timeouts - 1), MAX_BACKOFF_COLLECTIONS);
}
