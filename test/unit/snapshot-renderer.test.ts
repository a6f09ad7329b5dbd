import { describe, expect, test } from 'vitest';
import { PREFIX } from '../../src/publish/families.ts';
import { CONTENT_TYPES, negotiateFormat } from '../../src/publish/exposition-format.ts';
import { boundLabelValue, MAX_LABEL_VALUE_CHARS, SnapshotRenderer } from '../../src/publish/snapshot-renderer.ts';
import { SelfStats } from '../../src/translate/self-stats.ts';
import type { RawSandboxFamilies } from '../../src/translate/shim-raw.ts';
import type { NodeSnapshot, PodSnapshot } from '../../src/translate/snapshot.ts';
import { toSeriesMap } from '../support/scrape.ts';

const BUILD = { version: '1.2.3', revision: 'abc', nodeVersion: 'v24.0.0' };

function renderer(self = new SelfStats()): SnapshotRenderer {
  return new SnapshotRenderer(self, BUILD, { processMetrics: false });
}

function pod(namespace: string, name: string, cpu: number, extra: Partial<PodSnapshot> = {}): PodSnapshot {
  return {
    namespace,
    pod: name,
    uid: `uid-${name}`,
    gaps: [],
    containers: [{ name: 'main', cpuSeconds: cpu, memoryWorkingSetBytes: 1000, source: 'kubelet' }],
    hostCpuSeconds: cpu * 2,
    ...extra,
  };
}

function snapshot(pods: PodSnapshot[], extra: Partial<NodeSnapshot> = {}): NodeSnapshot {
  const up = { up: true, durationSeconds: 0.01 };
  return { takenAtMs: 1_700_000_000_000, pods, sandboxes: [], sources: { kubelet: up, shims: up, cgroups: up, pods: up }, ...extra };
}

/** The series of one metric, keyed as scrape.ts's seriesKey (label values as parsed, unescaped). */
function seriesWithPrefix(text: string, name: string): Map<string, number> {
  return new Map([...toSeriesMap(text)].filter(([key]) => key.startsWith(`${name}{`)));
}

describe('label value bound', () => {
  test('an over-long value is cut to the bound; two long values stay two series', async () => {
    const long = (c: string) => c.repeat(MAX_LABEL_VALUE_CHARS * 4);
    const text = await renderer().render(snapshot([pod('ns', long('a'), 1), pod('ns', `${long('a')}b`, 2)]), 'text');
    const cpu = [...seriesWithPrefix(text, `${PREFIX}container_cpu_usage_seconds_total`)];
    expect(cpu).toHaveLength(2);
    for (const [key] of cpu) {
      const podLabel = /pod="([^"]*)"/.exec(key)![1]!;
      expect(podLabel.length).toBe(MAX_LABEL_VALUE_CHARS);
      expect(podLabel.startsWith('a'.repeat(900))).toBe(true);
    }
    expect(cpu[0]![0]).not.toBe(cpu[1]![0]);
    expect(text.length).toBeLessThan(64 * MAX_LABEL_VALUE_CHARS);
  });

  test('values within the bound are untouched', () => {
    const exact = 'x'.repeat(MAX_LABEL_VALUE_CHARS);
    expect(boundLabelValue(exact)).toBe(exact);
    expect(boundLabelValue('kata-qemu')).toBe('kata-qemu');
  });

  test('the audit families are bounded too', async () => {
    const audit = {
      untrustedPods: 1,
      unsandboxed: [{ namespace: 'ci', pod: 'p', runtimeHandler: 'h'.repeat(5000) }],
      privilegedContainers: [],
      hostNamespaces: [],
      hostPaths: [],
      kataAnnotations: [],
      configs: [{ config: 'kata' as const, path: `/${'d/'.repeat(3000)}c.toml`, readable: false }],
    };
    const text = await renderer().render(snapshot([], { audit }), 'text');
    for (const line of text.split('\n').filter((l) => l.startsWith(`${PREFIX}audit_`)))
      expect(line.length).toBeLessThan(MAX_LABEL_VALUE_CHARS + 200);
    expect(toSeriesMap(text).get(`${PREFIX}audit_enabled{}`)).toBe(1);
  });
});

describe('label escaping', () => {
  const hostile = 'a"b\\c\nkata_bridge_pod_info{namespace="x",pod="y"} 1\n';

  test('quotes, backslashes and newlines in label values are escaped and add no series', async () => {
    const text = await renderer().render(snapshot([pod(hostile, 'p"1', 5)]), 'text');
    expect(text).toContain('namespace="a\\"b\\\\c\\nkata_bridge_pod_info{namespace=\\"x\\",pod=\\"y\\"} 1\\n"');
    const cpu = seriesWithPrefix(text, `${PREFIX}container_cpu_usage_seconds_total`);
    expect([...cpu]).toEqual([[`${PREFIX}container_cpu_usage_seconds_total{container="main",namespace="${hostile}",pod="p"1"}`, 5]]);
    // Exactly the one pod's info series: the injected line did not become a sample.
    const info = seriesWithPrefix(text, `${PREFIX}pod_info`);
    expect(info.size).toBe(1);
    expect([...info.keys()][0]).toContain(`namespace="${hostile}"`);
  });

  test('OpenMetrics escapes the same way', async () => {
    const text = await renderer().render(snapshot([pod(hostile, 'p', 5)]), 'openmetrics');
    expect(text.endsWith('# EOF\n')).toBe(true);
    expect(text.split('\n').filter((line) => line.startsWith(`${PREFIX}pod_info{`))).toHaveLength(1);
  });
});

describe('a render is a function of its snapshot', () => {
  test('the exact series set of a hand-built snapshot', async () => {
    const text = await renderer().render(snapshot([pod('ci', 'a', 3)]), 'text');
    const cpu = `${PREFIX}container_cpu_usage_seconds_total`;
    const host = `${PREFIX}pod_host_cpu_usage_seconds_total`;
    expect(Object.fromEntries(seriesWithPrefix(text, cpu))).toEqual({ [`${cpu}{container="main",namespace="ci",pod="a"}`]: 3 });
    expect(Object.fromEntries(seriesWithPrefix(text, host))).toEqual({ [`${host}{namespace="ci",pod="a"}`]: 6 });
    expect(seriesWithPrefix(text, `${PREFIX}source_up`).size).toBe(4);
  });

  test('two renders of different snapshots in parallel do not mix values', async () => {
    const r = renderer();
    const first = snapshot([pod('ci', 'a', 1), pod('ci', 'b', 2)]);
    const second = snapshot([pod('ci', 'a', 100)]);
    const [t1, t2, o1, o2] = await Promise.all([
      r.render(first, 'text'),
      r.render(second, 'text'),
      r.render(first, 'openmetrics'),
      r.render(second, 'openmetrics'),
    ]);
    const key = (p: string) => `${PREFIX}container_cpu_usage_seconds_total{container="main",namespace="ci",pod="${p}"}`;
    expect(toSeriesMap(t1).get(key('a'))).toBe(1);
    expect(toSeriesMap(t1).get(key('b'))).toBe(2);
    expect(toSeriesMap(t2).get(key('a'))).toBe(100);
    for (const [text, a] of [
      [o1, '1'],
      [o2, '100'],
    ] as const) {
      expect(text).toContain(`${PREFIX}container_cpu_usage_seconds_total{namespace="ci",pod="a",container="main"} ${a}\n`);
    }
  });

  test('a pod missing from the next snapshot is absent from its render', async () => {
    const r = renderer();
    const before = await r.render(snapshot([pod('ci', 'a', 1), pod('ci', 'gone', 2, { gaps: ['shim_timeout'] })]), 'text');
    const after = await r.render(snapshot([pod('ci', 'a', 2)]), 'text');
    expect(before).toContain('pod="gone"');
    expect(after).not.toContain('pod="gone"');
    expect(toSeriesMap(after).get(`${PREFIX}container_cpu_usage_seconds_total{container="main",namespace="ci",pod="a"}`)).toBe(2);
  });

  test('self counters persist across snapshots and build_info carries the build', async () => {
    const self = new SelfStats();
    const r = renderer(self);
    self.add(self.shimScrapeErrors, 'timeout', 2);
    const text = await r.render(snapshot([]), 'text');
    const series = toSeriesMap(text);
    expect(series.get(`${PREFIX}shim_scrape_errors_total{reason="timeout"}`)).toBe(2);
    expect(series.get(`${PREFIX}build_info{nodejs="v24.0.0",revision="abc",version="1.2.3"}`)).toBe(1);
  });

  test('guest refusals are counted by reason, every reason exposed from 0', async () => {
    const self = new SelfStats();
    const r = renderer(self);
    expect(
      toSeriesMap(await r.render(snapshot([]), 'text')).get(`${PREFIX}shim_rejected_samples_total{reason="implausible_increase"}`),
    ).toBe(0);
    self.add(self.guestRejectedSamples, 'implausible_value', 3);
    const series = toSeriesMap(await r.render(snapshot([]), 'text'));
    expect(series.get(`${PREFIX}shim_rejected_samples_total{reason="implausible_value"}`)).toBe(3);
    expect(series.get(`${PREFIX}shim_rejected_samples_total{reason="implausible_increase"}`)).toBe(0);
  });
});

describe('counter naming', () => {
  test('text keeps _total on the family; OpenMetrics names the family without it', async () => {
    const s = snapshot([pod('ci', 'a', 1)]);
    const r = renderer();
    const text = await r.render(s, 'text');
    const om = await r.render(s, 'openmetrics');
    expect(text).toContain(`# TYPE ${PREFIX}pod_host_cpu_usage_seconds_total counter\n`);
    expect(om).toContain(`# TYPE ${PREFIX}pod_host_cpu_usage_seconds counter\n`);
    expect(om).toContain(`${PREFIX}pod_host_cpu_usage_seconds_total{namespace="ci",pod="a"} 2\n`);
    expect(om).not.toContain(`# TYPE ${PREFIX}pod_host_cpu_usage_seconds_total`);
    expect(om.endsWith('# EOF\n')).toBe(true);
  });
});

describe('raw shim families', () => {
  const sandbox = (id: string, name: string, families: RawSandboxFamilies['families']): RawSandboxFamilies => ({
    labels: { sandbox_id: id, cri_uid: `uid-${id}`, cri_name: name, cri_namespace: 'ci' },
    families,
  });
  const hostileValue = 'x"} 1\nkata_evil 1\n\\';
  const raw: RawSandboxFamilies[] = [
    sandbox('sb1', 'bad"name\n', [
      {
        name: 'kata_guest_load',
        type: 'gauge',
        help: 'help with \\ and\nnewline',
        samples: [{ name: 'kata_guest_load', labels: { item: hostileValue }, value: 0.5 }],
      },
      { name: 'kata_agent_scrape_count', type: 'counter', samples: [{ name: 'kata_agent_scrape_count', labels: {}, value: 3 }] },
      { name: 'kata_shim_go_goroutines', type: 'gauge', samples: [{ name: 'kata_shim_go_goroutines', labels: {}, value: 12 }] },
      // A replacement pattern of String.replace: it must reach the output as the guest wrote it.
      { name: 'kata_guest_meminfo', type: 'gauge', samples: [{ name: 'kata_guest_meminfo', labels: { item: "x$&y$`z$'" }, value: 1 }] },
    ]),
    sandbox('sb2', 'ok', [
      { name: 'kata_guest_load', type: 'gauge', samples: [{ name: 'kata_guest_load', labels: { item: 'load1' }, value: 0.1 }] },
      { name: 'kata_agent_scrape_count', type: 'gauge', samples: [{ name: 'kata_agent_scrape_count', labels: {}, value: 9 }] },
    ]),
  ];

  test('hostile label values and help are escaped', async () => {
    const text = await renderer().render(snapshot([], { shimRaw: raw }), 'text');
    const load = seriesWithPrefix(text, 'kata_guest_load');
    expect(Object.fromEntries(load)).toEqual({
      [`kata_guest_load{cri_name="bad"name\n",cri_namespace="ci",cri_uid="uid-sb1",item="${hostileValue}",sandbox_id="sb1"}`]: 0.5,
      'kata_guest_load{cri_name="ok",cri_namespace="ci",cri_uid="uid-sb2",item="load1",sandbox_id="sb2"}': 0.1,
    });
    expect(toSeriesMap(text).has('kata_evil{}')).toBe(false);
    expect(text).toContain('# HELP kata_guest_load help with \\\\ and\\nnewline\n');
    // One TYPE per family: the disagreeing type from sb2 is dropped, not a second TYPE.
    expect(text.match(/^# TYPE kata_agent_scrape_count /gm)).toHaveLength(1);
    expect(seriesWithPrefix(text, 'kata_agent_scrape_count').size).toBe(1);
  });

  test('OpenMetrics: raw families come before # EOF, and a counter without _total becomes unknown', async () => {
    const om = await renderer().render(snapshot([], { shimRaw: raw }), 'openmetrics');
    expect(om.endsWith('# EOF\n')).toBe(true);
    expect(om.match(/# EOF/g)).toHaveLength(1);
    expect(om.indexOf('kata_guest_load{')).toBeLessThan(om.indexOf('# EOF'));
    expect(om).toContain('# TYPE kata_agent_scrape_count unknown\n');
    expect(om).toContain('# TYPE kata_shim_go_goroutines gauge\n');
  });

  test('OpenMetrics: a label value holding $& or $` is written as is, and # EOF stays last and alone', async () => {
    const om = await renderer().render(snapshot([], { shimRaw: raw }), 'openmetrics');
    expect(om.match(/# EOF/g)).toHaveLength(1);
    expect(om.endsWith('\n# EOF\n')).toBe(true);
    expect(om).toContain('item="x$&y$`z$\'"} 1\n');
  });
});

describe('negotiateFormat', () => {
  test.each([
    [undefined, 'text'],
    ['text/plain;version=0.0.4', 'text'],
    ['*/*', 'text'],
    ['application/openmetrics-text;version=1.0.0;charset=utf-8,text/plain;version=0.0.4;q=0.5', 'openmetrics'],
    ['Application/OpenMetrics-Text; version=0.0.1', 'openmetrics'],
  ] as const)('%s → %s', (accept, format) => {
    expect(negotiateFormat(accept)).toBe(format);
  });

  test('content types', () => {
    expect(CONTENT_TYPES.text).toMatch(/^text\/plain; ?version=0\.0\.4/);
    expect(CONTENT_TYPES.openmetrics).toMatch(/^application\/openmetrics-text; ?version=1\.0\.0/);
  });
});
