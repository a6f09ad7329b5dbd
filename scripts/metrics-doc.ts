/**
 * Renders docs/metrics.md from the metric table. Pure: `npm run docs` writes its output and a
 * test fails when the checked-in file drifts from it.
 */

import { FLAGS } from '../src/config.ts';
import {
  BUILD_INFO,
  CARDINALITY_BUDGET,
  FAMILIES,
  HOST_COLLECTOR_FLAGS,
  PREFIX,
  SCOPE_LABELS,
  SELF_COUNTERS,
  seriesBudgetUsed,
  type FamilyScope,
} from '../src/publish/families.ts';

const SCOPE_TITLES: Record<FamilyScope, string> = {
  container: 'Per container',
  pod: 'Per pod',
  node: 'Per node and exporter',
  audit: 'Isolation audit (per pod on the node)',
};

/** What each scope's section says before its table, beyond its identity labels. */
const SCOPE_NOTES: Partial<Record<FamilyScope, string>> = {
  audit: [
    'Only with `--audit.namespace-selector` or `--audit.pod-selector` set. Each series is 1 while its',
    'condition holds and absent otherwise; finished pods raise nothing. Findings about untrusted pods',
    'cover every pod on the node the selectors match, Kata or not; `audit_privileged_container`',
    'covers every Kata pod.',
  ].join('\n'),
};

/** Markdown table cells: a pipe would end the cell, a newline the row, and <x> reads as HTML. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/\r?\n/g, ' ');
}

function code(names: readonly string[]): string {
  return names.length === 0 ? '(none)' : names.map((n) => `\`${n}\``).join(', ');
}

/** The growth notes of a scope's families outside the per-scope budget. */
function notes(scope: FamilyScope): string[] {
  return FAMILIES.filter((f) => f.scope === scope && f.maxSeriesNote !== undefined).map((f) => f.maxSeriesNote!);
}

export function renderMetricsDoc(): string {
  const out: string[] = [
    '# Metrics reference',
    '',
    '<!-- Generated from src/publish/families.ts by `npm run docs`; do not edit by hand. -->',
    '',
    `Every family the bridge publishes carries the prefix \`${PREFIX}\`. Values use base units`,
    '(`_seconds`, `_bytes`), counters end in `_total`, and no sample carries a timestamp. A value',
    "series' identity never depends on where its value came from: the source and any gap are",
    'separate series (`container_metrics_gap`, `pod_metrics_gap`).',
    '',
  ];
  for (const scope of ['container', 'pod', 'node', 'audit'] as const) {
    const scopeLabels = SCOPE_LABELS[scope];
    out.push(`## ${SCOPE_TITLES[scope]}`, '');
    out.push(`Identity labels: ${code(scopeLabels)}.`, '');
    const note = SCOPE_NOTES[scope];
    if (note !== undefined) out.push(note, '');
    out.push('| metric | type | labels | max series | help | source |', '|---|---|---|---|---|---|');
    for (const f of FAMILIES.filter((family) => family.scope === scope)) {
      const labels = code([...scopeLabels, ...f.extraLabels]);
      const max = f.maxSeriesNote ?? `${f.maxSeriesPerScope} per ${scope === 'audit' ? 'pod' : scope}`;
      out.push(`| \`${PREFIX}${f.name}\` | ${f.type} | ${labels} | ${max} | ${cell(f.help)} | ${cell(f.source)} |`);
    }
    out.push('');
  }

  out.push('## The exporter itself', '');
  out.push('Counters kept across collections (they never reset while the process runs):', '');
  out.push('| metric | type | labels | help |', '|---|---|---|---|');
  for (const counter of Object.values(SELF_COUNTERS)) {
    out.push(`| \`${PREFIX}${counter.name}\` | counter | ${code(counter.labels)} | ${cell(counter.help)} |`);
  }
  out.push(`| \`${PREFIX}${BUILD_INFO.name}\` | gauge | ${code(BUILD_INFO.labels)} | ${cell(BUILD_INFO.help)} |`);
  out.push(
    '',
    "The client library's default process metrics (`process_*`, `nodejs_*`) are exposed as well,",
    'without the prefix; they describe the exporter process, not the node. The five that',
    '`promtool check metrics` refuses are left out: `nodejs_active_handles_total`,',
    '`nodejs_active_requests_total` and `nodejs_active_resources_total` (gauges named `_total`; sum',
    'the by-type gauges without the suffix instead) and `nodejs_eventloop_utilization_summary` and',
    '`_histogram` (the event-loop lag gauges remain).',
    '',
    'With `--collector.shim-raw`, the raw Kata shim families are re-exposed the way kata-monitor',
    'does: their own names, each sample labelled `sandbox_id`, `cri_uid`, `cri_name`,',
    "`cri_namespace`, and the shim's `go_*` / `process_*` families renamed `kata_shim_go_*` /",
    "`kata_shim_process_*`. Only Kata's own families (`kata_*`) pass, and a sample with a label",
    'the exporter or Prometheus gives meaning to (`namespace`, `pod`, `job`, ...) is dropped',
    "(docs/security.md). Their names and units are Kata's, outside the budget below.",
    '',
  );

  out.push('## Host collectors', '');
  out.push(
    'The per-pod host families beyond CPU and memory usage come in groups, each behind a switch in',
    "node_exporter's style (`--collector.<name>` / `--no-collector.<name>`); a group that is off reads",
    'none of its files. The default set and the series each group adds per pod:',
    '',
    '| switch | default | families | series per pod |',
    '|---|---|---|---|',
  );
  for (const [collector, flag] of Object.entries(HOST_COLLECTOR_FLAGS)) {
    const families = FAMILIES.filter((f) => f.collector === collector);
    const series = families.reduce((sum, f) => sum + f.maxSeriesPerScope, 0);
    out.push(
      `| \`--[no-]${flag}\` | ${FLAGS[flag]?.default === true ? 'on' : 'off'} | ${code(families.map((f) => PREFIX + f.name))} | ${series} |`,
    );
  }
  out.push('');

  out.push('## Cardinality budget', '');
  out.push(
    `At most ${CARDINALITY_BUDGET.perContainer} series per container and ${CARDINALITY_BUDGET.perPod} per pod, by default.`,
    "The table above states each family's maximum; the totals are:",
    '',
    '| scope | budget | used by the families above |',
    '|---|---|---|',
    `| container | ${CARDINALITY_BUDGET.perContainer} | ${seriesBudgetUsed('container')} |`,
    `| pod | ${CARDINALITY_BUDGET.perPod} | ${seriesBudgetUsed('pod')} |`,
    `| node | (fixed) | ${[seriesBudgetUsed('node'), ...notes('node')].join(', plus ')} |`,
    `| audit (per pod, with the audit on) | (findings) | ${[seriesBudgetUsed('audit'), ...notes('audit')].join(', plus ')} |`,
    '',
  );
  return out.join('\n');
}
