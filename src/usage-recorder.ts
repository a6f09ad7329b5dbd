/**
 * Usage records, end to end (docs/usage-records.md): every collection's snapshot feeds the
 * accumulator; when the pod watch sees a Kata pod in scope end, its cgroups are read one last
 * time, its record is built, written once (the ledger), and counted.
 *
 * A pod the exporter never saw alive (it ended between two collections, or while the exporter
 * was down) gets a record only when its pod cgroup can still be read: the kernel's totals are
 * then there, with `collections: 0`. Once its cgroups are gone nothing is known but its name, so
 * it is counted as missed, and no record pretends otherwise.
 */

import type { Config } from './config.ts';
import type { Logger } from './log.ts';
import type { PodEndReason } from './scrapers/pods.ts';
import { FinalCgroupReader } from './scrapers/usage-final-read.ts';
import { isPodInScope } from './translate/correlate.ts';
import type { PodRecord } from './translate/records.ts';
import type { SelfStats, UsageResult } from './translate/self-stats.ts';
import type { NodeSnapshot } from './translate/snapshot.ts';
import { UsageAccumulator, usageRecordLine, type FinalHostRead } from './translate/usage.ts';
import { UsageLedger } from './usage-ledger.ts';
import { fileSink, streamSink, type UsageSink } from './usage-output.ts';

export interface UsageRecorderDeps {
  config: Pick<Config, 'nodeName' | 'runtimeHandlers'>;
  logger: Logger;
  self: SelfStats;
  sink: UsageSink;
  ledger: UsageLedger;
  /** The pod's host totals at its end; undefined when its cgroups are gone. */
  finalRead: (podUid: string, sandboxId: string | undefined) => Promise<FinalHostRead | undefined>;
  now: () => number;
}

export class UsageRecorder {
  private readonly accumulator = new UsageAccumulator();
  /** Pods whose record is being made: a second end event (deleted after Succeeded) waits for nothing. */
  private readonly ending = new Set<string>();
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly deps: UsageRecorderDeps) {}

  /** The recorder for a Config, or undefined with --usage.output=off. */
  static async open(config: Config, logger: Logger, self: SelfStats, now: () => number): Promise<UsageRecorder | undefined> {
    const output = config.usageOutput;
    if (output.kind === 'off') return undefined;
    const reader = new FinalCgroupReader(config.cgroupRoot, config.hostCollectors);
    return new UsageRecorder({
      config,
      logger,
      self,
      sink: output.kind === 'file' ? fileSink(output.path) : streamSink(),
      ledger: await UsageLedger.open(config.usageStateDir, now).catch((error: unknown) => {
        throw new Error(
          `cannot open the usage ledger in --usage.state-dir ${config.usageStateDir}: ${String(error)}; mount a writable directory there, or leave the flag unset (records are then once per exporter run)`,
        );
      }),
      finalRead: (uid, sandboxId) => reader.read(uid, sandboxId),
      now,
    });
  }

  /** Takes one collection in. */
  observe(snapshot: NodeSnapshot): void {
    this.accumulator.observe(snapshot, (uid) => this.ending.has(uid) || this.deps.ledger.has(uid));
  }

  /** The pod watch saw a pod end; the record is made in the background (see settled()). */
  podEnded(pod: PodRecord, reason: PodEndReason): void {
    if (this.ending.has(pod.uid) || this.deps.ledger.has(pod.uid)) return;
    const tracked = this.accumulator.has(pod.uid);
    if (!tracked && !isPodInScope(pod, this.deps.config.runtimeHandlers, new Set())) return;
    const endMs = this.deps.now();
    this.ending.add(pod.uid);
    const work = this.record(pod, reason, endMs, tracked)
      .catch((error: unknown) =>
        this.deps.logger.error({ source: 'usage', uid: pod.uid, err: String(error) }, 'making a usage record failed'),
      )
      .finally(() => {
        this.ending.delete(pod.uid);
        this.pending.delete(work);
      });
    this.pending.add(work);
  }

  private async record(pod: PodRecord, reason: PodEndReason, endMs: number, tracked: boolean): Promise<void> {
    const { ledger, logger, sink } = this.deps;
    const final = await this.deps.finalRead(pod.uid, this.accumulator.sandboxId(pod.uid));
    if (!tracked && final === undefined) {
      this.count('missed');
      await ledger.add(pod.uid, endMs, false);
      logger.warn(
        { source: 'usage', namespace: pod.namespace, pod: pod.name, uid: pod.uid },
        'a Kata pod ended unseen and its cgroups are gone: no usage record',
      );
      return;
    }
    const record = this.accumulator.finish({ atMs: endMs, reason, pod, node: this.deps.config.nodeName }, final);
    try {
      await sink.write(usageRecordLine(record));
    } catch (error) {
      // Not retried (a retry could write it twice); the record is in the log instead.
      this.count('failed');
      await ledger.add(pod.uid, endMs, false);
      logger.error({ source: 'usage', err: String(error), record }, 'the usage record could not be written: it is in this log line');
      return;
    }
    // After the record: a crash in between writes it again after the restart, never loses it.
    await ledger.add(pod.uid, endMs);
    this.count('written');
  }

  private count(result: UsageResult): void {
    this.deps.self.add(this.deps.self.usageRecords, result);
  }

  /** Resolves once every record under way is written (or failed). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  async close(): Promise<void> {
    await this.settled();
    await this.deps.sink.close();
    await this.deps.ledger.close();
  }
}
