/**
 * The overhead advisor and VM fit: recording and alert rules that scripts/gen-rules.ts adds to
 * the main rule file as groups of their own.
 *
 * Per RuntimeClass handler across the fleet: each pod's peak overhead (memory, and CPU as its
 * 5-minute rate) over the window, finished pods included; the p50, p95, p99 and max of those peaks
 * over pods; and a recommended `overhead.podFixed` = p99 × (1 + headroom), rounded up to a whole
 * step, only for handlers with enough pods to call a p99 a percentile. The handler reaches the pod
 * series through `kata_bridge_pod_info{runtime_handler}`.
 */

import type { Thresholds } from '../deploy/prometheus/thresholds.ts';
import type { AlertRule, RecordingRule, RuleGroup } from './rule-file.ts';

/** Recording rule names (level:metric:operations). */
export const ADVISOR = {
  podOverheadMemoryPeak: 'namespace_pod:kata_bridge_pod_overhead_memory_bytes:max_over_window',
  podOverheadCpuPeak: 'namespace_pod:kata_bridge_pod_overhead_cpu_usage:max_over_window_rate5m',
  handlerPods: 'runtime_handler:kata_bridge_pods:count_over_window',
  handlerMemory: {
    p50: 'runtime_handler:kata_bridge_pod_overhead_memory_bytes:p50_max_over_window',
    p95: 'runtime_handler:kata_bridge_pod_overhead_memory_bytes:p95_max_over_window',
    p99: 'runtime_handler:kata_bridge_pod_overhead_memory_bytes:p99_max_over_window',
    max: 'runtime_handler:kata_bridge_pod_overhead_memory_bytes:max_max_over_window',
  },
  handlerCpu: {
    p50: 'runtime_handler:kata_bridge_pod_overhead_cpu_usage:p50_max_over_window_rate5m',
    p95: 'runtime_handler:kata_bridge_pod_overhead_cpu_usage:p95_max_over_window_rate5m',
    p99: 'runtime_handler:kata_bridge_pod_overhead_cpu_usage:p99_max_over_window_rate5m',
    max: 'runtime_handler:kata_bridge_pod_overhead_cpu_usage:max_max_over_window_rate5m',
  },
  recommendedMemory: 'runtime_handler:kata_bridge_pod_overhead_memory_recommended_bytes:podfixed',
  recommendedCpu: 'runtime_handler:kata_bridge_pod_overhead_cpu_recommended_cores:podfixed',
  reservedMemory: 'runtime_handler:kata_bridge_pod_overhead_memory_reserved_bytes:min',
  reservedCpu: 'runtime_handler:kata_bridge_pod_overhead_cpu_reserved_cores:min',
} as const;

const QUANTILES = { p50: 0.5, p95: 0.95, p99: 0.99 } as const;
const POD = '{{ $labels.namespace }}/{{ $labels.pod }}';
const HANDLER = '{{ $labels.runtime_handler }}';

/**
 * One handler per pod: pod_info seen over `window` (so finished pods keep theirs). A pod name
 * reused under another handler within the window would make the join ambiguous and fail the rule:
 * topk keeps one.
 */
function handlerOf(window?: string): string {
  const info = 'kata_bridge_pod_info{runtime_handler!=""}';
  const series = window === undefined ? info : `max_over_time(${info}[${window}])`;
  return `topk by (namespace, pod) (1, max by (namespace, pod, runtime_handler) (${series}))`;
}

/** `expr` per pod with the pod's runtime_handler label. */
function withHandler(expr: string, window?: string): string {
  return [expr, '* on (namespace, pod) group_left (runtime_handler)', handlerOf(window)].join('\n');
}

function num(n: number): string {
  return String(n);
}

/** Keeps a handler's series only while enough pods ran in the window for a p99 to mean something. */
function enoughPods(minPods: number): string {
  return `and on (runtime_handler) (${ADVISOR.handlerPods} >= ${num(minPods)})`;
}

function recordingRules(t: Thresholds): RecordingRule[] {
  const a = t.overheadAdvisor;
  const rec = (record: string, expr: string): RecordingRule => ({ kind: 'record', record, expr });
  const perHandler = (names: Record<'p50' | 'p95' | 'p99' | 'max', string>, peak: string) => [
    ...(Object.keys(QUANTILES) as (keyof typeof QUANTILES)[]).map((q) =>
      rec(names[q], `quantile by (runtime_handler) (${num(QUANTILES[q])}, ${peak})`),
    ),
    rec(names.max, `max by (runtime_handler) (${peak})`),
  ];
  const recommend = (p99: string, step: number) =>
    [`ceil(${p99} * ${num(1 + a.headroom)} / ${num(step)}) * ${num(step)}`, enoughPods(a.minPods)].join('\n');
  return [
    rec(ADVISOR.podOverheadMemoryPeak, withHandler(`max_over_time(kata_bridge_pod_overhead_memory_bytes[${a.window}])`, a.window)),
    rec(
      ADVISOR.podOverheadCpuPeak,
      withHandler(`max_over_time(namespace_pod:kata_bridge_pod_overhead_cpu_usage:rate5m[${a.window}])`, a.window),
    ),
    rec(ADVISOR.handlerPods, `count by (runtime_handler) (${ADVISOR.podOverheadMemoryPeak})`),
    ...perHandler(ADVISOR.handlerMemory, ADVISOR.podOverheadMemoryPeak),
    ...perHandler(ADVISOR.handlerCpu, ADVISOR.podOverheadCpuPeak),
    rec(ADVISOR.recommendedMemory, recommend(ADVISOR.handlerMemory.p99, a.memoryStepBytes)),
    rec(ADVISOR.recommendedCpu, recommend(ADVISOR.handlerCpu.p99, a.cpuStepCores)),
    // What the handler's running pods reserve now; the smallest, so one under-reserved pod shows.
    rec(ADVISOR.reservedMemory, `min by (runtime_handler) (\n${withHandler('kata_bridge_pod_overhead_memory_reserved_bytes')}\n)`),
    rec(ADVISOR.reservedCpu, `min by (runtime_handler) (\n${withHandler('kata_bridge_pod_overhead_cpu_reserved_cores')}\n)`),
  ];
}

function alertRules(t: Thresholds): AlertRule[] {
  const a = t.overheadAdvisor;
  const wasteful = (resource: string, reserved: string, recommended: string) =>
    `label_replace(${reserved} > ${num(a.wasteful.ratio)} * ${recommended}, "resource", "${resource}", "", "")`;
  return [
    {
      kind: 'alert',
      alert: 'KataBridgeOverheadReservationBelowP99',
      expr: [`${ADVISOR.reservedMemory}`, '  <', `(${ADVISOR.handlerMemory.p99} ${enoughPods(a.minPods)})`].join('\n'),
      for: a.belowP99.for,
      severity: a.belowP99.severity,
      scope: 'node',
      summary: `RuntimeClass handler ${HANDLER} reserves less overhead memory than its p99 pod uses`,
      description: `Pods of handler ${HANDLER} reserve {{ $value | humanize1024 }}B of overhead memory (the smallest reservation among running pods), below the p99 of the peak overhead its pods reached over ${a.window}: about one pod in a hundred outgrows its reservation, and the host OOM-kills its VMM. Raise the RuntimeClass overhead.podFixed memory to ${ADVISOR.recommendedMemory}.`,
    },
    {
      kind: 'alert',
      alert: 'KataBridgeOverheadReservationWasteful',
      expr: [
        wasteful('memory', ADVISOR.reservedMemory, ADVISOR.recommendedMemory),
        'or',
        wasteful('cpu', ADVISOR.reservedCpu, ADVISOR.recommendedCpu),
      ].join('\n'),
      for: a.wasteful.for,
      severity: a.wasteful.severity,
      scope: 'node',
      summary: `RuntimeClass handler ${HANDLER} reserves over ${num(a.wasteful.ratio)}× the overhead {{ $labels.resource }} its pods need`,
      description: `Every running pod of handler ${HANDLER} reserves {{ $value | humanize }} (bytes or cores) of overhead {{ $labels.resource }}, more than ${num(a.wasteful.ratio)}× the advisor's recommendation from the p99 pod over ${a.window}: each pod holds node capacity that no VM uses. Lower the RuntimeClass overhead.podFixed to the recommendation.`,
    },
    {
      kind: 'alert',
      alert: 'KataBridgeOverheadAdvisorTooFewPods',
      expr: `${ADVISOR.handlerPods} < ${num(a.minPods)}`,
      for: a.tooFewPods.for,
      severity: a.tooFewPods.severity,
      scope: 'node',
      summary: `Too few pods of handler ${HANDLER} to recommend an overhead`,
      description: `Only {{ $value }} pods of RuntimeClass handler ${HANDLER} ran in the last ${a.window} (fewer than ${num(a.minPods)}): their p99 is their maximum, so the advisor publishes no recommendation for it.`,
    },
    {
      kind: 'alert',
      alert: 'KataBridgeVmExceedsHostMemoryLimit',
      expr: [
        '(kata_bridge_pod_vm_memory_bytes + kata_bridge_pod_overhead_memory_bytes)',
        '  >',
        'kata_bridge_pod_host_memory_limit_bytes',
      ].join('\n'),
      for: t.vmFit.for,
      severity: t.vmFit.severity,
      scope: 'pod',
      summary: `The VM of ${POD} does not fit in its host memory limit`,
      description: `The VM of ${POD} is configured with more memory than its pod's host memory limit leaves after the overhead observed now (VM memory + overhead = {{ $value | humanize1024 }}B): once the guest touches its memory, the host OOM-kills the VMM before the guest feels any pressure.`,
    },
  ];
}

export function advisorRuleGroups(t: Thresholds): RuleGroup[] {
  return [
    { name: 'kata-bridge.overhead-advisor', rules: recordingRules(t) },
    { name: 'kata-bridge.capacity', rules: alertRules(t) },
  ];
}
