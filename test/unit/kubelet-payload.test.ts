import { describe, expect, test } from 'vitest';
import { formatGoFloat, renderKubeletPayload } from '../../src/lab/kubelet-payload.ts';
import { decodeKubeletMetrics } from '../../src/translate/kubelet-decode.ts';

describe('renderKubeletPayload', () => {
  test('renders the 1.30+ format: sorted families and series, HELP stability, ms timestamps', () => {
    const text = renderKubeletPayload({
      timestampMs: 1759919998311,
      node: { cpuSeconds: 833461.5, memoryWorkingSetBytes: 29024583680 },
      pods: [{ namespace: 'ci', pod: 'build-7f9c', cpuSeconds: 3011.25, memoryWorkingSetBytes: 4353687552, swapBytes: 0 }],
      containers: [
        {
          namespace: 'ci',
          pod: 'build-7f9c',
          container: 'build',
          cpuSeconds: 2876.5,
          memoryWorkingSetBytes: 3758096384,
          startTimeSeconds: 1759917140.5,
        },
        { namespace: 'ci', pod: 'build-7f9c', container: 'artifact-uploader', cpuSeconds: 6, cpuTimestampMs: 1759919990000 },
      ],
    });
    expect(text).toBe(
      [
        '# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds',
        '# TYPE container_cpu_usage_seconds_total counter',
        'container_cpu_usage_seconds_total{container="artifact-uploader",namespace="ci",pod="build-7f9c"} 6 1759919990000',
        'container_cpu_usage_seconds_total{container="build",namespace="ci",pod="build-7f9c"} 2876.5 1759919998311',
        '# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes',
        '# TYPE container_memory_working_set_bytes gauge',
        'container_memory_working_set_bytes{container="build",namespace="ci",pod="build-7f9c"} 3.758096384e+09 1759919998311',
        '# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds',
        '# TYPE container_start_time_seconds gauge',
        'container_start_time_seconds{container="build",namespace="ci",pod="build-7f9c"} 1.7599171405e+09',
        '# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds',
        '# TYPE node_cpu_usage_seconds_total counter',
        'node_cpu_usage_seconds_total 833461.5 1759919998311',
        '# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes',
        '# TYPE node_memory_working_set_bytes gauge',
        'node_memory_working_set_bytes 2.902458368e+10 1759919998311',
        '# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds',
        '# TYPE pod_cpu_usage_seconds_total counter',
        'pod_cpu_usage_seconds_total{namespace="ci",pod="build-7f9c"} 3011.25 1759919998311',
        '# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes',
        '# TYPE pod_memory_working_set_bytes gauge',
        'pod_memory_working_set_bytes{namespace="ci",pod="build-7f9c"} 4.353687552e+09 1759919998311',
        '# HELP pod_swap_usage_bytes [ALPHA] Current amount of the pod swap usage in bytes. Reported only on non-windows systems',
        '# TYPE pod_swap_usage_bytes gauge',
        'pod_swap_usage_bytes{namespace="ci",pod="build-7f9c"} 0 1759919998311',
        '# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise',
        '# TYPE resource_scrape_error gauge',
        'resource_scrape_error 0',
        '',
      ].join('\n'),
    );
  });

  test('a kubelet scrape error renders only resource_scrape_error 1', () => {
    const text = renderKubeletPayload({ timestampMs: 1, node: { cpuSeconds: 5 }, scrapeError: true });
    expect(text.split('\n').filter((l) => !l.startsWith('#'))).toEqual(['resource_scrape_error 1', '']);
  });

  test('label values are escaped', () => {
    const text = renderKubeletPayload({
      timestampMs: 1000,
      pods: [{ namespace: 'ci', pod: 'we"ird\\pod\nname', cpuSeconds: 1 }],
    });
    expect(text).toContain('pod_cpu_usage_seconds_total{namespace="ci",pod="we\\"ird\\\\pod\\nname"} 1 1000');
  });

  test('what it renders decodes back to the same values', () => {
    const s = decodeKubeletMetrics(
      renderKubeletPayload({
        timestampMs: 1759919998311,
        node: { cpuSeconds: 12.5, memoryWorkingSetBytes: 1024, swapBytes: 0 },
        containers: [{ namespace: 'ci', pod: 'build-7f9c', container: 'build', cpuSeconds: 3.25, swapBytes: 4096 }],
      }),
    );
    expect(s.node).toEqual({ cpuSeconds: 12.5, memoryWorkingSetBytes: 1024, swapBytes: 0 });
    expect(s.containers.get('ci/build-7f9c/build')).toEqual({
      namespace: 'ci',
      pod: 'build-7f9c',
      container: 'build',
      cpuSeconds: 3.25,
      cpuTimestampMs: 1759919998311,
      swapBytes: 4096,
    });
    expect(s.kubeletScrapeError).toBe(false);
  });
});

describe('formatGoFloat writes values as Go strconv g -1 does', () => {
  test.each([
    [0, '0'],
    [10, '10'],
    [4.710169, '4.710169'],
    [123456, '123456'],
    [1234567, '1.234567e+06'],
    [12533760, '1.253376e+07'],
    [1.8446743709127774e19, '1.8446743709127774e+19'],
    [0.0001, '0.0001'],
    [0.00001, '1e-05'],
    [-2.5, '-2.5'],
    [Infinity, '+Inf'],
    [-Infinity, '-Inf'],
    [NaN, 'NaN'],
  ])('%s → %s', (v, text) => {
    expect(formatGoFloat(v)).toBe(text);
  });
});
