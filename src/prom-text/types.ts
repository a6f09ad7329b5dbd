/** What the text-format parser takes and returns: options, limits, results, its one error. */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface PromSample {
  /** The sample's own name (e.g. foo_bucket for a histogram family foo). */
  name: string;
  /** Label pairs in wire order. */
  labels: Record<string, string>;
  value: number;
  /** Milliseconds since epoch, when the line carries one (may be negative). */
  timestampMs?: number;
}

export interface PromFamily {
  name: string;
  type: MetricType;
  help?: string;
  samples: PromSample[];
}

export interface ParseLimits {
  maxLineBytes: number;
  maxSeries: number;
  maxLabelsPerSeries: number;
  maxLabelNameBytes: number;
  maxLabelValueBytes: number;
  /**
   * Work units one parse may spend (see work.ts: bytes scanned, plus series and labels built and
   * keys compared): a CPU budget that holds whatever the input, past which the parse fails with
   * kind 'budget'. An honest payload spends 1.2 to 1.6 units per byte.
   */
  maxWork: number;
}

export const DEFAULT_PARSE_LIMITS: ParseLimits = {
  maxLineBytes: 64 * 1024,
  maxSeries: 100_000,
  maxLabelsPerSeries: 32,
  maxLabelNameBytes: 128,
  maxLabelValueBytes: 1024,
  maxWork: 64 * 1024 * 1024,
};

export interface ParseOptions {
  limits?: Partial<ParseLimits>;
  /**
   * Keep only families whose name starts with one of these prefixes. Lines of other families are
   * skipped by a byte-prefix test without being decoded.
   */
  keepPrefixes?: readonly string[];
  /**
   * Called for each series of a kept family before anything is built for it; false skips the
   * series (no sample), which is how a decoder that reads a few items of a big family avoids
   * making garbage of the rest. A skipped line is checked in full up to its labels; its value
   * and timestamp must be made of number characters (injected text fails) but are not
   * converted. The filter must be a pure function of
   * its arguments: its answer for a series is reused for repeats of that series, in this parse
   * and later ones that pass the same function. A skipped series
   * counts toward `maxSeries` (duplicates included) but not toward `seriesCount` or
   * `duplicates`. A family whose every series was skipped is still returned, with no samples,
   * so callers can tell it was there.
   */
  keepSeries?: SeriesFilter;
  /**
   * Leave out HELP texts: families come without `help`. HELP lines are still checked (a second
   * one for a family, an invalid escape), so the same inputs are rejected with the same errors.
   */
  omitHelp?: boolean;
  /**
   * Sample names whose repeated series are returned too, as further samples after the first (still
   * counted in `duplicates`): a decoder that must choose among them (kubernetes#134518).
   */
  keepRepeatsOf?: ReadonlySet<string>;
}

/** The labels of the series being parsed; valid only during a `keepSeries` call. */
export interface SeriesLabels {
  /** The value of a label of the series, or undefined when it has none of that name. */
  get(name: string): string | undefined;
}

export type SeriesFilter = (family: string, labels: SeriesLabels) => boolean;

export interface ParseResult {
  /** In first-seen order. */
  families: PromFamily[];
  /** Series seen more than once; the first one is kept. */
  duplicates: number;
  /** Series kept. */
  seriesCount: number;
}

export type PromParseErrorKind =
  | 'syntax'
  | 'line_too_long'
  | 'too_many_series'
  | 'too_many_labels'
  | 'label_too_long'
  /** The parse spent ParseLimits.maxWork. */
  | 'budget';

/** The one error the parser raises. */
export class PromParseError extends Error {
  constructor(
    readonly kind: PromParseErrorKind,
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'PromParseError';
  }
}
