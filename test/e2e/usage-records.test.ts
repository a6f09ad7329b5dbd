/**
 * Usage records on the node lab (issue 15, section 1), the real exporter on a simulated clock
 * scraped every 15 s: a 37-second build gets one record within 1 % of its cgroup totals, read
 * from the lab's cgroup files at its end; exactly one across an exporter restart that keeps the
 * ledger (and a second one without it, which is what the ledger prevents); stdout by default,
 * nothing with --usage.output=off; kata_bridge_usage_records_total counts them.
 */

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { NodeLab, type LabPodScenario, type LabScenario } from '../../src/lab/node-lab.ts';
import type { UsageRecord } from '../../src/translate/usage.ts';
import { startExporterOn, type RunningExporter } from '../support/lab-exporter.ts';
import { waitFor } from '../support/wait.ts';

const GIB = 2 ** 30;
const MIB = 2 ** 20;
const SCRAPE_INTERVAL_MS = 15_000;
const T0 = Date.parse('2026-06-01T12:00:00Z');
const NAMESPACE = 'ci';

const BUILD: LabPodScenario = {
  name: 'build-42',
  namespace: NAMESPACE,
  ageSeconds: 0,
  labels: { tenant: 'acme' },
  containers: [
    { name: 'build', cpuCores: 1.6, memoryBytes: 900 * MIB, limits: { cpu: '2', memory: '2Gi' }, requests: { cpu: '2', memory: '2Gi' } },
  ],
};
/** Runs on: never gets a record. */
const CALM: LabPodScenario = { name: 'calm', namespace: NAMESPACE, ageSeconds: 0 };

let nowMs = T0;
const now = () => nowMs;
let lab: NodeLab;
let dir: string;
const running: RunningExporter[] = [];

beforeEach(async () => {
  nowMs = T0;
  dir = await mkdtemp(join(tmpdir(), 'kmb-usage-'));
  const scenario: LabScenario = { cgroupVersion: 2, pods: [BUILD, CALM] };
  lab = await NodeLab.start(scenario, { now });
});

afterEach(async () => {
  vi.restoreAllMocks();
  for (const exporter of running.splice(0)) await exporter.close();
  await lab?.close();
  await rm(dir, { recursive: true, force: true });
});

async function start(flags: string[]): Promise<RunningExporter> {
  const exporter = await startExporterOn(lab, { now, flags: ['--pods.labels-allowlist=tenant', ...flags] });
  running.push(exporter);
  return exporter;
}

function fileFlags(stateDir = join(dir, 'state')): string[] {
  return [`--usage.output=${join(dir, 'usage.jsonl')}`, `--usage.state-dir=${stateDir}`];
}

async function records(): Promise<UsageRecord[]> {
  const text = await readFile(join(dir, 'usage.jsonl'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as UsageRecord);
}

/** Advances the clock, lets the lab's counters move, and scrapes: one collection. */
async function scrapeAfter(exporter: RunningExporter, ms: number): Promise<void> {
  nowMs += ms;
  await lab.tick();
  await exporter.scrapeText();
}

/** Waits until the exporter's pod watch shows `check` for the build, then for the records under way. */
async function settledWhen(exporter: RunningExporter, check: (phase: string | undefined) => boolean): Promise<void> {
  const uid = lab.pods.get(`${NAMESPACE}/${BUILD.name}`)?.uid ?? '';
  await waitFor('the pod watch to see the change', () => check(exporter.exporter.watcher.pods().get(uid)?.phase));
  await exporter.exporter.usageSettled();
}

/** The v2 cgroup files of the build's pod cgroup and overhead cgroup, as the kernel would have them at the end. */
async function cgroupTotals(): Promise<{ cpuSeconds: number; workingSetBytes: number; peakBytes: number }> {
  const state = lab.pods.get(`${NAMESPACE}/${BUILD.name}`)!;
  const paths = lab.cgroups.paths(state.uid)!;
  const overhead = paths.sandboxes[state.sandboxId]?.overhead;
  expect(overhead).toBeDefined(); // Go runtime, sandbox_cgroup_only=false: the VMM is outside the pod cgroup
  let cpuSeconds = 0;
  let workingSetBytes = 0;
  let peakBytes = 0;
  for (const rel of [paths.pod, overhead!]) {
    const at = (file: string) => readFile(join(lab.endpoints.cgroupRoot, rel, file), 'utf8');
    cpuSeconds += Number(/^usage_usec (\d+)$/m.exec(await at('cpu.stat'))![1]) / 1e6;
    workingSetBytes += Number((await at('memory.current')).trim()) - Number(/^inactive_file (\d+)$/m.exec(await at('memory.stat'))![1]);
    peakBytes += Number((await at('memory.peak')).trim());
  }
  return { cpuSeconds, workingSetBytes, peakBytes };
}

function within1Percent(actual: number | null, expected: number): void {
  expect(actual).not.toBeNull();
  expect(Math.abs(actual! - expected)).toBeLessThanOrEqual(expected * 0.01);
}

describe('a 37-second build scraped every 15 s', () => {
  it('gets one record within 1 % of its cgroup totals, read at its end', async () => {
    const exporter = await start(fileFlags());
    await scrapeAfter(exporter, SCRAPE_INTERVAL_MS);
    await scrapeAfter(exporter, SCRAPE_INTERVAL_MS);
    const atLastScrape = await cgroupTotals();
    nowMs += 7_000;
    await lab.finishPod(NAMESPACE, BUILD.name);
    await settledWhen(exporter, (phase) => phase === 'Succeeded');
    const totals = await cgroupTotals();
    // The 7 s after the last scrape matter: the last collection's CPU is more than 1 % short.
    expect(totals.cpuSeconds - atLastScrape.cpuSeconds).toBeGreaterThan(totals.cpuSeconds * 0.01);

    const [record, ...more] = await records();
    expect(more).toEqual([]);
    const state = lab.pods.get(`${NAMESPACE}/${BUILD.name}`)!;
    expect(record).toMatchObject({
      kind: 'usage_record',
      namespace: NAMESPACE,
      pod: BUILD.name,
      uid: state.uid,
      node: lab.endpoints.nodeName,
      runtime_handler: 'kata-qemu',
      sandbox_id: state.sandboxId,
      labels: { label_tenant: 'acme' },
      start: new Date(T0).toISOString(),
      end: new Date(T0 + 37_000).toISOString(),
      duration_seconds: 37,
      end_reason: 'succeeded',
      final_read: true,
      collections: 2,
      host_memory_peak_source: 'kernel',
      gaps: [],
    });
    within1Percent(record!.host_cpu_seconds, totals.cpuSeconds);
    within1Percent(record!.host_memory_peak_bytes, totals.peakBytes);
    // The working set is constant over the build's life (no leak in this scenario).
    expect(totals.workingSetBytes).toBe(atLastScrape.workingSetBytes);
    within1Percent(record!.host_memory_gib_seconds, (totals.workingSetBytes / GIB) * 37);
    expect(record!.containers).toEqual([
      { name: 'build', cpu_seconds: expect.any(Number), source: 'kubelet', read_at: new Date(T0 + 30_000).toISOString() },
    ]);
    expect(record!.overhead_cpu_seconds).toBeGreaterThan(0);
    expect(record!.overhead_cpu_seconds).toBeLessThan(record!.host_cpu_seconds!);

    const series = await exporter.scrape();
    expect(series.get('kata_bridge_usage_records_total{result="written"}')).toBe(1);
  });

  it("keeps the last collection's values, and says so, when its cgroups are gone before its end is seen", async () => {
    const exporter = await start(fileFlags());
    await scrapeAfter(exporter, SCRAPE_INTERVAL_MS);
    await scrapeAfter(exporter, SCRAPE_INTERVAL_MS);
    const atLastScrape = await cgroupTotals();
    nowMs += 7_000;
    await lab.teardownSandbox(NAMESPACE, BUILD.name);
    await lab.finishPod(NAMESPACE, BUILD.name);
    await settledWhen(exporter, (phase) => phase === 'Succeeded');
    const [record, ...more] = await records();
    expect(more).toEqual([]);
    expect(record).toMatchObject({ final_read: false, collections: 2, host_memory_peak_source: 'observed_working_set' });
    within1Percent(record!.host_cpu_seconds, atLastScrape.cpuSeconds);
  });
});

describe('exactly once', () => {
  it('writes one record per pod across an exporter restart that keeps the ledger, and deletion adds none', async () => {
    const first = await start(fileFlags());
    await scrapeAfter(first, SCRAPE_INTERVAL_MS);
    nowMs += 20_000;
    await lab.finishPod(NAMESPACE, BUILD.name);
    await settledWhen(first, (phase) => phase === 'Succeeded');
    expect(await records()).toHaveLength(1);
    await first.close();

    // The pod is still listed as Succeeded, its cgroups still there: the restarted exporter sees an
    // ended pod it could record, and the ledger says it has its record.
    const second = await start(fileFlags());
    await second.exporter.usageSettled();
    await lab.teardownSandbox(NAMESPACE, BUILD.name);
    await lab.removePod(NAMESPACE, BUILD.name);
    await settledWhen(second, (phase) => phase === undefined);
    expect(await records()).toHaveLength(1);
    // The restarted exporter wrote nothing: the ledger already had the pod.
    expect((await second.scrape()).get('kata_bridge_usage_records_total{result="written"}')).toBe(0);
  });

  it('writes it again after a restart without the ledger: what the ledger prevents', async () => {
    const first = await start(fileFlags());
    await scrapeAfter(first, SCRAPE_INTERVAL_MS);
    nowMs += 20_000;
    await lab.finishPod(NAMESPACE, BUILD.name);
    await settledWhen(first, (phase) => phase === 'Succeeded');
    await first.close();
    const second = await start(fileFlags(join(dir, 'another-state')));
    await second.exporter.usageSettled();
    const all = await records();
    expect(all.map((r) => r.uid)).toEqual([all[0]!.uid, all[0]!.uid]);
    // Seen only at its end, by its cgroups: the kernel's totals, no collection.
    expect(all[1]).toMatchObject({ final_read: true, collections: 0 });
  });
});

describe('--usage.output', () => {
  /** Watches stdout; usage records are kept out of the test output (their write still completes). */
  function spyStdout() {
    const original = process.stdout.write.bind(process.stdout);
    return vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: string | Uint8Array, ...rest: unknown[]) => {
      if (!String(chunk).includes('"kind":"usage_record"')) return original(chunk, ...(rest as []));
      const done = rest.find((arg): arg is () => void => typeof arg === 'function');
      done?.();
      return true;
    }) as typeof process.stdout.write);
  }

  function stdoutRecords(write: { mock: { calls: unknown[][] } }): UsageRecord[] {
    return write.mock.calls
      .map((call) => String(call[0]))
      .filter((text) => text.includes('"kind":"usage_record"'))
      .map((text) => JSON.parse(text) as UsageRecord);
  }

  it('stdout: one JSON line per record', async () => {
    const write = spyStdout();
    const exporter = await start(['--usage.output=stdout']);
    await scrapeAfter(exporter, SCRAPE_INTERVAL_MS);
    nowMs += 20_000;
    await lab.finishPod(NAMESPACE, BUILD.name, 'Failed');
    await settledWhen(exporter, (phase) => phase === 'Failed');
    const lines = write.mock.calls.map((call) => String(call[0])).filter((text) => text.includes('"kind":"usage_record"'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\{.*\}\n$/s);
    expect(lines[0]!.indexOf('\n')).toBe(lines[0]!.length - 1);
    expect(stdoutRecords(write)[0]).toMatchObject({ pod: BUILD.name, end_reason: 'failed', final_read: true });
  });

  it('off: writes nothing and counts nothing', async () => {
    const write = spyStdout();
    const exporter = await start(['--usage.output=off', `--usage.state-dir=${join(dir, 'state')}`]);
    await scrapeAfter(exporter, SCRAPE_INTERVAL_MS);
    nowMs += 20_000;
    await lab.finishPod(NAMESPACE, BUILD.name);
    await settledWhen(exporter, (phase) => phase === 'Succeeded');
    expect(stdoutRecords(write)).toEqual([]);
    expect(await readFile(join(dir, 'state', 'usage-ledger.log'), 'utf8').catch(() => 'absent')).toBe('absent');
    const text = await exporter.scrapeText();
    expect(text).toMatch(/^# TYPE kata_bridge_usage_records_total counter$/m);
    for (const result of ['written', 'failed', 'missed'])
      expect(text).toMatch(new RegExp(`^kata_bridge_usage_records_total\\{result="${result}"\\} 0$`, 'm'));
  });
});
