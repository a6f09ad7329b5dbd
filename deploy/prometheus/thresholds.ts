/**
 * The thresholds of the kata-metrics-bridge alert rules: the single source of truth.
 *
 * `npm run rules` turns these defaults into deploy/prometheus/kata-bridge.rules.yaml. To change a
 * value for your cluster without editing this file, write a JSON file holding only the values you
 * change (same nesting as below) and generate your own rule file from it:
 *
 *     { "egressFlood": { "bytesPerSecond": 200000000 }, "unsafeSkipped": { "severity": "warning" } }
 *
 *     npm run rules -- --thresholds my-thresholds.json --out my-kata-bridge.rules.yaml
 *
 * Unknown keys, wrong types, malformed durations and unknown severities are refused, so a typo
 * cannot silently leave a default in place. docs/runbooks.md explains each alert.
 *
 * Conventions: ratios are plain fractions (0.9 = 90 %), rates are per second, durations are
 * Prometheus durations (`15m`), `for` is how long a condition must hold before the alert fires,
 * `severity` is one of critical, warning, info.
 */

export type Severity = 'critical' | 'warning' | 'info';

export const DEFAULT_THRESHOLDS = {
  /**
   * Regular expression matched against the `job` label of the exporter's scrape targets (used by
   * the exporter-down and no-targets alerts). The default matches every job whose name starts with
   * `kata-metrics-bridge`, which covers the shipped manifests and variants such as
   * `kata-metrics-bridge-canary`.
   */
  exporterJobRegex: 'kata-metrics-bridge.*',

  /**
   * Base of every alert's `runbook_url`; the alert appends `#<alert name in lower case>`. Point it
   * at the copy of docs/runbooks.md your on-call engineers can open.
   */
  runbookBaseUrl: 'https://github.com/kata-metrics-bridge/kata-metrics-bridge/blob/main/docs/runbooks.md',

  /**
   * CPU pinned at its limit with almost no variation: the signature of a crypto-miner, which runs
   * flat out for as long as it lives, while a build alternates compile, link, test and I/O phases.
   * Per pod from the host view (pod host CPU over the sum of the containers' CPU limits), whatever
   * the guest says; per container from the container's own view, as a second opinion that names
   * the container.
   */
  cpuAtLimit: {
    /** Usage / limit (5-minute rate) at or above which CPU counts as pinned. 0.9: CFS throttling
     * keeps a saturated workload a few per cent under its quota. */
    ratio: 0.9,
    /** Standard deviation of that ratio over `varianceWindow` below which the usage counts as flat.
     * 0.02 (2 % of the limit): a miner's 5-minute rate moves by less than 1 %; a build at its limit
     * that still changes phases moves by several per cent. Raise it to catch noisier miners. */
    maxStddev: 0.02,
    /** Window of the variance check. */
    varianceWindow: '15m',
    /** Both conditions hold this long: 15 minutes of flat, saturated CPU is rare in honest CI. */
    for: '15m',
    severity: 'warning' as Severity,
  },

  /** Memory working set close to its limit: the next allocation burst is an OOM kill. Per pod from
   * the host (working set over the pod cgroup's limit), per container from the container's view. */
  memoryNearLimit: {
    /** Working set / limit at or above which the alert condition holds. 0.9 leaves ~10 % head room. */
    ratio: 0.9,
    /** 10 minutes: longer than a link step or a test suite's peak. */
    for: '10m',
    severity: 'warning' as Severity,
  },

  /** The host OOM killer killed a process of a pod's VM (the VMM, virtiofsd): the build vanishes,
   * sometimes with apparent success (Kata issue 6129). Counted over `window`; fires at once. */
  hostOomKill: { window: '10m', for: '0m', severity: 'critical' as Severity },

  /** The guest kernel OOM-killed one of the build's processes inside its VM. Reported by the guest. */
  guestOomKill: { window: '10m', for: '0m', severity: 'warning' as Severity },

  /** The pod cgroup spends much of its time throttled under its CPU quota: the build is slower than
   * its limit suggests (a VMM and I/O threads share the quota with the vCPUs). */
  cpuThrottling: {
    /** Throttled seconds per second of CPU the pod got, at or above which the alert holds. 0.25: for
     * every 4 s of CPU the VM ran, its threads waited 1 s in throttled CFS periods. */
    ratio: 0.25,
    /** Only judged while the host spends at least this many cores on the pod. */
    minHostCores: 0.1,
    for: '15m',
    severity: 'info' as Severity,
  },

  /**
   * A fork bomb seen from the host: the host has no view of the guest's tasks, so its proxy is CPU
   * pinned at the pod's limit while memory keeps growing and tasks stall (PSI, or CFS throttling on
   * cgroup v1, which has no PSI). The guest's task count stays a second signal (guestTasks).
   */
  forkBombHost: {
    /** Host CPU / summed CPU limits at or above which CPU counts as pinned. */
    cpuRatio: 0.9,
    /** Host working set growth (bytes per second, deriv over `window`) above which memory counts as rising. */
    memoryGrowthBytesPerSecond: 1_048_576,
    /** Share of wall time some task of the pod stalls on CPU or memory (PSI `some`, summed) at or
     * above which tasks count as stalling; on cgroup v1 the throttling ratio of cpuThrottling stands in. */
    stallShare: 0.2,
    window: '10m',
    for: '5m',
    severity: 'warning' as Severity,
  },

  /** The guest reports far less network or disk traffic than the host counted for its VM: it hides
   * work (a tamper signal), like guestCpuPlausibility's under-report. */
  guestTrafficPlausibility: {
    /** The guest claims less than host × fraction. */
    underReportFraction: 0.2,
    /** Judged only while the host counts at least this much network traffic (bytes per second, both ways). */
    minHostNetworkBytesPerSecond: 1_000_000,
    /** Judged only while the host counts at least this much block I/O (bytes per second, read + written).
     * Higher than the network's: virtio-fs writes are file writes by virtiofsd on the host, which the
     * guest's block devices never see. */
    minHostDiskBytesPerSecond: 10_000_000,
    for: '15m',
    severity: 'warning' as Severity,
  },

  /** Guest task (thread) explosion, e.g. a fork bomb. Reported by the guest: untrusted. */
  guestTasks: {
    /** Tasks in the guest above which the alert fires. A busy build (make -j, a JVM, a test
     * runner) stays in the hundreds to low thousands; an idle guest runs about 60. */
    max: 4000,
    /** How long the count stays above `max`: short, a fork bomb exhausts the guest in minutes. */
    maxFor: '2m',
    /** Growth in tasks per second (deriv over `growthWindow`) above which the alert fires: 10/s
     * sustained means thousands of new tasks in a few minutes, never seen from a build. */
    growthPerSecond: 10,
    growthWindow: '5m',
    growthFor: '3m',
    severity: 'warning' as Severity,
  },

  /** Network egress flood (data exfiltration, DDoS participation): from the host's count of the
   * pod's network namespace, and from the guest's own (untrusted) as a second signal. */
  egressFlood: {
    /** Transmit rate in bytes per second. 50 MB/s for 5 minutes is 15 GB: more than pushing an
     * image and its caches, which takes seconds to a minute. */
    bytesPerSecond: 50_000_000,
    for: '5m',
    severity: 'warning' as Severity,
  },

  /** Disk write flood (filling the node's storage, wearing its disks): from the host's block I/O of
   * the VM, and from the guest's own (untrusted) as a second signal. */
  diskWriteFlood: {
    /** Write rate in bytes per second. 100 MB/s for 10 minutes is 60 GB: far beyond unpacking
     * dependencies or writing build output. */
    bytesPerSecond: 100_000_000,
    for: '10m',
    severity: 'warning' as Severity,
  },

  /** VM overhead (host − workload) beyond the RuntimeClass `overhead.podFixed` reservation. */
  overheadAboveReservation: {
    /** Overhead memory / reserved memory above which the alert fires. 1: any excess; a VMM that
     * outgrows its reservation inside the pod cgroup is OOM-killed with the pod. */
    memoryRatio: 1,
    memoryFor: '10m',
    /** Overhead CPU rate / reserved cores above which the alert fires. 1: any excess; the excess is
     * taken from the workload's CPU quota (throttling) or from the node unaccounted. */
    cpuRatio: 1,
    cpuFor: '15m',
    severity: 'warning' as Severity,
  },

  /**
   * The guest's CPU report against the host's (the host cgroup of the VM cannot be forged from
   * inside; the guest's numbers can). The guest runs on the VM's vCPUs, which the host accounts,
   * so guest busy time ≤ host time on the whole VM.
   */
  guestCpuPlausibility: {
    /** The guest claims more than host × (1 + tolerance). 0.1 absorbs sampling skew between the
     * guest's and the host's clocks over the 5-minute rate. */
    overReportTolerance: 0.1,
    /** Over-report is only judged when the guest claims at least this many cores (idle noise). */
    overReportMinGuestCores: 0.1,
    /** The guest claims less than host × fraction. 0.2: emulation and I/O overhead of a busy
     * honest VM stay well under 80 % of what the host spends on it. */
    underReportFraction: 0.2,
    /** Under-report is only judged while the host spends at least this many cores on the VM. */
    underReportMinHostCores: 0.5,
    for: '15m',
    severity: 'warning' as Severity,
  },

  /** A container without first-hand values (reason other than kubelet_zero, which has its own
   * node-level alert). 15 minutes: longer than a kubelet restart or a pod start. */
  containerGap: { for: '15m', severity: 'warning' as Severity },

  /** A pod with part of its data missing (shim unreachable, timeout, cgroup not found...), except
   * the reasons chosen by the operator (`shim_unsafe_runtime`, `shim_disabled`). */
  podGap: { for: '15m', severity: 'warning' as Severity },

  /** A node whose kubelet reports zeros for Kata containers (CRI-O with cAdvisor stats, or a
   * broken CRI stats path). */
  kubeletZeros: {
    /** Containers with a `kubelet_zero` gap on one node at or above which the alert fires. */
    minContainers: 1,
    for: '15m',
    severity: 'warning' as Severity,
  },

  /** runtime-rs sandboxes the exporter leaves unscraped because scraping could crash their shim
   * (`--shim.runtime-rs=safe`). Expected until a Kata release with the fix; info by default. */
  unsafeSkipped: { for: '30m', severity: 'info' as Severity },

  /** A Kata sandbox no source could join to a pod. 15 minutes: the pod watch catches up with a
   * new sandbox within seconds. */
  sandboxUnmapped: { for: '15m', severity: 'warning' as Severity },

  /** A scrape target of the exporter is down. */
  exporterDown: { for: '5m', severity: 'warning' as Severity },

  /** No scrape target matches `exporterJobRegex` at all: every node is unwatched. */
  exporterAbsent: { for: '10m', severity: 'critical' as Severity },

  /** A source (kubelet, shims, cgroups, pods) failed at every collection. */
  sourceDown: { for: '10m', severity: 'warning' as Severity },

  /** The slowest source of a collection takes longer than this (Prometheus's default scrape
   * timeout is 10 s and one shim scrape may take up to its 3 s timeout). */
  collectionSlow: { seconds: 4, for: '15m', severity: 'warning' as Severity },

  // ── isolation audit (--audit.namespace-selector / --audit.pod-selector; docs/isolation-audit.md) ──
  // The findings are properties of a pod's spec and of the node's runtime configuration: they do
  // not come and go like a load. `for` only has to outlast the exporter's own catching up (a
  // RuntimeClass or a configuration file read a few seconds after the pod) and a single odd
  // scrape, so one or two minutes: at the recommended 30 s scrape interval, 2 to 4 scrapes. A
  // deleted pod's series vanish at the next scrape, which resolves its alert at once. A pod that
  // lives less than `for` is never alerted on: admission policy, not alerting, is what stops it.

  /** An untrusted pod that runs under no Kata RuntimeClass: no VM boundary at all, the build
   * shares the node's kernel. */
  auditUnsandboxed: { for: '1m', severity: 'critical' as Severity },

  /** A privileged container in a Kata pod on a node whose runtime hands the host's block devices
   * to the VM (`privileged_without_host_devices` unset): it can mount the node's disks, and other
   * builds' data on them. */
  auditPrivilegedHostDevices: { for: '1m', severity: 'critical' as Severity },

  /** The same when the audit cannot tell (the runtime configuration is unreadable): a separate
   * alert, a warning, whose fix is the configuration read (see auditConfigUnreadable). */
  auditPrivilegedHostDevicesUnknown: { for: '2m', severity: 'warning' as Severity },

  /** An untrusted pod in the host's network, PID or IPC namespace. */
  auditHostNamespace: { for: '2m', severity: 'warning' as Severity },

  /** An untrusted pod with hostPath volumes: a host directory shared into the pod (into the VM,
   * through virtio-fs, on Kata). */
  auditHostPath: { for: '2m', severity: 'warning' as Severity },

  /** An untrusted pod carrying io.katacontainers.* annotations the node would apply (or may:
   * "unknown" is included, same severity). */
  auditKataAnnotations: { for: '2m', severity: 'warning' as Severity },

  /** A runtime (containerd or CRI-O) or Kata configuration file the audit cannot read or parse:
   * its findings say "unknown". 10 minutes: longer than an installer rewriting the file and
   * restarting the runtime. */
  auditConfigUnreadable: { for: '10m', severity: 'warning' as Severity },

  /** The audit is off on a node while other nodes of the same job run it: untrusted pods there
   * are unaudited. 1 hour: longer than a rolling update of the DaemonSet across a large fleet. */
  auditDisabledOnNode: { for: '1h', severity: 'warning' as Severity },

  // ── compatibility rules (docs/compatibility.md) ──

  /**
   * The compatibility rule set (deploy/prometheus/kata-bridge-compat.rules.yaml, shipped by the
   * kustomize component components/compatibility): cAdvisor-named series and the kube-prometheus
   * CPU recording rules built from the exporter's values, so the tools people already run show the
   * truth for Kata pods. `false` writes the file with no groups.
   */
  compatibility: { enabled: true },

  /**
   * The overhead advisor (scripts/advisor-rules.ts): per RuntimeClass handler across the fleet,
   * each pod's peak overhead over `window`, its quantiles over pods, and a recommended
   * `overhead.podFixed` = p99 × (1 + headroom), rounded up to a whole step.
   */
  overheadAdvisor: {
    /** How far back each pod's peak overhead is taken (finished pods of the window count). */
    window: '1d',
    /** 0.2: the p99 pod plus a fifth, for the builds the window did not see. */
    headroom: 0.2,
    /** Memory recommendations are whole multiples of this (32 MiB). */
    memoryStepBytes: 33554432,
    /** CPU recommendations are whole multiples of this (50m). */
    cpuStepCores: 0.05,
    /** Fewer pods than this in the window: no recommendation, and the too-few-pods alert. A p99
     * over fewer than 20 pods is their maximum, not a percentile. */
    minPods: 20,
    /** The smallest memory reservation of a handler's running pods is below the observed p99 of
     * peak overhead: one pod in a hundred outgrows it, and the host OOM-kills its VMM. */
    belowP99: { for: '1h', severity: 'warning' as Severity },
    /** The smallest reservation is above `ratio` × the recommendation: every pod wastes node capacity. */
    wasteful: { ratio: 2, for: '6h', severity: 'info' as Severity },
    /** A handler in use with too few pods in the window to advise on. */
    tooFewPods: { for: '6h', severity: 'info' as Severity },
  },

  /** A VM configured with more memory than its pod's host memory limit leaves once the observed
   * overhead is counted: the host OOM-kills the VMM before the guest feels any pressure. */
  vmFit: { for: '5m', severity: 'warning' as Severity },
};

export type Thresholds = typeof DEFAULT_THRESHOLDS;

const DURATION = /^([0-9]+(ms|s|m|h|d|w|y))+$/;
const SEVERITIES: readonly string[] = ['critical', 'warning', 'info'];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function mergeInto(defaults: Record<string, unknown>, override: unknown, path: string): Record<string, unknown> {
  if (!isRecord(override)) throw new Error(`thresholds: ${path || 'the file'} must be an object`);
  const out: Record<string, unknown> = { ...defaults };
  for (const [key, value] of Object.entries(override)) {
    const where = path ? `${path}.${key}` : key;
    if (!(key in defaults)) throw new Error(`thresholds: unknown key ${where}`);
    const def = defaults[key];
    if (isRecord(def)) {
      out[key] = mergeInto(def, value, where);
    } else if (typeof def === 'boolean') {
      if (typeof value !== 'boolean') throw new Error(`thresholds: ${where} must be true or false`);
      out[key] = value;
    } else if (typeof def === 'number') {
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        throw new Error(`thresholds: ${where} must be a non-negative number`);
      }
      out[key] = value;
    } else {
      if (typeof value !== 'string' || value === '') throw new Error(`thresholds: ${where} must be a non-empty string`);
      if (key === 'severity' && !SEVERITIES.includes(value)) {
        throw new Error(`thresholds: ${where} must be one of ${SEVERITIES.join(', ')}`);
      }
      if (typeof def === 'string' && DURATION.test(def) && !DURATION.test(value)) {
        throw new Error(`thresholds: ${where} must be a Prometheus duration such as 15m`);
      }
      if (value.includes('"') || value.includes('\\') || value.includes('\n')) {
        throw new Error(`thresholds: ${where} must not contain quotes, backslashes or newlines`);
      }
      out[key] = value;
    }
  }
  return out;
}

/** The defaults with an operator's partial override applied (validated; see the file header). */
export function resolveThresholds(override?: unknown): Thresholds {
  if (override === undefined) return DEFAULT_THRESHOLDS;
  return mergeInto(DEFAULT_THRESHOLDS as unknown as Record<string, unknown>, override, '') as unknown as Thresholds;
}
