/**
 * `npm run rules`: writes deploy/prometheus/kata-bridge.rules.yaml, the Prometheus recording and
 * alert rules, from the thresholds in deploy/prometheus/thresholds.ts; without --out, also the
 * compatibility rule set and its kustomize component files (scripts/compat-rules.ts).
 *
 *   npm run rules                                         regenerate the committed file (defaults)
 *   npm run rules -- --check                              exit 1 when a committed file is stale
 *   npm run rules -- --thresholds my.json --out my.yaml   your own thresholds (see thresholds.ts)
 *   npm run rules -- --thresholds my.json --out -         ... printed to stdout
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { DEFAULT_THRESHOLDS, resolveThresholds, type Severity, type Thresholds } from '../deploy/prometheus/thresholds.ts';
import { writeOrCheckCompat } from './compat-rules.ts';
import { advisorRuleGroups } from './advisor-rules.ts';
import { renderRuleFile, runbookAnchor, type AlertRule, type RecordingRule, type RuleGroup } from './rule-file.ts';

export { runbookAnchor, type AlertRule, type RecordingRule, type RuleGroup };

export const RULE_FILE = new URL('../deploy/prometheus/kata-bridge.rules.yaml', import.meta.url);

// ── recording rule names (level:metric:operations) ──
export const R = {
  containerCpuRate: 'namespace_pod_container:kata_bridge_container_cpu_usage:rate5m',
  containerCpuPerLimit: 'namespace_pod_container:kata_bridge_container_cpu_usage_per_limit:ratio_rate5m',
  containerMemPerLimit: 'namespace_pod_container:kata_bridge_container_memory_working_set_per_limit:ratio',
  podCpuLimitSum: 'namespace_pod:kata_bridge_container_cpu_limit_cores:sum',
  podHostCpuRate: 'namespace_pod:kata_bridge_pod_host_cpu_usage:rate5m',
  podHostCpuPerLimit: 'namespace_pod:kata_bridge_pod_host_cpu_usage_per_limit:ratio_rate5m',
  podGuestCpuRate: 'namespace_pod:kata_bridge_pod_guest_cpu_usage:rate5m',
  podGuestPerHostCpu: 'namespace_pod:kata_bridge_pod_guest_cpu_usage_per_host:ratio_rate5m',
  podOverheadCpuRate: 'namespace_pod:kata_bridge_pod_overhead_cpu_usage:rate5m',
  podOverheadCpuPerReserved: 'namespace_pod:kata_bridge_pod_overhead_cpu_usage_per_reserved:ratio_rate5m',
  podOverheadMemPerReserved: 'namespace_pod:kata_bridge_pod_overhead_memory_per_reserved:ratio',
  podGuestTasksDeriv: 'namespace_pod:kata_bridge_pod_guest_tasks:deriv5m',
  podGuestTxRate: 'namespace_pod:kata_bridge_pod_guest_network_transmit_bytes:rate5m',
  podGuestRxRate: 'namespace_pod:kata_bridge_pod_guest_network_receive_bytes:rate5m',
  podGuestDiskWriteRate: 'namespace_pod:kata_bridge_pod_guest_disk_written_bytes:rate5m',
  podGuestDiskReadRate: 'namespace_pod:kata_bridge_pod_guest_disk_read_bytes:rate5m',
  podHostMemPerLimit: 'namespace_pod:kata_bridge_pod_host_memory_working_set_per_limit:ratio',
  podHostThrottledRate: 'namespace_pod:kata_bridge_pod_host_cpu_throttled:rate5m',
  podHostThrottledPerCpu: 'namespace_pod:kata_bridge_pod_host_cpu_throttled_per_usage:ratio_rate5m',
  podHostPressureRate: 'namespace_pod_resource_kind:kata_bridge_pod_host_pressure:rate5m',
  podHostTxRate: 'namespace_pod:kata_bridge_pod_host_network_transmit_bytes:rate5m',
  podHostRxRate: 'namespace_pod:kata_bridge_pod_host_network_receive_bytes:rate5m',
  podHostDiskWriteRate: 'namespace_pod:kata_bridge_pod_host_disk_written_bytes:rate5m',
  podHostDiskReadRate: 'namespace_pod:kata_bridge_pod_host_disk_read_bytes:rate5m',
  podGuestPerHostNetwork: 'namespace_pod:kata_bridge_pod_guest_network_bytes_per_host:ratio_rate5m',
  podGuestPerHostDisk: 'namespace_pod:kata_bridge_pod_guest_disk_bytes_per_host:ratio_rate5m',
} as const;

function num(n: number): string {
  return String(n);
}

function recordingRules(): RecordingRule[] {
  const rec = (record: string, expr: string): RecordingRule => ({ kind: 'record', record, expr });
  return [
    rec(R.containerCpuRate, 'rate(kata_bridge_container_cpu_usage_seconds_total[5m])'),
    rec(R.containerCpuPerLimit, `${R.containerCpuRate}\n  /\n(kata_bridge_container_cpu_limit_cores > 0)`),
    rec(R.containerMemPerLimit, 'kata_bridge_container_memory_working_set_bytes\n  /\n(kata_bridge_container_memory_limit_bytes > 0)'),
    // The pod cgroup has a CPU quota only when every container declares a limit: sum the limits
    // only for those pods (a container is known by any of its per-container series).
    rec(
      R.podCpuLimitSum,
      [
        'sum without (container) (kata_bridge_container_cpu_limit_cores)',
        'unless',
        'count without (container) (',
        '  (',
        '    group without (reason) (kata_bridge_container_metrics_gap)',
        '    or group without () (kata_bridge_container_memory_working_set_bytes)',
        '    or group without () (kata_bridge_container_cpu_usage_seconds_total)',
        '  )',
        '  unless kata_bridge_container_cpu_limit_cores',
        ')',
      ].join('\n'),
    ),
    rec(R.podHostCpuRate, 'rate(kata_bridge_pod_host_cpu_usage_seconds_total[5m])'),
    rec(R.podHostCpuPerLimit, `${R.podHostCpuRate}\n  /\n(${R.podCpuLimitSum} > 0)`),
    rec(R.podGuestCpuRate, 'rate(kata_bridge_pod_guest_cpu_usage_seconds_total[5m])'),
    rec(R.podGuestPerHostCpu, `${R.podGuestCpuRate}\n  /\n(${R.podHostCpuRate} > 0)`),
    rec(R.podOverheadCpuRate, 'rate(kata_bridge_pod_overhead_cpu_usage_seconds_total[5m])'),
    rec(R.podOverheadCpuPerReserved, `${R.podOverheadCpuRate}\n  /\n(kata_bridge_pod_overhead_cpu_reserved_cores > 0)`),
    rec(R.podOverheadMemPerReserved, 'kata_bridge_pod_overhead_memory_bytes\n  /\n(kata_bridge_pod_overhead_memory_reserved_bytes > 0)'),
    rec(R.podGuestTasksDeriv, 'deriv(kata_bridge_pod_guest_tasks[5m])'),
    rec(R.podGuestTxRate, 'rate(kata_bridge_pod_guest_network_transmit_bytes_total[5m])'),
    rec(R.podGuestRxRate, 'rate(kata_bridge_pod_guest_network_receive_bytes_total[5m])'),
    rec(R.podGuestDiskWriteRate, 'rate(kata_bridge_pod_guest_disk_written_bytes_total[5m])'),
    rec(R.podGuestDiskReadRate, 'rate(kata_bridge_pod_guest_disk_read_bytes_total[5m])'),
    // The host's view of each pod: what no guest can forge.
    rec(R.podHostMemPerLimit, 'kata_bridge_pod_host_memory_working_set_bytes\n  /\n(kata_bridge_pod_host_memory_limit_bytes > 0)'),
    rec(R.podHostThrottledRate, 'rate(kata_bridge_pod_host_cpu_throttled_seconds_total[5m])'),
    rec(R.podHostThrottledPerCpu, `${R.podHostThrottledRate}\n  /\n(${R.podHostCpuRate} > 0)`),
    rec(R.podHostPressureRate, 'rate(kata_bridge_pod_host_pressure_seconds_total[5m])'),
    rec(R.podHostTxRate, 'rate(kata_bridge_pod_host_network_transmit_bytes_total[5m])'),
    rec(R.podHostRxRate, 'rate(kata_bridge_pod_host_network_receive_bytes_total[5m])'),
    rec(R.podHostDiskWriteRate, 'rate(kata_bridge_pod_host_disk_written_bytes_total[5m])'),
    rec(R.podHostDiskReadRate, 'rate(kata_bridge_pod_host_disk_read_bytes_total[5m])'),
    // The guest's traffic against the host's count of the same VM, both directions together.
    rec(R.podGuestPerHostNetwork, `(${R.podGuestTxRate} + ${R.podGuestRxRate})\n  /\n((${R.podHostTxRate} + ${R.podHostRxRate}) > 0)`),
    rec(
      R.podGuestPerHostDisk,
      `(${R.podGuestDiskWriteRate} + ${R.podGuestDiskReadRate})\n  /\n((${R.podHostDiskWriteRate} + ${R.podHostDiskReadRate}) > 0)`,
    ),
  ];
}

const POD = '{{ $labels.namespace }}/{{ $labels.pod }}';
const CONTAINER = '{{ $labels.namespace }}/{{ $labels.pod }} container {{ $labels.container }}';
const NODE = '{{ $labels.instance }}';

function buildAbuse(t: Thresholds): AlertRule[] {
  const c = t.cpuAtLimit;
  // A container whose own view is first-hand and pinned flat at its limit.
  const containerPinned = [
    '(',
    `  ${R.containerCpuPerLimit} >= ${num(c.ratio)}`,
    '  and',
    `  stddev_over_time(${R.containerCpuPerLimit}[${c.varianceWindow}]) < ${num(c.maxStddev)}`,
    ')',
    'unless ignoring (reason) kata_bridge_container_metrics_gap',
  ];
  // The host's view decides, whatever the guest (or the kubelet relaying it) says.
  const podPinned = [
    `${R.podHostCpuPerLimit} >= ${num(c.ratio)}`,
    'and',
    `stddev_over_time(${R.podHostCpuPerLimit}[${c.varianceWindow}]) < ${num(c.maxStddev)}`,
  ];
  const g = t.guestCpuPlausibility;
  const o = t.overheadAboveReservation;
  return [
    {
      kind: 'alert',
      alert: 'KataBridgeContainerCpuFlatAtLimit',
      scope: 'container',
      expr: containerPinned.join('\n'),
      for: c.for,
      severity: c.severity,
      summary: 'Container CPU pinned flat at its limit (possible crypto-mining).',
      description: `${CONTAINER} has used {{ $value | humanizePercentage }} of its CPU limit with almost no variation for ${c.for}.`,
    },
    {
      kind: 'alert',
      alert: 'KataBridgePodHostCpuFlatAtLimit',
      scope: 'pod',
      expr: podPinned.join('\n'),
      for: c.for,
      severity: c.severity,
      summary: 'The host spends flat, saturated CPU on a Kata pod (possible crypto-mining).',
      description: `The host has spent {{ $value | humanizePercentage }} of the summed CPU limits of ${POD} on its VM with almost no variation for ${c.for}, whatever its guest reports.`,
    },
    {
      kind: 'alert',
      alert: 'KataBridgeContainerMemoryNearLimit',
      scope: 'container',
      expr: `${R.containerMemPerLimit} >= ${num(t.memoryNearLimit.ratio)}`,
      for: t.memoryNearLimit.for,
      severity: t.memoryNearLimit.severity,
      summary: 'Container memory working set close to its limit.',
      description: `${CONTAINER} has used {{ $value | humanizePercentage }} of its memory limit for ${t.memoryNearLimit.for}.`,
    },
    {
      kind: 'alert',
      alert: 'KataBridgeGuestTasksHigh',
      scope: 'pod',
      expr: `kata_bridge_pod_guest_tasks > ${num(t.guestTasks.max)}`,
      for: t.guestTasks.maxFor,
      severity: t.guestTasks.severity,
      summary: 'Too many tasks in a Kata guest (possible fork bomb).',
      description: `The guest of ${POD} reports {{ $value }} tasks (bound ${num(t.guestTasks.max)}).`,
    },
    {
      kind: 'alert',
      alert: 'KataBridgeGuestTasksGrowingFast',
      scope: 'pod',
      expr: `${R.podGuestTasksDeriv} > ${num(t.guestTasks.growthPerSecond)}`,
      for: t.guestTasks.growthFor,
      severity: t.guestTasks.severity,
      summary: 'Tasks in a Kata guest grow fast (possible fork bomb).',
      description: `The guest of ${POD} gains {{ $value | humanize }} tasks per second (bound ${num(t.guestTasks.growthPerSecond)}).`,
    },
    {
      kind: 'alert',
      alert: 'KataBridgeGuestNetworkEgressFlood',
      scope: 'pod',
      expr: `${R.podGuestTxRate} > ${num(t.egressFlood.bytesPerSecond)}`,
      for: t.egressFlood.for,
      severity: t.egressFlood.severity,
      summary: 'A Kata guest sends a flood of network traffic.',
      description: `The guest of ${POD} has sent {{ $value | humanize }}B/s for ${t.egressFlood.for}.`,
    },
    {
      kind: 'alert',
      alert: 'KataBridgeGuestDiskWriteFlood',
      scope: 'pod',
      expr: `${R.podGuestDiskWriteRate} > ${num(t.diskWriteFlood.bytesPerSecond)}`,
      for: t.diskWriteFlood.for,
      severity: t.diskWriteFlood.severity,
      summary: 'A Kata guest writes to disk at a flood rate.',
      description: `The guest of ${POD} has written {{ $value | humanize }}B/s for ${t.diskWriteFlood.for}.`,
    },
    {
      kind: 'alert',
      alert: 'KataBridgeVmOverheadMemoryAboveReservation',
      scope: 'pod',
      expr: `${R.podOverheadMemPerReserved} > ${num(o.memoryRatio)}`,
      for: o.memoryFor,
      severity: o.severity,
      summary: 'VM memory overhead exceeds the RuntimeClass reservation.',
      description: `The VM of ${POD} uses {{ $value | humanizePercentage }} of the memory its RuntimeClass reserves for overhead; the VMM may be OOM-killed with the pod.`,
    },
    {
      kind: 'alert',
      alert: 'KataBridgeVmOverheadCpuAboveReservation',
      scope: 'pod',
      expr: `${R.podOverheadCpuPerReserved} > ${num(o.cpuRatio)}`,
      for: o.cpuFor,
      severity: o.severity,
      summary: 'VM CPU overhead exceeds the RuntimeClass reservation.',
      description: `The VM of ${POD} uses {{ $value | humanizePercentage }} of the CPU its RuntimeClass reserves for overhead.`,
    },
    {
      kind: 'alert',
      alert: 'KataBridgeGuestCpuOverReported',
      scope: 'pod',
      expr: [
        `${R.podGuestPerHostCpu} > ${num(1 + g.overReportTolerance)}`,
        `and ${R.podGuestCpuRate} >= ${num(g.overReportMinGuestCores)}`,
      ].join('\n'),
      for: g.for,
      severity: g.severity,
      summary: 'A Kata guest reports more CPU time than the host spent on its whole VM.',
      description: `The guest of ${POD} claims {{ $value | humanizePercentage }} of the CPU time the host spent on its VM: the guest is broken or lying.`,
    },
    {
      kind: 'alert',
      alert: 'KataBridgeGuestCpuUnderReported',
      scope: 'pod',
      expr: [
        `${R.podGuestPerHostCpu} < ${num(g.underReportFraction)}`,
        `and ${R.podHostCpuRate} >= ${num(g.underReportMinHostCores)}`,
      ].join('\n'),
      for: g.for,
      severity: g.severity,
      summary: 'A Kata guest reports far less CPU time than the host spends on its VM.',
      description: `The guest of ${POD} claims only {{ $value | humanizePercentage }} of the CPU time the host spends on its busy VM: it hides work, or costs unusually much to emulate.`,
    },
  ];
}

/**
 * New events of a per-pod counter: its increase over `window`, or, for a series that appeared within
 * `window` already above zero (a pod, or an exporter, started after the event), its value.
 */
function newEvents(counter: string, window: string): string {
  return [`increase(${counter}[${window}]) > 0`, 'or', `(${counter} > 0 unless ${counter} offset ${window})`].join('\n');
}

/** The guest claims a small fraction of what the host counted, while the host counted enough to judge. */
function underReported(
  p: Thresholds['guestTrafficPlausibility'],
  rule: { alert: string; ratio: string; hostRates: string[]; minHost: number; summary: string; description: string },
): AlertRule {
  return alertOn(p, {
    alert: rule.alert,
    scope: 'pod',
    expr: [`${rule.ratio} < ${num(p.underReportFraction)}`, `and (${rule.hostRates.join(' + ')}) >= ${num(rule.minHost)}`].join('\n'),
    summary: rule.summary,
    description: rule.description,
  });
}

/**
 * Abuse and failure seen from the host alone (issue 13): the pod cgroup, the overhead cgroup and
 * the VMM's network namespace. No guest report is part of these expressions, so a guest that
 * reports zeros, idles or is never asked (runtime-rs with QEMU) suppresses none of them.
 */
function hostTruth(t: Thresholds): AlertRule[] {
  const f = t.forkBombHost;
  const p = t.guestTrafficPlausibility;
  return [
    alertOn(t.memoryNearLimit, {
      alert: 'KataBridgePodHostMemoryNearLimit',
      scope: 'pod',
      expr: `${R.podHostMemPerLimit} >= ${num(t.memoryNearLimit.ratio)}`,
      summary: "A Kata pod's memory on the host is close to its pod cgroup limit (runaway memory).",
      description: `The VM of ${POD} holds {{ $value | humanizePercentage }} of its pod cgroup's memory limit on the host for ${t.memoryNearLimit.for}: the next burst is a host OOM kill of the VMM or virtiofsd.`,
    }),
    alertOn(t.hostOomKill, {
      alert: 'KataBridgePodHostOomKill',
      scope: 'pod',
      expr: newEvents('kata_bridge_pod_host_oom_kills_total', t.hostOomKill.window),
      summary: "The host's OOM killer killed a process of a Kata pod's VM.",
      description: `The host killed {{ $value | humanize }} process(es) of the VM of ${POD} (VMM, virtiofsd or shim) in the last ${t.hostOomKill.window}: the build may have vanished, or reported success without finishing.`,
    }),
    alertOn(t.guestOomKill, {
      alert: 'KataBridgePodGuestOomKill',
      scope: 'pod',
      expr: newEvents('kata_bridge_pod_guest_oom_kills_total', t.guestOomKill.window),
      summary: "The guest kernel OOM-killed a process of a Kata pod's build.",
      description: `The guest of ${POD} reports {{ $value | humanize }} OOM kill(s) inside its VM in the last ${t.guestOomKill.window}: a process of the build died for lack of memory.`,
    }),
    alertOn(t.cpuThrottling, {
      alert: 'KataBridgePodHostCpuThrottled',
      scope: 'pod',
      expr: [
        `${R.podHostThrottledPerCpu} >= ${num(t.cpuThrottling.ratio)}`,
        `and ${R.podHostCpuRate} >= ${num(t.cpuThrottling.minHostCores)}`,
      ].join('\n'),
      summary: 'A Kata pod spends much of its time throttled under its CPU quota.',
      description: `For every second of CPU the VM of ${POD} got, it waited {{ $value | humanizePercentage }} of a second throttled, for ${t.cpuThrottling.for}: the build runs slower than its CPU limit suggests.`,
    }),
    alertOn(t.egressFlood, {
      alert: 'KataBridgePodHostNetworkEgressFlood',
      scope: 'pod',
      expr: `${R.podHostTxRate} > ${num(t.egressFlood.bytesPerSecond)}`,
      summary: 'The host counts a flood of network traffic sent by a Kata pod.',
      description: `The network namespace of ${POD} has sent {{ $value | humanize }}B/s for ${t.egressFlood.for}, counted by the host kernel whatever its guest reports.`,
    }),
    alertOn(t.diskWriteFlood, {
      alert: 'KataBridgePodHostDiskWriteFlood',
      scope: 'pod',
      expr: `${R.podHostDiskWriteRate} > ${num(t.diskWriteFlood.bytesPerSecond)}`,
      summary: "The host counts a flood of disk writes by a Kata pod's VM.",
      description: `The VM of ${POD} has written {{ $value | humanize }}B/s to the host's disks for ${t.diskWriteFlood.for}, whatever its guest reports.`,
    }),
    alertOn(f, {
      alert: 'KataBridgePodHostForkBombPattern',
      scope: 'pod',
      expr: [
        `${R.podHostCpuPerLimit} >= ${num(f.cpuRatio)}`,
        'and',
        `deriv(kata_bridge_pod_host_memory_working_set_bytes[${f.window}]) > ${num(f.memoryGrowthBytesPerSecond)}`,
        'and',
        '(',
        `  sum without (resource, kind) (${R.podHostPressureRate}{resource=~"cpu|memory",kind="some"}) >= ${num(f.stallShare)}`,
        '  or',
        `  ${R.podHostThrottledPerCpu} >= ${num(t.cpuThrottling.ratio)}`,
        ')',
      ].join('\n'),
      summary: 'A Kata pod pins its CPU while its memory grows and its tasks stall (possible fork bomb).',
      description: `The host spends {{ $value | humanizePercentage }} of the summed CPU limits of ${POD} on its VM while the VM's memory keeps growing and its tasks stall, for ${f.for}: the host's view of a fork bomb.`,
    }),
    underReported(p, {
      alert: 'KataBridgeGuestNetworkUnderReported',
      ratio: R.podGuestPerHostNetwork,
      hostRates: [R.podHostTxRate, R.podHostRxRate],
      minHost: p.minHostNetworkBytesPerSecond,
      summary: 'A Kata guest reports far less network traffic than the host counted for its pod.',
      description: `The guest of ${POD} claims only {{ $value | humanizePercentage }} of the network bytes the host counted in the pod's namespace for ${p.for}: it hides traffic.`,
    }),
    underReported(p, {
      alert: 'KataBridgeGuestDiskUnderReported',
      ratio: R.podGuestPerHostDisk,
      hostRates: [R.podHostDiskWriteRate, R.podHostDiskReadRate],
      minHost: p.minHostDiskBytesPerSecond,
      summary: 'A Kata guest reports far less disk I/O than the host counted for its VM.',
      description: `The guest of ${POD} claims only {{ $value | humanizePercentage }} of the disk bytes the host counted for its VM for ${p.for}: it hides I/O, or writes through virtio-fs.`,
    }),
  ];
}

/** An alert whose `for` and severity are one entry of the thresholds. */
function alertOn(threshold: { for: string; severity: Severity }, rule: Omit<AlertRule, 'kind' | 'for' | 'severity'>): AlertRule {
  return { kind: 'alert', ...rule, for: threshold.for, severity: threshold.severity };
}

/** The findings of the isolation audit: each series is a fact about one untrusted pod, present (1) while it holds. */
function isolationAudit(t: Thresholds): AlertRule[] {
  return [
    alertOn(t.auditUnsandboxed, {
      alert: 'KataBridgeUntrustedPodUnsandboxed',
      scope: 'pod',
      expr: 'kata_bridge_audit_pod_unsandboxed > 0',
      summary: 'An untrusted pod runs without a Kata VM.',
      description: `${POD} runs under no known Kata runtime handler (runtime_handler {{ $labels.runtime_handler }}, value {{ $value }}): only the node's kernel separates it from the host and from the other builds.`,
    }),
    alertOn(t.auditPrivilegedHostDevices, {
      alert: 'KataBridgePrivilegedContainerHostDevices',
      scope: 'container',
      expr: 'kata_bridge_audit_privileged_container{host_devices="true"} > 0',
      summary: "A privileged container in a Kata VM receives the host's devices.",
      description: `${CONTAINER} is privileged and the runtime on ${NODE} passes the host's devices into its VM (host_devices {{ $labels.host_devices }}, value {{ $value }}): it can mount the node's disks and read or write other builds' data.`,
    }),
    alertOn(t.auditPrivilegedHostDevicesUnknown, {
      alert: 'KataBridgePrivilegedContainerHostDevicesUnknown',
      scope: 'container',
      expr: 'kata_bridge_audit_privileged_container{host_devices="unknown"} > 0',
      summary: "A privileged container runs in a Kata VM that may receive the host's devices.",
      description: `${CONTAINER} is privileged and the audit cannot tell whether the runtime on ${NODE} passes the host's devices into its VM (host_devices {{ $labels.host_devices }}, value {{ $value }}): the runtime configuration is unreadable.`,
    }),
    alertOn(t.auditHostNamespace, {
      alert: 'KataBridgeUntrustedPodHostNamespace',
      scope: 'pod',
      expr: 'kata_bridge_audit_host_namespace > 0',
      summary: 'An untrusted pod shares a namespace with the host.',
      description: `${POD} uses the host's {{ $labels.kind }} namespace (value {{ $value }}).`,
    }),
    alertOn(t.auditHostPath, {
      alert: 'KataBridgeUntrustedPodHostPath',
      scope: 'pod',
      expr: 'kata_bridge_audit_host_path > 0',
      summary: 'An untrusted pod mounts hostPath volumes.',
      description: `${POD} mounts hostPath volumes (value {{ $value }}): directories of the node are shared with the build.`,
    }),
    alertOn(t.auditKataAnnotations, {
      alert: 'KataBridgeUntrustedPodKataAnnotations',
      scope: 'pod',
      expr: 'kata_bridge_audit_kata_annotations_honoured{honoured=~"true|unknown"} > 0',
      summary: 'An untrusted pod carries Kata annotations that the node applies, or may apply, to its VM.',
      description: `${POD} carries io.katacontainers.* annotations (honoured {{ $labels.honoured }}, value {{ $value }}): true, the node applies at least one to the VM; unknown, its configuration is unreadable.`,
    }),
  ];
}

function blindSpots(t: Thresholds): AlertRule[] {
  return [
    {
      kind: 'alert',
      alert: 'KataBridgeContainerMetricsGap',
      scope: 'container',
      expr: 'kata_bridge_container_metrics_gap{reason!="kubelet_zero"} > 0',
      for: t.containerGap.for,
      severity: t.containerGap.severity,
      summary: 'A Kata container has had no first-hand metrics for a while.',
      description: `${CONTAINER} has had no first-hand value (reason {{ $labels.reason }}, gap {{ $value }}) for ${t.containerGap.for}; its published values are estimates.`,
    },
    {
      kind: 'alert',
      alert: 'KataBridgePodMetricsGap',
      scope: 'pod',
      expr: 'kata_bridge_pod_metrics_gap{reason!~"shim_unsafe_runtime|shim_disabled"} > 0',
      for: t.podGap.for,
      severity: t.podGap.severity,
      summary: "Part of a Kata pod's data has been missing for a while.",
      description: `${POD} has been missing data (reason {{ $labels.reason }}, gap {{ $value }}) for ${t.podGap.for}.`,
    },
    {
      kind: 'alert',
      alert: 'KataBridgeKubeletReportsZeros',
      scope: 'node',
      expr: `count without (namespace, pod, container, reason) (kata_bridge_container_metrics_gap{reason="kubelet_zero"}) >= ${num(t.kubeletZeros.minContainers)}`,
      for: t.kubeletZeros.for,
      severity: t.kubeletZeros.severity,
      summary: 'The kubelet of a node reports zeros for Kata containers.',
      description: `The kubelet behind ${NODE} reports zero CPU for {{ $value }} running Kata containers; kubectl top, the HPA and per-container dashboards are blind there.`,
    },
    {
      kind: 'alert',
      alert: 'KataBridgeUnsafeRuntimeSandboxesSkipped',
      scope: 'node',
      expr: 'sum without (state) (kata_bridge_sandboxes{state="unsafe_skipped"}) > 0',
      for: t.unsafeSkipped.for,
      severity: t.unsafeSkipped.severity,
      summary: 'Kata runtime-rs sandboxes are left unscraped because scraping them could crash their shim.',
      description: `{{ $value }} {{ $labels.runtime }} sandboxes on ${NODE} are not scraped (--shim.runtime-rs=safe): their guest view is missing.`,
    },
    {
      kind: 'alert',
      alert: 'KataBridgeSandboxUnmapped',
      scope: 'node',
      expr: 'kata_bridge_sandbox_unmapped > 0',
      for: t.sandboxUnmapped.for,
      severity: t.sandboxUnmapped.severity,
      summary: 'A Kata sandbox cannot be joined to any pod.',
      description: `Sandbox {{ $labels.sandbox_id }} ({{ $labels.runtime }}, value {{ $value }}) on ${NODE} belongs to no known pod on this node.`,
    },
    alertOn(t.auditConfigUnreadable, {
      alert: 'KataBridgeAuditConfigUnreadable',
      scope: 'node',
      // A node runs one container runtime: the other one's missing file is no blind spot, as
      // long as one runtime configuration is readable.
      expr: [
        'kata_bridge_audit_config_readable{config="kata"} == 0',
        'or',
        '(',
        '  kata_bridge_audit_config_readable{config=~"containerd|crio"} == 0',
        '  unless ignoring (config, path)',
        '  kata_bridge_audit_config_readable{config=~"containerd|crio"} == 1',
        ')',
      ].join('\n'),
      summary: 'The isolation audit cannot read a runtime configuration file.',
      description: `The isolation audit on ${NODE} cannot read or parse the {{ $labels.config }} configuration {{ $labels.path }} (readable {{ $value }}) for ${t.auditConfigUnreadable.for}: what depends on it is reported as unknown.`,
    }),
    alertOn(t.auditDisabledOnNode, {
      alert: 'KataBridgeAuditDisabledOnNode',
      scope: 'node',
      expr: [
        'kata_bridge_audit_enabled == 0',
        'and ignoring (instance, node)',
        'max without (instance, node) (kata_bridge_audit_enabled) == 1',
      ].join('\n'),
      summary: 'The isolation audit is off on a node while other nodes run it.',
      description: `The isolation audit is off on ${NODE} (enabled {{ $value }}) while other nodes of job {{ $labels.job }} run it: untrusted pods scheduled there are not audited.`,
    }),
  ];
}

function exporterHealth(t: Thresholds): AlertRule[] {
  const job = `job=~"${t.exporterJobRegex}"`;
  return [
    {
      kind: 'alert',
      alert: 'KataBridgeExporterDown',
      scope: 'node',
      expr: `up{${job}} == 0`,
      for: t.exporterDown.for,
      severity: t.exporterDown.severity,
      summary: 'A kata-metrics-bridge target is down.',
      description: `Prometheus cannot scrape ${NODE} (job {{ $labels.job }}, up {{ $value }}): the Kata pods there are unwatched.`,
    },
    {
      kind: 'alert',
      alert: 'KataBridgeExporterAbsent',
      scope: 'node',
      expr: `absent(up{${job}})`,
      for: t.exporterAbsent.for,
      severity: t.exporterAbsent.severity,
      summary: 'Prometheus has no kata-metrics-bridge target at all.',
      description: `No scrape target matches job=~"${t.exporterJobRegex}" (absent {{ $value }}): no Kata node is watched.`,
    },
    {
      kind: 'alert',
      alert: 'KataBridgeSourceDown',
      scope: 'node',
      expr: 'kata_bridge_source_up == 0',
      for: t.sourceDown.for,
      severity: t.sourceDown.severity,
      summary: 'kata-metrics-bridge cannot read one of its sources.',
      description: `The exporter on ${NODE} has failed to read its {{ $labels.source }} source (up {{ $value }}) for ${t.sourceDown.for}.`,
    },
    {
      kind: 'alert',
      alert: 'KataBridgeCollectionSlow',
      scope: 'node',
      expr: `max without (source) (kata_bridge_collection_duration_seconds) > ${num(t.collectionSlow.seconds)}`,
      for: t.collectionSlow.for,
      severity: t.collectionSlow.severity,
      summary: 'kata-metrics-bridge collections are slow.',
      description: `The slowest source of a collection on ${NODE} takes {{ $value | humanizeDuration }} (bound ${num(t.collectionSlow.seconds)}s); scrapes risk timing out.`,
    },
  ];
}

export function buildRuleGroups(t: Thresholds = DEFAULT_THRESHOLDS): RuleGroup[] {
  return [
    { name: 'kata-bridge.recording', rules: recordingRules() },
    { name: 'kata-bridge.build-abuse', rules: buildAbuse(t) },
    { name: 'kata-bridge.host-truth', rules: hostTruth(t) },
    { name: 'kata-bridge.isolation-audit', rules: isolationAudit(t) },
    { name: 'kata-bridge.blind-spots', rules: blindSpots(t) },
    { name: 'kata-bridge.exporter-health', rules: exporterHealth(t) },
    ...advisorRuleGroups(t),
  ];
}

// ── a tiny YAML emitter: mappings, sequences, double-quoted (JSON) strings, literal blocks ──

export function generate(t: Thresholds = DEFAULT_THRESHOLDS): string {
  return renderRuleFile(buildRuleGroups(t), t);
}

function main(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      thresholds: { type: 'string' },
      out: { type: 'string' },
      check: { type: 'boolean', default: false },
    },
    strict: true,
  });
  let t: Thresholds = DEFAULT_THRESHOLDS;
  if (values.thresholds !== undefined) {
    if (values.out === undefined) {
      process.stderr.write('--thresholds needs --out (a file, or - for stdout): the committed rule file keeps the defaults\n');
      return 2;
    }
    t = resolveThresholds(JSON.parse(readFileSync(values.thresholds, 'utf8')) as unknown);
  }
  const text = generate(t);
  if (values.check) {
    let current = '';
    try {
      current = readFileSync(RULE_FILE, 'utf8');
    } catch {
      // missing counts as stale
    }
    if (current !== text) {
      process.stderr.write('deploy/prometheus/kata-bridge.rules.yaml is stale: run `npm run rules`\n');
      return 1;
    }
    return writeOrCheckCompat(t, 'check');
  }
  if (values.out === undefined) writeOrCheckCompat(t, 'write');
  if (values.out === '-') {
    process.stdout.write(text);
  } else {
    const target = values.out ?? RULE_FILE;
    writeFileSync(target, text);
    process.stderr.write(`wrote ${typeof target === 'string' ? target : 'deploy/prometheus/kata-bridge.rules.yaml'}\n`);
  }
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  }
}
