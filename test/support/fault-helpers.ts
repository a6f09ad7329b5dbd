/**
 * What the fault matrix and the hostile-guest tests need beyond the one harness (lab-exporter.ts,
 * scrape.ts, wait.ts): a frozen-clock node per describe block with its baseline scrape, scrapes
 * judged by status and time to answer, and the faults the lab itself cannot make: a custom shim
 * payload at a sandbox's socket, a missing or dead socket, a projected-token symlink swap, cgroup
 * directories that vanish and come back, a reused VMM pid.
 */

import { cp, link, mkdir, readFile, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { startFakeShim, type FakeShim, type ShimBehaviour } from '../../src/lab/fake-shim.ts';
import type { LabPodScenario, NodeLab } from '../../src/lab/node-lab.ts';
import { afterAll, beforeAll } from 'vitest';
import { startLabExporter, type Answer, type LabExporter, type RunningExporter } from './lab-exporter.ts';
import { find, otherPods, parseSamples, type Sample } from './scrape.ts';
import { waitFor } from './wait.ts';

/** The default --collect.deadline, and the one timing bound the tests assert: deadline + 2 s of margin. */
export const COLLECT_DEADLINE_MS = 5000;
export const ANSWER_BOUND_MS = COLLECT_DEADLINE_MS + 2000;

/** One GET /metrics with its samples (none unless the status is 200; a body that does not parse throws). */
export interface Scrape extends Answer {
  samples: Sample[];
}

export async function timedScrape(running: RunningExporter): Promise<Scrape> {
  const answer = await running.get();
  return { ...answer, samples: answer.status === 200 ? parseSamples(answer.text) : [] };
}

/**
 * Scrapes until `accept` holds; running out of time throws, naming `what` and the last scrape's
 * sources and pods. A scrape that fails (a body that is not UTF-8 or does not parse) fails at once.
 */
export async function scrapeUntil(
  running: RunningExporter,
  what: string,
  accept: (scrape: Scrape) => boolean,
  timeoutMs: number,
): Promise<Scrape> {
  let last: Scrape | undefined;
  const describe = () => {
    if (last === undefined) return 'no scrape answered';
    const sources = find(last.samples, 'kata_bridge_source_up').map((s) => `${s.labels.source}=${s.value}`);
    return `last scrape: status ${last.status}, source_up ${sources.join(' ')}, pods ${Object.keys(otherPods(last.samples, [])).join(' ')}`;
  };
  const outcome = await waitFor(
    what,
    async (): Promise<{ scrape: Scrape } | { error: unknown } | false> => {
      try {
        last = await timedScrape(running);
      } catch (error) {
        return { error };
      }
      return accept(last) && { scrape: last };
    },
    { timeoutMs, intervalMs: 100, describe },
  );
  if ('error' in outcome) throw outcome.error;
  return outcome.scrape;
}

export interface FaultNodeContext {
  /** The frozen clock of the lab and the exporter. */
  readonly nowMs: number;
  node: LabExporter;
  /** The first scrape, before any fault. */
  baseline: Scrape;
}

/** Registers beforeAll/afterAll hooks for a describe block: one node, one exporter on its frozen clock, one baseline scrape. */
export function useFaultNode(
  pods: LabPodScenario[],
  flags: readonly string[] = ['--shim.timeout=1s', '--kubelet.timeout=1s'],
): FaultNodeContext {
  const context = { nowMs: Date.now() } as FaultNodeContext;
  beforeAll(async () => {
    context.node = await startLabExporter({ pods }, { flags, now: () => context.nowMs });
    context.baseline = await timedScrape(context.node);
  });
  afterAll(async () => {
    await context.node?.close();
  });
  return context;
}

/** Pod-level families that depend on no kubelet value (host cgroups, guest, pod spec, identity). */
export function kubeletIndependent(name: string): boolean {
  return (
    name.startsWith('kata_bridge_pod_host_') ||
    name.startsWith('kata_bridge_pod_guest_') ||
    name === 'kata_bridge_pod_info' ||
    name === 'kata_bridge_pod_overhead_cpu_reserved_cores' ||
    name === 'kata_bridge_pod_overhead_memory_reserved_bytes' ||
    name === 'kata_bridge_container_cpu_limit_cores' ||
    name === 'kata_bridge_container_memory_limit_bytes'
  );
}

// ─── shim sockets ─────────────────────────────────────────────────────────────

function podState(lab: NodeLab, namespace: string, pod: string) {
  const state = lab.pods.get(`${namespace}/${pod}`);
  if (state === undefined) throw new Error(`node lab: no pod ${namespace}/${pod}`);
  return state;
}

export function sandboxDirOf(lab: NodeLab, namespace: string, pod: string): string {
  const state = podState(lab, namespace, pod);
  return join(state.scenario.runtime === 'go' ? lab.endpoints.kataGoDir : lab.endpoints.kataRsDir, state.sandboxId);
}

export function socketPathOf(lab: NodeLab, namespace: string, pod: string): string {
  return join(sandboxDirOf(lab, namespace, pod), 'shim-monitor.sock');
}

let shortSeq = 0;
/** Unix socket paths are limited to 108 bytes: bind short, then move into the sandbox directory. */
function shortSocketPath(lab: NodeLab): string {
  return join(lab.dir, `f${process.pid}-${shortSeq++}.sock`);
}

export interface ReplacedShim {
  shim: FakeShim;
  /** What the shim answers from now on (normal behaviour). */
  setPayload(payload: string | Uint8Array): void;
}

/**
 * Puts a fake shim of our own at the pod's socket path, serving `payload` (a hostile guest's
 * answer). The lab's own shim stops listening; the lab closes ours when it closes.
 */
export async function replaceShim(
  lab: NodeLab,
  namespace: string,
  pod: string,
  payload: string | Uint8Array,
  behaviour?: ShimBehaviour,
): Promise<ReplacedShim> {
  const state = podState(lab, namespace, pod);
  await state.shim?.close();
  const target = socketPathOf(lab, namespace, pod);
  await rm(target, { force: true });
  let current = payload;
  const shortPath = shortSocketPath(lab);
  const shim = await startFakeShim({ socketPath: shortPath, payload: () => current, ...(behaviour ? { behaviour } : {}) });
  await rename(shortPath, target);
  state.shim = shim;
  return {
    shim,
    setPayload(next) {
      current = next;
    },
  };
}

/** Removes the socket file (the listener keeps running); returns the undo. */
export async function hideSocket(lab: NodeLab, namespace: string, pod: string): Promise<() => Promise<void>> {
  const target = socketPathOf(lab, namespace, pod);
  const keep = `${target}.hidden`;
  await link(target, keep);
  await rm(target);
  return async () => {
    await link(keep, target);
    await rm(keep);
  };
}

/**
 * Replaces the socket with a dead one (a socket file nobody listens on: a crashed shim, ECONNREFUSED).
 * Returns the undo.
 */
export async function deadSocket(lab: NodeLab, namespace: string, pod: string): Promise<() => Promise<void>> {
  const target = socketPathOf(lab, namespace, pod);
  const restore = await hideSocket(lab, namespace, pod);
  const shortPath = shortSocketPath(lab);
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(shortPath, () => resolve());
  });
  await link(shortPath, target);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(shortPath, { force: true });
  return async () => {
    await rm(target, { force: true });
    await restore();
  };
}

// ─── kubelet token: the projected-volume layout and its atomic swap ──────────

/**
 * A token file laid out as the kubelet projects ServiceAccount tokens: `token -> ..data/token`,
 * `..data -> ..<version>`. `rotate` writes a new version and swaps `..data` with one rename.
 */
export async function projectedToken(dir: string, token: string): Promise<{ path: string; rotate(next: string): Promise<void> }> {
  await mkdir(dir, { recursive: true });
  let version = 0;
  const writeVersion = async (value: string): Promise<string> => {
    const name = `..v${++version}`;
    await mkdir(join(dir, name));
    await writeFile(join(dir, name, 'token'), value);
    return name;
  };
  await symlink(await writeVersion(token), join(dir, '..data'));
  await symlink(join('..data', 'token'), join(dir, 'token'));
  return {
    path: join(dir, 'token'),
    async rotate(next) {
      const name = await writeVersion(next);
      await symlink(name, join(dir, '..data_tmp'));
      await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    },
  };
}

// ─── cgroups that vanish and come back ────────────────────────────────────────

/** The hierarchy directories of the lab's tree that hold kubepods (both v1 controllers, or the v2 root). */
async function hierarchies(root: string): Promise<string[]> {
  const entries = await readdir(root, { withFileTypes: true });
  const dirs = entries.filter((e) => e.isDirectory()).map((e) => join(root, e.name));
  const withKubepods: string[] = [];
  for (const dir of [root, ...dirs]) {
    const names = await readdir(dir).catch(() => [] as string[]);
    if (names.some((n) => n.startsWith('kubepods'))) withKubepods.push(dir);
  }
  return withKubepods;
}

/**
 * Removes and re-creates a pod's cgroup directories (the pod cgroup with its sandbox child, and
 * the overhead cgroup) in a tight loop until `stop` resolves. As on a real cgroupfs, a directory
 * appears with all its files at once (it is copied aside and renamed into place); removal goes
 * overhead first (Kata), then the pod cgroup (the kubelet), re-creation the other way round.
 */
export async function flickerCgroups(lab: NodeLab, namespace: string, pod: string, stop: Promise<void>): Promise<number> {
  const state = podState(lab, namespace, pod);
  const paths = lab.cgroups.paths(state.uid);
  if (paths === undefined) throw new Error(`no cgroups for ${namespace}/${pod}`);
  const rels = [paths.pod, ...Object.values(paths.sandboxes).flatMap((p) => (p.overhead === undefined ? [] : [p.overhead]))];
  const dirs = (await hierarchies(lab.endpoints.cgroupRoot)).flatMap((h) => rels.map((rel) => ({ h, live: join(h, rel) })));
  const stash = join(lab.dir, `cgroup-stash-${process.pid}`);
  const originals = dirs.map((d, i) => ({ ...d, saved: join(stash, String(i)) }));
  for (const d of originals) await cp(d.live, d.saved, { recursive: true });
  let stopped = false;
  void stop.then(() => {
    stopped = true;
  });
  let cycles = 0;
  while (!stopped) {
    for (const d of [...originals].reverse()) await rm(d.live, { recursive: true, force: true });
    await new Promise((r) => setImmediate(r));
    for (const d of originals) {
      const staged = join(d.h, `.staging-${process.pid}`);
      await rm(staged, { recursive: true, force: true });
      await cp(d.saved, staged, { recursive: true });
      await rename(staged, d.live);
    }
    await new Promise((r) => setImmediate(r));
    cycles++;
  }
  await rm(stash, { recursive: true, force: true });
  return cycles;
}

// ─── processes and state files ────────────────────────────────────────────────

/** A process in the lab's /proc (comm and cmdline only, which is what discovery reads). */
export async function writeProcess(lab: NodeLab, pid: number, comm: string, cmdline: readonly string[]): Promise<void> {
  const dir = join(lab.endpoints.procDir, String(pid));
  await mkdir(join(dir, 'task'), { recursive: true });
  await writeFile(join(dir, 'comm'), `${comm}\n`);
  await writeFile(join(dir, 'cmdline'), `${cmdline.join('\0')}\0`);
}

/** Rewrites the Go runtime's persist.json of a pod with HypervisorState.Pid = pid (atomically). */
export async function setPersistedVmmPid(lab: NodeLab, namespace: string, pod: string, pid: number): Promise<void> {
  const file = join(sandboxDirOf(lab, namespace, pod), 'persist.json');
  const state = JSON.parse(await readFile(file, 'utf8')) as { HypervisorState: { Pid: number } };
  state.HypervisorState.Pid = pid;
  await writeFile(`${file}.tmp`, JSON.stringify(state));
  await rename(`${file}.tmp`, file);
}
