import { describe, expect, test } from 'vitest';
import {
  ConfigError,
  DEFAULT_PORT,
  FLAGS,
  helpText,
  isAuditEnabled,
  parseCommandLine,
  parseDuration,
  type Config,
} from '../../src/config.ts';
import { matchesLabels } from '../../src/translate/label-selector.ts';
import { BIN, spawnNode } from '../support/e2e-helpers.ts';

const NODE_ENV = { NODE_NAME: 'node-a', HOST_IP: '10.0.0.5' };

function run(argv: string[], env: Record<string, string | undefined> = NODE_ENV, fileExists?: (path: string) => boolean): Config {
  const parsed = parseCommandLine(argv, env, fileExists);
  if (parsed.kind !== 'run') throw new Error(`expected a run, got ${parsed.kind}`);
  return parsed.config;
}

function failure(argv: string[], env: Record<string, string | undefined> = NODE_ENV): ConfigError {
  try {
    parseCommandLine(argv, env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`${argv.join(' ')} was accepted`);
}

describe('defaults', () => {
  const config = run([]);

  test('serving', () => {
    expect(DEFAULT_PORT).toBe(9863);
    expect(config.listenHost).toBeUndefined();
    expect(config.listenPort).toBe(9863);
    expect(config.telemetryPath).toBe('/metrics');
    expect(config.webConfigFile).toBeUndefined();
  });

  test('host paths', () => {
    expect(config.cgroupRoot).toBe('/sys/fs/cgroup');
    expect(config.kataGoDir).toBe('/run/vc/sbs');
    expect(config.kataRsDir).toBe('/run/kata');
    expect(config.containerdTasksDir).toBe('/run/containerd/io.containerd.runtime.v2.task');
    expect(config.procDir).toBe('/proc');
  });

  test('the isolation audit is off, and reads the runtime configurations at their usual places', () => {
    expect(config.auditNamespaceSelector).toBeUndefined();
    expect(config.auditPodSelector).toBeUndefined();
    expect(isAuditEnabled(config)).toBe(false);
    expect(config.containerdConfigPath).toBe('/etc/containerd/config.toml');
    expect(config.crioConfigPath).toBe('/etc/crio/crio.conf');
    expect(config.kataConfigPath).toBe('/etc/kata-containers/configuration.toml');
  });

  test('shim and collection bounds', () => {
    expect(config.shimRuntimeRs).toBe('safe');
    expect(config.shimTimeoutMs).toBe(3000);
    expect(config.shimConcurrency).toBe(8);
    expect(config.shimMaxBytes).toBe(4 * 1024 * 1024);
    expect(config.shimRaw).toBe(false);
    expect(config.collectMinIntervalMs).toBe(5000);
    expect(config.collectDeadlineMs).toBe(5000);
    expect(config.runtimeHandlers.test('kata-qemu')).toBe(true);
    expect(config.runtimeHandlers.test('runc')).toBe(false);
    expect(config.once).toBe(false);
    expect(config.demo).toBe(false);
    expect(config.kubeletInsecureSkipTlsVerify).toBe(false);
  });

  test('the service-account token is used only when it exists', () => {
    expect(config.kubeletTokenFile).toBeUndefined();
    const token = '/var/run/secrets/kubernetes.io/serviceaccount/token';
    expect(run([], NODE_ENV, (path) => path === token).kubeletTokenFile).toBe(token);
    expect(run(['--kubelet.token-file=/x/token'], NODE_ENV, () => true).kubeletTokenFile).toBe('/x/token');
  });
});

describe('environment defaults', () => {
  test('NODE_NAME and HOST_IP give the node and the kubelet URL', () => {
    const config = run([]);
    expect(config.nodeName).toBe('node-a');
    expect(config.kubeletUrl).toBe('https://10.0.0.5:10250');
  });

  test('flags win over the environment', () => {
    const config = run(['--node.name=node-b', '--kubelet.url=https://192.0.2.1:10250/']);
    expect(config.nodeName).toBe('node-b');
    expect(config.kubeletUrl).toBe('https://192.0.2.1:10250');
  });

  test('an IPv6 HOST_IP is bracketed, once', () => {
    expect(run([], { NODE_NAME: 'n', HOST_IP: 'fd00::5' }).kubeletUrl).toBe('https://[fd00::5]:10250');
    expect(run([], { NODE_NAME: 'n', HOST_IP: '[fd00::5]' }).kubeletUrl).toBe('https://[fd00::5]:10250');
  });

  test('KUBECONFIG is the default --kubeconfig', () => {
    expect(run([], { ...NODE_ENV, KUBECONFIG: '/k/config' }).kubeconfig).toBe('/k/config');
  });

  test('--demo needs neither the node name nor the kubelet', () => {
    const config = run(['--demo'], {});
    expect(config.demo).toBe(true);
    expect(config.nodeName).not.toBe('');
  });
});

describe('flag values', () => {
  test('listen addresses', () => {
    expect(run(['--web.listen-address=127.0.0.1:0'])).toMatchObject({ listenHost: '127.0.0.1', listenPort: 0 });
    expect(run(['--web.listen-address=[::1]:9100'])).toMatchObject({ listenHost: '::1', listenPort: 9100 });
    expect(run(['--web.listen-address=:1234'])).toMatchObject({ listenHost: undefined, listenPort: 1234 });
  });

  test('durations', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('5s')).toBe(5000);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(run(['--collect.min-interval=1ms']).collectMinIntervalMs).toBe(1);
  });

  test('an http:// kubelet only with --kubelet.allow-insecure-http', () => {
    expect(run([]).kubeletUrl).toMatch(/^https:/);
    expect(run(['--kubelet.url=http://10.0.0.5:10255/', '--kubelet.allow-insecure-http']).kubeletUrl).toBe('http://10.0.0.5:10255');
  });

  test('the shortest collection deadline is just above the reserve kept for decoding and rendering', () => {
    expect(run(['--collect.deadline=501ms', '--kubelet.timeout=100ms', '--shim.timeout=100ms']).collectDeadlineMs).toBe(501);
  });

  test('every runtime-rs mode', () => {
    for (const mode of ['safe', 'all', 'none'] as const) expect(run([`--shim.runtime-rs=${mode}`]).shimRuntimeRs).toBe(mode);
  });

  test('booleans take --flag and --no-flag', () => {
    expect(run(['--collector.shim-raw']).shimRaw).toBe(true);
    expect(run(['--collector.shim-raw', '--no-collector.shim-raw']).shimRaw).toBe(false);
    expect(run(['--once', '--no-once']).once).toBe(false);
    expect(run(['--kubelet.insecure-skip-tls-verify']).kubeletInsecureSkipTlsVerify).toBe(true);
    expect(run(['--no-kubelet.insecure-skip-tls-verify']).kubeletInsecureSkipTlsVerify).toBe(false);
  });

  test('audit selectors are parsed once, and either one turns the audit on', () => {
    const both = run(['--audit.namespace-selector=kata-bridge.io/untrusted=true', '--audit.pod-selector=tier in (ci, build),!trusted']);
    expect(both.auditNamespaceSelector?.requirements).toEqual([{ key: 'kata-bridge.io/untrusted', operator: 'in', values: ['true'] }]);
    expect(both.auditPodSelector?.text).toBe('tier in (ci, build),!trusted');
    expect(matchesLabels(both.auditPodSelector!, { tier: 'ci' })).toBe(true);
    expect(matchesLabels(both.auditPodSelector!, { tier: 'ci', trusted: '' })).toBe(false);
    expect(isAuditEnabled(both)).toBe(true);
    const podOnly = run(['--audit.pod-selector=app=runner']);
    expect(podOnly.auditNamespaceSelector).toBeUndefined();
    expect(isAuditEnabled(podOnly)).toBe(true);
    // Blank is not set: the audit stays off.
    expect(isAuditEnabled(run(['--audit.namespace-selector=', '--audit.pod-selector=  ']))).toBe(false);
  });

  test('runtime configuration paths', () => {
    const config = run([
      '--path.containerd-config=/host/etc/containerd/config.toml',
      '--path.crio-config=/host/etc/crio/crio.conf',
      '--path.kata-config=/k.toml',
    ]);
    expect(config).toMatchObject({
      containerdConfigPath: '/host/etc/containerd/config.toml',
      crioConfigPath: '/host/etc/crio/crio.conf',
      kataConfigPath: '/k.toml',
    });
  });

  test('--help and --version', () => {
    expect(parseCommandLine(['--help'], {})).toEqual({ kind: 'help', text: helpText() });
    expect(parseCommandLine(['--version'], {})).toEqual({ kind: 'version' });
  });
});

describe('bad flags fail with a clear message', () => {
  test.each([
    [['--bogus'], /Unknown option '--bogus'.*--help/],
    [['--no-kubelet.url'], /Unknown option '--no-kubelet.url'/],
    [['positional'], /positional/i],
    [['--shim.timeout=soon'], /--shim.timeout: "soon" is not a duration/],
    [['--collect.min-interval=5'], /--collect.min-interval: "5" is not a duration/],
    [['--kubelet.timeout=-1s'], /--kubelet.timeout: "-1s" is not a duration/],
    [['--shim.concurrency=many'], /--shim.concurrency must be a whole number/],
    [['--shim.concurrency=2.5'], /--shim.concurrency must be a whole number/],
    [['--shim.concurrency=0x10'], /--shim.concurrency must be a whole number/],
    [['--shim.max-bytes=0'], /--shim.max-bytes must be above 0/],
    [['--shim.max-series=-3'], /--shim.max-series must be above 0/],
    [['--pods.runtime-handlers=(kata'], /--pods.runtime-handlers "\(kata" is not a valid regular expression/],
    [['--shim.runtime-rs=some'], /--shim.runtime-rs must be safe, all or none, not "some"/],
    [['--web.listen-address=9863'], /--web.listen-address "9863" is not host:port/],
    [['--web.listen-address=::1:9863'], /--web.listen-address "::1:9863" is not host:port/],
    [['--web.listen-address=:70000'], /--web.listen-address ":70000" is not host:port/],
    [['--web.telemetry-path=metrics'], /--web.telemetry-path "metrics" must start with \//],
    [['--web.telemetry-path=/healthz'], /--web.telemetry-path "\/healthz" is taken/],
    [['--web.telemetry-path=/top.json'], /--web.telemetry-path "\/top.json" is taken/],
    [['--kubelet.url=10.0.0.5:10250'], /--kubelet.url "10.0.0.5:10250" must be a base URL/],
    [['--kubelet.url=https://10.0.0.5:10250/metrics'], /must be a base URL/],
    [
      ['--kubelet.url=http://10.0.0.5:10255'],
      /--kubelet.url "http:\/\/10.0.0.5:10255" is plain http: the bearer token would travel in clear text.*--kubelet.allow-insecure-http/,
    ],
    [['--collect.deadline=500ms'], /--collect.deadline \(500 ms\) must be above 500 ms/],
    [['--collect.deadline=200ms', '--kubelet.timeout=100ms', '--shim.timeout=100ms'], /--collect.deadline \(200 ms\) must be above 500 ms/],
    [
      ['--kubelet.ca-file=/ca.crt', '--kubelet.insecure-skip-tls-verify'],
      /--kubelet.ca-file and --kubelet.insecure-skip-tls-verify contradict/,
    ],
    [['--shim.timeout=5s', '--collect.deadline=5s'], /--shim.timeout \(5000 ms\) must be below --collect.deadline \(5000 ms\)/],
    [['--shim.timeout=6s'], /--shim.timeout \(6000 ms\) must be below --collect.deadline \(5000 ms\)/],
    [['--log.level=loud'], /--log.level must be one of .*"loud"/],
    [
      ['--audit.namespace-selector=a=b,'],
      /--audit.namespace-selector "a=b," is not a Kubernetes label selector: found the end; expected a label key/,
    ],
    [['--audit.pod-selector=tier in ci'], /--audit.pod-selector "tier in ci" is not a Kubernetes label selector: .*expected '\('/],
    [['--audit.pod-selector=Bad.Prefix/x'], /--audit.pod-selector .* lowercase DNS subdomain/],
  ])('%j', (argv, message) => {
    expect(failure(argv).message).toMatch(message);
  });

  test('outside --demo, a missing node name or kubelet address says where to set it', () => {
    expect(failure([], { HOST_IP: '10.0.0.5' }).message).toMatch(/node name is unknown: set --node.name or the NODE_NAME/);
    expect(failure([], { NODE_NAME: 'n' }).message).toMatch(/kubelet address is unknown: set --kubelet.url or the HOST_IP/);
    expect(failure([], { NODE_NAME: '', HOST_IP: '10.0.0.5' }).message).toMatch(/NODE_NAME/);
  });
});

describe('--help text', () => {
  const help = helpText();

  test('lists every flag with its help and string defaults', () => {
    for (const [name, spec] of Object.entries(FLAGS)) {
      const line = help.split('\n').find((l) => l.includes(`--${name}=VALUE`) || l.includes(`--[no-]${name} `));
      expect(line, `--${name} is missing from --help`).toBeDefined();
      expect(line).toContain(spec.help);
      if (spec.type === 'string' && spec.default !== undefined) expect(line).toContain(`(default ${String(spec.default)})`);
    }
  });

  test('booleans are shown with their --no- form', () => {
    expect(help).toContain('--[no-]collector.shim-raw');
    expect(help).toContain('--[no-]once');
    expect(help).toContain('--web.listen-address=VALUE');
  });
});

// Each run loads the whole exporter through tsx: run them side by side.
describe.concurrent('the real bin', () => {
  test('a bad flag exits 2 with the message on stderr and nothing on stdout', async () => {
    const child = spawnNode([BIN, '--shim.runtime-rs=maybe', '--demo']);
    expect(await child.exited()).toBe(2);
    expect(child.stderr).toContain('kata-metrics-bridge: --shim.runtime-rs must be safe, all or none, not "maybe"');
    expect(child.stdout).toBe('');
  });

  test('--version prints the package version and exits 0', async () => {
    const { version } = (await import('../../package.json', { with: { type: 'json' } })).default as { version: string };
    const child = spawnNode([BIN, '--version']);
    expect(await child.exited()).toBe(0);
    expect(child.stdout.trim()).toBe(`kata-metrics-bridge ${version} (node ${process.version})`);
  });

  test('--help prints every flag and exits 0', async () => {
    const child = spawnNode([BIN, '--help']);
    expect(await child.exited()).toBe(0);
    for (const name of Object.keys(FLAGS)) expect(child.stdout).toContain(`${name}`);
  });
});
