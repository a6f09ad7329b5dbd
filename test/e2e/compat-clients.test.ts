/**
 * The tools people already run show the truth for Kata pods (docs/compatibility.md), against a REAL
 * Prometheus loaded with kube-prometheus' own rules, as released, read from
 * ../shared/real-clients/kube-prometheus/ (never copied into the project).
 *
 * Fixtures (test/support/compat-fixtures.ts) serve what cAdvisor, kube-state-metrics and the
 * exporter serve for a runc pod and Kata pods in three cgroup layouts, in two clusters of one
 * Prometheus: `kata` (the real Kata rows) and `oracle` (the same pods presented as runc pods with
 * their true values). Every query of every kube-prometheus dashboard, unmodified, with its
 * variables filled as Grafana would for each pod, and the OpenCost queries, run for both
 * clusters at one instant; the differential oracle wants the same results (within 1 %), and never
 * two results for one container.
 *
 * Run 1 ("with"): the compatibility rules, kube-prometheus' rules with the group they replace
 * disabled (as docs/compatibility.md says), and the scrape-time drop on the cAdvisor job.
 * Run 2 ("without"): kube-prometheus' rules alone. Its oracle must fail: that proves the check
 * catches what the rules fix.
 */

import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { COMPAT_RECORDS, COMPAT_RULES_REL, RELABEL_SNIPPET_REL, SOURCE_LABEL, UPSTREAM_CPU_GROUP } from '../../scripts/compat-rules.ts';
import {
  CLUSTERS,
  KATA_PODS,
  NODE,
  PODS,
  fixtureExposition,
  hostCpu,
  simulatedNow,
  type Cluster,
  type FixturePod,
} from '../support/compat-fixtures.ts';
import { REPO_DIR, isRecord, metricNames, panelRefs, substitute, variables, type Json } from '../support/dashboards.ts';
import { pollUntil, sleep, startPrometheus, type RunningPrometheus, type Sample } from '../support/prometheus.ts';

const CLIENTS_DIR = join(REPO_DIR, '..', 'shared', 'real-clients', 'kube-prometheus');
const DASHBOARDS_FILE = join(CLIENTS_DIR, 'grafana-dashboardDefinitions.yaml');
const UPSTREAM_RULE_FILES = [
  'kubernetesControlPlane-prometheusRule.yaml',
  'kubeStateMetrics-prometheusRule.yaml',
  'nodeExporter-prometheusRule.yaml',
];

/** Past replayed at the start of a run (a 5-minute rate window, and margin) and how fast. */
const HISTORY_SECONDS = 330;
const CATCH_UP_SECONDS = 20;
/** OpenCost's query window. Our cAdvisor-named CPU series are recorded copies: they exist from the
 * first rule evaluation on, so the window must lie after the catch-up. 2 m: one late copy at a
 * window edge moves the rate by at most 1 s / 120 s, under the 1 % tolerance. */
const OPENCOST_WINDOW_SECONDS = 120;
const TOLERANCE = 0.01;

/**
 * OpenCost (Prometheus mode), its CPU and RAM usage queries, with its cluster filter filled in.
 * RAM averages the working set over the window the same way.
 */
const OPENCOST_QUERIES: Record<string, string> = {
  'opencost/cpu usage': `avg(rate(container_cpu_usage_seconds_total{container!="", container!="POD", cluster="$cluster"}[${OPENCOST_WINDOW_SECONDS}s])) by (container, pod, namespace, node, instance, uid)`,
  'opencost/ram usage': `avg(avg_over_time(container_memory_working_set_bytes{container!="", container!="POD", cluster="$cluster"}[${OPENCOST_WINDOW_SECONDS}s])) by (container, pod, namespace, node, instance, uid)`,
};

/**
 * Families the exporter has no source for (docs/compatibility.md, "What stays wrong"): a query
 * reading one may differ for Kata pods. Each entry must still show a difference, so the list
 * cannot outlive the gap it excuses.
 */
const KNOWN_WRONG: Record<string, string> = {
  container_memory_rss: "no source for a Kata container's RSS: the exporter has its working set only",
  container_memory_cache: "no source for a Kata container's page cache",
};
const KNOWN_WRONG_RE = new RegExp(`(^|:)(${Object.keys(KNOWN_WRONG).join('|')})($|:)`);

interface Dashboard {
  file: string;
  uid: string;
  json: Json;
}

function clientFilesOrFail(): void {
  const missing = [DASHBOARDS_FILE, ...UPSTREAM_RULE_FILES.map((f) => join(CLIENTS_DIR, f))].filter((f) => !existsSync(f));
  if (missing.length > 0) {
    throw new Error(
      `the real client files are missing: ${missing.join(', ')}. This test needs kube-prometheus' released dashboards and rules in ../shared/real-clients/kube-prometheus/ (relative to the repository root; see ../shared/real-clients/README.md): it never runs without them.`,
    );
  }
}

function loadUpstreamGroups(): Json[] {
  return UPSTREAM_RULE_FILES.flatMap((file) => {
    const doc: unknown = parseYaml(readFileSync(join(CLIENTS_DIR, file), 'utf8'));
    const spec = isRecord(doc) ? doc['spec'] : undefined;
    const groups = isRecord(spec) ? spec['groups'] : undefined;
    if (!Array.isArray(groups)) throw new Error(`${file}: no spec.groups`);
    return groups.filter(isRecord);
  });
}

function loadDashboards(): Dashboard[] {
  const doc: unknown = parseYaml(readFileSync(DASHBOARDS_FILE, 'utf8'));
  const items = isRecord(doc) && Array.isArray(doc['items']) ? doc['items'].filter(isRecord) : [];
  return items.flatMap((item) => {
    const data = isRecord(item['data']) ? item['data'] : {};
    return Object.entries(data).map(([file, text]) => {
      const json: unknown = JSON.parse(String(text));
      if (!isRecord(json)) throw new Error(`${file}: not a JSON object`);
      return { file, uid: String(json['uid'] ?? file), json };
    });
  });
}

// ── the fixture targets ──

let server: Server;
let port = 0;
let startMs = 0;

function serve(): Promise<void> {
  server = createServer((req, res) => {
    const found = req.url === '/metrics';
    res.writeHead(found ? 200 : 404, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(found ? fixtureExposition(simulatedNow(Date.now(), startMs, HISTORY_SECONDS, CATCH_UP_SECONDS)) : 'not found');
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      port = (server.address() as AddressInfo).port;
      resolve();
    }),
  );
}

/**
 * One job scrapes the one fixture target; the series name their own job, cluster and instance
 * (honor_labels), as the kubelet, kube-state-metrics and exporter jobs would label them. With the
 * compatibility rules, the job gets the drop snippet exactly as shipped.
 */
function prometheusYaml(withCompat: boolean, ruleFilePaths: string[]): string {
  const drop = readFileSync(join(REPO_DIR, RELABEL_SNIPPET_REL), 'utf8')
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => `      ${l}`);
  return [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    'rule_files:',
    ...ruleFilePaths.map((p) => `  - ${JSON.stringify(p)}`),
    'scrape_configs:',
    '  - job_name: fixtures',
    '    honor_labels: true',
    '    static_configs:',
    `      - targets: ["127.0.0.1:${port}"]`,
    ...(withCompat ? ['    metric_relabel_configs:', ...drop] : []),
    '',
  ].join('\n');
}

// ── queries ──

async function queryAt(prom: RunningPrometheus, expr: string, time: number): Promise<Sample[]> {
  const response = await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent(expr)}&time=${time}`);
  const body = (await response.json()) as { status: string; error?: string; data?: { resultType: string; result: unknown } };
  if (body.status !== 'success' || body.data === undefined) throw new Error(`${body.error ?? response.status}: ${expr}`);
  if (body.data.resultType === 'vector') return body.data.result as Sample[];
  if (body.data.resultType === 'scalar') return [{ metric: {}, value: body.data.result as [number, string] }];
  throw new Error(`a ${body.data.resultType} result: ${expr}`);
}

/** Labels a result row is compared on: the cluster is what differs by construction, and the
 * instance names the scrape target (the compatibility series come from rules, not from a kubelet). */
function rowKey(metric: Record<string, string>): string {
  return JSON.stringify(
    Object.entries(metric)
      .filter(([k]) => k !== 'cluster' && k !== 'instance')
      .sort(),
  );
}

function close(a: number, b: number): boolean {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
  return Math.abs(a - b) <= TOLERANCE * Math.max(Math.abs(a), Math.abs(b)) + 1e-9;
}

interface Check {
  where: string;
  /** The expression for each cluster (the same text when the query does not use $cluster). */
  exprs: Record<Cluster, string>;
  names: string[];
}

/** Variable values as Grafana fills them when a user looks at pod `p` of a cluster. */
function grafanaValues(dashboard: Dashboard, cluster: Cluster, p: FixturePod): Record<string, string> {
  const values: Record<string, string> = {};
  // A variable with no values in this cluster (node-exporter's instance, apiserver's job...) is empty in Grafana.
  for (const v of variables(dashboard.json)) values[v.name] = '';
  return {
    ...values,
    datasource: 'prometheus',
    cluster,
    namespace: p.namespace,
    pod: p.name,
    node: NODE,
    workload: p.deployment,
    type: 'deployment',
    __rate_interval: '1m',
    __interval: '30s',
    __range: '5m',
    __range_s: '300',
  };
}

function dashboardChecks(dashboards: Dashboard[]): Check[] {
  const checks = new Map<string, Check>();
  for (const d of dashboards) {
    for (const ref of panelRefs(d.json)) {
      for (const q of ref.queries) {
        for (const p of PODS) {
          const exprs = {
            kata: substitute(q.expr, grafanaValues(d, 'kata', p)),
            oracle: substitute(q.expr, grafanaValues(d, 'oracle', p)),
          };
          const id = `${exprs.kata}\n${exprs.oracle}`;
          if (!checks.has(id))
            checks.set(id, {
              where: `${d.file} / ${ref.title || '(untitled)'} / ${q.refId} / ${p.namespace}/${p.name}`,
              exprs,
              names: metricNames(q.expr),
            });
        }
      }
    }
  }
  for (const [where, expr] of Object.entries(OPENCOST_QUERIES)) {
    checks.set(where, {
      where,
      exprs: { kata: expr.replace('$cluster', 'kata'), oracle: expr.replace('$cluster', 'oracle') },
      names: metricNames(expr),
    });
  }
  return [...checks.values()];
}

interface OracleReport {
  /** Queries whose Kata rows differ from the oracle's, or that return two rows for one thing. */
  failures: string[];
  /** Known-wrong families (KNOWN_WRONG) that did differ. */
  knownWrongSeen: Set<string>;
  /** Queries that returned data to compare. */
  compared: number;
}

async function runOracle(prom: RunningPrometheus, checks: Check[], time: number): Promise<OracleReport> {
  const report: OracleReport = { failures: [], knownWrongSeen: new Set(), compared: 0 };
  for (const check of checks) {
    const rows: Record<Cluster, Sample[]> = { kata: [], oracle: [] };
    try {
      if (check.exprs.kata === check.exprs.oracle) {
        const all = await queryAt(prom, check.exprs.kata, time);
        for (const c of CLUSTERS) rows[c] = all.filter((s) => s.metric['cluster'] === c);
      } else {
        for (const c of CLUSTERS) rows[c] = await queryAt(prom, check.exprs[c], time);
      }
    } catch (error) {
      report.failures.push(`${check.where}: query error ${String(error)}`);
      continue;
    }
    if (rows.kata.length + rows.oracle.length > 0) report.compared++;
    const problems: string[] = [];
    const byKey = (samples: Sample[], cluster: Cluster) => {
      const map = new Map<string, number>();
      for (const s of samples) {
        const key = rowKey(s.metric);
        if (map.has(key)) problems.push(`${cluster}: two results for ${key}`);
        map.set(key, Number(s.value[1]));
      }
      return map;
    };
    const kata = byKey(rows.kata, 'kata');
    const oracle = byKey(rows.oracle, 'oracle');
    for (const key of new Set([...kata.keys(), ...oracle.keys()])) {
      const a = kata.get(key);
      const b = oracle.get(key);
      if (a === undefined || b === undefined || !close(a, b)) problems.push(`${key}: kata ${a ?? 'missing'}, as runc ${b ?? 'missing'}`);
    }
    if (problems.length === 0) continue;
    const knownWrong = check.names.filter((n) => KNOWN_WRONG_RE.test(n));
    if (knownWrong.length > 0) {
      for (const n of knownWrong) report.knownWrongSeen.add(Object.keys(KNOWN_WRONG).find((k) => n.includes(k))!);
      continue;
    }
    report.failures.push(`${check.where}\n  ${check.exprs.kata}\n  ${problems.slice(0, 6).join('\n  ')}`);
  }
  return report;
}

// ── the runs ──

let withCompat: RunningPrometheus | undefined;
let without: RunningPrometheus | undefined;
let checks: Check[] = [];
let queryTime = 0;

beforeAll(
  async () => {
    clientFilesOrFail();
    const upstream = loadUpstreamGroups();
    expect(
      upstream.some((g) => g['name'] === UPSTREAM_CPU_GROUP),
      `kube-prometheus still has the group ${UPSTREAM_CPU_GROUP}`,
    ).toBe(true);
    checks = dashboardChecks(loadDashboards());
    startMs = Date.now();
    await serve();
    const upstreamText = (groups: Json[]) => stringifyYaml({ groups });
    [withCompat, without] = await Promise.all([
      startPrometheus({
        targets: [],
        jobName: 'unused',
        ruleFiles: {
          'kube-prometheus.rules.yaml': upstreamText(upstream.filter((g) => g['name'] !== UPSTREAM_CPU_GROUP)),
          'kata-bridge-compat.rules.yaml': readFileSync(join(REPO_DIR, COMPAT_RULES_REL), 'utf8'),
        },
        config: (paths) => prometheusYaml(true, paths),
      }),
      startPrometheus({
        targets: [],
        jobName: 'unused',
        ruleFiles: { 'kube-prometheus.rules.yaml': upstreamText(upstream) },
        config: (paths) => prometheusYaml(false, paths),
      }),
    ]);
    // Wait out the replayed past and one OpenCost window of the recorded copies after it.
    const ready = startMs + (CATCH_UP_SECONDS + OPENCOST_WINDOW_SECONDS + 8) * 1000;
    await pollUntil(
      'the fixture target up in both runs',
      async () => {
        const ups = await Promise.all([withCompat!, without!].map((p) => p.query('up == 1')));
        return ups.every((u) => u.length === 1) ? true : undefined;
      },
      { timeoutMs: 30_000 },
    );
    await sleep(Math.max(0, ready - Date.now()));
    queryTime = (Date.now() - 1000) / 1000;
  },
  (CATCH_UP_SECONDS + OPENCOST_WINDOW_SECONDS + 90) * 1000,
);

afterAll(async () => {
  await Promise.all([withCompat?.close(), without?.close()]);
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
});

describe('kube-prometheus dashboards, OpenCost: Kata pods against a real Prometheus', () => {
  it('every rule of both runs evaluates without error, the compatibility rules included', async () => {
    for (const prom of [withCompat!, without!]) {
      // `unknown`: a group with a long interval of its own (kube-apiserver-availability.rules, 3m) may not have run yet.
      const broken = (await prom.rules()).filter((r) => r.health === 'err');
      expect(broken.map((r) => `${r.name}: ${r.lastError ?? ''}`)).toEqual([]);
    }
    const compat = (await withCompat!.rules()).filter((r) => r.query.includes('kata_bridge_'));
    expect(compat.map((r) => [r.name, r.health])).toEqual(Object.values(COMPAT_RECORDS).map((name) => [name, 'ok']));
  });

  it('the scrape-time drop removes exactly the kata_ CPU and memory rows', async () => {
    const kataRows = 'container_memory_working_set_bytes{job="kubelet", cluster="kata", id=~".*/kata_[0-9a-f]+"}';
    expect((await queryAt(without!, kataRows, queryTime)).length).toBeGreaterThan(0);
    expect(await queryAt(withCompat!, kataRows, queryTime)).toEqual([]);
    // The runc pod's rows and the oracle's are untouched.
    const others = 'count(container_memory_working_set_bytes{job="kubelet", source=""})';
    const [kept, all] = await Promise.all([
      queryAt(withCompat!, others, queryTime),
      queryAt(without!, `${others.slice(0, -2)}, id!~".*/kata_[0-9a-f]{64}"})`, queryTime),
    ]);
    expect(kept.map((s) => s.value[1])).toEqual(all.map((s) => s.value[1]));
    expect(Number(kept[0]?.value[1])).toBeGreaterThan(10);
  });

  it('with the compatibility rules, every dashboard query and the OpenCost queries show each Kata pod as the same pod run by runc', async () => {
    const report = await runOracle(withCompat!, checks, queryTime);
    expect(report.failures, report.failures.join('\n\n')).toEqual([]);
    // The oracle is not vacuous: hundreds of queries returned rows to compare.
    expect(report.compared).toBeGreaterThan(100);
    // Each known gap is still a gap; remove its entry once a source exists.
    expect([...report.knownWrongSeen].sort()).toEqual(Object.keys(KNOWN_WRONG).sort());
  }, 180_000);

  it('OpenCost reads one true value per Kata container, marked as coming from the exporter', async () => {
    const cpu = await queryAt(withCompat!, OPENCOST_QUERIES['opencost/cpu usage']!.replace('$cluster', 'kata'), queryTime);
    const copies = await queryAt(
      withCompat!,
      `container_cpu_usage_seconds_total{cluster="kata", ${Object.entries(SOURCE_LABEL)
        .map(([k, v]) => `${k}="${v}"`)
        .join(', ')}}`,
      queryTime,
    );
    for (const p of KATA_PODS) {
      for (const c of p.containers) {
        const rows = cpu.filter(
          (s) => s.metric['namespace'] === p.namespace && s.metric['pod'] === p.name && s.metric['container'] === c.name,
        );
        expect(rows, `${p.name}/${c.name}`).toHaveLength(1);
        expect(Number(rows[0]!.value[1])).toBeCloseTo(c.cpu, 3);
        const copy = copies.filter((s) => s.metric['pod'] === p.name && s.metric['container'] === c.name);
        expect(copy.map((s) => [s.metric['job'], s.metric['metrics_path'], s.metric['image'], s.metric['node']])).toEqual([
          ['kubelet', '/metrics/cadvisor', c.image, NODE],
        ]);
      }
    }
  });

  it('the CPU recording rules book each Kata pod at what the node pays for it', async () => {
    // irate: the last two samples, exact; the 5-minute rate starts in the sparse replayed past (see the fixtures).
    const perPod = await queryAt(withCompat!, `sum by (namespace, pod) (${COMPAT_RECORDS.cpuIrate}{cluster="kata"})`, queryTime);
    for (const p of KATA_PODS) {
      const row = perPod.find((s) => s.metric['pod'] === p.name);
      expect(Number(row?.value[1]), p.name).toBeCloseTo(hostCpu(p), 3);
    }
  });

  it('without the compatibility rules, the same oracle fails for every Kata pod, on CPU and in OpenCost', async () => {
    const report = await runOracle(without!, checks, queryTime);
    for (const p of KATA_PODS)
      expect(
        report.failures.some((f) => f.includes(p.name)),
        `a failure shows ${p.name}`,
      ).toBe(true);
    expect(report.failures.some((f) => f.includes(COMPAT_RECORDS.cpuRate))).toBe(true);
    expect(report.failures.some((f) => f.startsWith('opencost/cpu usage'))).toBe(true);
    expect(report.failures.some((f) => f.startsWith('opencost/ram usage'))).toBe(true);
  }, 180_000);
});
