/**
 * Collect on scrape, once: concurrent callers share one run, and a finished result is reused for
 * `minIntervalMs`, so two HA Prometheus replicas do not double the load on the shims.
 */
export class SingleFlight<T> {
  private inFlight: Promise<T> | undefined;
  private last: { value: T; finishedAtMs: number } | undefined;
  private runs = 0;

  constructor(
    private readonly run: () => Promise<T>,
    private readonly minIntervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(): Promise<T> {
    if (this.last !== undefined && this.now() - this.last.finishedAtMs < this.minIntervalMs) {
      return Promise.resolve(this.last.value);
    }
    if (this.inFlight === undefined) {
      this.runs++;
      this.inFlight = this.run()
        .then((value) => {
          this.last = { value, finishedAtMs: this.now() };
          return value;
        })
        .finally(() => {
          this.inFlight = undefined;
        });
    }
    return this.inFlight;
  }

  /** How many runs were started: one per min-interval under any load. */
  get runCount(): number {
    return this.runs;
  }

  /** The last finished result, if any. */
  get latest(): T | undefined {
    return this.last?.value;
  }
}
