import { describe, expect, test } from 'vitest';
import { renderLandingPage } from '../../src/publish/landing.ts';
import { POD_COLUMNS, RecentSnapshots, podCells, podTable, podTableJson, type PodRow } from '../../src/publish/pod-table.ts';
import type { AuditSnapshot, NodeSnapshot, PodSnapshot } from '../../src/translate/snapshot.ts';

const T = 1_700_000_000_000;
const MIB = 1024 * 1024;

function kataPod(name: string, hostCpuSeconds: number | undefined, extra: Partial<PodSnapshot> = {}): PodSnapshot {
  return {
    namespace: 'ci',
    pod: name,
    uid: `uid-${name}`,
    runtimeHandler: 'kata-qemu',
    hostCpuSeconds,
    gaps: [],
    containers: [{ name: 'build' }],
    ...extra,
  };
}

function at(takenAtMs: number, pods: PodSnapshot[], audit?: AuditSnapshot): NodeSnapshot {
  const up = { up: true, durationSeconds: 0 };
  return { takenAtMs, pods, sandboxes: [], sources: { kubelet: up, shims: up, cgroups: up, pods: up }, ...(audit ? { audit } : {}) };
}

const column = (heading: string) => POD_COLUMNS.findIndex((c) => c.heading === heading);
const cell = (row: PodRow, heading: string) => podCells(row)[column(heading)];

describe('podTable', () => {
  test('host and overhead CPU are rates between the two snapshots, highest host CPU first', () => {
    const before = at(T, [kataPod('idle', 100, { overheadCpuSeconds: 10 }), kataPod('busy', 50, { overheadCpuSeconds: 4 })]);
    const now = at(T + 10_000, [
      kataPod('idle', 101, { overheadCpuSeconds: 10.5 }),
      kataPod('busy', 80, { overheadCpuSeconds: 5 }),
      kataPod('new', 7),
    ]);
    const table = podTable(now, before);
    expect(table.rateSeconds).toBe(10);
    expect(table.rows.map((r) => [r.pod, r.hostCpuCores, r.overheadCpuCores])).toEqual([
      ['busy', 3, 0.1],
      ['idle', 0.1, 0.05],
      // No earlier reading: no rate, listed after the pods that have one.
      ['new', undefined, undefined],
    ]);
  });

  test('a pod re-created under the same name, or a counter that went back, gets no rate', () => {
    const before = at(T, [kataPod('a', 100), kataPod('b', 100)]);
    const now = at(T + 5_000, [kataPod('a', 120, { uid: 'uid-a-again' }), kataPod('b', 90)]);
    expect(podTable(now, before).rows.map((r) => [r.pod, r.hostCpuCores])).toEqual([
      ['a', undefined],
      ['b', undefined],
    ]);
    expect(podTable(now, undefined).rateSeconds).toBeUndefined();
  });

  test('the host limit and OOM kills as the snapshot has them, throttling as a rate', () => {
    const before = at(T, [kataPod('p', 10, { hostCpuThrottledSeconds: 4, hostOomKills: 0 })]);
    const now = at(T + 20_000, [kataPod('p', 30, { hostCpuThrottledSeconds: 9, hostOomKills: 1, hostMemoryLimitBytes: 2048 * MIB })]);
    const [row] = podTable(now, before).rows;
    expect([row!.hostCpuThrottledRate, row!.hostOomKills, row!.hostMemoryLimitBytes]).toEqual([0.25, 1, 2048 * MIB]);
  });

  test('gaps of the pod and its containers, and the audit findings on the pod', () => {
    const pod = kataPod('p', 1, { gaps: ['shim_timeout'], containers: [{ name: 'build', gap: 'kubelet_zero' }, { name: 'side' }] });
    const audit: AuditSnapshot = {
      untrustedPods: 2,
      unsandboxed: [],
      privilegedContainers: [{ namespace: 'ci', pod: 'p', container: 'build', hostDevices: 'true' }],
      hostNamespaces: [{ namespace: 'ci', pod: 'p', kind: 'network' }],
      hostPaths: [{ namespace: 'ci', pod: 'other' }],
      kataAnnotations: [],
      configs: [],
    };
    const [row] = podTable(at(T, [pod], audit), undefined).rows;
    expect(row!.gaps).toEqual(['shim_timeout', 'build: kubelet_zero']);
    expect(row!.findings).toEqual(['privileged container build (host devices: true)', 'host network namespace']);
    expect(cell(row!, 'Gaps')).toBe('shim_timeout, build: kubelet_zero');
  });

  test('RecentSnapshots keeps the snapshot before the current one; a repeat changes nothing', () => {
    const recent = new RecentSnapshots();
    const first = at(T, [kataPod('a', 10)]);
    expect(recent.observe(first).rows[0]!.hostCpuCores).toBeUndefined();
    const second = at(T + 2_000, [kataPod('a', 14)]);
    expect(recent.observe(second).rows[0]!.hostCpuCores).toBe(2);
    // The same snapshot again (the single flight reused it): still the rate since the first.
    expect(recent.observe(second).rows[0]!.hostCpuCores).toBe(2);
    expect(recent.observe(first).rows[0]!.hostCpuCores).toBe(2);
  });
});

describe('pod table cells', () => {
  const row: PodRow = {
    namespace: 'ci',
    pod: 'p',
    gaps: [],
    findings: [],
    hostMemoryBytes: 512 * MIB,
    overheadMemoryBytes: 100 * MIB,
    overheadMemoryReservedBytes: 320 * MIB,
  };

  test('"—" for what the snapshot does not carry (host memory limit, throttling, OOM kills)', () => {
    expect(cell(row, 'Host memory / limit')).toBe('512 MiB / —');
    expect(cell(row, 'Throttled (s/s)')).toBe('—');
    expect(cell(row, 'Host OOM kills')).toBe('—');
    expect(cell(row, 'Host CPU (cores)')).toBe('—');
    expect(cell(row, 'Overhead memory / reserved')).toBe('100 MiB / 320 MiB (31%)');
  });

  test('values when present', () => {
    const full = { ...row, hostMemoryLimitBytes: 2048 * MIB, hostCpuThrottledRate: 0.25, hostOomKills: 3, hostCpuCores: 1.5 };
    expect(cell(full, 'Host memory / limit')).toBe('512 MiB / 2.00 GiB (25%)');
    expect(cell(full, 'Throttled (s/s)')).toBe('0.25');
    expect(cell(full, 'Host OOM kills')).toBe('3');
    expect(cell(full, 'Host CPU (cores)')).toBe('1.50');
  });

  test('a cell is bounded however many containers report gaps', () => {
    const many = { ...row, gaps: Array.from({ length: 200 }, (_, i) => `c${i}: kubelet_missing`) };
    expect(cell(many, 'Gaps')!.length).toBeLessThanOrEqual(300);
  });
});

describe('hostile names from the API server', () => {
  const hostile = '<img src=x onerror=alert(1)></script>"\'&';
  const snapshot = at(T, [kataPod(hostile, 5, { namespace: '<b>ns</b>', runtimeHandler: '"><svg onload=alert(2)>' })]);
  const table = podTable(snapshot, undefined);

  test('the HTML render escapes pod, namespace and handler', () => {
    const html = renderLandingPage({ nodeName: 'n', version: '1', telemetryPath: '/metrics', ready: true }, undefined, table);
    expect(html).not.toContain('<img src=x');
    expect(html).not.toContain('<svg');
    expect(html).not.toContain('<b>ns</b>');
    expect(html).toContain('<td>&lt;b&gt;ns&lt;/b&gt;/&lt;img src=x onerror=alert(1)&gt;&lt;/script&gt;&quot;&#39;&amp;</td>');
    // Only the page's own script tag: no data can close or open one.
    expect(html.match(/<\/?script/g)).toEqual(['<script', '</script']);
    // The refresh writes data as text only.
    expect(html).toContain('td.textContent = String(cell)');
    expect(html).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
  });

  test('the JSON carries the names as plain strings, cells included, for textContent', () => {
    const parsed = JSON.parse(podTableJson(table)) as { columns: string[]; rows: Array<PodRow & { cells: string[] }> };
    expect(parsed.columns).toEqual(POD_COLUMNS.map((c) => c.heading));
    expect(parsed.rows[0]!.pod).toBe(hostile);
    expect(parsed.rows[0]!.cells[column('Pod')]).toBe(`<b>ns</b>/${hostile}`);
    expect(parsed.rows[0]!.cells[column('Handler')]).toBe('"><svg onload=alert(2)>');
  });
});
