/**
 * Host truth against a REAL Prometheus (issue 13, sections 2 and 3): the real exporter on node labs
 * whose abusive builds show their abuse only to the host, scraped every second, with the generated
 * rules (windows and `for` shortened through the thresholds' own override mechanism).
 *
 * 1. The lying guest: ci/liar burns its CPU limit, floods the network and the disk and leaks memory
 *    into host OOM kills while its shim (scraped: Go runtime) and the kubelet report an idle VM.
 *    Every host-fed abuse alert and every guest-against-host tamper alert fires for ci/liar, none
 *    for the honest ci/calm beside it; the dashboards' host panels rank ci/liar first, and the pod
 *    drill-down on ci/liar fills its host panels with that pod only.
 * 2. The Kata 4 default node: every sandbox is runtime-rs with QEMU, so no shim is ever called
 *    (Kata issue 13708). Every Kata pod has every host family, and every abuse alert of section 2
 *    fires for the build that commits it, from host data alone, also with the kubelet down.
 *
 * Needs the exporter to publish the per-pod host families of issue 13 (the metric table's
 * kata_bridge_pod_host_* and kata_bridge_pod_guest_oom_kills_total).
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS, resolveThresholds } from '../../deploy/prometheus/thresholds.ts';
import { generate } from '../../scripts/gen-rules.ts';
import { calmPod, kata4DefaultScenario, lyingGuestPod } from '../../src/lab/abuse-scenarios.ts';
import type { LabScenario } from '../../src/lab/node-lab.ts';
import { loadDashboards, panelRefs, SELECT_ALL, substitute, type PanelRef } from '../support/dashboards.ts';
import { startLabExporter, type LabExporter } from '../support/lab-exporter.ts';
import { pollUntil, startPrometheus, type RunningPrometheus, type Sample } from '../support/prometheus.ts';

const JOB = 'kata-metrics-bridge';
const RULE_FILE_NAME = 'kata-bridge.rules.yaml';
/** Rate, variance and event windows of the test copy of the rules, and the `for` of every alert. */
const WINDOW = '20s';
const FOR = '5s';
const NAMESPACE = 'ci';
/** How long the lab's counters may lag the clock: a short tick keeps 20-second rates steady. */
const TICK_MS = 100;

/** Dashboard variables: every selection "All", a top 10 over the rules' window. */
const ALL: Record<string, string> = { ...SELECT_ALL, topn: '10', window: WINDOW };

/** The abuse alerts of section 2, each fed by host data only (scripts/gen-rules.ts, hostTruth and buildAbuse). */
const HOST_ABUSE_ALERTS = {
  mining: 'KataBridgePodHostCpuFlatAtLimit',
  memory: 'KataBridgePodHostMemoryNearLimit',
  hostOom: 'KataBridgePodHostOomKill',
  network: 'KataBridgePodHostNetworkEgressFlood',
  disk: 'KataBridgePodHostDiskWriteFlood',
  forkBomb: 'KataBridgePodHostForkBombPattern',
  throttled: 'KataBridgePodHostCpuThrottled',
} as const;

/** The guest checked against the host: tamper signals. */
const TAMPER_ALERTS = [
  'KataBridgeGuestCpuUnderReported',
  'KataBridgeGuestNetworkUnderReported',
  'KataBridgeGuestDiskUnderReported',
] as const;

/** The per-pod host families of issue 13 (with the host CPU and memory the exporter already had). */
const HOST_FAMILIES = [
  'kata_bridge_pod_host_cpu_usage_seconds_total',
  'kata_bridge_pod_host_memory_working_set_bytes',
  'kata_bridge_pod_host_cpu_throttled_seconds_total',
  'kata_bridge_pod_host_memory_limit_bytes',
  'kata_bridge_pod_host_oom_kills_total',
  'kata_bridge_pod_host_disk_read_bytes_total',
  'kata_bridge_pod_host_disk_written_bytes_total',
  'kata_bridge_pod_host_network_receive_bytes_total',
  'kata_bridge_pod_host_network_transmit_bytes_total',
] as const;
const PRESSURE = 'kata_bridge_pod_host_pressure_seconds_total';

/**
 * The committed generator with every `for` at FOR and every window at WINDOW, through the
 * thresholds' override mechanism; the recording rules' 5-minute rates are not thresholds and are
 * shortened in this copy only. Every threshold value stays the default.
 */
function testRules(): string {
  const override: Record<string, Record<string, string>> = {};
  for (const [key, value] of Object.entries(DEFAULT_THRESHOLDS)) {
    if (typeof value !== 'object' || !('for' in value)) continue;
    const windows = Object.fromEntries(
      Object.keys(value)
        .filter((k) => /window$/i.test(k))
        .map((k) => [k, WINDOW]),
    );
    override[key] = { ...windows, for: FOR };
  }
  const text = generate(resolveThresholds(override));
  const rewritten = text.replaceAll('[5m]', `[${WINDOW}]`);
  if (rewritten === text) throw new Error('the generated rules no longer rate over [5m]: update testRules()');
  const left = /\[(\d+[smh])\]|offset (\d+[smh])/.exec(rewritten.replaceAll(`[${WINDOW}]`, '').replaceAll(`offset ${WINDOW}`, ''));
  if (left !== null) throw new Error(`a window of the rules is not shortened: ${left[0]}`);
  return rewritten;
}

interface Node {
  bridge: LabExporter;
  prom: RunningPrometheus;
}

async function startNode(scenario: LabScenario): Promise<Node> {
  const bridge = await startLabExporter(scenario);
  bridge.lab.startTicking(TICK_MS);
  const prom = await startPrometheus({ targets: [new URL(bridge.url).host], jobName: JOB, ruleFiles: { [RULE_FILE_NAME]: testRules() } });
  return { bridge, prom };
}

/**
 * Polls the active (pending or firing) alerts until every expected `alert pod` pair has been seen,
 * and returns every pair seen meanwhile: alerts of flapping signals count once seen.
 */
async function seenAlerts(
  prom: RunningPrometheus,
  alerts: readonly string[],
  expected: readonly string[],
  timeoutMs: number,
): Promise<Set<string>> {
  const wanted = new Set(alerts);
  const seen = new Set<string>();
  await pollUntil(
    `alerts ${expected.join(', ')}`,
    async () => {
      for (const a of await prom.alerts()) {
        const name = a.labels['alertname'] ?? '';
        if (a.state !== 'inactive' && wanted.has(name)) seen.add(`${name} ${a.labels['namespace']}/${a.labels['pod']}`);
      }
      return expected.every((e) => seen.has(e)) ? true : undefined;
    },
    { timeoutMs, intervalMs: 1_000, describe: () => `seen: ${[...seen].sort().join(', ')}\n${prom.log()}` },
  );
  return seen;
}

function pair(alert: string, pod: string): string {
  return `${alert} ${NAMESPACE}/${pod}`;
}

const dashboards = loadDashboards();

function dashboard(uid: string): PanelRef[] {
  const d = dashboards.find((x) => x.dashboard['uid'] === uid);
  if (d === undefined) throw new Error(`no dashboard ${uid}`);
  return panelRefs(d.dashboard);
}

async function runPanel(
  prom: RunningPrometheus,
  refs: PanelRef[],
  title: string,
  values: Record<string, string>,
  refId = 'A',
): Promise<Sample[]> {
  const query = refs.find((r) => r.title === title)?.queries.find((q) => q.refId === refId);
  if (query === undefined) throw new Error(`no panel "${title}" query ${refId}`);
  return prom.query(substitute(query.expr, values));
}

/** The pod of the highest (or lowest) value of a ranking panel. */
function first(samples: Sample[], order: 'top' | 'bottom'): string | undefined {
  const sorted = [...samples].sort((a, b) => (Number(b.value[1]) - Number(a.value[1])) * (order === 'top' ? 1 : -1));
  return sorted[0]?.metric['pod'];
}

describe('the lying guest, real Prometheus', () => {
  let node: Node;
  const LIAR = 'liar';
  const CALM = 'calm';

  beforeAll(async () => {
    node = await startNode({ nodeName: 'liar-node', cgroupVersion: 2, pods: [lyingGuestPod(LIAR, NAMESPACE), calmPod(CALM, NAMESPACE)] });
  }, 60_000);

  afterAll(async () => {
    await node?.prom.close();
    await node?.bridge.close();
  });

  it('its shim is scraped and reports an idle VM, while the host counts its abuse', async () => {
    const series = await node.bridge.scrape();
    const value = (name: string) => series.get(`${name}{namespace="${NAMESPACE}",pod="${LIAR}"}`);
    expect(value('kata_bridge_pod_guest_tasks')).toBeLessThan(100);
    for (const family of HOST_FAMILIES) expect(value(family), family).toBeDefined();
    expect(node.bridge.lab.pods.get(`${NAMESPACE}/${LIAR}`)?.shim?.stats.calls).toBeGreaterThan(0);
  });

  it('raises every host-fed abuse alert and every tamper alert for the liar, and none for the honest build', async () => {
    const alerts = [...Object.values(HOST_ABUSE_ALERTS), ...TAMPER_ALERTS];
    const seen = await seenAlerts(
      node.prom,
      alerts,
      alerts.map((a) => pair(a, LIAR)),
      150_000,
    );
    expect([...seen].filter((s) => !s.endsWith(`/${LIAR}`))).toEqual([]);
    // The guest-fed second opinions stay silent: the guest says it idles.
    const guestFed = (await node.prom.alerts()).filter(
      (a) =>
        a.state !== 'inactive' &&
        /^KataBridge(GuestTasks|GuestNetworkEgress|GuestDiskWrite|ContainerCpu)/.test(a.labels['alertname'] ?? ''),
    );
    expect(guestFed.map((a) => a.labels)).toEqual([]);
  }, 180_000);

  it("ranks the liar first on the build-abuse board's host panels", async () => {
    const refs = dashboard('kata-build-abuse');
    const panels: Array<[string, 'top' | 'bottom']> = [
      ['Steady host CPU at limit (mining pattern)', 'top'],
      ['Host memory near the pod limit', 'top'],
      ['Highest host egress rate', 'top'],
      ['Highest host disk write rate', 'top'],
      ['Tasks stalled on CPU or memory (PSI)', 'top'],
      ['Throttled time per CPU second', 'top'],
      ['Guest reports far less network than the host counted', 'bottom'],
      ['Guest reports far less disk I/O than the host counted', 'bottom'],
      ['Guest reports far less CPU than the host spent', 'bottom'],
    ];
    const wrong: string[] = [];
    for (const [title, order] of panels) {
      const samples = await runPanel(node.prom, refs, title, ALL);
      if (first(samples, order) !== LIAR) wrong.push(`${title}: ${JSON.stringify(samples.map((s) => [s.metric['pod'], s.value[1]]))}`);
    }
    expect(wrong).toEqual([]);
    const oom = await runPanel(node.prom, refs, 'Host OOM kills (live pods)', ALL);
    expect(first(oom, 'top')).toBe(LIAR);
  });

  it('fills every drill-down panel on the liar with that pod only, host against guest', async () => {
    const values = { ...ALL, namespace: NAMESPACE, pod: LIAR };
    const failures: string[] = [];
    for (const ref of dashboard('kata-pod-drilldown')) {
      for (const q of ref.queries) {
        const result = await node.prom.query(substitute(q.expr, values));
        // A pod without gaps has no gap series: the one panel allowed to be empty.
        if (result.length === 0 && ref.title !== 'Gap reasons') failures.push(`${ref.title}/${q.refId}: empty`);
        const strays = result.filter((s) => s.metric['pod'] !== undefined && s.metric['pod'] !== LIAR);
        if (strays.length > 0) failures.push(`${ref.title}/${q.refId}: other pods ${JSON.stringify(strays.map((s) => s.metric['pod']))}`);
      }
    }
    expect(failures).toEqual([]);
    // Host against guest: the host counts the flood, the guest claims almost nothing.
    const network = dashboard('kata-pod-drilldown');
    const hostSent = Number((await runPanel(node.prom, network, 'Pod network: host vs guest', values, 'B'))[0]?.value[1]);
    const guestSent = Number((await runPanel(node.prom, network, 'Pod network: host vs guest', values, 'D'))[0]?.value[1]);
    expect(hostSent).toBeGreaterThan(DEFAULT_THRESHOLDS.egressFlood.bytesPerSecond);
    expect(guestSent).toBeLessThan(hostSent / 100);
  });

  it('shows throttling, pressure and OOM kills across pods on the node overview', async () => {
    const refs = dashboard('kata-node-overview');
    const throttling = await runPanel(node.prom, refs, 'CPU throttling by pod', ALL);
    expect(first(throttling, 'top')).toBe(LIAR);
    const pressure = await runPanel(node.prom, refs, 'Pressure (PSI): the most stalled pod', ALL);
    expect(pressure.map((s) => `${s.metric['resource']} ${s.metric['kind']}`).sort()).toEqual([
      'cpu full',
      'cpu some',
      'io full',
      'io some',
      'memory full',
      'memory some',
    ]);
    const oom = await runPanel(node.prom, refs, 'OOM kills of live pods', ALL);
    expect(Number(oom[0]?.value[1])).toBeGreaterThan(0);
  });
});

describe('the Kata 4 default node (every sandbox runtime-rs with QEMU), real Prometheus', () => {
  let node: Node;
  const scenario = kata4DefaultScenario(NAMESPACE);
  /** Which abusive build each host-fed alert must name, and which other builds may also match it. */
  const EXPECTED: ReadonlyArray<[alert: string, pods: string[], allowed: string[]]> = [
    [HOST_ABUSE_ALERTS.mining, ['miner'], ['forker', 'liar']],
    [HOST_ABUSE_ALERTS.memory, ['leaky'], ['liar', 'forker']],
    [HOST_ABUSE_ALERTS.hostOom, ['leaky'], ['liar']],
    [HOST_ABUSE_ALERTS.network, ['exfil'], ['liar']],
    [HOST_ABUSE_ALERTS.disk, ['filler'], ['liar']],
    [HOST_ABUSE_ALERTS.forkBomb, ['forker'], ['liar']],
  ];

  beforeAll(async () => {
    node = await startNode(scenario);
  }, 60_000);

  afterAll(async () => {
    await node?.prom.close();
    await node?.bridge.close();
  });

  function shimCalls(): number {
    return [...node.bridge.lab.pods.values()].reduce((sum, p) => sum + (p.shim?.stats.calls ?? 0), 0);
  }

  it('publishes every host family for 100% of the Kata pods, and no guest data', async () => {
    const series = await node.bridge.scrape();
    const missing: string[] = [];
    for (const { name } of scenario.pods) {
      const labels = `namespace="${NAMESPACE}",pod="${name}"`;
      for (const family of HOST_FAMILIES) if (!series.has(`${family}{${labels}}`)) missing.push(`${family} ${name}`);
      for (const resource of ['cpu', 'io', 'memory']) {
        for (const kind of ['full', 'some'])
          if (!series.has(`${PRESSURE}{kind="${kind}",${labels},resource="${resource}"}`))
            missing.push(`${PRESSURE} ${resource} ${kind} ${name}`);
      }
    }
    expect(missing).toEqual([]);
    expect([...series.keys()].filter((k) => k.startsWith('kata_bridge_pod_guest_'))).toEqual([]);
  });

  async function expectAbuseAlerts(): Promise<void> {
    const alerts = EXPECTED.map(([alert]) => alert);
    const expected = EXPECTED.flatMap(([alert, pods]) => pods.map((p) => pair(alert, p)));
    const seen = await seenAlerts(node.prom, alerts, expected, 150_000);
    const stray = [...seen].filter((s) => {
      const [alert, ref] = s.split(' ') as [string, string];
      const row = EXPECTED.find(([a]) => a === alert)!;
      return ![...row[1], ...row[2]].some((p) => ref === `${NAMESPACE}/${p}`);
    });
    expect(stray).toEqual([]);
  }

  it('raises every abuse alert for the build that commits it, from host data alone', async () => {
    await expectAbuseAlerts();
    expect(shimCalls()).toBe(0);
  }, 180_000);

  it('raises them again from a fresh Prometheus while the kubelet is down, still without calling a shim', async () => {
    node.bridge.lab.kubelet.setFault({ kind: 'status', status: 503 });
    await node.prom.close();
    node.prom = await startPrometheus({
      targets: [new URL(node.bridge.url).host],
      jobName: JOB,
      ruleFiles: { [RULE_FILE_NAME]: testRules() },
    });
    await pollUntil(
      'the kubelet source down in the exporter',
      async () => ((await node.prom.query('kata_bridge_source_up{source="kubelet"} == 0')).length > 0 ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 500, describe: () => node.prom.log() },
    );
    await expectAbuseAlerts();
    expect(shimCalls()).toBe(0);
  }, 200_000);
});
