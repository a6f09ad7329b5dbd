import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEMO_SCENARIO } from '../../src/lab/demo.ts';
import { BUILD_INFO, CARDINALITY_BUDGET, FAMILIES, SCOPE_LABELS, SELF_COUNTERS, seriesBudgetUsed } from '../../src/publish/families.ts';
import { renderMetricsDoc } from '../../scripts/metrics-doc.ts';
import { startLabExporter, type LabExporter } from '../support/lab-exporter.ts';

const docsPath = new URL('../../docs/metrics.md', import.meta.url);
const docs = readFileSync(docsPath, 'utf8');

/** The docs table row of a family, found by its backquoted full name. */
function rowOf(fullName: string): string | undefined {
  return docs.split('\n').find((line) => line.startsWith(`| \`${fullName}\` |`));
}

describe('docs/metrics.md', () => {
  test('equals the text generated from the metric table', () => {
    // A plain boolean keeps the failure message short and says what to do.
    expect(docs === renderMetricsDoc(), 'docs/metrics.md is out of date: run `npm run docs`').toBe(true);
  });

  test('documents every family of FAMILIES with its type, labels, help and source', () => {
    for (const family of FAMILIES) {
      const row = rowOf(`kata_bridge_${family.name}`);
      expect(row, `kata_bridge_${family.name} is undocumented`).toBeDefined();
      const cells = row!.split(' | ');
      expect(cells[1]).toBe(family.type);
      for (const label of [...SCOPE_LABELS[family.scope], ...family.extraLabels]) expect(cells[2]).toContain(`\`${label}\``);
      expect(row).toContain(family.help.replace(/</g, '&lt;'));
      expect(row).toContain(family.source.replace(/</g, '&lt;'));
    }
  });

  test('documents the self counters, build_info and the process metrics', () => {
    for (const counter of Object.values(SELF_COUNTERS)) {
      expect(rowOf(`kata_bridge_${counter.name}`), counter.name).toContain('| counter |');
    }
    expect(rowOf('kata_bridge_build_info')).toContain('`version`, `revision`, `nodejs`');
    expect(docs).toMatch(/process_\*/);
    expect(docs).toMatch(/kata_shim_go_\*/);
  });

  test('states the budget of 7 series per container and 36 per pod, with the computed totals', () => {
    expect(docs).toContain('At most 7 series per container and 36 per pod');
    expect(docs).toContain(`| container | 7 | ${seriesBudgetUsed('container')} |`);
    expect(docs).toContain(`| pod | 36 | ${seriesBudgetUsed('pod')} |`);
  });

  test('states each host collector switch, its default and the series it adds per pod', () => {
    expect(docs).toContain('| `--[no-]collector.host-pressure` | on | `kata_bridge_pod_host_pressure_seconds_total` | 6 |');
    expect(docs).toContain(
      '| `--[no-]collector.host-memory` | on | `kata_bridge_pod_host_memory_limit_bytes`, `kata_bridge_pod_host_oom_kills_total` | 2 |',
    );
    expect(docs).toContain('| `--[no-]collector.host-network` | on |');
  });
});

describe('cardinality budget', () => {
  test('the table stays inside the stated budget', () => {
    expect(CARDINALITY_BUDGET).toEqual({ perContainer: 7, perPod: 36 });
    expect(seriesBudgetUsed('container')).toBeLessThanOrEqual(7);
    expect(seriesBudgetUsed('pod')).toBeLessThanOrEqual(36);
  });

  test('seriesBudgetUsed sums the per-scope maxima', () => {
    // Counted by hand from the table's shape: 4 one-series container families plus the gap.
    const containerFamilies = FAMILIES.filter((f) => f.scope === 'container');
    expect(seriesBudgetUsed('container')).toBe(containerFamilies.length);
    // One-series pod families, plus the gap's reasons and pressure's resource × kind.
    const gap = FAMILIES.find((f) => f.name === 'pod_metrics_gap');
    const pressure = FAMILIES.find((f) => f.name === 'pod_host_pressure_seconds_total');
    const podFamilies = FAMILIES.filter((f) => f.scope === 'pod');
    expect(pressure!.maxSeriesPerScope).toBe(6);
    expect(seriesBudgetUsed('pod')).toBe(podFamilies.length - 2 + gap!.maxSeriesPerScope + pressure!.maxSeriesPerScope);
  });
});

describe('a real exposition', () => {
  let node: LabExporter;
  let exposition: string;

  beforeAll(async () => {
    node = await startLabExporter(DEMO_SCENARIO, { processMetrics: true });
    exposition = await node.exporter.renderer.render(await node.exporter.snapshot(), 'text');
  });
  afterAll(async () => {
    await node?.close();
  });

  test('exposes only documented kata_bridge_ families', () => {
    // TYPE lines, so families without samples this collection count too.
    const exposed = [...exposition.matchAll(/^# TYPE (kata_bridge_\w+) /gm)].map((m) => m[1]!);
    expect(exposed.length).toBeGreaterThanOrEqual(FAMILIES.length + Object.keys(SELF_COUNTERS).length + 1);
    const undocumented = exposed.filter((name) => rowOf(name) === undefined);
    expect(undocumented, 'exposed but missing from docs/metrics.md').toEqual([]);
    expect(exposed).toContain(`kata_bridge_${BUILD_INFO.name}`);
  });
});
