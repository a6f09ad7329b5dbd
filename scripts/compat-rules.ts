/**
 * The compatibility rule set (docs/compatibility.md), written by `npm run rules` beside the main
 * rule file and checked by `npm run rules -- --check`:
 *   deploy/prometheus/kata-bridge-compat.rules.yaml                      the Prometheus rule file
 *   deploy/kubernetes/components/compatibility/generated/*               what the kustomize component adds
 *
 * cAdvisor serves wrong rows for Kata containers (zeros, nothing, or the whole VM on the sandbox
 * row), and the tools people already run (kube-prometheus dashboards, OpenCost, Kubecost, the VPA)
 * read only cAdvisor's names. These rules give them the exporter's values under those names:
 * - `container_cpu_usage_seconds_total` and `container_memory_working_set_bytes` for each container
 *   of each pod the exporter reports, labelled as the kubelet's cAdvisor job labels its rows, with
 *   `image` from kube-state-metrics and a `source` label that says where they come from;
 * - the kube-prometheus CPU recording rules under their own names (the upstream group they replace
 *   must be disabled): upstream's result for every other pod, the exporter's per-container rates
 *   for Kata pods, and the VM's overhead (host − containers) on the pod's `container=""` row, where
 *   a runc pod's sandbox (pause) row sits, so pod and namespace totals are what the node pays.
 * cAdvisor's own rows for the same containers stay; where the cgroupfs driver makes them
 * recognisable (`kata_<id>` cgroups) the metric_relabel snippet drops them at scrape time.
 */

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Thresholds } from '../deploy/prometheus/thresholds.ts';
import { renderRuleFile, type RecordingRule, type RuleGroup } from './rule-file.ts';

const ROOT = new URL('../', import.meta.url);
export const COMPAT_RULES_REL = 'deploy/prometheus/kata-bridge-compat.rules.yaml';
export const COMPONENT_REL = 'deploy/kubernetes/components/compatibility';
export const PROMETHEUS_RULE_PATCH_REL = `${COMPONENT_REL}/generated/prometheusrule-patch.json`;
export const CONFIGMAP_PATCH_REL = `${COMPONENT_REL}/generated/configmap-patch.json`;
export const RELABEL_SNIPPET_REL = `${COMPONENT_REL}/generated/cadvisor-metric-relabel.yaml`;
/** Keys the component adds to the plain-Prometheus overlay's ConfigMap. */
export const CONFIGMAP_RULES_KEY = 'kata-bridge-compat.rules.yaml';
export const CONFIGMAP_RELABEL_KEY = 'cadvisor-metric-relabel.yaml';

/** The marker label on every series these rules write. */
export const SOURCE_LABEL = { source: 'kata-metrics-bridge' } as const;
/** How kube-prometheus (and kube-prometheus-stack) label the kubelet's cAdvisor rows. */
export const CADVISOR_LABELS = { job: 'kubelet', metrics_path: '/metrics/cadvisor' } as const;
/** The kubernetes-mixin group whose record names the CPU rules below take over. */
export const UPSTREAM_CPU_GROUP = 'k8s.rules.container_cpu_usage_seconds_total';
/** kube-prometheus-stack's Helm value that turns that group off. */
export const UPSTREAM_CPU_GROUP_HELM_VALUE = 'defaultRules.rules.k8sContainerCpuUsageSecondsTotal';

export const COMPAT_RECORDS = {
  cpu: 'container_cpu_usage_seconds_total',
  memory: 'container_memory_working_set_bytes',
  cpuRate: 'node_namespace_pod_container:container_cpu_usage_seconds_total:sum_rate5m',
  cpuIrate: 'node_namespace_pod_container:container_cpu_usage_seconds_total:sum_irate',
} as const;

/** The pods the exporter reports: the only ones whose rows these rules replace. */
const KATA_PODS = 'kata_bridge_pod_info';
/** Identity labels, cluster included for multi-cluster setups (absent = empty, matches as such). */
const POD = 'cluster, namespace, pod';
const CONTAINER = `${POD}, container`;

/** Upstream's join of the pod's node, from kube-state-metrics' kube_pod_info. */
const NODE_JOIN = [`* on (${POD}) group_left (node) topk by (${POD}) (`, `  1, max by (${POD}, node) (kube_pod_info{node!=""})`, ')'];

/** The container's image, from kube-state-metrics (one, whatever it reports during an update). */
const IMAGE_JOIN = [
  `* on (${CONTAINER}) group_left (image) topk by (${CONTAINER}) (`,
  `  1, max by (${CONTAINER}, image) (kube_pod_container_info{image!=""})`,
  ')',
];

function indent(lines: string[], by = '  '): string[] {
  return lines.map((l) => by + l);
}

/** A cAdvisor-named copy of one of the exporter's per-container families. */
function cadvisorCopy(record: string, family: string, extraLabels: Record<string, string> = {}): RecordingRule {
  return {
    kind: 'record',
    record,
    // max, not sum: an exporter replaced during a rollout may briefly report the same container twice.
    expr: [`max by (${CONTAINER}) (${family})`, ...IMAGE_JOIN, ...NODE_JOIN].join('\n'),
    labels: { ...CADVISOR_LABELS, ...extraLabels, ...SOURCE_LABEL },
  };
}

/** One of upstream's CPU recording rules: upstream for other pods, the exporter's values for Kata pods. */
function cpuRecording(record: string, fn: 'rate' | 'irate'): RecordingRule {
  const cadvisor = `container_cpu_usage_seconds_total{job="${CADVISOR_LABELS.job}", metrics_path="${CADVISOR_LABELS.metrics_path}", image!=""}`;
  return {
    kind: 'record',
    record,
    expr: [
      '(',
      '  (',
      `    sum by (${CONTAINER}) (`,
      `      ${fn}(${cadvisor}[5m])`,
      '    )',
      `    unless on (${POD}) ${KATA_PODS}`,
      '  )',
      '  or',
      `  max by (${CONTAINER}) (${fn}(kata_bridge_container_cpu_usage_seconds_total[5m]))`,
      '  or',
      '  # the VM beyond its containers, on the pod\'s container="" row (a runc pod\'s sandbox row)',
      `  max by (${POD}) (${fn}(kata_bridge_pod_overhead_cpu_usage_seconds_total[5m]))`,
      ')',
      ...NODE_JOIN,
    ].join('\n'),
  };
}

export function buildCompatGroups(t: Thresholds): RuleGroup[] {
  if (!t.compatibility.enabled) return [];
  return [
    {
      name: 'kata-bridge.compat.cadvisor',
      rules: [
        cadvisorCopy(COMPAT_RECORDS.cpu, 'kata_bridge_container_cpu_usage_seconds_total', { cpu: 'total' }),
        cadvisorCopy(COMPAT_RECORDS.memory, 'kata_bridge_container_memory_working_set_bytes'),
      ],
    },
    {
      // Replaces the upstream group of the same records: disable that one (docs/compatibility.md).
      name: `kata-bridge.compat.${UPSTREAM_CPU_GROUP}`,
      rules: [cpuRecording(COMPAT_RECORDS.cpuRate, 'rate'), cpuRecording(COMPAT_RECORDS.cpuIrate, 'irate')],
    },
  ];
}

const COMPAT_HEADER = [
  '# Generated by `npm run rules` (scripts/compat-rules.ts) from deploy/prometheus/thresholds.ts',
  '# (compatibility.enabled). Do not edit. What it does and how to deploy it: docs/compatibility.md.',
  `# It records the names of the upstream group "${UPSTREAM_CPU_GROUP}": load it only with that`,
  `# group disabled (kube-prometheus-stack: ${UPSTREAM_CPU_GROUP_HELM_VALUE}: false).`,
];

export function renderCompatRuleFile(t: Thresholds): string {
  return renderRuleFile(buildCompatGroups(t), t, COMPAT_HEADER);
}

/** cAdvisor's CPU and memory rows of Kata cgroups, recognisable only with the cgroupfs driver. */
export const KATA_CGROUP_ROW = { sourceLabels: ['__name__', 'id'], regex: 'container_(cpu|memory)_.+;.*/kata_[0-9a-f]{64}' } as const;

/** The scrape-time drop, as a metric_relabel_configs entry of the kubelet's cAdvisor job. */
export function relabelSnippet(): string {
  return [
    '# kata-metrics-bridge (docs/compatibility.md): append to the metric_relabel_configs of the job that',
    "# scrapes the kubelet's /metrics/cadvisor. Drops cAdvisor's CPU and memory rows of Kata cgroups",
    '# (kata_<64 hex> with the cgroupfs driver: zeros for containers, part or all of the VM on the',
    '# sandbox row); network rows stay. The compatibility rules publish the true values instead.',
    `- source_labels: [${KATA_CGROUP_ROW.sourceLabels.join(', ')}]`,
    `  regex: ${JSON.stringify(KATA_CGROUP_ROW.regex)}`,
    '  action: drop',
    '',
  ].join('\n');
}

interface RuleObject {
  record: string;
  expr: string;
  labels?: Record<string, string>;
}

/** The groups as objects (a PrometheusRule's spec.groups), from the same data as the file. */
function groupObjects(groups: RuleGroup[]): Array<{ name: string; rules: RuleObject[] }> {
  return groups.map((g) => ({
    name: g.name,
    rules: g.rules.map((r) => {
      if (r.kind !== 'record') throw new Error(`compatibility group ${g.name}: only recording rules`);
      return { record: r.record, expr: r.expr, ...(r.labels ? { labels: { ...r.labels } } : {}) };
    }),
  }));
}

/** JSON patches the component applies; each is a no-op where its target is absent. */
export function componentFiles(t: Thresholds): Array<{ path: string; content: string }> {
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
  const ruleFile = renderCompatRuleFile(t);
  return [
    {
      // the Operator overlay: the groups join the base's PrometheusRule
      path: PROMETHEUS_RULE_PATCH_REL,
      content: json(groupObjects(buildCompatGroups(t)).map((value) => ({ op: 'add', path: '/spec/groups/-', value }))),
    },
    {
      // the plain-Prometheus overlay: the rule file and the drop snippet join its ConfigMap
      path: CONFIGMAP_PATCH_REL,
      content: json([
        { op: 'add', path: `/data/${CONFIGMAP_RULES_KEY}`, value: ruleFile },
        { op: 'add', path: `/data/${CONFIGMAP_RELABEL_KEY}`, value: relabelSnippet() },
      ]),
    },
    { path: RELABEL_SNIPPET_REL, content: relabelSnippet() },
  ];
}

export function compatFiles(t: Thresholds): Array<{ path: string; content: string }> {
  return [{ path: COMPAT_RULES_REL, content: renderCompatRuleFile(t) }, ...componentFiles(t)];
}

/** `npm run rules` writes these files; `--check` returns 1 when one is stale. */
export function writeOrCheckCompat(t: Thresholds, mode: 'write' | 'check'): number {
  let stale = 0;
  for (const file of compatFiles(t)) {
    const target = fileURLToPath(new URL(file.path, ROOT));
    if (mode === 'write') {
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, file.content);
      process.stderr.write(`wrote ${file.path}\n`);
      continue;
    }
    let current = '';
    try {
      current = readFileSync(target, 'utf8');
    } catch {
      // missing counts as stale
    }
    if (current !== file.content) {
      process.stderr.write(`${file.path} is stale: run \`npm run rules\`\n`);
      stale = 1;
    }
  }
  return stale;
}
