import { describe, expect, test } from 'vitest';
import { extractRawFamilies, isKataFamilyName } from '../../src/translate/shim-raw.ts';
import type { SandboxRecord } from '../../src/translate/records.ts';

const SANDBOX = { id: 'sb1', runtime: 'go', dir: '/run/vc/sbs/sb1', hypervisor: 'qemu', hypervisorSource: 'state' } as SandboxRecord;
const POD = { sandboxId: 'sb1', uid: 'uid-1', namespace: 'ci', name: 'build-1', source: 'containerd' } as const;

function extract(payload: string) {
  return extractRawFamilies(new TextEncoder().encode(payload), SANDBOX, POD, {});
}

function seriesOf(payload: string): string[] {
  return extract(payload).families.flatMap((family) => family.samples.map((s) => `${s.name}${JSON.stringify(s.labels)}`));
}

describe('raw shim families (--collector.shim-raw)', () => {
  test('only Kata family names pass, after kata-monitor renamed the shim Go families', () => {
    const names = extract(
      [
        '# TYPE go_goroutines gauge',
        'go_goroutines 12',
        '# TYPE kata_guest_load gauge',
        'kata_guest_load{item="load1"} 0.5',
        '# TYPE up gauge',
        'up 1',
        '# TYPE container_cpu_usage_seconds_total counter',
        'container_cpu_usage_seconds_total{namespace="victim",pod="db",container="main"} 1e9',
        '# TYPE kata_bridge_pod_info gauge',
        'kata_bridge_pod_info{namespace="victim",pod="db"} 1',
        '# TYPE nodejs_heap_size_total_bytes gauge',
        'nodejs_heap_size_total_bytes 1',
        '',
      ].join('\n'),
    ).families.map((family) => family.name);
    expect(names).toEqual(['kata_shim_go_goroutines', 'kata_guest_load']);
  });

  test.each(['namespace', 'pod', 'container', 'job', 'instance', 'node', 'uid', 'sandbox_id', 'cri_namespace', '__name__x', 'endpoint'])(
    'a sample with a guest label named %s is dropped whole; the family keeps its other samples',
    (label) => {
      const payload = `# TYPE kata_guest_load gauge\nkata_guest_load{item="load1",${label}="forged"} 9\nkata_guest_load{item="load1"} 0.5\n`;
      expect(seriesOf(payload)).toEqual(['kata_guest_load{"item":"load1"}']);
    },
  );

  test('le and quantile only in the family types that give them meaning', () => {
    const payload = [
      '# TYPE kata_guest_load gauge',
      'kata_guest_load{le="1"} 1',
      'kata_guest_load{quantile="0.5"} 2',
      '# TYPE kata_shim_rpc_durations_histogram_milliseconds histogram',
      'kata_shim_rpc_durations_histogram_milliseconds_bucket{action="create",le="+Inf"} 1',
      'kata_shim_rpc_durations_histogram_milliseconds_sum{action="create"} 3',
      'kata_shim_rpc_durations_histogram_milliseconds_count{action="create"} 1',
      '# TYPE go_gc_duration_seconds summary',
      'go_gc_duration_seconds{quantile="0.5"} 0.001',
      'go_gc_duration_seconds_sum 0.002',
      'go_gc_duration_seconds_count 2',
      '',
    ].join('\n');
    expect(seriesOf(payload)).toEqual([
      'kata_shim_rpc_durations_histogram_milliseconds_bucket{"action":"create","le":"+Inf"}',
      'kata_shim_rpc_durations_histogram_milliseconds_sum{"action":"create"}',
      'kata_shim_rpc_durations_histogram_milliseconds_count{"action":"create"}',
      'kata_shim_go_gc_duration_seconds{"quantile":"0.5"}',
      'kata_shim_go_gc_duration_seconds_sum{}',
      'kata_shim_go_gc_duration_seconds_count{}',
    ]);
  });

  test('the identity labels come from the sandbox and the pod, never from the payload', () => {
    expect(extract('kata_guest_load 1\n').labels).toEqual({
      sandbox_id: 'sb1',
      cri_uid: 'uid-1',
      cri_name: 'build-1',
      cri_namespace: 'ci',
    });
  });

  test.each([
    ['kata_guest_load', true],
    ['kata_shim_go_goroutines', true],
    ['kata_bridge_pod_info', false],
    ['up', false],
    ['katax_load', false],
  ])('isKataFamilyName(%s) is %s', (name, expected) => {
    expect(isKataFamilyName(name)).toBe(expected);
  });
});
