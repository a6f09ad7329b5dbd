/**
 * Flags → a validated Config. Flags follow Prometheus exporter conventions (`--area.name`);
 * every host path and endpoint can be overridden so the exporter runs against a fixtures tree or
 * a simulated node exactly as on a real one. Bad flags fail at start-up with a clear message.
 */

import { ConfigError } from './config-error.ts';
import { parseArgs } from 'node:util';
import { parseLabelSelector, SelectorError, type LabelSelector } from './translate/label-selector.ts';
import { LabelsAllowlistError, parseLabelsAllowlist, type LabelsAllowlist } from './translate/pod-labels.ts';
import type { HostCollectors } from './translate/records.ts';

export const DEFAULT_PORT = 9863;

export type RuntimeRsMode = 'safe' | 'all' | 'none';

export type UsageOutput = { kind: 'stdout' } | { kind: 'off' } | { kind: 'file'; path: string };

export interface Config {
  listenHost: string | undefined;
  listenPort: number;
  telemetryPath: string;
  webConfigFile?: string;
  nodeName: string;
  kubeletUrl: string;
  kubeletTokenFile?: string;
  kubeletCaFile?: string;
  kubeletInsecureSkipTlsVerify: boolean;
  kubeletTimeoutMs: number;
  kubeletStaleAfterMs: number;
  kubeconfig?: string;
  serviceAccountDir: string;
  cgroupRoot: string;
  kataGoDir: string;
  kataRsDir: string;
  containerdTasksDir: string;
  crioDir: string;
  procDir: string;
  /** Least time between two calls of a shim that answers; 0: every collection. */
  shimIntervalMs: number;
  shimTimeoutMs: number;
  shimConcurrency: number;
  shimMaxBytes: number;
  shimMaxSeries: number;
  shimRuntimeRs: RuntimeRsMode;
  shimRaw: boolean;
  /** `--[no-]collector.host-*`: which host file groups are read per pod. */
  hostCollectors: HostCollectors;
  runtimeHandlers: RegExp;
  /** `--pods.labels-allowlist`: pod labels published on kata_bridge_pod_labels (none by default). */
  podLabelsAllowlist: LabelsAllowlist;
  /** Untrusted workloads: the isolation audit is off while both are undefined. */
  auditNamespaceSelector?: LabelSelector;
  auditPodSelector?: LabelSelector;
  containerdConfigPath: string;
  crioConfigPath: string;
  kataConfigPath: string;
  collectMinIntervalMs: number;
  collectDeadlineMs: number;
  /** `--usage.output`: where usage records go (docs/usage-records.md). */
  usageOutput: UsageOutput;
  /** `--usage.state-dir`: the ledger that keeps records exactly once across restarts; in memory only when absent. */
  usageStateDir?: string;
  logLevel: string;
  once: boolean;
  demo: boolean;
}

interface FlagSpec {
  type: 'string' | 'boolean';
  default?: string | boolean;
  help: string;
}

const DEFAULT_TOKEN_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';

const FLAG_SPECS = {
  'web.listen-address': { type: 'string', default: `:${DEFAULT_PORT}`, help: 'Address to listen on for /metrics, as host:port or :port.' },
  'web.telemetry-path': { type: 'string', default: '/metrics', help: 'Path under which to expose metrics.' },
  'web.config.file': { type: 'string', help: 'Prometheus exporter-toolkit web config (TLS, client CA, basic auth).' },
  'node.name': { type: 'string', help: "This node's name (default: env NODE_NAME)." },
  'kubelet.url': { type: 'string', help: 'Kubelet base URL (default: https://$HOST_IP:10250).' },
  'kubelet.token-file': {
    type: 'string',
    help: `Bearer token file, re-read when it rotates (default: ${DEFAULT_TOKEN_FILE} when it exists).`,
  },
  'kubelet.ca-file': { type: 'string', help: 'CA bundle that signed the kubelet serving certificate.' },
  'kubelet.insecure-skip-tls-verify': {
    type: 'boolean',
    default: false,
    help: 'Do not verify the kubelet certificate (serving certs often lack IP SANs).',
  },
  'kubelet.allow-insecure-http': {
    type: 'boolean',
    default: false,
    help: 'Accept an http:// --kubelet.url, which sends the bearer token in clear text (a test kubelet only).',
  },
  'kubelet.timeout': { type: 'string', default: '4s', help: 'Deadline for one kubelet scrape.' },
  'kubelet.stale-after': { type: 'string', default: '2m', help: 'A kubelet sample older than this is a gap (kubelet_stale).' },
  kubeconfig: { type: 'string', help: 'kubeconfig for the pod watch; in-cluster config when absent.' },
  'kubeconfig.service-account-dir': {
    type: 'string',
    default: '/var/run/secrets/kubernetes.io/serviceaccount',
    help: 'In-cluster config (no --kubeconfig): the service account token and ca.crt.',
  },
  'path.cgroupfs': { type: 'string', default: '/sys/fs/cgroup', help: 'cgroup filesystem root.' },
  'path.kata-go': { type: 'string', default: '/run/vc/sbs', help: 'Kata Go runtime sandbox directory.' },
  'path.kata-rs': { type: 'string', default: '/run/kata', help: 'Kata runtime-rs sandbox directory.' },
  'path.containerd-tasks': {
    type: 'string',
    default: '/run/containerd/io.containerd.runtime.v2.task',
    help: 'containerd shim v2 task bundles.',
  },
  'path.crio': {
    type: 'string',
    default: '/run/containers/storage/overlay-containers',
    help: 'CRI-O container state (sandbox annotations).',
  },
  'path.procfs': { type: 'string', default: '/proc', help: 'procfs mount (hypervisor process detection).' },
  'shim.interval': {
    type: 'string',
    default: '60s',
    help: 'Each shim is called at most once per interval (0s: at every collection); its guest values are re-published in between and are a gap (shim_stale) past 3 intervals. The kubelet, cgroups and pods are read at every collection.',
  },
  'shim.timeout': { type: 'string', default: '3s', help: 'Deadline for one whole shim scrape (connect, headers and body).' },
  'shim.concurrency': { type: 'string', default: '8', help: 'Shim sockets scraped at once.' },
  'shim.max-bytes': { type: 'string', default: '4194304', help: 'Largest shim response read; a larger one is cut off (shim_oversize).' },
  'shim.max-series': { type: 'string', default: '20000', help: 'Most series read from one shim; more is cut off (shim_malformed).' },
  'shim.runtime-rs': {
    type: 'string',
    default: 'safe',
    help: 'Which runtime-rs shims to scrape: safe (hypervisors known not to crash), all, none.',
  },
  'collector.shim-raw': { type: 'boolean', default: false, help: 'Re-expose raw shim families the way kata-monitor does.' },
  'collector.host-throttling': {
    type: 'boolean',
    default: true,
    help: 'Per pod: CPU throttled time from cpu.stat (pod and overhead cgroups).',
  },
  'collector.host-memory': {
    type: 'boolean',
    default: true,
    help: 'Per pod: host memory limit and OOM kills (memory.max / memory.events, or their v1 forms).',
  },
  'collector.host-pressure': {
    type: 'boolean',
    default: true,
    help: 'Per pod: CPU, memory and I/O pressure stall time (PSI, cgroup v2 only).',
  },
  'collector.host-disk': { type: 'boolean', default: true, help: 'Per pod: block I/O bytes read and written (io.stat, or v1 blkio).' },
  'collector.host-network': {
    type: 'boolean',
    default: true,
    help: "Per pod: network bytes of the pod namespace, from the VMM's <procfs>/<pid>/net/dev.",
  },
  'pods.runtime-handlers': { type: 'string', default: '^kata', help: 'Regular expression on the RuntimeClass handler of pods in scope.' },
  'pods.labels-allowlist': {
    type: 'string',
    default: '',
    help: "Pod labels to publish on kata_bridge_pod_labels, as kube-state-metrics' --metric-labels-allowlist for pods: a comma list of label keys (tenant,repository), * for all, or pods=[...]. None by default.",
  },
  'audit.namespace-selector': {
    type: 'string',
    help: 'Label selector of the namespaces whose pods are untrusted (e.g. kata-bridge.io/untrusted=true); turns the isolation audit on and watches namespaces.',
  },
  'audit.pod-selector': {
    type: 'string',
    help: 'Label selector of the untrusted pods (AND with --audit.namespace-selector when both are set); turns the isolation audit on.',
  },
  'path.containerd-config': {
    type: 'string',
    default: '/etc/containerd/config.toml',
    help: 'containerd configuration (and its imports), read by the isolation audit.',
  },
  'path.crio-config': {
    type: 'string',
    default: '/etc/crio/crio.conf',
    help: "CRI-O configuration, with drop-ins in the same path + .d; read when containerd's is absent.",
  },
  'path.kata-config': {
    type: 'string',
    default: '/etc/kata-containers/configuration.toml',
    help: 'Kata configuration of runtime handlers whose runtime configuration names none (ConfigPath, runtime_config_path).',
  },
  'collect.min-interval': { type: 'string', default: '5s', help: 'Concurrent scrapes within this window share one collection.' },
  'collect.deadline': { type: 'string', default: '5s', help: 'A collection answers within this time with whatever sources finished.' },
  'usage.output': {
    type: 'string',
    default: 'stdout',
    help: 'Where a usage record goes when a Kata pod ends: stdout (one JSON line each, "kind":"usage_record"), off, or a file path (appended, fsynced).',
  },
  'usage.state-dir': {
    type: 'string',
    help: 'Directory of the ledger that keeps usage records exactly once per pod across restarts (a hostPath); in memory only when unset.',
  },
  'log.level': { type: 'string', default: 'info', help: 'Log level: debug, info, warn, error.' },
  once: { type: 'boolean', default: false, help: 'Collect once, print the exposition to stdout, exit non-zero if a source failed.' },
  demo: { type: 'boolean', default: false, help: 'Run against a built-in simulated node; no cluster needed.' },
  help: { type: 'boolean', default: false, help: 'Show this help.' },
  version: { type: 'boolean', default: false, help: 'Show the version.' },
} satisfies Record<string, FlagSpec>;

/** A flag's name, checked against the table where code reads its value. */
export type FlagName = keyof typeof FLAG_SPECS;

/** The command-line contract; `--help` prints it and docs/operations.md describes it. */
export const FLAGS: Readonly<Record<string, FlagSpec>> = FLAG_SPECS;

/**
 * The last part of --collect.deadline that the collector keeps for decoding and rendering: the
 * shims get what is left, so a deadline at or below it would fail every shim.
 */
export const DEADLINE_RESERVE_MS = 500;

export { ConfigError };

/** Parses `5s`, `250ms`, `2m`, `1h`, or `1m30s` into milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(?:(\d+(?:\.\d+)?)(ms|s|m|h))+$/.exec(text);
  if (match === null) throw new ConfigError(`"${text}" is not a duration: use e.g. 500ms, 5s, 2m`);
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const part of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(part[1]) * (units[part[2] ?? 's'] ?? 0);
  return total;
}

function parseListenAddress(address: string): { host: string | undefined; port: number } {
  const match = /^(\[[^\]]+\]|[^:]*):(\d{1,5})$/.exec(address);
  const port = Number(match?.[2]);
  if (match === null || !(port >= 0 && port <= 65535)) {
    throw new ConfigError(`--web.listen-address "${address}" is not host:port or :port (e.g. :${DEFAULT_PORT})`);
  }
  const host = match[1] === '' ? undefined : match[1]!.replace(/^\[|\]$/g, '');
  return { host, port };
}

function duration(flag: string, value: string): number {
  try {
    return parseDuration(value);
  } catch (error) {
    throw new ConfigError(`--${flag}: ${(error as Error).message}`);
  }
}

function regex(flag: string, value: string): RegExp {
  try {
    return new RegExp(value);
  } catch (error) {
    throw new ConfigError(`--${flag} "${value}" is not a valid regular expression: ${(error as Error).message}`);
  }
}

/** A label selector flag; blank means not set. */
function selector(flag: string, value: string | undefined): LabelSelector | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  try {
    return parseLabelSelector(value);
  } catch (error) {
    if (!(error instanceof SelectorError)) throw error;
    throw new ConfigError(
      `--${flag} "${value}" is not a Kubernetes label selector: ${error.message} (e.g. kata-bridge.io/untrusted=true or tier in (ci,build))`,
    );
  }
}

function labelsAllowlist(flag: string, value: string): LabelsAllowlist {
  try {
    return parseLabelsAllowlist(value);
  } catch (error) {
    if (!(error instanceof LabelsAllowlistError)) throw error;
    throw new ConfigError(`--${flag} "${value}": ${error.message} (e.g. tenant,repository or *)`);
  }
}

/** `stdout`, `off`, or a file path. */
function usageOutput(value: string): UsageOutput {
  if (value === 'stdout' || value === 'off') return { kind: value };
  if (value.trim() === '') throw new ConfigError('--usage.output must be stdout, off or a file path');
  return { kind: 'file', path: value };
}

/** Whether the isolation audit runs: some selector says which workloads are untrusted. */
export function isAuditEnabled(config: Pick<Config, 'auditNamespaceSelector' | 'auditPodSelector'>): boolean {
  return config.auditNamespaceSelector !== undefined || config.auditPodSelector !== undefined;
}

function integer(flag: string, value: string): number {
  // Number() would also take 0x10, 1e3 and blanks; a count on the command line is plain digits.
  if (!/^\s*-?\d+(\.\d+)?\s*$/.test(value)) throw new ConfigError(`--${flag} must be a whole number, not "${value}"`);
  const number = Number(value);
  if (!Number.isInteger(number)) throw new ConfigError(`--${flag} must be a whole number`);
  if (number <= 0) throw new ConfigError(`--${flag} must be above 0`);
  return number;
}

export type ParsedCommand = { kind: 'run'; config: Config } | { kind: 'help'; text: string } | { kind: 'version' };

/** The parsed flag values, each read by its name alone (the name is also what errors quote). */
class FlagValues {
  constructor(private readonly values: Record<string, string | boolean | undefined>) {}

  optional(name: FlagName): string | undefined {
    return this.values[name] as string | undefined;
  }

  /** A string flag with a default in FLAGS. */
  string(name: FlagName): string {
    return this.values[name] as string;
  }

  boolean(name: FlagName): boolean {
    return this.values[name] === true;
  }

  duration(name: FlagName): number {
    return duration(name, this.string(name));
  }

  integer(name: FlagName): number {
    return integer(name, this.string(name));
  }

  regex(name: FlagName): RegExp {
    return regex(name, this.string(name));
  }

  selector(name: FlagName): LabelSelector | undefined {
    return selector(name, this.optional(name));
  }

  labelsAllowlist(name: FlagName): LabelsAllowlist {
    return labelsAllowlist(name, this.string(name));
  }
}

function parseFlags(argv: readonly string[]): FlagValues {
  const options = Object.fromEntries(
    Object.entries(FLAGS).map(([name, spec]) => [
      name,
      { type: spec.type, ...(spec.default !== undefined ? { default: spec.default } : {}) },
    ]),
  );
  try {
    return new FlagValues(parseArgs({ args: [...argv], options, strict: true, allowPositionals: false, allowNegative: true }).values);
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}. Run with --help for the flags.`);
  }
}

/** The kubelet base URL; plain http only when explicitly allowed, as it carries the bearer token. */
function kubeletBaseUrl(url: string, allowHttp: boolean): string {
  if (!/^https?:\/\/[^/]+\/?$/.test(url)) throw new ConfigError(`--kubelet.url "${url}" must be a base URL like https://10.0.0.5:10250`);
  if (url.startsWith('http://') && !allowHttp) {
    throw new ConfigError(
      `--kubelet.url "${url}" is plain http: the bearer token would travel in clear text. Use https://<node IP>:10250, or add --kubelet.allow-insecure-http for a test kubelet`,
    );
  }
  return url.replace(/\/$/, '');
}

/** Parses argv (without node and script) and the environment into a Config. Throws ConfigError. */
export function parseCommandLine(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  fileExists: (path: string) => boolean = () => false,
): ParsedCommand {
  const flags = parseFlags(argv);
  if (flags.boolean('help')) return { kind: 'help', text: helpText() };
  if (flags.boolean('version')) return { kind: 'version' };

  const demo = flags.boolean('demo');
  const nodeName = flags.optional('node.name') ?? env.NODE_NAME;
  const hostIp = env.HOST_IP;
  // An IPv6 HOST_IP needs brackets in a URL (once: an already bracketed one is kept).
  const urlHost = hostIp?.includes(':') && !hostIp.startsWith('[') ? `[${hostIp}]` : hostIp;
  const kubeletUrl = flags.optional('kubelet.url') ?? (urlHost ? `https://${urlHost}:10250` : undefined);
  if (!demo && !nodeName)
    throw new ConfigError('the node name is unknown: set --node.name or the NODE_NAME environment variable (downward API spec.nodeName)');
  if (!demo && !kubeletUrl)
    throw new ConfigError(
      'the kubelet address is unknown: set --kubelet.url or the HOST_IP environment variable (downward API status.hostIP)',
    );
  const runtimeRs = flags.string('shim.runtime-rs');
  if (runtimeRs !== 'safe' && runtimeRs !== 'all' && runtimeRs !== 'none') {
    throw new ConfigError(`--shim.runtime-rs must be safe, all or none, not "${runtimeRs}"`);
  }
  const telemetryPath = flags.string('web.telemetry-path');
  if (!telemetryPath.startsWith('/')) throw new ConfigError(`--web.telemetry-path "${telemetryPath}" must start with /`);
  if (['/', '/healthz', '/readyz', '/top.json'].includes(telemetryPath)) {
    throw new ConfigError(`--web.telemetry-path "${telemetryPath}" is taken by the landing page, its table or a health endpoint`);
  }
  const listen = parseListenAddress(flags.string('web.listen-address'));
  const tokenFile = flags.optional('kubelet.token-file') ?? (fileExists(DEFAULT_TOKEN_FILE) ? DEFAULT_TOKEN_FILE : undefined);

  const config: Config = {
    listenHost: listen.host,
    listenPort: listen.port,
    telemetryPath,
    webConfigFile: flags.optional('web.config.file'),
    nodeName: nodeName ?? 'demo-node',
    kubeletUrl: kubeletBaseUrl(kubeletUrl ?? 'https://127.0.0.1:10250', flags.boolean('kubelet.allow-insecure-http')),
    kubeletTokenFile: tokenFile,
    kubeletCaFile: flags.optional('kubelet.ca-file'),
    kubeletInsecureSkipTlsVerify: flags.boolean('kubelet.insecure-skip-tls-verify'),
    kubeletTimeoutMs: flags.duration('kubelet.timeout'),
    kubeletStaleAfterMs: flags.duration('kubelet.stale-after'),
    kubeconfig: flags.optional('kubeconfig') ?? (env.KUBECONFIG || undefined),
    serviceAccountDir: flags.string('kubeconfig.service-account-dir'),
    cgroupRoot: flags.string('path.cgroupfs'),
    kataGoDir: flags.string('path.kata-go'),
    kataRsDir: flags.string('path.kata-rs'),
    containerdTasksDir: flags.string('path.containerd-tasks'),
    crioDir: flags.string('path.crio'),
    procDir: flags.string('path.procfs'),
    shimIntervalMs: flags.duration('shim.interval'),
    shimTimeoutMs: flags.duration('shim.timeout'),
    shimConcurrency: flags.integer('shim.concurrency'),
    shimMaxBytes: flags.integer('shim.max-bytes'),
    shimMaxSeries: flags.integer('shim.max-series'),
    shimRuntimeRs: runtimeRs,
    shimRaw: flags.boolean('collector.shim-raw'),
    hostCollectors: {
      throttling: flags.boolean('collector.host-throttling'),
      memory: flags.boolean('collector.host-memory'),
      pressure: flags.boolean('collector.host-pressure'),
      disk: flags.boolean('collector.host-disk'),
      network: flags.boolean('collector.host-network'),
    },
    runtimeHandlers: flags.regex('pods.runtime-handlers'),
    podLabelsAllowlist: flags.labelsAllowlist('pods.labels-allowlist'),
    auditNamespaceSelector: flags.selector('audit.namespace-selector'),
    auditPodSelector: flags.selector('audit.pod-selector'),
    containerdConfigPath: flags.string('path.containerd-config'),
    crioConfigPath: flags.string('path.crio-config'),
    kataConfigPath: flags.string('path.kata-config'),
    collectMinIntervalMs: flags.duration('collect.min-interval'),
    collectDeadlineMs: flags.duration('collect.deadline'),
    usageOutput: usageOutput(flags.string('usage.output')),
    usageStateDir: flags.optional('usage.state-dir') || undefined,
    logLevel: flags.string('log.level'),
    once: flags.boolean('once'),
    demo,
  };
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(config.logLevel)) {
    throw new ConfigError(`--log.level must be one of debug, info, warn, error, not "${config.logLevel}"`);
  }
  if (config.kubeletCaFile !== undefined && config.kubeletInsecureSkipTlsVerify) {
    throw new ConfigError('--kubelet.ca-file and --kubelet.insecure-skip-tls-verify contradict each other: choose one');
  }
  if (config.collectDeadlineMs <= DEADLINE_RESERVE_MS) {
    throw new ConfigError(
      `--collect.deadline (${config.collectDeadlineMs} ms) must be above ${DEADLINE_RESERVE_MS} ms: its last ${DEADLINE_RESERVE_MS} ms are kept for decoding and rendering, so no shim could answer (e.g. 5s)`,
    );
  }
  if (config.kubeletTimeoutMs >= config.collectDeadlineMs) {
    throw new ConfigError(
      `--kubelet.timeout (${config.kubeletTimeoutMs} ms) must be below --collect.deadline (${config.collectDeadlineMs} ms)`,
    );
  }
  if (config.shimTimeoutMs >= config.collectDeadlineMs) {
    throw new ConfigError(`--shim.timeout (${config.shimTimeoutMs} ms) must be below --collect.deadline (${config.collectDeadlineMs} ms)`);
  }
  return { kind: 'run', config };
}

export function helpText(): string {
  const lines = ['Usage: kata-metrics-bridge [flags]', '', 'Flags:'];
  for (const [name, spec] of Object.entries(FLAGS)) {
    const flag = spec.type === 'boolean' ? `--[no-]${name}` : `--${name}=VALUE`;
    const fallback = spec.default !== undefined && spec.type === 'string' ? ` (default ${spec.default})` : '';
    lines.push(`  ${flag.padEnd(44)} ${spec.help}${fallback}`);
  }
  return lines.join('\n');
}
