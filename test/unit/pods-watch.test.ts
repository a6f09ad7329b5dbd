/**
 * The pod watcher against the fake API server, over real HTTP on 127.0.0.1.
 * Every wait is bounded polling on an observable state, never a sleep.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { FakeApiServer } from '../../src/lab/fake-apiserver.ts';
import { kataPod, kataRuntimeClasses, namespace, runtimeClass, stableUid } from '../../src/lab/pod-builders.ts';
import { PodWatcher, type PodWatcherOptions } from '../../src/scrapers/pods.ts';
import { SourceError } from '../../src/scrapers/source-error.ts';

const NODE = 'worker-1';
const MiB = 1024 * 1024;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Bounded polling: generous, because CI machines stall; nothing asserts on how long it took. */
function eventually<T>(check: () => T): Promise<T> {
  return vi.waitFor(check, { timeout: 20_000, interval: 10 });
}

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

async function startFake(): Promise<FakeApiServer> {
  const fake = await FakeApiServer.start();
  cleanups.push(() => fake.close());
  for (const rc of kataRuntimeClasses()) fake.addRuntimeClass(rc);
  fake.addPod(kataPod({ name: 'build-a', nodeName: NODE }));
  fake.addPod(kataPod({ name: 'web', namespace: 'shop', nodeName: NODE, runtimeClassName: null }));
  fake.addPod(kataPod({ name: 'build-b', nodeName: 'worker-2', runtimeClassName: 'kata-clh' }));
  return fake;
}

function startWatcher(fake: FakeApiServer, extra: Partial<PodWatcherOptions> = {}) {
  const logs: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const watcher = new PodWatcher({
    nodeName: NODE,
    kubeConfig: fake.kubeConfig(),
    logger,
    backoff: { initialMs: 10, maxMs: 100 },
    ...extra,
  });
  cleanups.push(() => watcher.stop());
  watcher.start();
  return { watcher, logs };
}

async function readyWatcher(fake: FakeApiServer, extra: Partial<PodWatcherOptions> = {}) {
  const started = startWatcher(fake, extra);
  await eventually(() => {
    expect(started.watcher.isReady()).toBe(true);
    expect(fake.openWatches()).toBe(2);
  });
  return started;
}

function names(watcher: PodWatcher): string[] {
  return [...watcher.pods().values()].map((p) => `${p.namespace}/${p.name}`).sort();
}

function podWatchRequests(fake: FakeApiServer) {
  return fake.requests.filter((r) => r.resource === 'pods' && r.watch);
}

describe('initial list', () => {
  test("becomes ready with this node's pods only, joined with their RuntimeClass", async () => {
    const fake = await startFake();
    const { watcher } = startWatcher(fake);
    expect(watcher.isReady()).toBe(false);
    await eventually(() => expect(watcher.isReady()).toBe(true));

    expect(names(watcher)).toEqual(['ci/build-a', 'shop/web']);
    const build = watcher.pods().get(stableUid('ci', 'build-a'));
    expect(build).toMatchObject({
      name: 'build-a',
      nodeName: NODE,
      runtimeClassName: 'kata-qemu',
      overhead: { cpuCores: 0.25, memoryBytes: 320 * MiB },
      overheadSource: 'pod',
      containers: [{ name: 'build', init: false, cpuRequestCores: 0.5, cpuLimitCores: 2, memoryRequestBytes: 1024 * MiB }],
      containerStatuses: [{ name: 'build', state: 'running', restartCount: 0 }],
    });
    await eventually(() => expect(watcher.pods().get(stableUid('ci', 'build-a'))?.runtimeHandler).toBe('kata-qemu'));
    expect(watcher.pods().get(stableUid('shop', 'web'))?.runtimeHandler).toBeUndefined();
    expect([...watcher.runtimeClasses().keys()].sort()).toEqual(['kata-clh', 'kata-fc', 'kata-qemu']);

    const list = fake.requests.find((r) => r.resource === 'pods' && !r.watch);
    expect(list?.query).toMatchObject({ fieldSelector: `spec.nodeName=${NODE}`, resourceVersion: '0' });
    expect(watcher.stats().pods).toMatchObject({ lists: 1, relists: 0 });
  });

  test('loads a kubeconfig file (token auth, insecure-skip-tls-verify for http)', async () => {
    const fake = await startFake();
    const dir = await mkdtemp(join(tmpdir(), 'kmb-kubeconfig-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const watcher = new PodWatcher({ nodeName: NODE, kubeconfigPath: await fake.writeKubeconfig(dir) });
    cleanups.push(() => watcher.stop());
    watcher.start();
    await eventually(() => expect(names(watcher)).toEqual(['ci/build-a', 'shop/web']));
  });

  test('a missing kubeconfig is a startup error that names the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kmb-kubeconfig-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const missing = join(dir, 'nope');
    expect(() => new PodWatcher({ nodeName: NODE, kubeconfigPath: missing })).toThrow(SourceError);
    try {
      new PodWatcher({ nodeName: NODE, kubeconfigPath: missing });
    } catch (error) {
      expect(error).toMatchObject({ reason: 'io', target: missing });
    }
  });
});

describe('watch events', () => {
  test("ADDED, MODIFIED and DELETED are reflected; other nodes' pods never show", async () => {
    const fake = await startFake();
    const { watcher } = await readyWatcher(fake);

    fake.addPod(kataPod({ name: 'other', nodeName: 'worker-2' }));
    fake.addPod(kataPod({ name: 'build-c', nodeName: NODE }));
    // build-c came after "other" in resourceVersion order: once it is here, "other" was filtered.
    await eventually(() => expect(names(watcher)).toEqual(['ci/build-a', 'ci/build-c', 'shop/web']));

    fake.modifyPod('ci', 'build-c', (pod) => {
      const status = pod.status?.containerStatuses?.[0];
      if (status) {
        status.restartCount = 2;
        status.state = { waiting: { reason: 'CrashLoopBackOff' } };
      }
    });
    await eventually(() =>
      expect(watcher.pods().get(stableUid('ci', 'build-c'))?.containerStatuses[0]).toMatchObject({
        restartCount: 2,
        state: 'waiting',
      }),
    );

    fake.deletePod('ci', 'build-c');
    await eventually(() => expect(names(watcher)).toEqual(['ci/build-a', 'shop/web']));
    expect(watcher.stats().pods).toMatchObject({ lists: 1, relists: 0, watchRestarts: 0 });
  });

  test('a pending pod bound to this node arrives (selector transition → ADDED)', async () => {
    const fake = await startFake();
    const { watcher } = await readyWatcher(fake);
    fake.addPod(kataPod({ name: 'pending', phase: 'Pending' }));
    fake.modifyPod('ci', 'pending', (pod) => {
      if (pod.spec) pod.spec.nodeName = NODE;
    });
    await eventually(() => expect(names(watcher)).toContain('ci/pending'));
    expect(watcher.pods().get(stableUid('ci', 'pending'))?.nodeName).toBe(NODE);
  });

  test('a RuntimeClass added later updates handler and overhead of existing pods', async () => {
    const fake = await startFake();
    fake.addPod(kataPod({ name: 'exotic', nodeName: NODE, runtimeClassName: 'kata-stratovirt', overhead: null }));
    const { watcher } = await readyWatcher(fake);
    const uid = stableUid('ci', 'exotic');
    expect(watcher.pods().get(uid)).toMatchObject({ runtimeClassName: 'kata-stratovirt' });
    expect(watcher.pods().get(uid)?.runtimeHandler).toBeUndefined();
    expect(watcher.pods().get(uid)?.overhead).toBeUndefined();

    fake.addRuntimeClass(runtimeClass('kata-stratovirt', 'kata-stratovirt', { cpu: '500m', memory: '256Mi' }));
    await eventually(() =>
      expect(watcher.pods().get(uid)).toMatchObject({
        runtimeHandler: 'kata-stratovirt',
        overhead: { cpuCores: 0.5, memoryBytes: 256 * MiB },
        overheadSource: 'runtime_class',
      }),
    );

    fake.deleteRuntimeClass('kata-stratovirt');
    await eventually(() => expect(watcher.pods().get(uid)?.runtimeHandler).toBeUndefined());
    expect(watcher.pods().get(uid)?.overhead).toBeUndefined();
  });

  test('unknown event types and malformed lines or objects are skipped without a restart', async () => {
    const fake = await startFake();
    const { watcher } = await readyWatcher(fake);
    for (const line of [
      'not json',
      '[1,2]',
      '{"type":"SURPRISE","object":{"metadata":{"resourceVersion":"999"}}}',
      '{"type":"ADDED","object":{"metadata":{}}}',
      '{"type":"MODIFIED"}',
      '{"type":"DELETED","object":"gone"}',
    ]) {
      fake.injectRawEvent('pods', line);
    }
    fake.addPod(kataPod({ name: 'after', nodeName: NODE }));
    await eventually(() => expect(names(watcher)).toContain('ci/after'));
    expect(watcher.stats().pods).toMatchObject({ ignoredEvents: 6, watchRestarts: 0, relists: 0 });
    // The unknown event's resourceVersion was not taken.
    expect(watcher.stats().pods.resourceVersion).toBe(fake.resourceVersion);
  });
});

describe('namespaces (for the isolation audit)', () => {
  function namespaceLabels(watcher: PodWatcher): Record<string, Record<string, string>> {
    return Object.fromEntries([...watcher.namespaces()].map(([name, ns]) => [name, { ...ns.labels }]));
  }

  test('not watched unless asked: no request, and readiness does not wait for them', async () => {
    const fake = await startFake();
    fake.addNamespace(namespace('ci'));
    const { watcher } = await readyWatcher(fake);
    expect(watcher.namespaces().size).toBe(0);
    expect(watcher.stats().namespaces).toBeUndefined();
    expect(fake.countRequests({ resource: 'namespaces' })).toBe(0);
  });

  test("listed and watched with their labels, the API server's name label included; ready only once listed", async () => {
    const fake = await startFake();
    fake.addNamespace(namespace('ci', { 'kata-bridge.io/untrusted': 'true' }));
    fake.addNamespace(namespace('shop'));
    const { watcher } = startWatcher(fake, { watchNamespaces: true });
    await eventually(() => {
      expect(watcher.isReady()).toBe(true);
      expect(fake.openWatches('namespaces')).toBe(1);
    });
    expect(namespaceLabels(watcher)).toEqual({
      ci: { 'kata-bridge.io/untrusted': 'true', 'kubernetes.io/metadata.name': 'ci' },
      shop: { 'kubernetes.io/metadata.name': 'shop' },
    });
    const list = fake.requests.find((r) => r.resource === 'namespaces' && !r.watch);
    expect(list?.query).toMatchObject({ resourceVersion: '0' });

    fake.modifyNamespace('shop', (ns) => {
      ns.metadata.labels = { team: 'web' }; // the name label cannot be removed
    });
    fake.addNamespace(namespace('builds', { 'kata-bridge.io/untrusted': 'true' }));
    fake.deleteNamespace('ci');
    await eventually(() =>
      expect(namespaceLabels(watcher)).toEqual({
        shop: { team: 'web', 'kubernetes.io/metadata.name': 'shop' },
        builds: { 'kata-bridge.io/untrusted': 'true', 'kubernetes.io/metadata.name': 'builds' },
      }),
    );
    expect(watcher.stats().namespaces).toMatchObject({ lists: 1, relists: 0 });
  });

  test('without RBAC on namespaces the watcher is not ready, says what to grant, and recovers', async () => {
    const fake = await startFake();
    fake.denyRequests(403, 'namespaces');
    const { watcher, logs } = startWatcher(fake, { watchNamespaces: true });
    await eventually(() => {
      expect(watcher.stats().pods.lists).toBe(1);
      expect(watcher.stats().runtimeClasses.lists).toBe(1);
      expect(watcher.stats().namespaces?.lastError?.reason).toBe('unauthorized');
    });
    expect(watcher.isReady()).toBe(false);
    expect(logs.find((l) => l.resource === 'namespaces' && l.level === 50)?.hint).toBe(
      'grant list and watch on namespaces (apiGroups: [""]) to this identity',
    );
    fake.denyRequests(undefined);
    await eventually(() => expect(watcher.isReady()).toBe(true));
  });
});

describe('reconnects', () => {
  test('a watch that ends normally resumes from the last resourceVersion, without a relist', async () => {
    const fake = await startFake();
    const { watcher } = await readyWatcher(fake);
    fake.addPod(kataPod({ name: 'build-c', nodeName: NODE }));
    await eventually(() => expect(names(watcher)).toContain('ci/build-c'));
    const seen = fake.resourceVersion;

    fake.endWatches();
    await eventually(() => expect(podWatchRequests(fake)).toHaveLength(2));
    expect(podWatchRequests(fake)[1]?.query).toMatchObject({
      resourceVersion: seen,
      fieldSelector: `spec.nodeName=${NODE}`,
      allowWatchBookmarks: 'true',
    });
    expect(fake.countRequests({ resource: 'pods', watch: false })).toBe(1);

    fake.addPod(kataPod({ name: 'build-d', nodeName: NODE }));
    await eventually(() => expect(names(watcher)).toContain('ci/build-d'));
    expect(watcher.stats().pods).toMatchObject({ lists: 1, relists: 0, watchRestarts: 1 });
  });

  test('bookmarks move the resourceVersion forward on a quiet watch', async () => {
    const fake = await startFake();
    const { watcher } = await readyWatcher(fake);
    fake.modifyPod('ci', 'build-b', (pod) => {
      if (pod.status) pod.status.phase = 'Succeeded'; // another node: no event for us
    });
    fake.bookmark();
    await eventually(() => expect(watcher.stats().pods.resourceVersion).toBe(fake.resourceVersion));
    fake.endWatches();
    await eventually(() => expect(podWatchRequests(fake)[1]?.query.resourceVersion).toBe(fake.resourceVersion));
  });

  test('a 410 ERROR event relists (consistent read) and keeps the store right', async () => {
    const fake = await startFake();
    const { watcher } = await readyWatcher(fake);
    fake.expireWatches();
    await eventually(() => expect(watcher.stats().pods.relists).toBe(1));
    const lists = fake.requests.filter((r) => r.resource === 'pods' && !r.watch);
    expect(lists).toHaveLength(2);
    expect(lists[1]?.query.resourceVersion).toBeUndefined();
    await eventually(() => expect(fake.openWatches('pods')).toBe(1));
    fake.addPod(kataPod({ name: 'build-c', nodeName: NODE }));
    await eventually(() => expect(names(watcher)).toEqual(['ci/build-a', 'ci/build-c', 'shop/web']));
  });

  test('an HTTP 410 on the watch request relists too', async () => {
    const fake = await startFake();
    const { watcher } = await readyWatcher(fake);
    fake.expireNextWatch('status');
    fake.endWatches();
    await eventually(() => expect(watcher.stats().pods.relists + watcher.stats().runtimeClasses.relists).toBe(1));
    expect(fake.countRequests({ status: 410 })).toBe(1);
  });

  test('after an outage past compaction: 410, relist, and the pod deleted meanwhile is gone', async () => {
    const fake = await startFake();
    const { watcher } = await readyWatcher(fake);
    const before = watcher.stats().pods.resourceVersion;

    await fake.goDown();
    fake.deletePod('ci', 'build-a');
    fake.addPod(kataPod({ name: 'build-c', nodeName: NODE }));
    fake.compact();
    const mark = fake.requests.length;
    await fake.comeUp();

    await eventually(() => expect(names(watcher)).toEqual(['ci/build-c', 'shop/web']));
    expect(watcher.stats().pods.relists).toBe(1);
    // After the outage the watcher first resumed from its old resourceVersion (which got the 410),
    // then relisted without one.
    const after = fake.requests.slice(mark).filter((r) => r.resource === 'pods');
    expect(after[0]).toMatchObject({ watch: true, query: { resourceVersion: before } });
    expect(after[1]).toMatchObject({ watch: false });
    expect(after[1]?.query.resourceVersion).toBeUndefined();
    expect(watcher.isReady()).toBe(true);
  });

  test('a dropped connection recovers from the last resourceVersion, without a relist', async () => {
    const fake = await startFake();
    const { watcher } = await readyWatcher(fake);
    fake.dropConnections();
    fake.addPod(kataPod({ name: 'build-c', nodeName: NODE }));
    await eventually(() => expect(names(watcher)).toContain('ci/build-c'));
    expect(watcher.stats().pods).toMatchObject({ lists: 1, relists: 0 });
    expect(watcher.stats().pods.watchRestarts).toBeGreaterThanOrEqual(1);
  });

  test('an ERROR event other than 410 re-watches without a relist', async () => {
    const fake = await startFake();
    const { watcher } = await readyWatcher(fake);
    fake.injectRawEvent('pods', '{"type":"ERROR","object":{"kind":"Status","code":500,"message":"etcdserver: leader changed"}}');
    await eventually(() => expect(watcher.stats().pods.watchRestarts).toBe(1));
    expect(watcher.stats().pods.lastError).toMatchObject({ reason: 'http_status' });
    expect(watcher.stats().pods.lastError?.message).toContain('leader changed');
    fake.addPod(kataPod({ name: 'build-c', nodeName: NODE }));
    await eventually(() => expect(names(watcher)).toContain('ci/build-c'));
    expect(watcher.stats().pods.relists).toBe(0);
  });
});

describe('API server unavailable', () => {
  test('down at start: not ready, a structured error naming the server and what to check, then ready', async () => {
    const fake = await startFake();
    await fake.goDown();
    const { watcher, logs } = startWatcher(fake);

    await eventually(() => expect(watcher.stats().pods.consecutiveFailures).toBeGreaterThanOrEqual(3));
    expect(watcher.isReady()).toBe(false);
    expect(watcher.pods().size).toBe(0);
    expect(watcher.stats().pods.lastError).toMatchObject({ reason: 'unreachable' });
    const error = logs.find((l) => l.level === 50 && l.resource === 'pods');
    expect(error).toMatchObject({ source: 'apiserver', server: fake.url, reason: 'unreachable' });
    expect(String(error?.url)).toContain(`${fake.url}/api/v1/pods`);
    expect(String(error?.hint)).toContain(fake.url);
    expect(String(error?.hint)).toMatch(/list and watch on pods/);
    expect(String(error?.hint)).toMatch(/kubeconfig/);
    // Bounded and quiet: retries beyond the first few are logged at debug, not error.
    expect(logs.filter((l) => l.level === 50 && l.resource === 'pods').length).toBeLessThan(watcher.stats().pods.consecutiveFailures);

    await fake.comeUp();
    await eventually(() => expect(watcher.isReady()).toBe(true));
    expect(names(watcher)).toEqual(['ci/build-a', 'shop/web']);
    expect(watcher.stats().pods.consecutiveFailures).toBe(0);
  });

  test('RBAC denial: the error quotes the API server and says which grant is missing', async () => {
    const fake = await startFake();
    fake.denyRequests(403);
    const { watcher, logs } = startWatcher(fake);
    await eventually(() => expect(watcher.stats().runtimeClasses.lastError?.reason).toBe('unauthorized'));
    expect(watcher.stats().runtimeClasses.lastError?.message).toContain('cannot list resource');
    const error = logs.find((l) => l.level === 50 && l.resource === 'runtimeclasses');
    expect(String(error?.hint)).toContain('list and watch on runtimeclasses (apiGroups: ["node.k8s.io"])');
    expect(watcher.isReady()).toBe(false);
    fake.denyRequests(undefined);
    await eventually(() => expect(watcher.isReady()).toBe(true));
  });

  test('a wrong token is refused and reported as such', async () => {
    const fake = await startFake();
    const kubeConfig = fake.kubeConfig();
    const user = kubeConfig.getCurrentUser();
    if (user) (user as { token?: string }).token = 'wrong';
    const { watcher } = startWatcher(fake, { kubeConfig });
    await eventually(() => expect(watcher.stats().pods.lastError?.reason).toBe('unauthorized'));
    expect(watcher.isReady()).toBe(false);
  });
});

describe('stop', () => {
  test('closes every connection to the API server', async () => {
    const fake = await startFake();
    const { watcher } = await readyWatcher(fake);
    expect(fake.openConnections()).toBeGreaterThanOrEqual(2);
    await watcher.stop();
    await eventually(() => expect(fake.openConnections()).toBe(0));
    expect(fake.openWatches()).toBe(0);
    const requests = fake.requests.length;
    fake.addPod(kataPod({ name: 'late', nodeName: NODE }));
    expect(fake.requests.length).toBe(requests);
  });

  test('a process that stops the watcher (watching, or backing off) exits with nothing left open', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kmb-stop-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const module = (path: string) => JSON.stringify(pathToFileURL(join(import.meta.dirname, '../../src', path)).href);
    const script = join(dir, 'child.mjs');
    await writeFile(
      script,
      `
import { FakeApiServer } from ${module('lab/fake-apiserver.ts')};
import { kataPod } from ${module('lab/pod-builders.ts')};
import { PodWatcher } from ${module('scrapers/pods.ts')};
const until = async (check) => { while (!check()) await new Promise((r) => setTimeout(r, 10)); };
const report = {};
for (const scenario of ['watching', 'backing-off']) {
  const fake = await FakeApiServer.start();
  fake.addPod(kataPod({ name: 'a', nodeName: 'n1' }));
  const watcher = new PodWatcher({ nodeName: 'n1', kubeConfig: fake.kubeConfig(), backoff: { initialMs: 60000, maxMs: 60000 } });
  watcher.start();
  await until(() => watcher.isReady() && fake.openWatches() === 2);
  if (scenario === 'backing-off') {
    await fake.goDown();
    await until(() => watcher.stats().pods.consecutiveFailures > 0 && watcher.stats().runtimeClasses.consecutiveFailures > 0);
  }
  await watcher.stop();
  await fake.close();
  // One loop turn: libuv finishes closing handles in its close phase, after 'close' events fire.
  await new Promise((r) => setTimeout(r, 0));
  report[scenario] = process.getActiveResourcesInfo().filter((r) => /TCP|Timeout|Interval/.test(r));
}
process.stdout.write(JSON.stringify(report));
`,
    );
    // No process.exit in the child: if anything were left open it would not exit, and this would time out.
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script], {
      cwd: join(import.meta.dirname, '../..'),
      timeout: 50_000,
    });
    expect(JSON.parse(stdout)).toEqual({ watching: [], 'backing-off': [] });
  });
});
