/** Why a guest-reported sample is refused; each is exposed at 0 from the start (increase() then counts the first). */
export const GUEST_REJECTION_REASONS = ['implausible_value', 'implausible_increase'] as const;

/** What became of a usage record (usage-recorder.ts); each is exposed at 0 from the start. */
export const USAGE_RECORD_RESULTS = ['written', 'failed', 'missed'] as const;
export type UsageResult = (typeof USAGE_RECORD_RESULTS)[number];

/** Cumulative counts the collector keeps about itself; the renderer publishes them as counters. */
export class SelfStats {
  readonly shimScrapeErrors = new Map<string, number>();
  readonly kubeletRejectedSamples = new Map<string, number>();
  readonly guestRejectedSamples = new Map<string, number>(GUEST_REJECTION_REASONS.map((reason) => [reason, 0]));
  /** Usage records by result (usage-recorder.ts). */
  readonly usageRecords = new Map<string, number>(USAGE_RECORD_RESULTS.map((result) => [result, 0]));

  add(map: Map<string, number>, key: string, amount = 1): void {
    if (amount > 0) map.set(key, (map.get(key) ?? 0) + amount);
  }
}
