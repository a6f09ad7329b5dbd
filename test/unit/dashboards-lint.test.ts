/**
 * Lint for the shipped Grafana dashboards: every file in dashboards/ must import into Grafana as
 * is, read only series the bridge publishes (or recording rules, ALERTS, up), follow the panel
 * conventions (unit, title, description, `$__rate_interval`), and never hard-code a data source.
 * The second half proves the lint has teeth on deliberately broken dashboards.
 */

import { describe, expect, it } from 'vitest';
import {
  GRAFANA_BUILTINS,
  PROMETHEUS_SERIES,
  allPanels,
  isRecord,
  loadDashboards,
  metricNames,
  panelQueries,
  publishedFamilies,
  rateWindows,
  readRuleFile,
  ruleNames,
  usedVariables,
  variables,
  type Json,
  type RuleFileNames,
} from '../support/dashboards.ts';

const PANEL_TYPES = new Set(['timeseries', 'stat', 'table', 'bargauge']);
const DATASOURCE_REFS = new Set(['${datasource}', '$datasource']);
/** Variables that, once declared, every panel query must honour (else the selector lies). */
const FILTER_VARIABLES = ['instance', 'namespace', 'pod'];
/** Dashboards that must offer a namespace and pod selection. */
const NEEDS_POD_SELECTION = new Set(['kata-pod-drilldown']);
/** The three dashboards the project ships, by uid. */
const EXPECTED = ['kata-build-abuse', 'kata-capacity-cost', 'kata-node-overview', 'kata-pod-drilldown'];

interface LintContext {
  families: Set<string>;
  rules: RuleFileNames;
  ruleText: string | undefined;
}

function context(): LintContext {
  const ruleText = readRuleFile();
  return { families: publishedFamilies(), rules: ruleNames(ruleText), ruleText };
}

/** Every `datasource` value anywhere in the JSON, with its path. */
function datasourceRefs(node: unknown, path: string, out: Array<{ path: string; value: unknown }>): void {
  if (Array.isArray(node)) node.forEach((v, i) => datasourceRefs(v, `${path}[${i}]`, out));
  else if (isRecord(node)) {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'datasource') out.push({ path: `${path}.${k}`, value: v });
      datasourceRefs(v, `${path}.${k}`, out);
    }
  }
}

function datasourceOk(value: unknown): boolean {
  if (typeof value === 'string') return DATASOURCE_REFS.has(value);
  return isRecord(value) && value['type'] === 'prometheus' && typeof value['uid'] === 'string' && DATASOURCE_REFS.has(value['uid']);
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

/** The selectors on `ALERTS` in an expression, as label → matcher text. */
function alertsMatchers(expr: string): Array<Array<{ label: string; op: string; value: string }>> {
  const out: Array<Array<{ label: string; op: string; value: string }>> = [];
  for (const m of expr.matchAll(/\bALERTS\s*\{([^}]*)\}/g)) {
    out.push([...m[1]!.matchAll(/(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"/g)].map((x) => ({ label: x[1]!, op: x[2]!, value: x[3]! })));
  }
  return out;
}

function checkExpr(where: string, expr: string, declared: Set<string>, ctx: LintContext, errors: string[]): void {
  if (expr.trim() === '') {
    errors.push(`${where}: empty expression`);
    return;
  }
  let depth = 0;
  for (const ch of expr.replace(/"(?:[^"\\]|\\.)*"/g, '""')) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (depth < 0) break;
  }
  if (depth !== 0) errors.push(`${where}: unbalanced parentheses in ${expr}`);
  for (const name of metricNames(expr)) {
    if (ctx.families.has(name) || PROMETHEUS_SERIES.has(name) || ctx.rules.records.includes(name)) continue;
    errors.push(
      `${where}: reads ${name}, which is neither a published kata_bridge_ family, a recording rule of the rule file, ALERTS nor up`,
    );
  }
  for (const v of usedVariables(expr)) {
    if (!declared.has(v) && !GRAFANA_BUILTINS.has(v)) errors.push(`${where}: uses undeclared variable $${v}`);
  }
  for (const w of rateWindows(expr)) {
    if (w !== '$__rate_interval' && w !== '${__rate_interval}') errors.push(`${where}: rate window [${w}] instead of [$__rate_interval]`);
  }
  if (ctx.ruleText !== undefined) {
    for (const matchers of alertsMatchers(expr)) {
      for (const { label, op, value } of matchers) {
        if (label === 'alertstate' || label === 'namespace' || label === 'pod' || label === 'instance') continue;
        if (label === 'alertname') {
          const re = new RegExp(`^(?:${op === '=~' ? value : value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')})$`);
          if ((op === '=~' || op === '=') && !ctx.rules.alerts.some((a) => re.test(a)))
            errors.push(`${where}: ALERTS{alertname${op}"${value}"} matches no alert of the rule file`);
        } else if (
          (op === '=' || op === '=~') &&
          !new RegExp(
            `\\b${label}:\\s*["']?${op === '=' ? value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : `(?:${value})`}["']?\\s*$`,
            'm',
          ).test(ctx.ruleText)
        ) {
          errors.push(`${where}: ALERTS{${label}${op}"${value}"} matches no label of the rule file`);
        }
      }
    }
  }
}

export function lintDashboard(name: string, d: Json, ctx: LintContext): string[] {
  const errors: string[] = [];
  const uid = d['uid'];
  if (typeof d['schemaVersion'] !== 'number' || d['schemaVersion'] < 36) errors.push(`${name}: schemaVersion must be a number ≥ 36`);
  if (typeof uid !== 'string' || uid === '' || uid.length > 40 || !/^[\w-]+$/.test(uid))
    errors.push(`${name}: uid must be 1–40 characters of [A-Za-z0-9_-]`);
  if (typeof d['title'] !== 'string' || d['title'] === '') errors.push(`${name}: no title`);
  const tags = d['tags'];
  if (!Array.isArray(tags) || tags.length === 0 || !tags.every((t) => typeof t === 'string'))
    errors.push(`${name}: tags must be a non-empty list of strings`);
  if (!isRecord(d['templating']) || !Array.isArray(d['templating']['list'])) errors.push(`${name}: no templating.list`);
  if (!Array.isArray(d['panels']) || d['panels'].length === 0) errors.push(`${name}: no panels`);

  // Variables.
  const vars = variables(d);
  const declared = new Set(vars.map((v) => v.name));
  if (declared.size !== vars.length) errors.push(`${name}: duplicate variable names`);
  const dsVar = vars.find((v) => v.name === 'datasource');
  if (dsVar === undefined || dsVar.type !== 'datasource' || dsVar.query !== 'prometheus')
    errors.push(`${name}: needs a variable "datasource" of type datasource with query "prometheus"`);
  for (const v of vars) {
    if (v.type !== 'query') continue;
    const m = /^label_values\((?:(.*),\s*)?(\w+)\)$/.exec(v.query.trim());
    if (m === null) {
      errors.push(`${name}: variable $${v.name}: query must be label_values(<selector>, <label>), got ${v.query}`);
      continue;
    }
    if (m[1] !== undefined) checkExpr(`${name}: variable $${v.name}`, m[1], declared, ctx, errors);
  }
  if (typeof uid === 'string' && NEEDS_POD_SELECTION.has(uid)) {
    for (const needed of ['namespace', 'pod']) {
      const v = vars.find((x) => x.name === needed);
      if (v === undefined || v.type !== 'query' || !v.query.includes('kata_bridge_pod_info'))
        errors.push(`${name}: needs a query variable $${needed} over kata_bridge_pod_info`);
    }
  }

  // Data sources: only ever the variable.
  const refs: Array<{ path: string; value: unknown }> = [];
  datasourceRefs(d, name, refs);
  for (const r of refs)
    if (!datasourceOk(r.value))
      errors.push(`${r.path}: data source ${JSON.stringify(r.value)} is not {"type":"prometheus","uid":"\${datasource}"}`);

  // Panels.
  const ids = new Set<unknown>();
  const boxes: Array<{ title: string; x: number; y: number; w: number; h: number }> = [];
  for (const p of allPanels(d)) {
    const title = typeof p['title'] === 'string' ? p['title'] : '';
    const where = `${name}: panel ${JSON.stringify(title)} (id ${String(p['id'])})`;
    if (!isInt(p['id'])) errors.push(`${where}: id must be an integer`);
    else if (ids.has(p['id'])) errors.push(`${where}: duplicate panel id ${p['id']}`);
    ids.add(p['id']);
    if (title.trim() === '') errors.push(`${where}: no title`);
    const g = p['gridPos'];
    if (!isRecord(g) || ![g['x'], g['y'], g['w'], g['h']].every(isInt)) errors.push(`${where}: gridPos needs integer x, y, w, h`);
    else {
      const [x, y, w, h] = [g['x'], g['y'], g['w'], g['h']] as number[];
      if (x! < 0 || y! < 0 || w! < 1 || h! < 1 || x! + w! > 24)
        errors.push(`${where}: gridPos ${JSON.stringify(g)} is outside the 24-column grid`);
      for (const b of boxes) {
        if (x! < b.x + b.w && b.x < x! + w! && y! < b.y + b.h && b.y < y! + h!)
          errors.push(`${where}: gridPos overlaps panel ${JSON.stringify(b.title)}`);
      }
      boxes.push({ title, x: x!, y: y!, w: w!, h: h! });
    }
    if (p['type'] === 'row') {
      // A row is a section heading: the full width, one unit high, no query of its own. An
      // expanded row's panels follow it at the top level; only a collapsed row holds them.
      if (isRecord(g) && (g['x'] !== 0 || g['w'] !== 24 || g['h'] !== 1))
        errors.push(`${where}: a row spans the grid (x 0, w 24, h 1), got ${JSON.stringify(g)}`);
      if (p['targets'] !== undefined) errors.push(`${where}: a row has no targets (Grafana ignores them)`);
      const children = Array.isArray(p['panels']) ? p['panels'] : [];
      if (p['collapsed'] !== true && children.length > 0)
        errors.push(`${where}: an expanded row keeps its panels at the top level, not in "panels"`);
      continue;
    }
    if (typeof p['description'] !== 'string' || p['description'].trim().length < 20)
      errors.push(`${where}: no description saying what the panel answers`);
    if (typeof p['type'] !== 'string' || !PANEL_TYPES.has(p['type']))
      errors.push(`${where}: type ${String(p['type'])} is not one of ${[...PANEL_TYPES].join(', ')}, or row`);
    const fc = p['fieldConfig'];
    const defaults = isRecord(fc) ? fc['defaults'] : undefined;
    const unit = isRecord(defaults) ? defaults['unit'] : undefined;
    if (typeof unit !== 'string' || unit.trim() === '') errors.push(`${where}: no fieldConfig.defaults.unit`);
    if (p['datasource'] === undefined) errors.push(`${where}: no datasource`);
    const targets = Array.isArray(p['targets']) ? p['targets'].filter(isRecord) : [];
    const queries = panelQueries(p);
    if (queries.length === 0) errors.push(`${where}: no query`);
    if (targets.length !== queries.length) errors.push(`${where}: every target needs a PromQL expr`);
    const refIds = targets.map((t) => t['refId']);
    if (new Set(refIds).size !== refIds.length || refIds.some((r) => typeof r !== 'string' || r === ''))
      errors.push(`${where}: targets need unique refIds`);
    for (const q of queries) {
      checkExpr(`${where} ${q.refId}`, q.expr, declared, ctx, errors);
      for (const f of FILTER_VARIABLES) {
        if (declared.has(f) && !usedVariables(q.expr).includes(f)) errors.push(`${where} ${q.refId}: ignores the $${f} selection`);
      }
    }
  }
  return errors;
}

const dashboards = loadDashboards();
const ctx = context();

describe('shipped dashboards', () => {
  it('are the four the project ships', () => {
    expect(dashboards.map((d) => d.dashboard['uid']).sort()).toEqual(EXPECTED);
  });

  it.each(dashboards.map((d) => [d.file, d.dashboard] as const))('%s passes the lint', (file, dashboard) => {
    expect(lintDashboard(file, dashboard, ctx)).toEqual([]);
  });

  it('have distinct uids and titles', () => {
    const uids = dashboards.map((d) => d.dashboard['uid']);
    const titles = dashboards.map((d) => d.dashboard['title']);
    expect(new Set(uids).size).toBe(uids.length);
    expect(new Set(titles).size).toBe(titles.length);
  });
});

// ─── the lint has teeth ───────────────────────────────────────────────────────

const DS = { type: 'prometheus', uid: '${datasource}' };

function fixturePanel(id: number, type: string, title: string, description: string, x: number, unit: string, expr: string): Json {
  return {
    id,
    type,
    title,
    description,
    datasource: DS,
    gridPos: { x, y: 0, w: 12, h: 8 },
    fieldConfig: { defaults: { unit }, overrides: [] },
    targets: [{ refId: 'A', datasource: DS, expr }],
  };
}

function goodDashboard(): Json {
  return {
    uid: 'kata-pod-drilldown',
    title: 'fixture',
    tags: ['kata-metrics-bridge'],
    schemaVersion: 39,
    templating: {
      list: [
        { name: 'datasource', type: 'datasource', query: 'prometheus' },
        { name: 'namespace', type: 'query', datasource: DS, query: { query: 'label_values(kata_bridge_pod_info, namespace)', refId: 'A' } },
        {
          name: 'pod',
          type: 'query',
          datasource: DS,
          query: { query: 'label_values(kata_bridge_pod_info{namespace=~"$namespace"}, pod)', refId: 'A' },
        },
      ],
    },
    panels: [
      fixturePanel(
        1,
        'timeseries',
        'Container CPU',
        'How much CPU does each container use?',
        0,
        'short',
        'sum by (pod) (rate(kata_bridge_container_cpu_usage_seconds_total{namespace=~"$namespace", pod=~"$pod"}[$__rate_interval]))',
      ),
      fixturePanel(
        2,
        'stat',
        'Memory',
        'How much memory does the pod hold on the host?',
        12,
        'bytes',
        'sum(kata_bridge_pod_host_memory_working_set_bytes{namespace=~"$namespace", pod=~"$pod"})',
      ),
      { id: 3, type: 'row', title: 'Section', collapsed: false, gridPos: { x: 0, y: 8, w: 24, h: 1 }, panels: [] },
    ],
  };
}

type Mutation = (d: Json) => void;
const panel = (d: Json, i: number): Json => (d['panels'] as Json[])[i]!;
const target = (d: Json, i: number): Json => (panel(d, i)['targets'] as Json[])[0]!;
const varList = (d: Json): Json[] => (d['templating'] as { list: Json[] }).list;

const BROKEN: Array<[string, Mutation, RegExp]> = [
  [
    'a hard-coded data source uid on a panel',
    (d) => (panel(d, 0)['datasource'] = { type: 'prometheus', uid: 'P1809F7CD0C75ACF3' }),
    /data source .*P1809F7CD0C75ACF3/,
  ],
  [
    'a hard-coded data source uid on a target',
    (d) => (target(d, 1)['datasource'] = { type: 'prometheus', uid: 'prom-prod' }),
    /data source .*prom-prod/,
  ],
  ['a data source named as a string', (d) => (panel(d, 1)['datasource'] = 'Prometheus'), /data source "Prometheus"/],
  ['no datasource variable', (d) => varList(d).splice(0, 1), /needs a variable "datasource"/],
  ['a panel without a unit', (d) => (panel(d, 0)['fieldConfig'] = { defaults: {}, overrides: [] }), /no fieldConfig\.defaults\.unit/],
  ['a panel without a description', (d) => delete panel(d, 1)['description'], /no description/],
  ['a panel without a title', (d) => (panel(d, 1)['title'] = ''), /no title/],
  [
    'a metric the bridge does not publish',
    (d) => (target(d, 1)['expr'] = 'sum(container_memory_working_set_bytes{namespace=~"$namespace", pod=~"$pod"})'),
    /reads container_memory_working_set_bytes/,
  ],
  [
    'a misspelt bridge family',
    (d) => (target(d, 1)['expr'] = 'sum(kata_bridge_pod_host_memory_bytes{namespace=~"$namespace", pod=~"$pod"})'),
    /reads kata_bridge_pod_host_memory_bytes/,
  ],
  [
    'a fixed rate window',
    (d) => (target(d, 0)['expr'] = 'rate(kata_bridge_container_cpu_usage_seconds_total{namespace=~"$namespace", pod=~"$pod"}[5m])'),
    /rate window \[5m\]/,
  ],
  [
    'an undeclared variable',
    (d) => (target(d, 1)['expr'] = 'topk($topn, kata_bridge_pod_host_memory_working_set_bytes{namespace=~"$namespace", pod=~"$pod"})'),
    /undeclared variable \$topn/,
  ],
  [
    'a query that ignores the pod selection',
    (d) => (target(d, 1)['expr'] = 'sum(kata_bridge_pod_host_memory_working_set_bytes{namespace=~"$namespace"})'),
    /ignores the \$pod selection/,
  ],
  ['duplicate panel ids', (d) => (panel(d, 1)['id'] = 1), /duplicate panel id 1/],
  ['overlapping panels', (d) => (panel(d, 1)['gridPos'] = { x: 6, y: 4, w: 12, h: 8 }), /overlaps panel "Container CPU"/],
  ['a panel wider than the grid', (d) => (panel(d, 1)['gridPos'] = { x: 12, y: 8, w: 13, h: 8 }), /outside the 24-column grid/],
  ['a gridPos without height', (d) => (panel(d, 1)['gridPos'] = { x: 12, y: 8, w: 12 }), /gridPos needs integer/],
  ['an old schema', (d) => (d['schemaVersion'] = 27), /schemaVersion/],
  ['a drill-down without a pod variable', (d) => varList(d).splice(2, 1), /needs a query variable \$pod/],
  ['an unsupported panel type', (d) => (panel(d, 1)['type'] = 'graph'), /type graph is not one of/],
  ['a target without an expression', (d) => delete target(d, 1)['expr'], /no query|needs a PromQL expr/],
  ['a row narrower than the grid', (d) => (panel(d, 2)['gridPos'] = { x: 0, y: 8, w: 12, h: 1 }), /a row spans the grid/],
  ['a row with a query', (d) => (panel(d, 2)['targets'] = [{ refId: 'A', datasource: DS, expr: 'up' }]), /a row has no targets/],
  [
    'an expanded row that holds panels',
    (d) =>
      (panel(d, 2)['panels'] = [
        fixturePanel(
          4,
          'stat',
          'Inside',
          'A panel hidden inside an expanded row.',
          0,
          'none',
          'sum(kata_bridge_pod_host_memory_working_set_bytes{namespace=~"$namespace", pod=~"$pod"})',
        ),
      ]),
    /expanded row keeps its panels/,
  ],
  ['a row without a title', (d) => (panel(d, 2)['title'] = ''), /no title/],
  ['a row overlapping a panel', (d) => (panel(d, 2)['gridPos'] = { x: 0, y: 7, w: 24, h: 1 }), /overlaps panel "Container CPU"/],
];

describe('the dashboard lint has teeth', () => {
  const fixtureCtx: LintContext = {
    families: publishedFamilies(),
    rules: { present: false, records: [], alerts: [] },
    ruleText: undefined,
  };

  it('accepts the well-formed fixture', () => {
    expect(lintDashboard('fixture', goodDashboard(), fixtureCtx)).toEqual([]);
  });

  it.each(BROKEN)('rejects %s', (_what, mutate, expected) => {
    const d = goodDashboard();
    mutate(d);
    const errors = lintDashboard('fixture', d, fixtureCtx);
    expect(
      errors.some((e) => expected.test(e)),
      `errors were:\n${errors.join('\n')}`,
    ).toBe(true);
  });

  it('accepts a recording rule only when the rule file defines it', () => {
    const d = goodDashboard();
    target(d, 1)['expr'] = 'sum(namespace_pod:kata_bridge_host_memory:sum{namespace=~"$namespace", pod=~"$pod"})';
    expect(lintDashboard('fixture', d, fixtureCtx).join('\n')).toMatch(/reads namespace_pod:kata_bridge_host_memory:sum/);
    const withRule: LintContext = {
      ...fixtureCtx,
      rules: ruleNames(
        'groups:\n  - name: x\n    rules:\n      - record: namespace_pod:kata_bridge_host_memory:sum\n        expr: sum(x)\n',
      ),
    };
    expect(lintDashboard('fixture', d, withRule)).toEqual([]);
  });

  it('checks ALERTS selectors against the alerts of the rule file', () => {
    const d = goodDashboard();
    target(d, 1)['expr'] = 'ALERTS{alertname=~"KataNope.*", namespace=~"$namespace", pod=~"$pod"}';
    const ruleText = 'groups:\n  - name: x\n    rules:\n      - alert: KataBuildCpuAtLimit\n        expr: vector(1)\n';
    const withRules: LintContext = { ...fixtureCtx, rules: ruleNames(ruleText), ruleText };
    expect(lintDashboard('fixture', d, withRules).join('\n')).toMatch(/matches no alert of the rule file/);
    target(d, 1)['expr'] = 'ALERTS{alertname=~"Kata.*", namespace=~"$namespace", pod=~"$pod"}';
    expect(lintDashboard('fixture', d, withRules)).toEqual([]);
  });
});

describe('PromQL name extraction', () => {
  it.each([
    [
      'sum by (namespace, pod) (rate(kata_bridge_pod_host_cpu_usage_seconds_total{pod=~"$pod"}[$__rate_interval]))',
      ['kata_bridge_pod_host_cpu_usage_seconds_total'],
    ],
    ['topk($topn, a_metric / on (instance, pod) group_left (uid) b_metric > 0.5) or vector(0)', ['a_metric', 'b_metric']],
    [
      'label_replace(kata_bridge_pod_metrics_gap, "container", "(whole pod)", "", "") unless ALERTS',
      ['kata_bridge_pod_metrics_gap', 'ALERTS'],
    ],
    ['avg_over_time((x / y)[10m:]) and on (pod) stddev_over_time(z[1h:1m] offset 5m) < 1e-3', ['x', 'y', 'z']],
    ['{__name__="kata_bridge_build_info"} * 2', ['kata_bridge_build_info']],
    ['count without (reason) (kata:gap:count) bool', ['kata:gap:count']],
  ])('%s', (expr, names) => {
    expect(metricNames(expr).sort()).toEqual([...names].sort());
  });
});
