/**
 * ExpositionWriter against the library it replaces: SnapshotRenderer's output must be byte for
 * byte what @prometheus-io/client wrote when every family was a callback metric
 * (test/support/registry-oracle.ts), in both formats.
 */

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEMO_SCENARIO } from '../../src/lab/demo.ts';
import { formatSampleValue } from '../../src/prom-text/format.ts';
import { ExpositionWriter, METRIC_SEPARATOR, MAX_LABEL_VALUE_CHARS } from '../../src/publish/exposition-writer.ts';
import { FAMILIES, PREFIX, type FamilyDef, type Labels } from '../../src/publish/families.ts';
import type { ExpositionFormat } from '../../src/publish/exposition-format.ts';
import { SnapshotRenderer } from '../../src/publish/snapshot-renderer.ts';
import { SelfStats } from '../../src/translate/self-stats.ts';
import type { AuditSnapshot, NodeSnapshot, PodSnapshot } from '../../src/translate/snapshot.ts';
import { startLabExporter, type LabExporter as Bridge } from '../support/lab-exporter.ts';
import { oracleRegistry, oracleRender } from '../support/registry-oracle.ts';

const BUILD = { version: '1.2.3', revision: 'abc', nodeVersion: 'v24.0.0' };
const FORMATS: readonly ExpositionFormat[] = ['text', 'openmetrics'];

function selfStats(): SelfStats {
  const self = new SelfStats();
  self.add(self.shimScrapeErrors, 'timeout', 3);
  self.add(self.kubeletRejectedSamples, 'zero_time');
  self.add(self.guestRejectedSamples, 'implausible_value', 2);
  return self;
}

async function expectSameAsOracle(snapshot: NodeSnapshot, self = selfStats()): Promise<void> {
  const renderer = new SnapshotRenderer(self, BUILD, { processMetrics: false });
  for (const format of FORMATS) {
    expect(await renderer.render(snapshot, format)).toBe(await oracleRender(snapshot, format, self, BUILD));
  }
}

function snapshot(pods: PodSnapshot[], extra: Partial<NodeSnapshot> = {}): NodeSnapshot {
  const up = { up: true, durationSeconds: 0.01 };
  return { takenAtMs: 1_700_000_000_000, pods, sandboxes: [], sources: { kubelet: up, shims: up, cgroups: up, pods: up }, ...extra };
}

/** A pod with every value set to `n` and every label value `name`. */
function fullPod(namespace: string, name: string, n: number): PodSnapshot {
  return {
    namespace,
    pod: name,
    uid: name,
    sandboxId: name,
    runtimeHandler: name,
    runtime: 'go',
    hypervisor: 'qemu',
    sandboxCgroupOnly: true,
    hostCpuSeconds: n,
    hostMemoryWorkingSetBytes: n,
    guestCpuSeconds: n,
    guestMemoryUsedBytes: n,
    overheadCpuSeconds: n,
    overheadMemoryBytes: n,
    overheadCpuReservedCores: n,
    overheadMemoryReservedBytes: n,
    guestTasks: n,
    guestNetworkReceiveBytes: n,
    guestNetworkTransmitBytes: n,
    guestDiskReadBytes: n,
    guestDiskWrittenBytes: n,
    gaps: ['shim_timeout', 'cgroup_not_found'],
    containers: [
      { name, cpuSeconds: n, memoryWorkingSetBytes: n, cpuLimitCores: n, memoryLimitBytes: n, source: 'kubelet' },
      { name: `${name}-2`, cpuSeconds: n, gap: 'kubelet_stale' },
    ],
  };
}

function auditOf(namespace: string, pod: string, value: string): AuditSnapshot {
  const ref = { namespace, pod };
  return {
    untrustedPods: 1,
    unsandboxed: [{ ...ref, runtimeHandler: value }],
    privilegedContainers: [{ ...ref, container: value, hostDevices: 'unknown' }],
    hostNamespaces: [{ ...ref, kind: 'pid' }],
    hostPaths: [ref],
    kataAnnotations: [{ ...ref, honoured: 'true' }],
    configs: [{ config: 'kata', path: value, readable: false }],
  };
}

function hostileSnapshot(value: string, n: number): NodeSnapshot {
  return snapshot([fullPod(value, value, n), fullPod('ns', `${value}x`, n)], {
    sandboxes: [{ id: value, runtime: 'rs', hypervisor: 'qemu', state: 'unmapped' }],
    kubeletEndpoint: 'resource',
    audit: auditOf(value, value, value),
  });
}

const HOSTILE_VALUES = [
  'plain',
  '',
  'a"b',
  'back\\slash',
  'trailing\\',
  'new\nline',
  '\\n literal',
  '\\"',
  '"\n\\',
  '\r\t\0',
  'ünïcødé 日本 🚀',
  '\u2028\u2029',
  '\ud800 lone surrogate',
  '{a="b"}',
  'x'.repeat(MAX_LABEL_VALUE_CHARS),
  'y'.repeat(MAX_LABEL_VALUE_CHARS + 1),
  `${'"'.repeat(MAX_LABEL_VALUE_CHARS)}\n`,
  `${'\\'.repeat(5000)}z`,
];

const NUMBERS = [
  0,
  -0,
  1,
  -1,
  0.1,
  1 / 3,
  1e21,
  1e-7,
  5e-324,
  Number.MAX_VALUE,
  -Number.MAX_VALUE,
  2 ** 53 + 2,
  123456789012,
  NaN,
  Infinity,
  -Infinity,
];

describe('the demo node', () => {
  let bridge: Bridge;
  beforeAll(async () => {
    bridge = await startLabExporter(DEMO_SCENARIO, { flags: ['--collector.shim-raw'] });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  test('renders as the library did, raw shim families included', async () => {
    const snap = await bridge.exporter.snapshot();
    expect(snap.pods.length).toBeGreaterThan(0);
    expect(snap.shimRaw?.length).toBeGreaterThan(0);
    await expectSameAsOracle(snap);
    await expectSameAsOracle({ ...snap, shimRaw: undefined });
  });
});

describe('hostile and edge snapshots', () => {
  test.each(HOSTILE_VALUES.map((v) => [JSON.stringify(v).slice(0, 40), v]))('label value %s', async (_, value) => {
    await expectSameAsOracle(hostileSnapshot(value, 42));
  });

  test.each(NUMBERS.map((n) => [String(n), n]))('value %s', async (_, n) => {
    await expectSameAsOracle(hostileSnapshot('v', n));
  });

  test('NaN is spelled as the library spells it', () => {
    expect(formatSampleValue(NaN)).toBe('Nan');
    expect(formatSampleValue(-0)).toBe('0');
    expect(formatSampleValue(-Infinity)).toBe('-Inf');
  });

  test('empty families: an empty node, and no source durations', async () => {
    await expectSameAsOracle(snapshot([]));
    await expectSameAsOracle({ ...snapshot([]), sources: {} as NodeSnapshot['sources'] });
    await expectSameAsOracle(snapshot([], { audit: { ...auditOf('a', 'b', 'c'), unsandboxed: [], configs: [] } }));
  });

  test('empty self counters', async () => {
    await expectSameAsOracle(hostileSnapshot('p', 1), new SelfStats());
  });

  test('each format renders once per snapshot, the other format after it still right', async () => {
    const self = selfStats();
    const renderer = new SnapshotRenderer(self, BUILD, { processMetrics: false });
    const snap = hostileSnapshot('a"b', 3);
    const [text, om] = await Promise.all([renderer.render(snap, 'text'), renderer.render(snap, 'openmetrics')]);
    expect(text).toBe(await oracleRender(snap, 'text', self, BUILD));
    expect(om).toBe(await oracleRender(snap, 'openmetrics', self, BUILD));
    expect(await renderer.render(snap, 'text')).toBe(text);
  });
});

/** Families of the table's shape but arbitrary names, help, types and label sets. */
const familyArb = fc.record({
  name: fc.stringMatching(/^[a-z_][a-z0-9_]{0,20}$/),
  total: fc.boolean(),
  type: fc.constantFrom('counter' as const, 'gauge' as const),
  help: fc.string({ unit: 'binary', maxLength: 40 }),
  series: fc.array(
    fc.record({
      labels: fc.dictionary(
        fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,8}$/),
        fc.oneof(fc.string({ unit: 'binary', maxLength: 30 }), fc.string({ unit: 'grapheme-ascii', minLength: 1020, maxLength: 1100 })),
        { maxKeys: 5 },
      ),
      value: fc.oneof(fc.double(), fc.integer(), fc.constantFrom(NaN, Infinity, -Infinity, -0)),
    }),
    { maxLength: 6 },
  ),
});

describe('property: arbitrary families, labels and values', () => {
  test('the writer plus the registry equals the library alone', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(familyArb, { selector: (f) => f.name, maxLength: 5 }), async (specs) => {
        const defs: FamilyDef[] = specs.map((spec, i) => ({
          // Unique even when `total` makes two names meet.
          name: `f${i}_${spec.name}${spec.total ? '_total' : ''}`,
          type: spec.type,
          help: spec.help,
          scope: 'node',
          extraLabels: [],
          maxSeriesPerScope: 0,
          source: 'test',
          collect: (_snapshot, emit) => {
            for (const s of spec.series) emit({ ...s.labels } as Labels, s.value);
          },
        }));
        const snap = snapshot([]);
        const self = selfStats();
        const writer = new ExpositionWriter(defs, PREFIX);
        for (const format of FORMATS) {
          const rest = await oracleRegistry(snap, format, self, BUILD, []).metrics();
          const written = writer.write(snap, format);
          const actual = written === '' ? rest : written + METRIC_SEPARATOR[format] + rest;
          expect(actual).toBe(await oracleRegistry(snap, format, self, BUILD, defs).metrics());
        }
      }),
      { numRuns: 300 },
    );
  });

  test('random pods through the real table', async () => {
    const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 20 }), fc.constantFrom(...HOSTILE_VALUES));
    const num = fc.oneof(fc.double(), fc.nat(), fc.constantFrom(NaN, Infinity, -Infinity, -0));
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(text, text, num), { maxLength: 4 }), async (pods) => {
        await expectSameAsOracle(snapshot(pods.map(([ns, name, n]) => fullPod(ns, name, n))));
      }),
      { numRuns: 100 },
    );
  });
});

test('the renderer writes every family of the table', () => {
  const text = new ExpositionWriter(FAMILIES, PREFIX).write(snapshot([]), 'openmetrics');
  expect(text.match(/^# TYPE /gm)).toHaveLength(FAMILIES.length);
});
