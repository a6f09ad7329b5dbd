/**
 * The compatibility rule set (scripts/compat-rules.ts, docs/compatibility.md): the committed files
 * are what `npm run rules` writes, promtool accepts them, the thresholds switch turns them off, and
 * the kustomize component adds them to each overlay's Prometheus configuration (rendered by the
 * real `kubectl kustomize`). promtool's unit tests of the rules (deploy/prometheus/tests/compat.test.yaml)
 * run with the others in test/unit/rules.test.ts.
 */

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { DEFAULT_THRESHOLDS, resolveThresholds } from '../../deploy/prometheus/thresholds.ts';
import {
  COMPAT_RULES_REL,
  COMPONENT_REL,
  CONFIGMAP_RELABEL_KEY,
  CONFIGMAP_RULES_KEY,
  KATA_CGROUP_ROW,
  UPSTREAM_CPU_GROUP,
  buildCompatGroups,
  compatFiles,
  relabelSnippet,
  renderCompatRuleFile,
} from '../../scripts/compat-rules.ts';
import { REPO_DIR } from '../support/dashboards.ts';

type Obj = { kind: string; metadata: { name: string }; spec?: { groups?: unknown[] }; data?: Record<string, string> };

const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kmb-compat-'));
  tempDirs.push(dir);
  return dir;
}

function promtool(args: string[]): { status: number | null; out: string } {
  const res = spawnSync('promtool', args, { cwd: REPO_DIR, encoding: 'utf8' });
  if (res.error) throw new Error(`promtool could not run (test/support/ensure-system-deps.sh installs it): ${res.error.message}`);
  return { status: res.status, out: `${res.stdout}${res.stderr}` };
}

/** An overlay, with or without the component, through a throw-away kustomization. */
function render(overlay: string, withComponent: boolean): Obj[] {
  const dir = tempDir();
  const rel = (p: string) => JSON.stringify(relative(dir, join(REPO_DIR, p)));
  const components = withComponent ? `components:\n  - ${rel(COMPONENT_REL)}\n` : '';
  writeFileSync(
    join(dir, 'kustomization.yaml'),
    `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ${rel(`deploy/kubernetes/overlays/${overlay}`)}\n${components}`,
  );
  const yaml = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return parseAllDocuments(yaml).map((d) => d.toJS() as Obj);
}

const committed = (rel: string) => readFileSync(join(REPO_DIR, rel), 'utf8');
const fileGroups = () => (parseYaml(committed(COMPAT_RULES_REL)) as { groups: Array<{ name: string }> }).groups;

describe('compatibility rules: generated files', () => {
  it('the committed files are what `npm run rules` writes', () => {
    for (const file of compatFiles(DEFAULT_THRESHOLDS))
      expect(committed(file.path), `${file.path} is stale: run npm run rules`).toBe(file.content);
  });

  it('promtool check rules accepts the rule file', () => {
    const count = buildCompatGroups(DEFAULT_THRESHOLDS).flatMap((g) => g.rules).length;
    const { status, out } = promtool(['check', 'rules', COMPAT_RULES_REL]);
    expect(out).toContain(`SUCCESS: ${count} rules found`);
    expect(status).toBe(0);
  });

  it('compatibility.enabled false writes a valid file without groups; the switch is a boolean', () => {
    const off = resolveThresholds({ compatibility: { enabled: false } });
    expect(buildCompatGroups(off)).toEqual([]);
    const dir = tempDir();
    writeFileSync(join(dir, 'off.yaml'), renderCompatRuleFile(off));
    const { status, out } = promtool(['check', 'rules', join(dir, 'off.yaml')]);
    expect(out).toContain('SUCCESS: 0 rules found');
    expect(status).toBe(0);
    expect(() => resolveThresholds({ compatibility: { enabled: 'yes' } })).toThrow(/compatibility.enabled must be true or false/);
  });

  it('the rule file names the upstream group it replaces and the drop snippet is valid relabel YAML', () => {
    expect(committed(COMPAT_RULES_REL)).toContain(UPSTREAM_CPU_GROUP);
    expect(parseYaml(relabelSnippet())).toEqual([
      { source_labels: [...KATA_CGROUP_ROW.sourceLabels], regex: KATA_CGROUP_ROW.regex, action: 'drop' },
    ]);
  });

  it('the drop matches the CPU and memory rows of kata_ cgroups only', () => {
    // Prometheus anchors relabel regexes; the joined source labels are separated by ";".
    const drops = new RegExp(`^(?:${KATA_CGROUP_ROW.regex})$`);
    const kata = `/kubepods/burstable/pod0b1c/kata_${'ab12'.repeat(16)}`;
    expect(drops.test(`container_cpu_usage_seconds_total;${kata}`)).toBe(true);
    expect(drops.test(`container_memory_working_set_bytes;${kata}`)).toBe(true);
    expect(drops.test(`container_network_receive_bytes_total;${kata}`)).toBe(false);
    expect(drops.test(`container_cpu_usage_seconds_total;/kubepods/burstable/pod0b1c/${'ab12'.repeat(16)}`)).toBe(false);
    expect(
      drops.test(`container_cpu_usage_seconds_total;/kubepods.slice/kubepods-pod0b1c.slice/cri-containerd-${'ab12'.repeat(16)}.scope`),
    ).toBe(false);
    expect(drops.test('container_cpu_usage_seconds_total;/kubepods/burstable/pod0b1c')).toBe(false);
  });
});

describe('compatibility rules: the kustomize component', () => {
  it("adds the rule groups to the Operator overlay's PrometheusRule, and nothing else", () => {
    const plainRule = render('prometheus-operator', false);
    const withRule = render('prometheus-operator', true);
    const rule = (objs: Obj[]) => objs.find((o) => o.kind === 'PrometheusRule' && o.metadata.name === 'kata-metrics-bridge')!;
    const before = rule(plainRule).spec!.groups!;
    const after = rule(withRule).spec!.groups!;
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after.slice(before.length)).toEqual(fileGroups());
    expect(withRule.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(plainRule.map((o) => `${o.kind}/${o.metadata.name}`));
  });

  it("adds the rule file and the drop snippet to the plain-Prometheus overlay's ConfigMap, and no PrometheusRule", () => {
    const objs = render('plain-prometheus', true);
    expect(objs.filter((o) => o.kind === 'PrometheusRule')).toEqual([]);
    const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'kata-metrics-bridge-prometheus')!;
    expect(cm.data?.[CONFIGMAP_RULES_KEY]).toBe(committed(COMPAT_RULES_REL));
    expect(cm.data?.[CONFIGMAP_RELABEL_KEY]).toBe(relabelSnippet());
    const without = render('plain-prometheus', false).find(
      (o) => o.kind === 'ConfigMap' && o.metadata.name === 'kata-metrics-bridge-prometheus',
    )!;
    expect(Object.keys(without.data ?? {}).sort()).toEqual(
      Object.keys(cm.data ?? {})
        .filter((k) => k !== CONFIGMAP_RULES_KEY && k !== CONFIGMAP_RELABEL_KEY)
        .sort(),
    );
  });
});
