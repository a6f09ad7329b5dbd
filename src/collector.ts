/**
 * One collection: ask every source, decode, correlate, and return one immutable NodeSnapshot.
 * Sources are read in parallel; a source that fails becomes gaps, never an exception.
 */

import { cpus } from 'node:os';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';
import { SelfStats } from './translate/self-stats.ts';
import {
  SandboxCgroupLocations,
  detectCgroupLayout,
  hostReads,
  indexPodCgroups,
  readCgroupUsage,
  type CgroupLayout,
  type PodCgroup,
} from './scrapers/cgroups.ts';
import { KnownFiles, discoverSandboxes } from './scrapers/kata-sandboxes.ts';
import type { ShimScrapeResult, ShimTarget } from './scrapers/kata-shim.ts';
import type { ShimPool } from './scrapers/shim-pool.ts';
import type { KubeletScrape } from './scrapers/kubelet.ts';
import type { RuntimeConfigSource } from './scrapers/runtime-config.ts';
import { pauseForIo } from './scrapers/pseudo-fs.ts';
import { SourceError } from './scrapers/source-error.ts';
import { VmmNetworkReader } from './scrapers/vmm-netdev.ts';
import { auditNode, kataConfigPaths } from './translate/audit.ts';
import { correlate, isPodInScope, outsideUsage, resolvePodUid, type SandboxObservation, type ShimOutcome } from './translate/correlate.ts';
import { CounterState } from './translate/counters.ts';
import { shimScrapeDecision } from './translate/hypervisor.ts';
import { decodeKubeletMetrics } from './translate/kubelet-decode.ts';
import { PromParseError } from './prom-text/index.ts';
import { decodeShimBody, type ShimBodyInput } from './translate/shim-body.ts';
import { inlineShimDecoder, type ShimDecoder } from './shim-decoder.ts';
import { ASKED_IN_ORDER, ShimSchedule, type ShimStanding } from './translate/shim-schedule.ts';
import { HeldAnswers, STALE_AFTER_INTERVALS } from './translate/held-answers.ts';
import { extractRawFamilies, type RawSandboxFamilies } from './translate/shim-raw.ts';
import type { CgroupUsage, KubeletStats, NamespaceRecord, PodRecord, RawSandbox, SandboxRecord } from './translate/records.ts';
import type { RuntimeView } from './translate/runtime-config.ts';
import { resolveSandbox, type SandboxPodMapping } from './translate/sandbox-map.ts';
import type { AuditSnapshot, NodeSnapshot, PodSnapshot, SourceName, SourceStatus } from './translate/snapshot.ts';

export interface KubeletSource {
  scrape(): Promise<KubeletScrape>;
}

export interface PodSource {
  pods(): ReadonlyMap<string, PodRecord>;
  /** Namespaces with their labels (empty unless the audit selects namespaces). */
  namespaces(): ReadonlyMap<string, NamespaceRecord>;
  isReady(): boolean;
  /** Whether the watch is currently healthy (false after errors since the last success). */
  isHealthy(): boolean;
}

export interface CollectorDeps {
  config: Config;
  logger: Logger;
  kubelet: KubeletSource;
  pods: PodSource;
  shims: ShimPool;
  /** Where shim bodies are decoded; on this thread when absent. */
  decoder?: ShimDecoder;
  self: SelfStats;
  /** The node's runtime and Kata configuration; only when the isolation audit is on. */
  runtimeConfigs?: RuntimeConfigSource;
  now?: () => number;
  /**
   * The node's online CPUs, which bound how fast a CPU counter can grow. By default libuv's count,
   * read from /proc/stat's cpuN lines: the node's CPUs, whatever this container's cpuset or limit.
   */
  hostCpus?: () => number;
}

type Timed<T> = { value: T; seconds: number };

async function timed<T>(now: () => number, work: () => Promise<T>): Promise<Timed<T>> {
  const start = now();
  const value = await work();
  return { value, seconds: (now() - start) / 1000 };
}

const SHIM_FAILURE: Partial<Record<SourceError['reason'], Extract<ShimOutcome, { state: 'failed' }>['reason']>> = {
  timeout: 'shim_timeout',
  oversize: 'shim_oversize',
  malformed: 'shim_malformed',
};

interface SandboxPlan {
  record: SandboxRecord;
  podUid?: string;
  observation: SandboxObservation;
}

export class Collector {
  private readonly counters = new CounterState();
  private readonly now: () => number;
  /** Detected once kubepods is there; see readCgroups. */
  private layout: CgroupLayout | undefined;
  /** Where each present sandbox's cgroups were found; see readCgroups. */
  private readonly sandboxCgroups = new SandboxCgroupLocations();
  /** Kata state files and bundles as last read, re-read only when they change. */
  private readonly knownFiles = new KnownFiles();
  /** Last collection's resolution of each present sandbox, by id; see readSandboxes. */
  private resolved = new Map<string, ResolvedRaw>();
  /** Which shims are asked first, last, or not at all in the next collection; see shimScrapes. */
  private readonly shimSchedule: ShimSchedule;
  /** Each shim's last good answer, re-used between its calls (--shim.interval). */
  private readonly heldAnswers: HeldAnswers<DecodedShim>;
  /** Each sandbox's VMM, for the host network counters; see readCgroups. */
  private readonly vmms: VmmNetworkReader;

  constructor(private readonly deps: CollectorDeps) {
    this.now = deps.now ?? Date.now;
    const intervalMs = deps.config.shimIntervalMs;
    this.shimSchedule = new ShimSchedule(intervalMs);
    this.heldAnswers = new HeldAnswers(STALE_AFTER_INTERVALS * intervalMs);
    this.vmms = new VmmNetworkReader(deps.config.procDir);
  }

  async collect(): Promise<NodeSnapshot> {
    const { config, logger } = this.deps;
    const takenAtMs = this.now();
    const startedAt = performance.now();
    const kubeletRun = timed(this.now, () => this.readKubelet());
    const pods = this.deps.pods.pods();
    // Local files, read while the network sources answer.
    const runtimeRun = this.readRuntimeConfig();

    // Sandboxes first: they decide which pods are in scope and which cgroups to read. Each shim
    // scrape starts as soon as its sandbox is settled, while discovery reads the others (and the
    // kubelet answers); the scrapes of sandboxes that needed /proc start when discovery ends.
    const shimsStart = this.now();
    const scrapes = this.shimScrapes(pods, startedAt, takenAtMs);
    const discovered = await timed(this.now, () => this.readSandboxes(scrapes.early));
    const plans = discovered.value.plans;
    for (const plan of plans) plan.podUid ??= resolvePodUid(plan.observation.pod, pods.values());
    const mappedUids = new Set(plans.flatMap((p) => (p.podUid === undefined ? [] : [p.podUid])));
    const inScope = [...pods.values()].filter((pod) => isPodInScope(pod, config.runtimeHandlers, mappedUids));

    const [cgroups, shims, kubelet] = await Promise.all([
      timed(this.now, () => this.readCgroups(inScope, plans)),
      scrapes.finish(plans).then((value) => ({ value, seconds: (this.now() - shimsStart) / 1000 })),
      kubeletRun,
    ]);

    this.counters.beginCollection(takenAtMs);
    const result = correlate(
      {
        nowMs: takenAtMs,
        runtimeHandlers: config.runtimeHandlers,
        kubeletStaleAfterMs: config.kubeletStaleAfterMs,
        pods: pods.values(),
        podCgroups: cgroups.value.podCgroups,
        kubelet: kubelet.value.stats,
        sandboxes: plans.map((p) => p.observation),
        hostCpus: (this.deps.hostCpus ?? nodeCpus)(),
      },
      this.counters,
    );
    this.counters.endCollection();
    this.deps.self.add(this.deps.self.kubeletRejectedSamples, 'implausible_increase', result.refused.kubelet);
    this.deps.self.add(this.deps.self.guestRejectedSamples, 'implausible_increase', result.refused.guest);
    const audit = await this.audit(pods, result.pods, runtimeRun);

    const sources: Record<SourceName, SourceStatus> = {
      kubelet: { up: kubelet.value.stats !== undefined, durationSeconds: kubelet.seconds },
      // Discovery and the scrapes overlap: the source's time is from discovery's start to the last scrape.
      shims: { up: discovered.value.ok && shims.value.ok, durationSeconds: Math.max(discovered.seconds, shims.seconds) },
      cgroups: { up: cgroups.value.ok, durationSeconds: cgroups.seconds },
      pods: { up: this.deps.pods.isReady() && this.deps.pods.isHealthy(), durationSeconds: 0 },
    };
    for (const [source, status] of Object.entries(sources)) {
      if (!status.up) logger.debug({ source }, 'source down in this collection');
    }
    return {
      takenAtMs,
      pods: result.pods,
      sandboxes: result.sandboxes,
      sources,
      kubeletEndpoint: kubelet.value.endpoint,
      shimCalls: this.shimSchedule.callCounts(),
      shimRaw: shims.value.raw,
      ...(audit === undefined ? {} : { audit }),
      ...(cgroups.value.pressure === undefined ? {} : { hostPressureSupported: cgroups.value.pressure }),
    };
  }

  private readRuntimeConfig(): Promise<RuntimeView> | undefined {
    return this.deps.runtimeConfigs?.runtime().catch((error: unknown): RuntimeView => {
      // The reader answers every file problem itself: this is a bug, and the answers are unknown.
      this.deps.logger.error({ err: loggableError(error), source: 'audit' }, 'reading the runtime configuration failed');
      return { runtime: 'none', files: [] };
    });
  }

  /** The isolation audit over this collection's pods; undefined when it is off. */
  private async audit(
    pods: ReadonlyMap<string, PodRecord>,
    kataPods: readonly PodSnapshot[],
    runtimeRun: Promise<RuntimeView> | undefined,
  ): Promise<AuditSnapshot | undefined> {
    const source = this.deps.runtimeConfigs;
    if (source === undefined || runtimeRun === undefined) return undefined;
    const { config } = this.deps;
    const input = {
      pods: [...pods.values()],
      kataPods: new Map(kataPods.map((pod) => [pod.uid, { hypervisor: pod.hypervisor }])),
      runtime: await runtimeRun,
      defaultKataConfigPath: config.kataConfigPath,
    };
    const kataConfigs = new Map(await Promise.all(kataConfigPaths(input).map(async (path) => [path, await source.kata(path)] as const)));
    return auditNode({
      ...input,
      namespaceSelector: config.auditNamespaceSelector,
      podSelector: config.auditPodSelector,
      namespaces: this.deps.pods.namespaces(),
      kataConfigs,
    });
  }

  private async readKubelet(): Promise<{ stats?: KubeletStats; endpoint?: KubeletScrape['endpoint'] }> {
    try {
      const scrape = await this.deps.kubelet.scrape();
      const stats = decodeKubeletMetrics(scrape.body);
      for (const [reason, count] of Object.entries(stats.rejected))
        this.deps.self.add(this.deps.self.kubeletRejectedSamples, reason, count);
      return { stats, endpoint: scrape.endpoint };
    } catch (error) {
      this.deps.logger.warn({ err: loggableError(error), source: 'kubelet' }, 'kubelet scrape failed');
      return {};
    }
  }

  private async readSandboxes(onSettled: (plan: SandboxPlan) => void): Promise<{ ok: boolean; plans: SandboxPlan[] }> {
    const { config } = this.deps;
    // Plans of settled sandboxes, made as they come in: the same objects end up in `plans`.
    const early = new Map<string, SandboxPlan>();
    // A sandbox read as the same strings as last time resolves as last time (resolveSandbox is
    // pure, and its records are never mutated): only its plan and observation are new. With
    // processes the input is not those strings alone, so those are resolved anew.
    const previous = this.resolved;
    const next = new Map<string, ResolvedRaw>();
    const resolve = (raw: RawSandbox): Resolution => {
      if (raw.processes.length > 0) return resolveSandbox(raw);
      const last = next.get(raw.id) ?? previous.get(raw.id);
      const resolved = last !== undefined && sameRaw(last.raw, raw) ? last.resolved : resolveSandbox(raw);
      next.set(raw.id, { raw, resolved });
      return resolved;
    };
    const discovery = await discoverSandboxes({
      kataGoDir: config.kataGoDir,
      kataRsDir: config.kataRsDir,
      containerdTasksDir: config.containerdTasksDir,
      crioDir: config.crioDir,
      procDir: config.procDir,
      knownFiles: this.knownFiles,
      onSettled: (raw) => {
        const plan = toPlan(resolve(raw));
        early.set(raw.id, plan);
        onSettled(plan);
      },
    });
    for (const error of discovery.errors)
      this.deps.logger.warn({ err: loggableError(error), source: 'shims' }, 'sandbox discovery problem');
    // Bounded by the sandboxes present: the ones gone are dropped with the old map.
    this.resolved = next;
    const plans = discovery.sandboxes.map((raw) => {
      const plan = early.get(raw.id);
      // Settled early and given no processes since: the early plan is already the final one.
      if (plan !== undefined && raw.processes.length === 0) return plan;
      const resolved = resolve(raw);
      if (plan === undefined) return toPlan(resolved);
      // The final record may carry a vmmPid from /proc; hypervisor, socket, cgroup paths and the
      // pod mapping are those the early plan was made with.
      plan.record = resolved.record;
      plan.observation.sandbox = resolved.record;
      return plan;
    });
    return { ok: discovery.errors.length === 0, plans };
  }

  private async readCgroups(
    pods: readonly PodRecord[],
    plans: readonly SandboxPlan[],
  ): Promise<{ ok: boolean; podCgroups: Map<string, CgroupUsage>; pressure?: boolean }> {
    const podCgroups = new Map<string, CgroupUsage>();
    let index: Map<string, PodCgroup>;
    let layout: CgroupLayout;
    try {
      // The mounts do not change while the exporter runs: detected again only until kubepods shows,
      // which settles the hierarchy on a hybrid host.
      layout = this.layout?.drivers.length ? this.layout : await detectCgroupLayout(this.deps.config.cgroupRoot);
      index = await indexPodCgroups(layout);
      this.layout = layout;
    } catch (error) {
      this.layout = undefined;
      this.deps.logger.warn({ err: loggableError(error), source: 'cgroups' }, 'cgroup hierarchy unreadable');
      return { ok: false, podCgroups };
    }
    const collectors = this.deps.config.hostCollectors;
    const podReads = hostReads(layout, collectors, 'pod');
    const outsideReads = hostReads(layout, collectors, 'outside');
    // One cgroup after another: the reads are synchronous, and each group pauses for pending I/O
    // now and then. Started all at once, they would run back to back in one microtask drain and
    // hold the shim answers that arrive meanwhile.
    for (const pod of pods) {
      const found = index.get(pod.uid);
      if (found === undefined) continue;
      const usage = await readCgroupUsage(layout, found.path, podReads);
      if (!(usage instanceof SourceError)) podCgroups.set(pod.uid, usage);
    }
    this.sandboxCgroups.keepOnly(new Set(plans.map((p) => p.record.id)));
    this.vmms.keepOnly(new Set(plans.map((p) => p.record.id)));
    if (collectors.network) this.vmms.beginCollection();
    for (const plan of plans) {
      const podPath = plan.podUid === undefined ? undefined : index.get(plan.podUid)?.path;
      const found = await this.sandboxCgroups.find(layout, podPath, plan.record.id, {
        sandboxCgroupPath: plan.record.sandboxCgroupPath,
        overheadCgroupPath: plan.record.overheadCgroupPath,
      });
      // What the VM spends outside its pod cgroup: the overhead cgroup, and a sandbox cgroup
      // created at the root instead of inside the pod (Kata issue 11325).
      const outside = [found.overhead?.path, found.sandbox && !isInside(found.sandbox.path, podPath) ? found.sandbox.path : undefined];
      const usages: (CgroupUsage | SourceError)[] = [];
      for (const path of outside) if (path !== undefined) usages.push(await readCgroupUsage(layout, path, outsideReads));
      // A cgroup reported gone is looked for again next time.
      if (usages.some((u) => u instanceof SourceError && u.reason === 'not_found')) this.sandboxCgroups.forget(plan.record.id);
      const outsideVm = outsideUsage(
        usages.map((u) => (u instanceof SourceError ? undefined : u)),
        Boolean(plan.record.overheadCgroupPath) && found.overhead === undefined,
      );
      if (outsideVm.total !== undefined) plan.observation.overheadCgroup = outsideVm.total;
      if (outsideVm.incomplete) plan.observation.overheadCgroupIncomplete = true;
      if (collectors.network && plan.podUid !== undefined) {
        const hierarchy = layout.cpuDir ?? layout.memoryDir;
        const dirs = [...outside, podPath].flatMap((path) =>
          path === undefined || hierarchy === undefined ? [] : [`${hierarchy}${path}`],
        );
        // The VMM's search reads cgroup.procs in each of these cgroups: a group of that many reads.
        await pauseForIo(dirs.length);
        plan.observation.hostNetwork = this.vmms.read(plan.record.id, dirs, plan.record.hypervisor, plan.record.vmmPid);
      }
    }
    return { ok: true, podCgroups, pressure: layout.pressure };
  }

  /**
   * The shim scrapes of one collection: `early(plan)` takes a settled sandbox, and asks its shim at
   * once if the schedule trusts it and it is due; `finish(plans)` takes the rest, asks every due
   * shim not asked yet in the schedule's order (so none of them can hold a slot a trusted shim
   * needs), waits for all and assembles the results in plan order, re-using the last answer of
   * the shims not due. The pool bounds the concurrency across all of them.
   */
  private shimScrapes(
    pods: ReadonlyMap<string, PodRecord>,
    startedAt: number,
    takenAtMs: number,
  ): {
    early: (plan: SandboxPlan) => void;
    finish: (plans: readonly SandboxPlan[]) => Promise<{ ok: boolean; raw: RawSandboxFamilies[] }>;
  } {
    const { config } = this.deps;
    const schedule = this.shimSchedule;
    schedule.beginCollection(takenAtMs);
    // A handler that throws rejects its scrape; that is kept and rethrown by finish(), as before.
    const started = new Map<string, Promise<{ result: ShimScrapeResult<DecodedShim> | undefined } | { error: unknown }>>();
    const handled = new Set<SandboxPlan>();
    // Sandbox ids claimed (once per id, first wins: the same id under both runtimes, the first one
    // settled), those left for finish() by standing, and those backed off (not asked this time).
    const claimed = new Set<string>();
    const deferred = new Map<ShimStanding, SandboxPlan[]>();
    const backedOff = new Set<string>();
    // Not due: answered less than an interval ago; and every socket to keep a connection to.
    const notDue = new Set<string>();
    const sockets = new Set<string>();
    let targets = 0;
    // Scrapes end half a second before the deadline and decodes a quarter: the rest is for rendering.
    const deadlineAtMs = startedAt + config.collectDeadlineMs - 500;
    const decodedByMs = startedAt + config.collectDeadlineMs - 250;
    const ask = (plan: SandboxPlan): void => {
      // Each body is decoded on the loop turn after it is in, once its slot has sent the next
      // request, and dropped: at most 2 × --shim.concurrency bodies are in memory at once.
      const target: ShimTarget = { id: plan.record.id, socketPath: plan.record.socketPath!, socketIdentity: plan.record.socketIdentity };
      started.set(
        target.id,
        this.deps.shims.scrapeAll([target], { deadlineAtMs, handle: (body: Buffer) => this.decodeShim(plan, body, decodedByMs) }).then(
          (results) => ({ result: results.get(target.id) }),
          (error: unknown) => ({ error }),
        ),
      );
    };
    const take = (plan: SandboxPlan): void => {
      if (handled.has(plan)) return;
      handled.add(plan);
      // An unmapped sandbox's numbers would belong to no pod; only kata-monitor mode wants them.
      if (plan.podUid === undefined && !config.shimRaw) return;
      const decision = shimScrapeDecision(plan.record, config.shimRuntimeRs);
      if (!decision.scrape) {
        plan.observation.shim = { state: 'skipped', reason: decision.reason };
        return;
      }
      targets++;
      sockets.add(plan.record.socketPath!);
      if (claimed.has(plan.record.id)) return;
      claimed.add(plan.record.id);
      const standing = schedule.standing(plan.record.id);
      const held = standing === 'not_due' ? this.heldAnswers.get(plan.record.id, takenAtMs) : undefined;
      if (held !== undefined && held !== 'stale') notDue.add(plan.record.id);
      // Not due but nothing to re-use (cannot happen while answers are held as recorded): ask it.
      else if (standing === 'trusted' || standing === 'not_due') ask(plan);
      else if (standing === 'backed_off') backedOff.add(plan.record.id);
      else {
        const queue = deferred.get(standing) ?? [];
        queue.push(plan);
        deferred.set(standing, queue);
      }
    };
    const early = (plan: SandboxPlan): void => {
      plan.podUid = resolvePodUid(plan.observation.pod, pods.values());
      take(plan);
    };
    const finish = async (plans: readonly SandboxPlan[]): Promise<{ ok: boolean; raw: RawSandboxFamilies[] }> => {
      for (const plan of plans) take(plan);
      for (const standing of ASKED_IN_ORDER) for (const plan of deferred.get(standing) ?? []) ask(plan);
      const results = new Map<string, ShimScrapeResult<DecodedShim> | undefined>();
      for (const [id, pending] of started) {
        const settled = await pending;
        if ('error' in settled) throw settled.error;
        results.set(id, settled.result);
        if (settled.result !== undefined) recordCall(schedule, id, settled.result);
      }
      const present = new Set(plans.map((plan) => plan.record.id));
      schedule.keepOnly(present);
      this.heldAnswers.keepOnly(present);
      this.deps.shims.retain(sockets);
      return this.shimResults(plans, results, { backedOff, notDue }, targets, takenAtMs);
    };
    return { early, finish };
  }

  /**
   * Each plan's shim outcome from its scrape, its backoff or its last answer, counted and logged;
   * the raw families kept. A good answer is held for the collections until the next call; a failed
   * call drops it (the failure is what they report).
   */
  private shimResults(
    plans: readonly SandboxPlan[],
    results: ReadonlyMap<string, ShimScrapeResult<DecodedShim> | undefined>,
    unasked: { backedOff: ReadonlySet<string>; notDue: ReadonlySet<string> },
    targets: number,
    takenAtMs: number,
  ): { ok: boolean; raw: RawSandboxFamilies[] } {
    const { self, logger } = this.deps;
    const raw: RawSandboxFamilies[] = [];
    let failures = 0;
    const reuse = (plan: SandboxPlan): boolean => {
      const held = this.heldAnswers.get(plan.record.id, takenAtMs);
      if (held === undefined) return false;
      if (held === 'stale') {
        plan.observation.shim = { state: 'failed', reason: 'shim_stale' };
        failures++;
        return true;
      }
      plan.observation.shim = held.answer.outcome;
      plan.observation.shimAnsweredAtMs = held.atMs;
      if (held.answer.raw !== undefined) raw.push(held.answer.raw);
      return true;
    };
    for (const plan of plans) {
      const id = plan.record.id;
      if (unasked.backedOff.has(id)) {
        // Not asked: it keeps the gap of the timeouts that backed it off, uncounted (no call failed).
        plan.observation.shim = { state: 'failed', reason: 'shim_timeout' };
        failures++;
        continue;
      }
      if (unasked.notDue.has(id)) {
        reuse(plan);
        continue;
      }
      const result = results.get(id);
      if (result === undefined) continue;
      if (result.ok) {
        plan.observation.shim = result.body.outcome;
        if (result.body.raw !== undefined) raw.push(result.body.raw);
        if (result.body.outcome.state === 'ok' && this.deps.config.shimIntervalMs > 0) this.heldAnswers.keep(id, result.body, takenAtMs);
        else this.heldAnswers.drop(id);
      } else {
        plan.observation.shim = { state: 'failed', reason: SHIM_FAILURE[result.error.reason] ?? 'shim_unreachable' };
        if (result.notStarted !== true) this.heldAnswers.drop(id);
      }
      if (plan.observation.shim.state === 'failed') {
        self.add(self.shimScrapeErrors, plan.observation.shim.reason.replace(/^shim_/, ''));
        logger.warn(
          { sandbox: plan.record.id, socket: plan.record.socketPath, reason: plan.observation.shim.reason, source: 'shims' },
          'shim scrape failed',
        );
        // A call the deadline kept in the queue was never made: the last answer, if any, stands in.
        if (!result.ok && result.notStarted === true && reuse(plan)) continue;
        failures++;
      }
    }
    return { ok: targets === 0 || failures < targets, raw };
  }

  /**
   * Decodes one body (a view the pool reuses: nothing here may keep it, or read it after the
   * synchronous part). Off this thread, except with --collector.shim-raw, whose raw families are
   * read from the same bytes here. A body still queued or being decoded at `decodedByMs`
   * (performance.now() time) is not waited for: it is over the decode budget of the collection.
   */
  private decodeShim(plan: SandboxPlan, body: Buffer, decodedByMs: number): DecodedShim | Promise<DecodedShim> {
    const { config } = this.deps;
    const input: ShimBodyInput = { runtime: plan.record.runtime, hypervisor: plan.record.hypervisor, maxSeries: config.shimMaxSeries };
    if (!config.shimRaw) {
      const decoding = (this.deps.decoder ?? inlineShimDecoder).decode(body, input);
      return settledBy(decoding, decodedByMs, { state: 'failed', reason: 'shim_decode_budget' }).then((outcome) => this.kept(outcome));
    }
    const outcome = decodeShimBody(body, input);
    if (outcome.state !== 'ok') return this.kept(outcome);
    try {
      return this.kept(outcome, extractRawFamilies(body, plan.record, plan.observation.pod, { maxSeries: config.shimMaxSeries }));
    } catch (error) {
      if (error instanceof PromParseError) return this.kept({ state: 'failed', reason: 'shim_malformed' });
      throw error;
    }
  }

  /** What a collection keeps of one decoded body; the guest samples it refused are counted. */
  private kept(outcome: ShimOutcome, raw?: RawSandboxFamilies): DecodedShim {
    if (outcome.state === 'ok')
      this.deps.self.add(this.deps.self.guestRejectedSamples, 'implausible_value', outcome.metrics.rejectedSamples);
    return raw === undefined ? { outcome } : { outcome, raw };
  }
}

/** `work`'s value, or `late` if it has not settled by `atMs` (performance.now() time). */
function settledBy<T>(work: Promise<T>, atMs: number, late: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(late), Math.max(0, atMs - performance.now()));
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/** What the schedule learns from one call; a call the deadline kept in the queue teaches nothing. */
function recordCall(schedule: ShimSchedule, sandboxId: string, result: ShimScrapeResult<DecodedShim>): void {
  if (result.ok) schedule.record(sandboxId, result.body.outcome.state === 'ok' ? 'answered' : 'failed');
  else if (result.notStarted !== true) schedule.record(sandboxId, result.error.reason === 'timeout' ? 'timed_out' : 'failed');
}

/** What one shim body decodes to, kept after its bytes are dropped. */
interface DecodedShim {
  outcome: ShimOutcome;
  raw?: RawSandboxFamilies;
}

type Resolution = { record: SandboxRecord; mapping: SandboxPodMapping };

/** A process-less raw sandbox and what it resolved to. */
interface ResolvedRaw {
  raw: RawSandbox;
  resolved: Resolution;
}

/** Every input of a process-less sandbox's resolution (the compiler holds this list to the type). */
const RAW_INPUTS = ['id', 'runtime', 'dir', 'socketPath', 'socketIdentity', 'stateText', 'containerdConfig', 'crioConfig'] as const;
const rawInputsComplete: Exclude<keyof RawSandbox, 'processes' | (typeof RAW_INPUTS)[number]> extends never ? true : never = true;
void rawInputsComplete;

/** The same strings read for the same sandbox (the discovery cache returns the same string objects). */
function sameRaw(a: RawSandbox, b: RawSandbox): boolean {
  return RAW_INPUTS.every((field) => a[field] === b[field]);
}

function toPlan({ record, mapping }: Resolution): SandboxPlan {
  const observation: SandboxObservation = { sandbox: record };
  if (mapping.mapped) observation.pod = mapping.ref;
  return { record, observation };
}

function isInside(path: string, parent: string | undefined): boolean {
  return parent !== undefined && (path === parent || path.startsWith(`${parent}/`));
}

function nodeCpus(): number {
  return Math.max(1, cpus().length);
}

/** A loggable form of an error: the message names the URL, socket or file involved. */
function loggableError(error: unknown): { message: string; reason?: string } {
  if (error instanceof SourceError) return { message: error.message, reason: error.reason };
  return { message: error instanceof Error ? error.message : String(error) };
}
