/**
 * Prometheus text exposition format 0.0.4 parser. API contract (implementation pending).
 */

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
}

export const DEFAULT_PARSE_LIMITS: ParseLimits = {
  maxLineBytes: 64 * 1024,
  maxSeries: 100_000,
  maxLabelsPerSeries: 32,
  maxLabelNameBytes: 128,
  maxLabelValueBytes: 1024,
};

export interface ParseOptions {
  limits?: Partial<ParseLimits>;
  /**
   * Keep only families whose name starts with one of these prefixes. Lines of other families are
   * skipped by a byte-prefix test without being decoded.
   */
  keepPrefixes?: readonly string[];
}

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
  | 'label_too_long';

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

export function parsePromText(_input: Uint8Array | string, _options: ParseOptions = {}): ParseResult {
  throw new Error('not implemented yet');
}
