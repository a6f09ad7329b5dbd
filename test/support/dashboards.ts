/**
 * The shipped Grafana dashboards as data: loading, walking panels and queries, the variables a
 * query uses, the metric names a PromQL expression reads, and the rule file they may lean on.
 * Shared by the dashboard lint (unit) and the real-Prometheus end-to-end test.
 */

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUILD_INFO, FAMILIES, PREFIX, SELF_COUNTERS } from '../../src/publish/families.ts';

export const REPO_DIR = fileURLToPath(new URL('../../', import.meta.url));
export const DASHBOARD_DIR = join(REPO_DIR, 'dashboards');
/** Written by `npm run rules` (another part of the project); may be absent. */
export const RULE_FILE = join(REPO_DIR, 'deploy', 'prometheus', 'kata-bridge.rules.yaml');

/** Grafana JSON is loosely typed: read it as plain records and check shapes where used. */
export type Json = Record<string, unknown>;

export interface DashboardFile {
  file: string;
  dashboard: Json;
}

export interface PanelQuery {
  refId: string;
  expr: string;
  instant: boolean;
}

export interface PanelRef {
  dashboardUid: string;
  panel: Json;
  id: unknown;
  title: string;
  type: string;
  queries: PanelQuery[];
}

export interface VariableDef {
  name: string;
  type: string;
  /** For query variables: the query text (e.g. `label_values(metric{...}, label)`). */
  query: string;
}

export function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function loadDashboards(dir = DASHBOARD_DIR): DashboardFile[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => {
      const parsed: unknown = JSON.parse(readFileSync(join(dir, file), 'utf8'));
      if (!isRecord(parsed)) throw new Error(`${file}: not a JSON object`);
      return { file, dashboard: parsed };
    });
}

/** Every panel, rows' collapsed children included, in document order. */
export function allPanels(dashboard: Json): Json[] {
  const out: Json[] = [];
  const visit = (list: unknown): void => {
    if (!Array.isArray(list)) return;
    for (const p of list) {
      if (!isRecord(p)) continue;
      out.push(p);
      visit(p['panels']);
    }
  };
  visit(dashboard['panels']);
  return out;
}

export function panelQueries(panel: Json): PanelQuery[] {
  const targets = panel['targets'];
  if (!Array.isArray(targets)) return [];
  return targets
    .filter(isRecord)
    .flatMap((t) =>
      typeof t['expr'] === 'string' && t['hide'] !== true
        ? [{ refId: String(t['refId'] ?? ''), expr: t['expr'], instant: t['instant'] === true }]
        : [],
    );
}

export function panelRefs(dashboard: Json): PanelRef[] {
  const uid = String(dashboard['uid'] ?? '');
  return allPanels(dashboard).map((panel) => ({
    dashboardUid: uid,
    panel,
    id: panel['id'],
    title: typeof panel['title'] === 'string' ? panel['title'] : '',
    type: typeof panel['type'] === 'string' ? panel['type'] : '',
    queries: panelQueries(panel),
  }));
}

export function variables(dashboard: Json): VariableDef[] {
  const templating = dashboard['templating'];
  const list = isRecord(templating) ? templating['list'] : undefined;
  if (!Array.isArray(list)) return [];
  return list.filter(isRecord).map((v) => {
    const q = v['query'];
    const query = typeof q === 'string' ? q : isRecord(q) && typeof q['query'] === 'string' ? q['query'] : '';
    return { name: String(v['name'] ?? ''), type: String(v['type'] ?? ''), query };
  });
}

/**
 * Variable values for running panel queries against a real Prometheus: every selection "All",
 * data source and Grafana's own intervals for a one-second scrape; a test adds `topn` and `window`.
 */
export const SELECT_ALL: Readonly<Record<string, string>> = {
  datasource: 'prometheus',
  ...Object.fromEntries(['job', 'instance', 'namespace', 'pod'].map((v) => [v, '.*'])),
  __rate_interval: '10s',
  __interval: '1s',
  __interval_ms: '1000',
  __range: '1m',
};

/** Grafana's own variables that a query may use without declaring them. */
export const GRAFANA_BUILTINS = new Set([
  '__rate_interval',
  '__interval',
  '__interval_ms',
  '__range',
  '__range_s',
  '__range_ms',
  '__from',
  '__to',
]);

const VARIABLE_RE = /\$\{([A-Za-z_]\w*)(?::[\w]+)?\}|\$([A-Za-z_]\w*)|\[\[([A-Za-z_]\w*)\]\]/g;

/** Names of the Grafana variables a text uses (`$x`, `${x}`, `${x:fmt}`, `[[x]]`). */
export function usedVariables(text: string): string[] {
  const names = new Set<string>();
  for (const m of text.matchAll(VARIABLE_RE)) names.add((m[1] ?? m[2] ?? m[3])!);
  return [...names];
}

/** Replaces every variable with its value; an unknown variable is an error, not a silent gap. */
export function substitute(text: string, values: Readonly<Record<string, string>>): string {
  return text.replace(VARIABLE_RE, (whole, a: string | undefined, b: string | undefined, c: string | undefined) => {
    const name = (a ?? b ?? c)!;
    const value = values[name];
    if (value === undefined) throw new Error(`no value for variable $${name} in: ${text}`);
    return value;
  });
}

const AGGREGATORS = new Set([
  'sum',
  'min',
  'max',
  'avg',
  'group',
  'stddev',
  'stdvar',
  'count',
  'count_values',
  'bottomk',
  'topk',
  'quantile',
  'limitk',
  'limit_ratio',
]);
const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'atan2',
  'inf',
  'nan',
  'start',
  'end',
]);

/**
 * The metric names (and recording-rule names) a PromQL expression selects. Strings, label
 * matchers, ranges, grouping label lists, numbers and function/aggregator names are not names.
 */
export function metricNames(expr: string): string[] {
  let s = expr.replace(VARIABLE_RE, ' 0 ');
  // Selectors written as {__name__="x"} name x.
  const named = [...s.matchAll(/\b__name__\s*=\s*"([^"]*)"/g)].map((m) => m[1]!);
  s = s.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  s = s.replace(/#[^\n]*/g, ' ');
  s = s.replace(/\{[^}]*\}/g, '{}');
  s = s.replace(/\[[^\]]*\]/g, '[]');
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '$1');
  const names = new Set<string>();
  const tokens = [...s.matchAll(/[A-Za-z_:][\w:]*|\d[\w.]*|\.\d[\w.]*|\S/g)].map((m) => ({ text: m[0], end: m.index + m[0].length }));
  for (const t of tokens) {
    if (!/^[A-Za-z_:]/.test(t.text)) continue;
    if (KEYWORDS.has(t.text.toLowerCase()) || AGGREGATORS.has(t.text)) continue;
    const rest = s.slice(t.end).trimStart();
    if (rest.startsWith('(')) continue; // a function call
    names.add(t.text);
  }
  for (const n of named) names.add(n);
  return [...names];
}

/** `rate(x[w])`, `irate`, `increase`: the windows used, to check they follow `$__rate_interval`. */
export function rateWindows(expr: string): string[] {
  const out: string[] = [];
  for (const m of expr.matchAll(/\b(?:rate|irate|increase)\s*\(\s*[A-Za-z_:][\w:]*\s*(?:\{[^}]*\})?\s*\[([^\]]+)\]/g))
    out.push(m[1]!.trim());
  return out;
}

/** Every family the exporter publishes, with the prefix: the names a dashboard may read. */
export function publishedFamilies(): Set<string> {
  return new Set([
    ...FAMILIES.map((f) => PREFIX + f.name),
    ...Object.values(SELF_COUNTERS).map((c) => PREFIX + c.name),
    PREFIX + BUILD_INFO.name,
  ]);
}

/** Names Prometheus itself provides that a dashboard may read. */
export const PROMETHEUS_SERIES = new Set(['ALERTS', 'up']);

export interface RuleFileNames {
  present: boolean;
  records: string[];
  alerts: string[];
}

/** Recording-rule and alert names of a Prometheus rule file, read without a YAML dependency. */
export function ruleNames(text: string | undefined): RuleFileNames {
  if (text === undefined) return { present: false, records: [], alerts: [] };
  const pick = (key: string) =>
    [...text.matchAll(new RegExp(`^\\s*(?:-\\s+)?${key}:\\s*["']?([A-Za-z_:][\\w:]*)`, 'gm'))].map((m) => m[1]!);
  return { present: true, records: pick('record'), alerts: pick('alert') };
}

export function readRuleFile(path = RULE_FILE): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}
