/**
 * The Prometheus rules (deploy/prometheus/kata-bridge.rules.yaml): valid for promtool, unit-tested
 * with promtool, complete (labels, annotations, runbooks, tests for every alert), referring only to
 * metrics the exporter publishes, and identical to what `npm run rules` generates.
 */

import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS, resolveThresholds } from '../../deploy/prometheus/thresholds.ts';
import { BUILD_INFO, FAMILIES, PREFIX, SELF_COUNTERS } from '../../src/publish/families.ts';
import { buildRuleGroups, generate, runbookAnchor, type AlertRule, type RecordingRule } from '../../scripts/gen-rules.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const RULES_REL = 'deploy/prometheus/kata-bridge.rules.yaml';
const TESTS_REL = 'deploy/prometheus/tests';
const ruleFileText = readFileSync(new URL(`../../${RULES_REL}`, import.meta.url), 'utf8');
const runbookText = readFileSync(new URL('../../docs/runbooks.md', import.meta.url), 'utf8');
const testFiles = readdirSync(new URL(`../../${TESTS_REL}/`, import.meta.url))
  .filter((f) => f.endsWith('.test.yaml'))
  .sort();

const groups = buildRuleGroups();
const alerts = groups.flatMap((g) => g.rules).filter((r): r is AlertRule => r.kind === 'alert');
const records = groups.flatMap((g) => g.rules).filter((r): r is RecordingRule => r.kind === 'record');

function promtool(args: string[]): { status: number | null; out: string } {
  const res = spawnSync('promtool', args, { cwd: root, encoding: 'utf8' });
  if (res.error) throw new Error(`promtool could not run (test/support/ensure-system-deps.sh installs it): ${res.error.message}`);
  return { status: res.status, out: `${res.stdout}${res.stderr}` };
}

/** The alert blocks of the rule file as written: name → its keys (`expr`, `for`, `severity`, annotations). */
function parseAlertBlocks(text: string): Map<string, Map<string, string>> {
  const blocks = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const line of text.split('\n')) {
    const start = /^ {6}- (alert|record): "([^"]+)"$/.exec(line);
    if (start) {
      current = undefined;
      if (start[1] === 'alert') {
        current = new Map();
        blocks.set(start[2] ?? '', current);
      }
      continue;
    }
    const kv = /^ {8,10}([a-z_]+): (.*)$/.exec(line);
    if (current && kv) current.set(kv[1] ?? '', kv[2] ?? '');
  }
  return blocks;
}

/** GitHub's anchors for the headings of a markdown file. */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  for (const line of markdown.split('\n')) {
    const m = /^#{1,6} (.+)$/.exec(line);
    if (m)
      anchors.add(
        (m[1] ?? '')
          .trim()
          .toLowerCase()
          .replace(/[^a-z0-9 _-]/g, '')
          .replace(/ /g, '-'),
      );
  }
  return anchors;
}

interface AlertCase {
  file: string;
  line: number;
  alertname: string;
  fires: boolean;
}

/**
 * The alert_rule_test items of a promtool test file, by the convention its header states:
 * `alertname:` followed by either `exp_alerts: []` (must not fire) or `exp_alerts:` and
 * `- exp_labels:` items (fires).
 */
function parseAlertCases(file: string, text: string): AlertCase[] {
  const lines = text.split('\n');
  const next = (from: number): number => {
    let i = from;
    while (i < lines.length && /^\s*(#.*)?$/.test(lines[i] ?? '')) i++;
    return i;
  };
  const cases: AlertCase[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*-?\s*alertname:\s*(\S+)\s*$/.exec(lines[i] ?? '');
    if (!m) continue;
    const j = next(i + 1);
    const exp = /^\s*exp_alerts:\s*(\[\])?\s*$/.exec(lines[j] ?? '');
    if (!exp) throw new Error(`${file}:${j + 1}: exp_alerts must follow alertname`);
    let fires = false;
    if (exp[1] === undefined) {
      const k = next(j + 1);
      if (!/^\s*- exp_labels:\s*$/.test(lines[k] ?? '')) throw new Error(`${file}:${k + 1}: expected "- exp_labels:" items`);
      fires = true;
    }
    cases.push({ file, line: i + 1, alertname: m[1] ?? '', fires });
  }
  return cases;
}

/** Metric names (and recording rule names) an expression selects. */
function metricNames(expr: string): string[] {
  const noStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const tokens = noStrings.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? [];
  return [...new Set(tokens.filter((t) => t.includes(PREFIX)))];
}

describe('Prometheus rules: promtool', () => {
  it('promtool check rules accepts the generated file', () => {
    const { status, out } = promtool(['check', 'rules', RULES_REL]);
    expect(out).toContain('SUCCESS');
    expect(out).toContain(`SUCCESS: ${alerts.length + records.length} rules found`);
    expect(status).toBe(0);
  });

  it('promtool test rules passes every test file', () => {
    expect(testFiles.length).toBeGreaterThanOrEqual(3);
    const { status, out } = promtool(['test', 'rules', ...testFiles.map((f) => `${TESTS_REL}/${f}`)]);
    expect(out).not.toContain('FAILED');
    expect(out.match(/SUCCESS/g)?.length).toBe(testFiles.length);
    expect(status).toBe(0);
  });
});

describe('Prometheus rules: completeness', () => {
  const blocks = parseAlertBlocks(ruleFileText);

  it('the file holds every alert of the generator, each with severity, summary, description and runbook_url', () => {
    expect([...blocks.keys()].sort()).toEqual(alerts.map((a) => a.alert).sort());
    expect(alerts.length).toBeGreaterThanOrEqual(20);
    for (const [name, keys] of blocks) {
      expect(keys.get('severity'), name).toMatch(/^"(critical|warning|info)"$/);
      for (const key of ['expr', 'for', 'summary', 'description', 'runbook_url']) {
        expect(keys.get(key) ?? '', `${name} ${key}`).not.toMatch(/^(""|)$/);
      }
      expect(keys.get('runbook_url'), name).toBe(JSON.stringify(`${DEFAULT_THRESHOLDS.runbookBaseUrl}#${runbookAnchor(name)}`));
      expect(keys.get('description'), name).toContain('{{ $value');
    }
  });

  it('descriptions of pod and container alerts name the pod', () => {
    for (const a of alerts) {
      if (a.scope === 'node') continue;
      expect(a.description, a.alert).toContain('{{ $labels.namespace }}/{{ $labels.pod }}');
      if (a.scope === 'container') expect(a.description, a.alert).toContain('{{ $labels.container }}');
    }
  });

  it('every runbook_url anchor is a section of docs/runbooks.md that shows how to confirm', () => {
    const anchors = headingAnchors(runbookText);
    for (const a of alerts) {
      expect(anchors.has(runbookAnchor(a.alert)), `docs/runbooks.md lacks "## ${a.alert}"`).toBe(true);
      const section = runbookText.split(`\n## ${a.alert}\n`)[1]?.split('\n## ')[0] ?? '';
      expect(section, a.alert).toContain('**Meaning.**');
      expect(section, a.alert).toContain('**Confirm.**');
      expect(section, a.alert).toContain('**Act.**');
    }
    expect(anchors.has('thresholds-and-how-to-override-them')).toBe(true);
  });

  it('every alert has a promtool case where it fires and one where it must not', () => {
    const cases = testFiles.flatMap((f) => parseAlertCases(f, readFileSync(new URL(`../../${TESTS_REL}/${f}`, import.meta.url), 'utf8')));
    const known = new Set(alerts.map((a) => a.alert));
    for (const c of cases) expect(known.has(c.alertname), `${c.file}:${c.line} tests unknown alert ${c.alertname}`).toBe(true);
    for (const a of alerts) {
      const mine = cases.filter((c) => c.alertname === a.alert);
      expect(mine.length, a.alert).toBeGreaterThanOrEqual(2);
      expect(
        mine.some((c) => c.fires),
        `${a.alert} never fires in a test`,
      ).toBe(true);
      expect(
        mine.some((c) => !c.fires),
        `${a.alert} has no near miss`,
      ).toBe(true);
    }
  });

  it('the test-file reader tells firing cases from silent ones', () => {
    const text = [
      '    alert_rule_test:',
      '      - eval_time: 5m',
      '        alertname: A',
      '        exp_alerts: []',
      '      - eval_time: 9m',
      '        alertname: B',
      '        # fires',
      '        exp_alerts:',
      '          - exp_labels:',
      '              severity: info',
    ].join('\n');
    expect(parseAlertCases('x', text).map((c) => [c.alertname, c.fires])).toEqual([
      ['A', false],
      ['B', true],
    ]);
    expect(() => parseAlertCases('x', '        alertname: A\n        eval_time: 5m\n')).toThrow(/exp_alerts must follow/);
  });

  it('every kata_bridge_ metric a rule selects is published by the exporter or recorded in the file', () => {
    const published = new Set<string>([
      ...FAMILIES.map((f) => PREFIX + f.name),
      ...Object.values(SELF_COUNTERS).map((c) => PREFIX + c.name),
      PREFIX + BUILD_INFO.name,
    ]);
    const recorded = new Set(records.map((r) => r.record));
    const used = new Set<string>();
    for (const rule of [...records, ...alerts]) {
      for (const name of metricNames(rule.expr)) {
        used.add(name);
        const ok = name.includes(':') ? recorded.has(name) : published.has(name);
        expect(ok, `${rule.kind === 'record' ? rule.record : rule.alert} selects unknown ${name}`).toBe(true);
      }
    }
    // The reader finds what it should: raw families and recorded series alike.
    expect(used.has('kata_bridge_pod_host_cpu_usage_seconds_total')).toBe(true);
    expect(used.has('namespace_pod:kata_bridge_pod_host_cpu_usage:rate5m')).toBe(true);
    expect(metricNames('sum(kata_bridge_nope{reason="kata_bridge_x"})')).toEqual(['kata_bridge_nope']);
  });

  it('every isolation-audit finding the exporter publishes is watched by an alert', () => {
    // Context only: the number of untrusted pods, and the bare presence of Kata annotations
    // (their alert reads the `honoured` series published with it).
    const informational = new Set([`${PREFIX}audit_untrusted_pods`, `${PREFIX}audit_kata_annotations`]);
    const audit = FAMILIES.map((f) => PREFIX + f.name).filter((n) => n.startsWith(`${PREFIX}audit_`));
    expect(audit.length).toBeGreaterThan(0);
    const watched = new Set(alerts.flatMap((a) => metricNames(a.expr)));
    expect(audit.filter((n) => !informational.has(n) && !watched.has(n))).toEqual([]);
  });

  it('recording rule names follow level:metric:operations and are defined once', () => {
    const names = records.map((r) => r.record);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(name).toMatch(/^[a-z_]+:kata_bridge_[a-z_]+:[a-z0-9_]+$/);
  });
});

describe('Prometheus rules: generator and thresholds', () => {
  it('the committed rule file is what `npm run rules` generates', () => {
    expect(ruleFileText, 'deploy/prometheus/kata-bridge.rules.yaml is stale: run `npm run rules`').toBe(generate());
  });

  it('an override changes the thresholds it names and nothing else', () => {
    const t = resolveThresholds({
      egressFlood: { bytesPerSecond: 200_000_000 },
      unsafeSkipped: { severity: 'warning' },
      exporterJobRegex: 'kmb',
    });
    expect(t.egressFlood).toEqual({ bytesPerSecond: 200_000_000, for: '5m', severity: 'warning' });
    expect(t.diskWriteFlood).toEqual(DEFAULT_THRESHOLDS.diskWriteFlood);
    const text = generate(t);
    expect(text).toContain('namespace_pod:kata_bridge_pod_guest_network_transmit_bytes:rate5m > 200000000');
    expect(text).not.toContain('namespace_pod:kata_bridge_pod_guest_network_transmit_bytes:rate5m > 50000000');
    expect(text).toContain('up{job=~\\"kmb\\"} == 0');
    const unsafe = parseAlertBlocks(text).get('KataBridgeUnsafeRuntimeSandboxesSkipped');
    expect(unsafe?.get('severity')).toBe('"warning"');
    expect(parseAlertBlocks(generate()).get('KataBridgeUnsafeRuntimeSandboxesSkipped')?.get('severity')).toBe('"info"');
  });

  it('an override with a typo, a wrong type, a bad duration or an unknown severity is refused', () => {
    expect(() => resolveThresholds({ egresFlood: { bytesPerSecond: 1 } })).toThrow(/unknown key egresFlood/);
    expect(() => resolveThresholds({ egressFlood: { bytesPerSec: 1 } })).toThrow(/unknown key egressFlood\.bytesPerSec/);
    expect(() => resolveThresholds({ egressFlood: { bytesPerSecond: '50MB' } })).toThrow(/non-negative number/);
    expect(() => resolveThresholds({ cpuAtLimit: { for: '15 minutes' } })).toThrow(/Prometheus duration/);
    expect(() => resolveThresholds({ sourceDown: { severity: 'page' } })).toThrow(/critical, warning, info/);
    expect(() => resolveThresholds({ exporterJobRegex: 'a"b' })).toThrow(/quotes/);
    expect(() => resolveThresholds([])).toThrow(/must be an object/);
  });
});
