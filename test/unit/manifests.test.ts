/**
 * The Kubernetes manifests (deploy/kubernetes), their generated files and the Dockerfile.
 *
 * Rendering is done by the real `kubectl kustomize`. No YAML library is installed, so the
 * rendered YAML is turned into JSON by kubectl itself: `kubectl annotate --local -f - -o json`
 * parses every document client-side (no cluster, no discovery) and prints each object as JSON;
 * the only change it makes is an empty `metadata.annotations` map where none was set. The
 * objects come out as concatenated JSON documents, split below with a string-aware scanner.
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FLAGS } from '../../src/config.ts';
import {
  DASHBOARDS_TARGET,
  PLAIN_RULES_TARGET,
  PROJECT_ROOT,
  PROMETHEUS_RULE_TARGET,
  RULES_SOURCE,
  dashboardConfigMapName,
  generatedFiles,
  readSources,
  renderDashboards,
  renderPrometheusRule,
  yamlScalar,
} from '../../scripts/gen-manifests.ts';

type Json = Record<string, unknown>;
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

const KUBE = join(PROJECT_ROOT, 'deploy', 'kubernetes');
const NAMESPACE = 'kata-metrics-bridge';
const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kmb-manifests-'));
  tempDirs.push(dir);
  return dir;
}

/** Splits `{...}{...}` (whitespace between) into the JSON values. */
export function splitJsonStream(text: string): unknown[] {
  const out: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{' || c === '[') {
      if (depth === 0) start = i;
      depth++;
    } else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) out.push(JSON.parse(text.slice(start, i + 1)));
    } else if (depth === 0 && !/\s/.test(c!)) throw new Error(`unexpected ${JSON.stringify(c)} between JSON documents`);
  }
  if (depth !== 0 || inString) throw new Error('truncated JSON stream');
  return out;
}

function kubectl(args: string[], input?: string): string {
  return execFileSync('kubectl', args, { input, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** YAML (any number of documents) → the objects, parsed by kubectl without a cluster. */
function yamlToObjects(yaml: string): K8sObject[] {
  const json = kubectl(['annotate', '--local', '-f', '-', '-o', 'json', 'kata-metrics-bridge.test/none-'], yaml);
  return splitJsonStream(json).flatMap((o) => ((o as Json).kind === 'List' ? ((o as Json).items as K8sObject[]) : [o as K8sObject]));
}

const rendered = new Map<string, K8sObject[]>();
function render(dir: string): K8sObject[] {
  let objects = rendered.get(dir);
  if (objects === undefined) {
    objects = yamlToObjects(kubectl(['kustomize', dir]));
    rendered.set(dir, objects);
  }
  return objects;
}

/** Renders the base or an overlay with components added, through a throw-away kustomization. */
function renderWithComponents(resource: string, components: string[]): K8sObject[] {
  const dir = tempDir();
  // kustomize refuses absolute paths: point at the project's directories relatively.
  const list = (items: string[]) => items.map((i) => `  - ${JSON.stringify(relative(dir, i))}`).join('\n');
  writeFileSync(
    join(dir, 'kustomization.yaml'),
    `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n${list([resource])}\ncomponents:\n${list(components)}\n`,
  );
  return render(dir);
}

const only = (objects: K8sObject[], kind: string): K8sObject[] => objects.filter((o) => o.kind === kind);
function one(objects: K8sObject[], kind: string): K8sObject {
  const found = only(objects, kind);
  expect(found, `exactly one ${kind}`).toHaveLength(1);
  return found[0]!;
}

const OVERLAYS = ['plain-prometheus', 'prometheus-operator'] as const;
const component = (name: string) => join(KUBE, 'components', name);

/** Who the NetworkPolicy admits to the metrics port: a namespace by name, and pod labels. */
interface PrometheusPeer {
  namespace: string;
  podLabels: Record<string, string>;
}
/** The base admits nobody until an overlay says where its Prometheus runs. */
const NOBODY: PrometheusPeer = { namespace: 'set-by-overlay', podLabels: { 'app.kubernetes.io/name': 'set-by-overlay' } };
const PROMETHEUS_PEERS: Record<(typeof OVERLAYS)[number], PrometheusPeer> = {
  'plain-prometheus': { namespace: 'monitoring', podLabels: { 'app.kubernetes.io/name': 'prometheus' } },
  'prometheus-operator': { namespace: 'monitoring', podLabels: { 'app.kubernetes.io/name': 'prometheus' } },
};

interface TreeTraits {
  /** Carries the isolation audit (its flags, mounts and RBAC rule). */
  audit: boolean;
  peer: PrometheusPeer;
}
/** A rendering and what it must carry. */
const TREES: Array<[string, () => K8sObject[], TreeTraits]> = [
  ['base', () => render(join(KUBE, 'base')), { audit: false, peer: NOBODY }],
  ...OVERLAYS.map((o): [string, () => K8sObject[], TreeTraits] => [
    `overlay ${o}`,
    () => render(join(KUBE, 'overlays', o)),
    { audit: false, peer: PROMETHEUS_PEERS[o] },
  ]),
  [
    'base + components cri-o, kubelet-ca',
    () => renderWithComponents(join(KUBE, 'base'), [component('cri-o'), component('kubelet-ca')]),
    { audit: false, peer: NOBODY },
  ],
  [
    'base + component isolation-audit',
    () => renderWithComponents(join(KUBE, 'base'), [component('isolation-audit')]),
    { audit: true, peer: NOBODY },
  ],
  [
    'overlay plain-prometheus + components isolation-audit, cri-o, kubelet-ca',
    () =>
      renderWithComponents(join(KUBE, 'overlays', 'plain-prometheus'), [
        component('isolation-audit'),
        component('cri-o'),
        component('kubelet-ca'),
      ]),
    { audit: true, peer: PROMETHEUS_PEERS['plain-prometheus'] },
  ],
];

interface NetworkPolicyPeer {
  namespaceSelector?: Json;
  podSelector?: Json;
  ipBlock?: Json;
}

/**
 * One NetworkPolicy on the exporter pods restricts ingress to one rule: the metrics port, from
 * pods that match BOTH the namespace and the pod labels (one peer; two peers would be an OR).
 */
function checkNetworkPolicy(objects: K8sObject[], peer: PrometheusPeer): void {
  const policy = one(objects, 'NetworkPolicy') as K8sObject & {
    spec: {
      podSelector: { matchLabels: Record<string, string>; matchExpressions?: Json[] };
      policyTypes: string[];
      ingress: Array<{ from?: NetworkPolicyPeer[]; ports?: Array<{ protocol?: string; port: string | number }> }>;
    };
  };
  const ds = one(objects, 'DaemonSet') as K8sObject & {
    spec: { template: { metadata: { labels: Record<string, string> }; spec: { containers: Array<{ ports?: Array<{ name: string }> }> } } };
  };
  expect(Object.keys(policy.spec.podSelector.matchLabels).length).toBeGreaterThan(0);
  for (const [k, v] of Object.entries(policy.spec.podSelector.matchLabels)) expect(ds.spec.template.metadata.labels[k], k).toBe(v);
  expect(policy.spec.podSelector.matchExpressions).toBeUndefined();
  expect(policy.spec.policyTypes).toEqual(['Ingress']);
  expect(policy.spec.ingress).toHaveLength(1);
  const rule = policy.spec.ingress[0]!;
  expect(rule.ports).toEqual([{ protocol: 'TCP', port: 'metrics' }]);
  expect(ds.spec.template.spec.containers.flatMap((c) => c.ports ?? []).map((p) => p.name)).toContain('metrics');
  expect(rule.from).toEqual([
    {
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': peer.namespace } },
      podSelector: { matchLabels: peer.podLabels },
    },
  ]);
}

/**
 * The host directories the isolation audit reads its configuration files from, mounted read-only
 * at the same path, with no hostPath `type` (a node without one must not keep the exporter from
 * starting; see the component). The /opt/kata ones are named by no flag: containerd's `imports`
 * (kata-deploy's drop-in) and the handlers' ConfigPath / runtime_config_path point there.
 */
/** The usage-record ledger's host directory (docs/usage-records.md). */
const USAGE_STATE_DIR = '/var/lib/kata-metrics-bridge';
const AUDIT_CONFIG_DIRS = new Set([
  '/etc/containerd',
  '/opt/kata/containerd/config.d',
  '/etc/crio',
  '/etc/kata-containers',
  '/opt/kata/share/defaults/kata-containers',
]);
/** The isolation audit's flags: the example selector and the configuration files. */
const AUDIT_FLAGS = {
  'audit.namespace-selector': 'kata-bridge.io/untrusted=true',
  'path.containerd-config': '/etc/containerd/config.toml',
  'path.crio-config': '/etc/crio/crio.conf',
  'path.kata-config': '/etc/kata-containers/configuration.toml',
};
const BASE_GRANTS = [
  'core/nodes/metrics:get',
  'core/pods:list',
  'core/pods:watch',
  'node.k8s.io/runtimeclasses:list',
  'node.k8s.io/runtimeclasses:watch',
];
const AUDIT_GRANTS = ['core/namespaces:list', 'core/namespaces:watch'];

// ---- what the DaemonSet must look like, in every rendering ----------------------------------

interface Container {
  name: string;
  args?: string[];
  command?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  ports?: Array<{ name?: string; containerPort: number }>;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Json & { capabilities?: { drop?: string[]; add?: string[] } };
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean; recursiveReadOnly?: string }>;
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Array<{ name: string; hostPath?: { path: string; type?: string }; emptyDir?: Json; configMap?: Json }>;
  securityContext?: Json & { seccompProfile?: { type: string }; runAsUser?: number };
  tolerations?: Array<{ key?: string; operator?: string; effect?: string }>;
  priorityClassName?: string;
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
}

function podSpec(objects: K8sObject[]): PodSpec {
  const ds = one(objects, 'DaemonSet') as K8sObject & { spec: { template: { spec: PodSpec } } };
  return ds.spec.template.spec;
}

/** Splits `--flag=value` / `--flag`; the flag name without dashes and without a `no-` prefix. */
function parseArg(arg: string): { flag: string; value: string | undefined } {
  const match = /^--([^=]+)(?:=(.*))?$/.exec(arg);
  if (match === null) throw new Error(`container arg ${JSON.stringify(arg)} is not a --flag`);
  return { flag: match[1]!, value: match[2] };
}

function checkDaemonSet(objects: K8sObject[]): void {
  const ds = one(objects, 'DaemonSet') as K8sObject & {
    spec: { updateStrategy: { type: string; rollingUpdate?: { maxUnavailable?: string | number } } };
  };
  expect(ds.metadata.namespace).toBe(NAMESPACE);
  expect(ds.spec.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '10%' } });
  const spec = podSpec(objects);
  expect(spec.containers).toHaveLength(1);
  expect(spec.initContainers ?? []).toEqual([]);
  const c = spec.containers[0]!;

  // Pod-level security.
  expect(spec.securityContext?.runAsUser).toBe(0);
  expect(spec.securityContext?.seccompProfile).toEqual({ type: 'RuntimeDefault' });
  expect(spec.hostNetwork ?? false).toBe(false);
  expect(spec.hostIPC ?? false).toBe(false);
  expect(spec.hostPID).toBe(true); // documented choice: VMM process discovery without a host /proc bind
  expect(spec.serviceAccountName).toBe('kata-metrics-bridge');
  expect(spec.automountServiceAccountToken).toBe(true);
  expect(spec.priorityClassName).toBe('kata-metrics-bridge');
  const priority = one(objects, 'PriorityClass') as K8sObject & { value: number; globalDefault?: boolean };
  expect(priority.metadata.name).toBe(spec.priorityClassName);
  expect(priority.value).toBeGreaterThan(0);
  expect(priority.value).toBeLessThanOrEqual(1_000_000_000); // user-definable range, below system-*
  expect(priority.globalDefault ?? false).toBe(false);

  // Tolerates tainted build nodes: every NoSchedule and NoExecute taint.
  for (const effect of ['NoSchedule', 'NoExecute']) {
    expect(spec.tolerations).toContainEqual({ operator: 'Exists', effect });
  }

  // Container-level security.
  expect(c.securityContext?.readOnlyRootFilesystem).toBe(true);
  expect(c.securityContext?.allowPrivilegeEscalation).toBe(false);
  expect(c.securityContext?.privileged ?? false).toBe(false);
  expect(c.securityContext?.capabilities?.drop).toEqual(['ALL']);
  expect(c.securityContext?.capabilities?.add ?? []).toEqual([]);

  // Resources: requests and limits for both CPU and memory, limits ≥ requests.
  for (const resource of ['cpu', 'memory']) {
    expect(c.resources?.requests?.[resource], `requests.${resource}`).toBeDefined();
    expect(c.resources?.limits?.[resource], `limits.${resource}`).toBeDefined();
  }
  expect(parseQuantity(c.resources!.limits!.memory!)).toBeGreaterThanOrEqual(parseQuantity(c.resources!.requests!.memory!));
  expect(parseQuantity(c.resources!.limits!.cpu!)).toBeGreaterThanOrEqual(parseQuantity(c.resources!.requests!.cpu!));
  // The measured peak at 2,500 sandboxes (~255 MiB, docs/deploy.md#sizing) fits with 50% to spare,
  // and the request covers the peak at 500 (~182 MiB), without the limit being unbounded; the V8
  // heap cap stays below the limit.
  expect(parseQuantity(c.resources!.limits!.memory!)).toBeGreaterThanOrEqual(1.5 * 255 * 2 ** 20);
  expect(parseQuantity(c.resources!.requests!.memory!)).toBeGreaterThanOrEqual(182 * 2 ** 20);
  expect(parseQuantity(c.resources!.limits!.memory!)).toBeLessThanOrEqual(1024 * 2 ** 20);
  const heapCap = Number(/--max-old-space-size=(\d+)/.exec(c.env?.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '')?.[1]);
  expect(heapCap * 2 ** 20).toBeLessThan(parseQuantity(c.resources!.limits!.memory!));

  // Downward API.
  const env = new Map((c.env ?? []).map((e) => [e.name, e]));
  expect(env.get('NODE_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('spec.nodeName');
  expect(env.get('HOST_IP')?.valueFrom?.fieldRef?.fieldPath).toBe('status.hostIP');
  // Two malloc arenas: the bench measures the process with them (docs/deploy.md#sizing).
  expect(env.get('MALLOC_ARENA_MAX')?.value).toBe('2');

  // Port and probes.
  expect(c.ports).toContainEqual(expect.objectContaining({ name: 'metrics', containerPort: 9863 }));
  expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
  expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'metrics' });

  // Args: only flags the exporter knows, with a value exactly when the flag takes one.
  expect(c.command).toBeUndefined(); // the image's ENTRYPOINT runs the exporter
  const args = (c.args ?? []).map(parseArg);
  for (const { flag, value } of args) {
    const known = FLAGS[flag] ?? FLAGS[flag.replace(/^no-/, '')];
    expect(known, `--${flag} is not a flag of src/config.ts`).toBeDefined();
    if (known!.type === 'string') expect(value, `--${flag} needs a value`).toBeDefined();
    else expect(value, `boolean --${flag} takes no =value`).toBeUndefined();
  }
  const flags = new Map(args.map((a) => [a.flag, a.value]));
  expect(args.length, 'no flag given twice').toBe(flags.size);
  expect(flags.get('web.listen-address')).toBe(':9863');
  expect(flags.get('kubelet.token-file')).toBe('/var/run/secrets/kubernetes.io/serviceaccount/token');
  // Exactly one TLS stance towards the kubelet (the exporter rejects both together).
  expect(flags.has('kubelet.ca-file') !== flags.has('kubelet.insecure-skip-tls-verify')).toBe(true);

  // Volumes: every hostPath mount read-only (recursively where supported), and each one is
  // what a --path.* flag points at; nothing else is writable except an emptyDir.
  const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
  const pathFlagValues = new Set(args.filter((a) => a.flag.startsWith('path.')).map((a) => a.value));
  const mounts = c.volumeMounts ?? [];
  expect(mounts.length).toBeGreaterThan(0);
  for (const mount of mounts) {
    const volume = volumes.get(mount.name);
    expect(volume, `volume ${mount.name}`).toBeDefined();
    if (volume!.hostPath !== undefined && volume!.hostPath.path === USAGE_STATE_DIR) {
      // The usage-record ledger: the one writable host directory, what --usage.state-dir names.
      expect(mount.mountPath).toBe(USAGE_STATE_DIR);
      expect(flags.get('usage.state-dir')).toBe(USAGE_STATE_DIR);
      expect(volume!.hostPath.type).toBe('DirectoryOrCreate');
    } else if (volume!.hostPath !== undefined) {
      expect(mount.readOnly, `hostPath ${volume!.hostPath.path} read-only`).toBe(true);
      expect(mount.recursiveReadOnly, `hostPath ${volume!.hostPath.path} recursively read-only`).toBe('IfPossible');
      if (AUDIT_CONFIG_DIRS.has(volume!.hostPath.path)) {
        expect(mount.mountPath, `${volume!.hostPath.path} mounted at the same path`).toBe(volume!.hostPath.path);
        expect(volume!.hostPath.type, `hostPath ${volume!.hostPath.path} has no type`).toBeUndefined();
      } else {
        expect(pathFlagValues.has(mount.mountPath), `a --path.* flag points at ${mount.mountPath}`).toBe(true);
        expect(volume!.hostPath.type, `hostPath ${volume!.hostPath.path} type`).toMatch(/^(Directory|DirectoryOrCreate)$/);
      }
    } else if (mount.readOnly !== true) {
      expect(volume!.emptyDir, `writable volume ${mount.name} must be an emptyDir`).toBeDefined();
    }
  }
  const hostPaths = (spec.volumes ?? []).flatMap((v) => (v.hostPath ? [v.hostPath.path] : []));
  for (const required of ['/sys/fs/cgroup', '/run/vc/sbs', '/run/kata', '/run/containerd/io.containerd.runtime.v2.task']) {
    expect(hostPaths).toContain(required);
  }
  // Never the runtime sockets or the host root: those would hand out the node. Of /etc, only
  // the runtime configuration directories the isolation audit reads.
  for (const path of hostPaths) {
    if (AUDIT_CONFIG_DIRS.has(path) || path === USAGE_STATE_DIR) continue;
    expect(path).not.toMatch(/^\/$|^\/run$|^\/var\/run$|\.sock$|^\/run\/containerd$|^\/var\/lib|^\/proc|^\/etc|^\/opt/);
  }
  // The audit's flags and mounts come together, or not at all.
  const auditMounts = hostPaths.filter((p) => AUDIT_CONFIG_DIRS.has(p)).sort();
  if (flags.has('audit.namespace-selector') || flags.has('audit.pod-selector')) {
    expect(auditMounts).toEqual([...AUDIT_CONFIG_DIRS].sort());
    for (const flag of ['path.containerd-config', 'path.crio-config', 'path.kata-config']) {
      const file = flags.get(flag);
      expect(file, `--${flag}`).toBeDefined();
      expect(
        [...AUDIT_CONFIG_DIRS].some((dir) => file!.startsWith(`${dir}/`)),
        `--${flag}=${file} lies in a mounted directory`,
      ).toBe(true);
    }
  } else {
    expect(auditMounts).toEqual([]);
  }
  // readOnlyRootFilesystem: /tmp must be an emptyDir mount.
  expect(mounts.find((m) => m.mountPath === '/tmp')).toBeDefined();
  expect(volumes.get(mounts.find((m) => m.mountPath === '/tmp')!.name)?.emptyDir).toBeDefined();
}

function parseQuantity(q: string): number {
  const match = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|k|M|G)?$/.exec(q);
  if (match === null) throw new Error(`unsupported quantity ${q}`);
  const factor: Record<string, number> = { m: 1e-3, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, k: 1e3, M: 1e6, G: 1e9 };
  return Number(match[1]) * (match[2] === undefined ? 1 : factor[match[2]]!);
}

// ---- RBAC -----------------------------------------------------------------------------------

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

function checkRbac(objects: K8sObject[], extraGrants: string[] = []): void {
  expect(only(objects, 'Role')).toEqual([]);
  expect(only(objects, 'RoleBinding')).toEqual([]);
  const role = one(objects, 'ClusterRole') as K8sObject & { rules: Rule[]; aggregationRule?: unknown };
  expect(role.aggregationRule).toBeUndefined();
  const granted = new Set<string>();
  for (const rule of role.rules) {
    expect(rule.nonResourceURLs).toBeUndefined();
    expect(rule.resourceNames).toBeUndefined();
    for (const group of rule.apiGroups ?? []) {
      for (const resource of rule.resources ?? []) {
        for (const verb of rule.verbs) {
          expect([group, resource, verb].join(' ')).not.toContain('*');
          granted.add(`${group || 'core'}/${resource}:${verb}`);
        }
      }
    }
  }
  expect([...granted].sort()).toEqual([...BASE_GRANTS, ...extraGrants].sort());
  expect([...granted].some((g) => g.includes('nodes/proxy') || g.includes('nodes/stats'))).toBe(false);

  const binding = one(objects, 'ClusterRoleBinding') as K8sObject & {
    roleRef: { kind: string; name: string };
    subjects: Array<{ kind: string; name: string; namespace?: string }>;
  };
  expect(binding.roleRef).toMatchObject({ kind: 'ClusterRole', name: role.metadata.name });
  expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'kata-metrics-bridge', namespace: NAMESPACE }]);
  const sa = one(objects, 'ServiceAccount');
  expect(sa.metadata).toMatchObject({ name: 'kata-metrics-bridge', namespace: NAMESPACE });
}

function checkDashboards(objects: K8sObject[]): void {
  const sources = readSources(PROJECT_ROOT).dashboards;
  const maps = only(objects, 'ConfigMap').filter((m) => m.metadata.labels?.grafana_dashboard !== undefined);
  expect(maps.map((m) => m.metadata.name).sort()).toEqual(sources.map((d) => dashboardConfigMapName(d.file)).sort());
  for (const map of maps) {
    expect(map.metadata.labels?.grafana_dashboard).toBe('1');
    expect(map.metadata.namespace).toBe(NAMESPACE);
  }
  // The dashboards arrive byte for byte.
  for (const { file, content } of sources) {
    const map = maps.find((m) => m.metadata.name === dashboardConfigMapName(file)) as K8sObject & { data: Record<string, string> };
    expect(map.data[file]).toBe(content);
  }
}

// ---- tests ----------------------------------------------------------------------------------

describe('kustomize renderings', () => {
  it('kubectl is available (test/support/ensure-system-deps.sh installs it)', () => {
    expect(kubectl(['version', '--client'])).toMatch(/Kustomize Version: v5/);
  });

  for (const [name, objects, { audit, peer }] of TREES) {
    describe(name, () => {
      it('renders and everything namespaced lands in kata-metrics-bridge', () => {
        const all = objects();
        expect(all.length).toBeGreaterThan(5);
        const clusterScoped = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'PriorityClass']);
        for (const o of all) {
          if (clusterScoped.has(o.kind)) expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBeUndefined();
          else expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe(NAMESPACE);
        }
        const ns = one(all, 'Namespace');
        expect(ns.metadata.name).toBe(NAMESPACE);
        expect(ns.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('privileged');
      });
      it('DaemonSet is locked down and only uses known flags', () => checkDaemonSet(objects()));
      it(`RBAC is exactly the least privilege${audit ? ', plus list/watch on namespaces for the audit' : ''}`, () =>
        checkRbac(objects(), audit ? AUDIT_GRANTS : []));
      it('ships the dashboards as grafana_dashboard ConfigMaps', () => checkDashboards(objects()));
      it(`a NetworkPolicy admits only ${peer === NOBODY ? 'nobody (no overlay set the Prometheus selectors)' : `pods ${JSON.stringify(peer.podLabels)} of namespace ${peer.namespace}`} to the metrics port`, () =>
        checkNetworkPolicy(objects(), peer));
    });
  }

  const podMonitor = (objects: K8sObject[]) => only(objects, 'PodMonitor');
  const prometheusRule = (objects: K8sObject[]) => only(objects, 'PrometheusRule');

  it('base has the PodMonitor (port metrics, labels honoured, node target label) and the PrometheusRule', () => {
    const base = render(join(KUBE, 'base'));
    const pm = podMonitor(base)[0] as K8sObject & {
      spec: { selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: Array<Json & { relabelings?: Json[] }> };
    };
    expect(pm).toBeDefined();
    expect(prometheusRule(base)).toHaveLength(1);
    const ds = one(base, 'DaemonSet') as K8sObject & { spec: { template: { metadata: { labels: Record<string, string> } } } };
    for (const [k, v] of Object.entries(pm.spec.selector.matchLabels)) expect(ds.spec.template.metadata.labels[k]).toBe(v);
    const endpoint = pm.spec.podMetricsEndpoints[0]!;
    expect(endpoint).toMatchObject({ port: 'metrics', path: '/metrics', honorLabels: true });
    expect(endpoint.relabelings).toContainEqual({ sourceLabels: ['__meta_kubernetes_pod_node_name'], targetLabel: 'node' });
    expect(endpoint.relabelings).toContainEqual({ sourceLabels: ['__meta_kubernetes_pod_node_name'], targetLabel: 'instance' });
  });

  it('the PrometheusRule carries the rules file', () => {
    const rule = prometheusRule(render(join(KUBE, 'base')))[0] as K8sObject & { spec: { groups: Array<{ name: string; rules: Json[] }> } };
    const sources = readSources(PROJECT_ROOT);
    if (sources.rules === undefined) {
      expect(rule.spec.groups).toEqual([]);
    } else {
      expect(rule.spec.groups.length).toBeGreaterThan(0);
      for (const group of rule.spec.groups) {
        expect(sources.rules).toContain(JSON.stringify(group.name).slice(1, -1));
        expect(group.rules.length).toBeGreaterThan(0);
      }
      const names = [...sources.rules.matchAll(/^ {2}- name: (.+)$/gm)].map((m) => m[1]!.replace(/^"|"$/g, ''));
      if (names.length > 0) expect(rule.spec.groups.map((g) => g.name)).toEqual(names);
    }
  });

  it('prometheus-operator overlay keeps both and labels them release: prometheus', () => {
    const objects = render(join(KUBE, 'overlays', 'prometheus-operator'));
    for (const found of [podMonitor(objects), prometheusRule(objects)]) {
      expect(found).toHaveLength(1);
      expect(found[0]!.metadata.labels?.release).toBe('prometheus');
    }
  });

  it('plain-prometheus overlay drops the CRDs and ships the scrape config and the plain rule file', () => {
    const objects = render(join(KUBE, 'overlays', 'plain-prometheus'));
    expect(podMonitor(objects)).toEqual([]);
    expect(prometheusRule(objects)).toEqual([]);
    const kinds = new Set(objects.map((o) => o.apiVersion.split('/')[0]));
    expect(kinds.has('monitoring.coreos.com')).toBe(false);
    const map = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'kata-metrics-bridge-prometheus') as
      (K8sObject & { data: Record<string, string> }) | undefined;
    expect(map).toBeDefined();
    const rules = readSources(PROJECT_ROOT).rules;
    if (rules !== undefined) expect(map!.data['kata-bridge.rules.yaml']).toBe(rules);
    else expect(map!.data['kata-bridge.rules.yaml']).toMatch(/^groups: \[\]$/m);
    const scrape = map!.data['scrape-config.yaml']!;
    expect(scrape).toMatch(/^- job_name: kata-metrics-bridge$/m);
    expect(scrape).toMatch(/^ {2}honor_labels: true$/m);
    expect(scrape).toMatch(/kubernetes_sd_configs:\n\s+- role: pod\n/);
    expect(scrape).toContain('regex: kata-metrics-bridge;exporter');
    expect(scrape).toMatch(/__meta_kubernetes_pod_container_port_name\]\n\s+regex: metrics\n\s+action: keep/);
    expect(scrape).toMatch(/__meta_kubernetes_pod_node_name\]\n\s+target_label: node/);
    expect(scrape).toMatch(/__meta_kubernetes_pod_node_name\]\n\s+target_label: instance/);
    // The selector in the snippet matches the DaemonSet's pod labels.
    const ds = one(objects, 'DaemonSet') as K8sObject & { spec: { template: { metadata: { labels: Record<string, string> } } } };
    expect(ds.spec.template.metadata.labels['app.kubernetes.io/name']).toBe('kata-metrics-bridge');
    expect(ds.spec.template.metadata.labels['app.kubernetes.io/component']).toBe('exporter');
  });

  it('components: cri-o adds a read-only CRI-O mount with its flag; kubelet-ca swaps the insecure switch for a CA', () => {
    const objects = renderWithComponents(join(KUBE, 'base'), [join(KUBE, 'components', 'cri-o'), join(KUBE, 'components', 'kubelet-ca')]);
    const c = podSpec(objects).containers[0]!;
    expect(c.args).toContain('--path.crio=/run/containers/storage/overlay-containers');
    expect(c.args).toContain('--kubelet.ca-file=/etc/kata-metrics-bridge/kubelet-ca/ca.crt');
    expect(c.args).not.toContain('--kubelet.insecure-skip-tls-verify');
    expect(c.volumeMounts).toContainEqual(expect.objectContaining({ mountPath: '/etc/kata-metrics-bridge/kubelet-ca', readOnly: true }));
    const base = podSpec(render(join(KUBE, 'base'))).containers[0]!;
    expect(base.args?.[0]).toBe('--kubelet.insecure-skip-tls-verify');
  });

  it('components: isolation-audit adds its flags, read-only config mounts and the namespaces rule, and nothing else', () => {
    const base = render(join(KUBE, 'base'));
    const audited = renderWithComponents(join(KUBE, 'base'), [component('isolation-audit')]);
    const key = (o: K8sObject) => `${o.kind}/${o.metadata.name}`;
    expect(audited.map(key).sort()).toEqual(base.map(key).sort());
    // Every object but the DaemonSet and the ClusterRole is untouched.
    for (const o of audited) {
      if (o.kind === 'DaemonSet' || o.kind === 'ClusterRole') continue;
      expect(o, key(o)).toEqual(base.find((b) => key(b) === key(o)));
    }

    // RBAC: the base rules, then exactly one more.
    type Role = K8sObject & { rules: Rule[] };
    const baseRole = one(base, 'ClusterRole') as Role;
    const role = one(audited, 'ClusterRole') as Role;
    expect(role.rules.slice(0, baseRole.rules.length)).toEqual(baseRole.rules);
    expect(role.rules.slice(baseRole.rules.length)).toEqual([{ apiGroups: [''], resources: ['namespaces'], verbs: ['list', 'watch'] }]);
    expect(one(audited, 'ClusterRoleBinding')).toEqual(one(base, 'ClusterRoleBinding'));

    // DaemonSet: the base container plus the flags, mounts and volumes, appended.
    const before = podSpec(base);
    const after = podSpec(audited);
    const c0 = before.containers[0]!;
    const c = after.containers[0]!;
    expect(c.args!.slice(0, c0.args!.length)).toEqual(c0.args);
    expect(c.args!.slice(c0.args!.length)).toEqual(Object.entries(AUDIT_FLAGS).map(([flag, value]) => `--${flag}=${value}`));
    expect(c.volumeMounts!.slice(0, c0.volumeMounts!.length)).toEqual(c0.volumeMounts);
    const added = c.volumeMounts!.slice(c0.volumeMounts!.length);
    expect(added.map((m) => m.mountPath).sort()).toEqual([...AUDIT_CONFIG_DIRS].sort());
    for (const m of added) expect(m).toEqual({ name: m.name, mountPath: m.mountPath, readOnly: true, recursiveReadOnly: 'IfPossible' });
    expect(after.volumes!.slice(0, before.volumes!.length)).toEqual(before.volumes);
    expect(after.volumes!.slice(before.volumes!.length)).toEqual(added.map((m) => ({ name: m.name, hostPath: { path: m.mountPath } })));
    expect({ ...after, containers: [], volumes: [] }).toEqual({ ...before, containers: [], volumes: [] });
    expect({ ...c, args: [], volumeMounts: [] }).toEqual({ ...c0, args: [], volumeMounts: [] });

    // The base grants nothing on namespaces, and passes no audit flag: the audit is opt-in.
    expect(baseRole.rules.some((r) => r.resources?.includes('namespaces'))).toBe(false);
    expect((c0.args ?? []).some((a) => a.startsWith('--audit.'))).toBe(false);
  });
});

describe('generated manifests (npm run manifests)', () => {
  it('committed files match the generator output for the current sources', () => {
    const stale: string[] = [];
    for (const file of generatedFiles(readSources(PROJECT_ROOT))) {
      let current: string | undefined;
      try {
        current = readFileSync(join(PROJECT_ROOT, file.path), 'utf8');
      } catch {
        current = undefined;
      }
      if (current !== file.content) stale.push(file.path);
    }
    expect(stale, 'out of date: run `npm run manifests`').toEqual([]);
  });

  it('writes exactly the three generated files', () => {
    expect(generatedFiles({ rules: undefined, dashboards: [] }).map((f) => f.path)).toEqual([
      PROMETHEUS_RULE_TARGET,
      DASHBOARDS_TARGET,
      PLAIN_RULES_TARGET,
    ]);
  });

  it('dashboard text survives YAML byte for byte, including awkward text', () => {
    const awkward = [
      '{\n  "a": 1\n}\n',
      '{"no": "newline"}',
      '{\n}\n\n\n',
      '  leading spaces\nsecond\n',
      '\n\nleading blank lines\n',
      'tab\there\n\tindented by tab\n',
      '--- not a document marker\n...\n# not a comment\nkey: value\n',
      'trailing spaces   \n   \nend',
      'quotes " \' and \\ backslash, unicode é ✓ 😀\n',
      'carriage\r\nreturn\r\n',
      'control \u0001 char\n',
      '',
      '\n',
    ];
    const dashboards = awkward.map((content, i) => ({ file: `d${i}.json`, content }));
    const dir = tempDir();
    writeFileSync(join(dir, 'dashboards.yaml'), renderDashboards(dashboards));
    writeFileSync(join(dir, 'kustomization.yaml'), 'resources:\n  - dashboards.yaml\n');
    const maps = render(dir) as Array<K8sObject & { data: Record<string, string> }>;
    expect(maps).toHaveLength(awkward.length);
    for (const { file, content } of dashboards) {
      const map = maps.find((m) => m.metadata.name === dashboardConfigMapName(file))!;
      expect(map.data[file], JSON.stringify(content)).toBe(content);
      expect(map.metadata.labels).toMatchObject({ grafana_dashboard: '1' });
    }
  });

  it('yamlScalar picks block scalars where they round-trip and JSON strings elsewhere', () => {
    expect(yamlScalar('a\n', 2)).toBe('|\n    a');
    expect(yamlScalar('a', 2)).toBe('|-\n    a');
    expect(yamlScalar('a\n\n', 2)).toBe('|+\n    a\n');
    expect(yamlScalar(' a\n', 2)).toBe('|2\n     a');
    expect(yamlScalar('a\r\n', 2)).toBe('"a\\r\\n"');
    expect(yamlScalar('\n\n', 2)).toBe('"\\n\\n"');
  });

  it('embeds a rules file as the PrometheusRule spec, comments and block scalars intact', () => {
    const rules = [
      '---',
      '# a comment',
      'groups:',
      '  - name: "g1"',
      '    interval: 30s',
      '    rules:',
      '      - alert: A',
      '        expr: |-',
      '          sum(x)',
      '',
      '            > 1',
      '        labels: {severity: warning}',
      '        annotations:',
      '          summary: >-',
      '            folded',
      '            text',
      '',
    ].join('\n');
    const dir = tempDir();
    writeFileSync(join(dir, 'rule.yaml'), renderPrometheusRule(rules));
    writeFileSync(join(dir, 'kustomization.yaml'), 'resources:\n  - rule.yaml\n');
    const [rule] = render(dir) as Array<K8sObject & { spec: Json }>;
    expect(rule!.kind).toBe('PrometheusRule');
    expect(rule!.spec).toEqual({
      groups: [
        {
          name: 'g1',
          interval: '30s',
          rules: [{ alert: 'A', expr: 'sum(x)\n\n  > 1', labels: { severity: 'warning' }, annotations: { summary: 'folded text' } }],
        },
      ],
    });
    expect(() => renderPrometheusRule('groups: []\n---\ngroups: []\n')).toThrow(/single YAML document/);
    const empty = render(dirWith('rule.yaml', renderPrometheusRule(undefined)))[0] as K8sObject & { spec: Json };
    expect(empty.spec).toEqual({ groups: [] });
    expect(RULES_SOURCE).toBe('deploy/prometheus/kata-bridge.rules.yaml');
  });

  it('splitJsonStream handles braces inside strings and rejects garbage', () => {
    expect(splitJsonStream('{"a":"}{\\""}\n{"b":[1,{"c":2}]}')).toEqual([{ a: '}{"' }, { b: [1, { c: 2 }] }]);
    expect(() => splitJsonStream('{"a":1} x {"b":2}')).toThrow(/unexpected/);
    expect(() => splitJsonStream('{"a":1')).toThrow(/truncated/);
  });
});

function dirWith(file: string, content: string): string {
  const dir = tempDir();
  writeFileSync(join(dir, file), content);
  writeFileSync(join(dir, 'kustomization.yaml'), `resources:\n  - ${file}\n`);
  return dir;
}

// ---- Dockerfile -----------------------------------------------------------------------------

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** Dockerfile instructions, with comments dropped and `\` continuations joined. */
function dockerInstructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      i++;
      const next = lines[i]!;
      if (/^\s*#/.test(next)) continue;
      line = line.replace(/\\\s*$/, ' ') + next.trim();
    }
    const match = /^\s*(\w+)\s+(.*)$/.exec(line);
    if (match) out.push({ keyword: match[1]!.toUpperCase(), args: match[2]!.trim(), line: start + 1 });
  }
  return out;
}

describe('deploy/Dockerfile (static lint: Docker cannot run here)', () => {
  const text = readFileSync(join(PROJECT_ROOT, 'deploy', 'Dockerfile'), 'utf8');
  const instructions = dockerInstructions(text);
  const stages: Instruction[][] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') stages.push([]);
    if (stages.length === 0) {
      expect(['ARG', 'FROM'], `${ins.keyword} before the first FROM`).toContain(ins.keyword);
      continue;
    }
    stages[stages.length - 1]!.push(ins);
  }
  const final = stages[stages.length - 1] ?? [];
  const runs = (stage: Instruction[]) => stage.filter((i) => i.keyword === 'RUN').map((i) => i.args);

  it('is multi-stage on Node 24 images', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) {
      const from = stage[0]!.args;
      const image = from.split(/\s+/).find((w) => !w.startsWith('--'))!;
      const isStage = stages.some((s) => new RegExp(`\\s+AS\\s+${image}$`, 'i').test(s[0]!.args));
      if (!isStage)
        expect(image, `stage image at line ${stage[0]!.line}`).toMatch(
          /^(docker\.io\/(library\/)?)?node:24([.-][^\s]*)?(@sha256:[0-9a-f]{64})?$/,
        );
    }
  });

  it('builds with npm ci and ships production dependencies only', () => {
    const build = stages.slice(0, -1).flatMap(runs);
    expect(build.some((r) => /\bnpm ci\b/.test(r))).toBe(true);
    for (const run of runs(final)) {
      expect(run, 'no npm install in the final stage').not.toMatch(/\bnpm (install|i|add)\b/);
      if (/\bnpm ci\b/.test(run)) expect(run).toMatch(/--omit=dev/);
      expect(run).not.toMatch(/--include=dev|--production=false/);
    }
    // Whatever node_modules reaches the final stage was installed without dev dependencies.
    const copied = final.filter((i) => i.keyword === 'COPY' && /node_modules/.test(i.args));
    for (const copy of copied) {
      const from = /--from=(\S+)/.exec(copy.args)?.[1];
      expect(from, 'node_modules copied from another stage').toBeDefined();
      const stage = stages.find((s) => new RegExp(`\\s+AS\\s+${from}$`, 'i').test(s[0]!.args));
      expect(stage, `stage ${from}`).toBeDefined();
      expect(
        runs(stage!).some((r) => /\bnpm ci\b.*--omit=dev|\bnpm prune\b.*--omit=dev/.test(r)),
        `stage ${from} omits dev dependencies`,
      ).toBe(true);
    }
  });

  it('runs as uid 0 explicitly, exposes 9863 and has an exec-form ENTRYPOINT', () => {
    const users = final.filter((i) => i.keyword === 'USER').map((i) => i.args);
    expect(users.at(-1)).toMatch(/^(0|root)(:(0|root))?$/);
    expect(final.some((i) => i.keyword === 'EXPOSE' && /^9863(\/tcp)?$/.test(i.args))).toBe(true);
    const entrypoint = final.filter((i) => i.keyword === 'ENTRYPOINT').at(-1);
    expect(entrypoint).toBeDefined();
    const argv = JSON.parse(entrypoint!.args) as string[];
    expect(argv[0]).toBe('node');
    expect(final.some((i) => i.keyword === 'HEALTHCHECK')).toBe(false);
  });
});
