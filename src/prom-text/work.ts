/**
 * The work of the parse under way, counted deterministically as a CPU proxy, so a parse can be
 * held to a budget (ParseLimits.maxWork) and tests assert on work instead of wall time.
 *
 * Units are the bytes scanned plus a charge per sample line: a function of the input and the
 * options alone, never of what earlier parses left in the shared tables (the series cache, the
 * intern slots), so one payload's budget cannot depend on another's. The work those tables spend
 * on keys with equal hashes is counted apart (collisions) and capped by each table per lookup and
 * per parse, past which the table degrades to a linear path: the CPU of a parse stays within a
 * constant factor of its units, plus constants.
 *
 * The units charged per sample line are counted by the parser in a field of its own: a store to
 * this shared object on every line cost the hot per-line path measurably (the parser's own field
 * is one store to an object the compiler already knows).
 */
export const WORK = {
  /**
   * Full comparisons of two keys with one hash (or one intern probe run) that found them
   * different: the term an attacker who could make hashes collide would make quadratic.
   */
  collisions: 0,
};

/** Units of one sample line of a kept family, per label and one for the name. */
const UNITS_PER_LABEL = 16;

/**
 * Units of a sample line with `labels` labels, the same whether its series part was parsed or
 * found in the series cache: its objects, and the duplicate-name check of its labels (quadratic
 * in the count, which is at most maxLabelsPerSeries).
 */
export function seriesUnits(labels: number): number {
  return UNITS_PER_LABEL * (labels + 1) + ((labels * (labels - 1)) >> 1);
}

export interface ParseWork {
  /** Bytes scanned plus the units charged per sample line. */
  units: number;
  collisions: number;
}
