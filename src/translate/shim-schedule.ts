/**
 * When each sandbox's shim is called, and in which order.
 *
 * Cadence (`--shim.interval`): a shim that answered is called again once per interval, no sooner;
 * its answer is re-used in between (docs/operations.md). A sandbox seen for the first time is
 * called at once; its first refresh comes after the interval plus an offset in [0, interval) taken
 * from a hash of its id, so sandboxes seen together (all of them, at start) are refreshed spread
 * over the interval instead of in one burst, and each keeps its place after that.
 *
 * Order (docs/security.md, "No starvation"): a call that times out holds a pool slot for the whole
 * --shim.timeout; honest calls queued behind enough of them would miss the collection deadline.
 * So a due shim that has never timed out and answered its last call is asked first, and a shim
 * that timed out is asked last, and only every 1, 2, 4, then 8 collections while it keeps timing
 * out. Other failures are retried at every collection.
 *
 * Pure: the collection's time comes in. State is one small record per sandbox present.
 */

/** How a shim call ended, as far as the schedule cares. */
export type ShimCallEnd = 'answered' | 'timed_out' | 'failed';

/**
 * The class of a sandbox's shim in this collection, asked in this order (lower first):
 * 0 `trusted`: answered its last call and never timed out (asked as soon as it is discovered);
 * 1 `new`: never asked;
 * 2 `recovered`: answered its last call, but timed out before in its life;
 * 3 `retry`: its last call failed;
 * `backed_off`: its last calls timed out and its next try is in a later collection: not asked;
 * `not_due`: answered less than an interval ago: not asked, its answer is re-used.
 */
export type ShimStanding = 'trusted' | 'new' | 'recovered' | 'retry' | 'backed_off' | 'not_due';

/** The order in which the classes are asked. */
export const ASKED_IN_ORDER: readonly Exclude<ShimStanding, 'backed_off' | 'not_due'>[] = ['trusted', 'new', 'recovered', 'retry'];

/** Most collections between two tries of a shim that keeps timing out. */
export const MAX_BACKOFF_COLLECTIONS = 8;

/**
 * How early a refresh may come: a collection this close before the due time counts as on time, so
 * that scrapes a few milliseconds early do not push a refresh by a whole scrape interval.
 */
export const ON_TIME_SLACK_MS = 1000;

interface ShimHistory {
  last: ShimCallEnd;
  /** Timed out at least once while this sandbox was present. */
  everTimedOut: boolean;
  /** Timeouts in a row, up to the last call. */
  timeoutsInARow: number;
  /** The collection of the last call. */
  lastCalled: number;
  /** Answered at least once while this sandbox was present. */
  everAnswered: boolean;
  /** After an answer: when the next call is due. */
  dueAtMs: number;
}

export class ShimSchedule {
  private collection = 0;
  private nowMs = 0;
  private readonly history = new Map<string, ShimHistory>();
  private readonly calls: Record<ShimCallEnd, number> = { answered: 0, timed_out: 0, failed: 0 };

  /** `intervalMs`: the least time between two calls of a shim that answers (0: every collection). */
  constructor(private readonly intervalMs: number) {}

  beginCollection(nowMs: number): void {
    this.collection++;
    this.nowMs = nowMs;
  }

  standing(sandboxId: string): ShimStanding {
    const h = this.history.get(sandboxId);
    if (h === undefined) return 'new';
    if (h.last === 'answered') {
      if (this.nowMs < h.dueAtMs - Math.min(ON_TIME_SLACK_MS, this.intervalMs / 10)) return 'not_due';
      return h.everTimedOut ? 'recovered' : 'trusted';
    }
    if (h.last === 'timed_out' && this.collection - h.lastCalled < backoffCollections(h.timeoutsInARow)) return 'backed_off';
    return 'retry';
  }

  /** The end of a call made in this collection (a call never started because the deadline passed is not recorded). */
  record(sandboxId: string, end: ShimCallEnd): void {
    const previous = this.history.get(sandboxId);
    const timedOut = end === 'timed_out';
    const answered = end === 'answered';
    // The first answer of a sandbox's life is followed by its spread offset; later ones by the interval.
    const firstAnswer = answered && previous?.everAnswered !== true;
    this.history.set(sandboxId, {
      last: end,
      everTimedOut: timedOut || previous?.everTimedOut === true,
      timeoutsInARow: timedOut ? (previous?.timeoutsInARow ?? 0) + 1 : 0,
      lastCalled: this.collection,
      everAnswered: answered || previous?.everAnswered === true,
      dueAtMs: this.nowMs + this.intervalMs + (firstAnswer ? spreadOffsetMs(sandboxId, this.intervalMs) : 0),
    });
    this.calls[end]++;
  }

  /** Calls recorded since the schedule was created, by how they ended (a copy). */
  callCounts(): Record<ShimCallEnd, number> {
    return { ...this.calls };
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

/** Where in [0, interval) a sandbox's refreshes fall: FNV-1a of its id, so the same id always lands alike. */
export function spreadOffsetMs(sandboxId: string, intervalMs: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < sandboxId.length; i++) {
    hash ^= sandboxId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return Math.floor(((hash >>> 0) / 2 ** 32) * intervalMs);
}
