/**
 * End to end: the isolation audit of the real exporter against the simulated node. The expected
 * series are derived from the scenario (namespaces, pods, the lab's runtime configuration), never
 * from the exporter's own output.
 */

import { rename, rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEMO_SCENARIO, DEMO_UNTRUSTED_LABEL } from '../../src/lab/demo.ts';
import type { LabScenario } from '../../src/lab/node-lab.ts';
import { HOST_DEVICES_HANDLER, labAppliesKataAnnotation } from '../../src/lab/runtime-config-files.ts';
import { startLabExporter, type LabExporter } from '../support/lab-exporter.ts';
import { seriesKey } from '../support/scrape.ts';
import { waitFor } from '../support/wait.ts';

/** Every kata_bridge_audit_* series of a scrape but audit_enabled, by key. */
function auditSeries(series: Map<string, number>): Map<string, number> {
  return new Map([...series].filter(([key]) => key.startsWith('kata_bridge_audit_') && !key.startsWith('kata_bridge_audit_enabled')));
}

const audit = (name: string, labels: Record<string, string>) => seriesKey(`kata_bridge_audit_${name}`, labels);

/** What the demo node must report, worked out from its scenario and its lab. */
function expectedDemoSeries(bridge: LabExporter): Map<string, number> {
  const { lab } = bridge;
  const untrusted = (namespace: string) => DEMO_SCENARIO.namespaces?.[namespace]?.[DEMO_UNTRUSTED_LABEL.key] === DEMO_UNTRUSTED_LABEL.value;
  const expected = new Map<string, number>();
  const kataHandlers = new Set<string>();
  let untrustedPods = 0;
  for (const { scenario } of lab.pods.values()) {
    if (!scenario.inApiServer) continue;
    const ref = { namespace: scenario.namespace, pod: scenario.name };
    const handler = scenario.runtimeClassName; // the lab's classes are named after their handlers
    if (handler !== null) {
      kataHandlers.add(handler);
      for (const c of scenario.containers.filter((c) => c.privileged)) {
        expected.set(
          audit('privileged_container', { ...ref, container: c.name, host_devices: String(handler === HOST_DEVICES_HANDLER) }),
          1,
        );
      }
    }
    if (!untrusted(scenario.namespace)) continue;
    untrustedPods++;
    if (handler === null) expected.set(audit('pod_unsandboxed', { ...ref, runtime_handler: 'default' }), 1);
    for (const kind of scenario.hostNamespaces) expected.set(audit('host_namespace', { ...ref, kind }), 1);
    if (Object.keys(scenario.hostPaths).length > 0) expected.set(audit('host_path', ref), 1);
    const kataKeys = Object.keys(scenario.annotations).filter((k) => k.startsWith('io.katacontainers.'));
    if (kataKeys.length > 0) {
      const applies = kataKeys.some(labAppliesKataAnnotation);
      expected.set(audit('kata_annotations', ref), 1);
      expected.set(audit('kata_annotations_honoured', { ...ref, honoured: String(applies && handler !== null) }), 1);
    }
  }
  expected.set('kata_bridge_audit_untrusted_pods{}', untrustedPods);
  const { runtimeConfig } = lab;
  for (const path of [runtimeConfig.containerdConfig, runtimeConfig.containerdDropIn])
    expected.set(audit('config_readable', { config: 'containerd', path }), 1);
  for (const handler of kataHandlers)
    expected.set(audit('config_readable', { config: 'kata', path: runtimeConfig.kataConfigs[handler]! }), 1);
  return expected;
}

describe('the demo node', () => {
  let bridge: LabExporter;
  let series: Map<string, number>;

  beforeAll(async () => {
    bridge = await startLabExporter(DEMO_SCENARIO);
    series = await bridge.scrape();
  });
  afterAll(async () => {
    await bridge?.close();
  });

  test('the audit is on', () => {
    expect(series.get('kata_bridge_audit_enabled{}')).toBe(1);
  });

  test('exactly the audit series its scenario calls for', () => {
    expect(Object.fromEntries(auditSeries(series))).toEqual(Object.fromEntries(expectedDemoSeries(bridge)));
  });

  test('one example of every finding', () => {
    const findings = [
      'pod_unsandboxed',
      'privileged_container',
      'host_namespace',
      'host_path',
      'kata_annotations',
      'kata_annotations_honoured',
    ];
    for (const name of findings) {
      expect(
        [...series.keys()].filter((k) => k.startsWith(`kata_bridge_audit_${name}{`)),
        name,
      ).toHaveLength(1);
    }
    expect(
      series.get(audit('privileged_container', { namespace: 'ci', pod: 'dind-5k8wz', container: 'docker', host_devices: 'true' })),
    ).toBe(1);
    expect(series.get(audit('kata_annotations_honoured', { namespace: 'ci', pod: 'build-debug-3k7mx', honoured: 'true' }))).toBe(1);
  });

  test('the clean untrusted Kata pod raises none, and is a Kata pod', () => {
    const clean = 'build-7f9c4';
    expect([...auditSeries(series).keys()].filter((k) => k.includes(`pod="${clean}"`))).toEqual([]);
    expect([...series.keys()].some((k) => k.startsWith('kata_bridge_pod_info{') && k.includes(`pod="${clean}"`))).toBe(true);
  });

  test('the runc pod raises audit series only: no pod series, no gap, no unmapped sandbox', () => {
    const runc = DEMO_SCENARIO.pods.find((p) => p.runtimeClassName === null)!.name;
    const other = [...series.keys()].filter((k) => k.includes(`pod="${runc}"`) && !k.startsWith('kata_bridge_audit_'));
    expect(other).toEqual([]);
    expect([...series.keys()].filter((k) => k.startsWith('kata_bridge_sandbox_unmapped{'))).toHaveLength(1); // the demo's orphan VM
  });
});

describe('the audit off (no selector)', () => {
  let bridge: LabExporter;

  beforeAll(async () => {
    bridge = await startLabExporter({ ...DEMO_SCENARIO, audit: undefined });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  test('audit_enabled is 0, no other audit series, and namespaces are never asked for', async () => {
    const series = await bridge.scrape();
    expect(series.get('kata_bridge_audit_enabled{}')).toBe(0);
    expect([...auditSeries(series).keys()]).toEqual([]);
    expect(bridge.lab.apiServer.countRequests({ resource: 'namespaces' })).toBe(0);
    // The rest of the node is reported as usual.
    expect([...series.keys()].some((k) => k.startsWith('kata_bridge_pod_info{'))).toBe(true);
  });
});

describe('a small node whose configuration changes under the exporter', () => {
  const SCENARIO: LabScenario = {
    namespaces: { builds: { tier: 'untrusted' } },
    audit: { namespaceSelector: 'tier=untrusted' },
    pods: [
      {
        name: 'tuned',
        namespace: 'builds',
        hypervisor: 'qemu',
        annotations: { 'io.katacontainers.config.hypervisor.kernel_params': 'agent.debug_console' },
        containers: [{ name: 'build', cpuCores: 0.5, memoryBytes: 300 * 2 ** 20, privileged: true }],
      },
    ],
  };
  const ref = { namespace: 'builds', pod: 'tuned' };
  let bridge: LabExporter;

  beforeAll(async () => {
    bridge = await startLabExporter(SCENARIO);
  });
  afterAll(async () => {
    await bridge?.close();
  });

  test('a missing Kata configuration: honoured unknown, config_readable 0, and the exporter keeps serving', async () => {
    const kataConfig = bridge.lab.runtimeConfig.kataConfigs['kata-qemu']!;
    const readable = audit('config_readable', { config: 'kata', path: kataConfig });
    let series = await bridge.scrape();
    expect(series.get(readable)).toBe(1);
    expect(series.get(audit('kata_annotations_honoured', { ...ref, honoured: 'true' }))).toBe(1);

    await rename(kataConfig, `${kataConfig}.moved`);
    series = await bridge.scrape();
    expect(series.get(readable)).toBe(0);
    expect(series.get(audit('kata_annotations_honoured', { ...ref, honoured: 'unknown' }))).toBe(1);
    expect(series.get(audit('kata_annotations_honoured', { ...ref, honoured: 'true' }))).toBeUndefined();
    expect(series.get(audit('kata_annotations', ref))).toBe(1);
    // The runtime configuration is still read: host_devices does not depend on Kata's.
    expect(series.get(audit('privileged_container', { ...ref, container: 'build', host_devices: 'true' }))).toBe(1);
    expect([...series.keys()].some((k) => k.startsWith('kata_bridge_pod_info{') && k.includes('pod="tuned"'))).toBe(true);

    // Back in place: picked up at the next collection, without a restart.
    await rename(`${kataConfig}.moved`, kataConfig);
    series = await bridge.scrape();
    expect(series.get(readable)).toBe(1);
    expect(series.get(audit('kata_annotations_honoured', { ...ref, honoured: 'true' }))).toBe(1);
  });

  test('a missing containerd configuration: host_devices and honoured unknown', async () => {
    const { containerdConfig, crioConfig } = bridge.lab.runtimeConfig;
    await rm(containerdConfig);
    const series = await bridge.scrape();
    expect(series.get(audit('privileged_container', { ...ref, container: 'build', host_devices: 'unknown' }))).toBe(1);
    expect(series.get(audit('kata_annotations_honoured', { ...ref, honoured: 'unknown' }))).toBe(1);
    expect(series.get(audit('config_readable', { config: 'containerd', path: containerdConfig }))).toBe(0);
    expect(series.get(audit('config_readable', { config: 'crio', path: crioConfig }))).toBe(0);
  });

  test('a namespace that stops matching the selector takes its pod out of the audit', async () => {
    bridge.lab.apiServer.modifyNamespace('builds', (ns) => {
      ns.metadata.labels = {};
    });
    await waitFor(
      'the namespace change to reach the exporter',
      async () => (await bridge.scrape()).get('kata_bridge_audit_untrusted_pods{}') === 0,
    );
    const series = await bridge.scrape();
    expect(series.get(audit('kata_annotations', ref))).toBeUndefined();
    expect([...series.keys()].filter((k) => k.startsWith('kata_bridge_audit_kata_annotations_honoured{'))).toEqual([]);
    // Privileged containers in Kata pods are reported whatever the namespace.
    expect([...series.keys()].filter((k) => k.startsWith('kata_bridge_audit_privileged_container{'))).toHaveLength(1);
  });
});
