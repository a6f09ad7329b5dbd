import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { decodeKubeletMetrics } from '../../src/translate/kubelet-decode.ts';
import type {
  KubeletContainerStats,
  KubeletNodeStats,
  KubeletPodStats,
  KubeletRejectReason,
  KubeletStats,
} from '../../src/translate/records.ts';

const fixture = (name: string): Buffer => readFileSync(new URL(`../fixtures/kubelet/${name}`, import.meta.url));

interface Expected {
  node: KubeletNodeStats;
  pods: KubeletPodStats[];
  containers: KubeletContainerStats[];
  kubeletScrapeError: boolean;
  rejected: Record<KubeletRejectReason, number>;
}

const NONE = { zero_time: 0, implausible_value: 0, duplicate: 0 };

function plain(s: KubeletStats): Expected {
  const byKey = <T>(m: Map<string, T>): T[] => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, v]) => v);
  return {
    node: s.node,
    pods: byKey(s.pods),
    containers: byKey(s.containers),
    kubeletScrapeError: s.kubeletScrapeError,
    rejected: s.rejected,
  };
}

/** A container whose CPU and memory samples carry one timestamp, as the kubelet writes them. */
function ctr(
  ref: string,
  cpuSeconds: number,
  memoryWorkingSetBytes: number,
  timestampMs: number,
  more: Partial<KubeletContainerStats> = {},
): KubeletContainerStats {
  const [namespace = '', pod = '', container = ''] = ref.split('/');
  return {
    namespace,
    pod,
    container,
    cpuSeconds,
    cpuTimestampMs: timestampMs,
    memoryWorkingSetBytes,
    memoryTimestampMs: timestampMs,
    ...more,
  };
}

/** The same for a pod. */
function pod(
  ref: string,
  cpuSeconds: number,
  memoryWorkingSetBytes: number,
  timestampMs: number,
  more: Partial<KubeletPodStats> = {},
): KubeletPodStats {
  const [namespace = '', name = ''] = ref.split('/');
  return { namespace, pod: name, cpuSeconds, cpuTimestampMs: timestampMs, memoryWorkingSetBytes, memoryTimestampMs: timestampMs, ...more };
}

// Expected values are read by hand from the fixture files, sorted by namespace/pod/container.
const CASES: [string, Expected][] = [
  [
    'v1.16-v1alpha1.txt',
    {
      node: { cpuSeconds: 88213.640157391, memoryWorkingSetBytes: 10973986816 },
      pods: [],
      containers: [
        ctr('ci/build-7f9c/artifact-uploader', 3.418207719, 21905408, 1573815598112),
        ctr('ci/build-7f9c/build', 412.773319402, 1476395008, 1573815598112),
        ctr('ci/lint-5d2b/lint', 0, 0, 1573815597020),
        ctr('kube-system/kube-proxy-x7k2p/kube-proxy', 96.137845217, 24358912, 1573815593457),
      ],
      kubeletScrapeError: false,
      rejected: NONE,
    },
  ],
  [
    'v1.18.0.txt',
    {
      node: { cpuSeconds: 4211.350912847, memoryWorkingSetBytes: 3221225472 },
      pods: [],
      containers: [
        ctr('ci/build-7f9c/artifact-uploader', 0.982170245, 8704000, 1585130398407),
        ctr('ci/build-7f9c/build', 127.650913308, 644245094, 1585130398407),
        ctr('kube-system/coredns-66bff467f8-tq9x4/coredns', 31.405522173, 12533760, 1585130394862),
      ],
      kubeletScrapeError: false,
      rejected: NONE,
    },
  ],
  [
    'v1.21.txt',
    {
      node: { cpuSeconds: 241325.681208219, memoryWorkingSetBytes: 15171018752 },
      pods: [
        pod('ci/build-7f9c', 802.337120904, 2528378880, 1624417874998),
        pod('ci/build-a21e', 71.088460117, 876609536, 1624417872531),
        pod('ci/lint-5d2b', 133.402871226, 412090368, 1624417877101),
        pod('kube-system/kube-proxy-x7k2p', 1204.601114788, 25317376, 1624417869511),
      ],
      containers: [
        ctr('ci/build-7f9c/artifact-uploader', 2.861953122, 18268160, 1624417876410),
        ctr('ci/build-7f9c/build', 733.914407251, 2147483648, 1624417876410),
        ctr('ci/build-a21e/build', 58.207311492, 536870912, 1624417871896),
        ctr('ci/lint-5d2b/lint', 0, 0, 1624417877225),
        ctr('kube-system/kube-proxy-x7k2p/kube-proxy', 1204.553092317, 25190400, 1624417869011),
      ],
      kubeletScrapeError: false,
      rejected: NONE,
    },
  ],
  [
    'v1.25.txt',
    {
      node: { cpuSeconds: 97314.271553614, memoryWorkingSetBytes: 20942086144 },
      pods: [
        pod('ci/build-7f9c', 104.618220735, 1124073472, 1665049997402),
        pod('ci/build-a21e', 1907.336651209, 3567255552, 1665049993310),
        pod('ci/lint-5d2b', 48.910371553, 397352960, 1665049998117),
        pod('kube-system/kube-proxy-x7k2p', 388.951240066, 22859776, 1665049995884),
      ],
      containers: [
        ctr('ci/build-7f9c/artifact-uploader', 1.204777321, 11374592, 1665049998713, { startTimeSeconds: 1665049931.2287104 }),
        ctr('ci/build-7f9c/build', 96.553307448, 781180928, 1665049998713, { startTimeSeconds: 1665049930.9815712 }),
        ctr('ci/build-a21e/build', 1841.019874402, 3221225472, 1665049991337, { startTimeSeconds: 1665047213 }),
        ctr('ci/lint-5d2b/lint', 0, 0, 1665049999004, { startTimeSeconds: 1665049877 }),
        ctr('kube-system/kube-proxy-x7k2p/kube-proxy', 388.906431009, 22724608, 1665049995120, { startTimeSeconds: 1664812387 }),
      ],
      kubeletScrapeError: false,
      rejected: NONE,
    },
  ],
  [
    'v1.29.txt',
    {
      node: { cpuSeconds: 612209.338102458, memoryWorkingSetBytes: 41833664512 },
      pods: [
        pod('ci/build-7f9c', 251.770309512, 2301337600, 1705499997736),
        pod('ci/build-e90a', 9.107664018, 456392704, 1705499995190),
        pod('ci/lint-5d2b', 71.255006874, 288358400, 1705499997502),
        pod('kube-system/kube-proxy-x7k2p', 5522.240337017, 30494720, 1705499992062),
      ],
      containers: [
        ctr('ci/build-7f9c/artifact-uploader', 0.731209644, 9158656, 1705499998204, { startTimeSeconds: 1705499712.1882656 }),
        ctr('ci/build-7f9c/build', 212.004837113, 1942155264, 1705499998204, { startTimeSeconds: 1705499711.9203553 }),
        ctr('ci/build-e90a/build', 3.918220741, 150994944, 1705499996677, { startTimeSeconds: 1705499961.2070327 }),
        // CRI-O style: a zero CPU counter and no memory sample at all.
        {
          namespace: 'ci',
          pod: 'lint-5d2b',
          container: 'lint',
          cpuSeconds: 0,
          cpuTimestampMs: 1705499997930,
          startTimeSeconds: 1705499874,
        },
        ctr('kube-system/kube-proxy-x7k2p/kube-proxy', 5522.181903346, 30355456, 1705499991450, { startTimeSeconds: 1704897730.5012295 }),
      ],
      kubeletScrapeError: false,
      rejected: NONE,
    },
  ],
  [
    'v1.30-duplicates.txt',
    {
      node: { cpuSeconds: 1402212.775119, memoryWorkingSetBytes: 107808129024 },
      pods: [
        pod('ci/build-7f9c', 1601.337212408, 3003121664, 1773934036961),
        pod('ci/runner-0', 295301.110254377, 33294237696, 1773934038702),
        pod('kube-system/kube-proxy-x7k2p', 8810.101872203, 28729344, 1773934031977),
      ],
      containers: [
        ctr('ci/build-7f9c/artifact-uploader', 4.118305527, 14127104, 1773934037120, { startTimeSeconds: 1773929610.3108637 }),
        ctr('ci/build-7f9c/build', 1530.660218071, 2680160256, 1773934037120, { startTimeSeconds: 1773929610.1557312 }),
        // The first of each duplicated pair wins; both CPU samples stay candidates for the counter state.
        ctr('ci/runner-0/runner', 994631.562157, 56903069690, 1773934038841, {
          startTimeSeconds: 1769194956.5992033,
          cpuCandidates: [
            { value: 994631.562157, timestampMs: 1773934038841 },
            { value: 295207.606798, timestampMs: 1773934038962 },
          ],
        }),
        ctr('kube-system/kube-proxy-x7k2p/kube-proxy', 8810.044178592, 28594176, 1773934031306, { startTimeSeconds: 1773328140.9921818 }),
      ],
      kubeletScrapeError: false,
      rejected: { zero_time: 0, implausible_value: 0, duplicate: 2 },
    },
  ],
  [
    'v1.32.txt',
    {
      node: { cpuSeconds: 833461.092770581, memoryWorkingSetBytes: 29024583680, swapBytes: 134217728 },
      pods: [
        pod('ci/build-7f9c', 3011.924506173, 4353687552, 1759919997808, { swapBytes: 0 }),
        pod('ci/build-b44f', 468.220715364, 1392508928, 1759919995877, { swapBytes: 26214400 }),
        pod('ci/lint-5d2b', 622.048170392, 553648128, 1759919998744, { swapBytes: 0 }),
        pod('kube-system/kube-proxy-x7k2p', 3097.947130012, 33435648, 1759919994105, { swapBytes: 0 }),
      ],
      containers: [
        ctr('ci/build-7f9c/artifact-uploader', 6.003817925, 20660224, 1759919998311, {
          startTimeSeconds: 1759917140.3391914,
          swapBytes: 0,
        }),
        ctr('ci/build-7f9c/build', 2876.140029957, 3758096384, 1759919998311, { startTimeSeconds: 1759917140.187045, swapBytes: 0 }),
        ctr('ci/build-b44f/build', 417.500321887, 1073741824, 1759919996054, { startTimeSeconds: 1759919351.8770742, swapBytes: 26214400 }),
        ctr('ci/lint-5d2b/lint', 0, 0, 1759919999120, { startTimeSeconds: 1759919810.2551146, swapBytes: 0 }),
        ctr('kube-system/kube-proxy-x7k2p/kube-proxy', 3097.885610342, 33308672, 1759919993418, {
          startTimeSeconds: 1759430118.4562953,
          swapBytes: 0,
        }),
      ],
      kubeletScrapeError: false,
      rejected: NONE,
    },
  ],
  [
    'broken-zero-time.txt',
    {
      node: { cpuSeconds: 35217.559021884, memoryWorkingSetBytes: 7845199872 },
      pods: [pod('ci/build-7f9c', 377.602144155, 1206005760, 1650974201188), pod('ci/build-d05e', 2.803117446, 298061824, 1650974202419)],
      containers: [
        ctr('ci/build-7f9c/artifact-uploader', 1.872110923, 10752000, 1650974200812, { startTimeSeconds: 1650973832.1448002 }),
        ctr('ci/build-7f9c/build', 351.088210374, 920625152, 1650974200812, { startTimeSeconds: 1650973831.9920301 }),
        // Its zero-time memory and start time are dropped; its CPU is kept.
        { namespace: 'ci', pod: 'build-d05e', container: 'build', cpuSeconds: 0.113205712, cpuTimestampMs: 1650974201993 },
      ],
      kubeletScrapeError: false,
      rejected: { zero_time: 2, implausible_value: 0, duplicate: 0 },
    },
  ],
  [
    'broken-wrapped-swap.txt',
    {
      node: { cpuSeconds: 833978.250918344, memoryWorkingSetBytes: 28714385408 },
      pods: [pod('ci/build-7f9c', 97.631720416, 930283264, 1759920600588)],
      containers: [ctr('ci/build-7f9c/build', 88.412055017, 601489408, 1759920601207, { swapBytes: 0 })],
      kubeletScrapeError: false,
      rejected: { zero_time: 0, implausible_value: 2, duplicate: 0 },
    },
  ],
];

describe('decodeKubeletMetrics over every fixture', () => {
  test.each(CASES)('%s', (file, expected) => {
    expect(plain(decodeKubeletMetrics(fixture(file)))).toEqual(expected);
  });

  test('the map keys are namespace/pod and namespace/pod/container', () => {
    const s = decodeKubeletMetrics(fixture('v1.32.txt'));
    expect([...s.pods.keys()].sort()).toEqual(['ci/build-7f9c', 'ci/build-b44f', 'ci/lint-5d2b', 'kube-system/kube-proxy-x7k2p']);
    expect(s.containers.has('ci/build-7f9c/artifact-uploader')).toBe(true);
  });
});

describe('one test per quirk', () => {
  test('v1alpha1: a _total family with TYPE gauge is still a CPU counter', () => {
    const s = decodeKubeletMetrics(
      '# TYPE container_cpu_usage_seconds_total gauge\n' +
        'container_cpu_usage_seconds_total{container="build",namespace="ci",pod="build-7f9c"} 12.5 1573815598112\n' +
        '# TYPE node_cpu_usage_seconds_total gauge\nnode_cpu_usage_seconds_total 99 1573815596730\n',
    );
    expect(s.containers.get('ci/build-7f9c/build')?.cpuSeconds).toBe(12.5);
    expect(s.node.cpuSeconds).toBe(99);
  });

  test('1.18.0: CPU names without _total are read as CPU', () => {
    const s = decodeKubeletMetrics(
      'container_cpu_usage_seconds{container="build",namespace="ci",pod="build-7f9c"} 7.25 1585130398407\n' +
        'node_cpu_usage_seconds 4211.5 1585130396118\n',
    );
    expect(s.containers.get('ci/build-7f9c/build')).toEqual({
      namespace: 'ci',
      pod: 'build-7f9c',
      container: 'build',
      cpuSeconds: 7.25,
      cpuTimestampMs: 1585130398407,
    });
    expect(s.node.cpuSeconds).toBe(4211.5);
  });

  test('1.18.0 and _total names for the same container: the first wins, one duplicate', () => {
    const s = decodeKubeletMetrics(
      'container_cpu_usage_seconds{container="build",namespace="ci",pod="build-7f9c"} 1 1585130398407\n' +
        'container_cpu_usage_seconds_total{container="build",namespace="ci",pod="build-7f9c"} 2 1585130398407\n',
    );
    expect(s.containers.get('ci/build-7f9c/build')?.cpuSeconds).toBe(1);
    expect(s.rejected.duplicate).toBe(1);
  });

  test('HELP text is never matched: a misleading HELP does not change what a family means', () => {
    const s = decodeKubeletMetrics(
      '# HELP container_memory_working_set_bytes [ALPHA] (Deprecated since 1.99.0) Cumulative cpu time in core-seconds\n' +
        '# TYPE container_memory_working_set_bytes gauge\n' +
        'container_memory_working_set_bytes{container="build",namespace="ci",pod="build-7f9c"} 4096 1705499998204\n',
    );
    expect(s.containers.get('ci/build-7f9c/build')).toEqual({
      namespace: 'ci',
      pod: 'build-7f9c',
      container: 'build',
      memoryWorkingSetBytes: 4096,
      memoryTimestampMs: 1705499998204,
    });
  });

  test('zero time.Time: the -62135596800000 sample and the negative start time go, the rest stays', () => {
    const s = decodeKubeletMetrics(
      'container_cpu_usage_seconds_total{container="build",namespace="ci",pod="build-d05e"} 3.5 -62135596800000\n' +
        'container_memory_working_set_bytes{container="build",namespace="ci",pod="build-d05e"} 1024 1650974201993\n' +
        'container_start_time_seconds{container="build",namespace="ci",pod="build-d05e"} -6.7953645788713455e+09\n' +
        'node_cpu_usage_seconds_total 10 1650974199530\n',
    );
    expect(s.containers.get('ci/build-d05e/build')).toEqual({
      namespace: 'ci',
      pod: 'build-d05e',
      container: 'build',
      memoryWorkingSetBytes: 1024,
      memoryTimestampMs: 1650974201993,
    });
    expect(s.node.cpuSeconds).toBe(10);
    expect(s.rejected.zero_time).toBe(2);
  });

  test('duplicates repeated three times count two, each once (parser and decoder do not both count)', () => {
    const line = 'pod_cpu_usage_seconds_total{namespace="ci",pod="runner-0"}';
    const s = decodeKubeletMetrics(`${line} 5 1773934038702\n${line} 6 1773934038800\n${line} 7 1773934038900\n`);
    expect(s.pods.get('ci/runner-0')?.cpuSeconds).toBe(5);
    expect(s.rejected.duplicate).toBe(2);
  });

  test('label sets that differ only in an ignored label collide on the same container: first wins', () => {
    const s = decodeKubeletMetrics(
      'container_cpu_usage_seconds_total{container="runner",namespace="ci",pod="runner-0",uid="old"} 994631.5 1773934038841\n' +
        'container_cpu_usage_seconds_total{container="runner",namespace="ci",pod="runner-0",uid="new"} 295207.6 1773934038962\n',
    );
    expect(s.containers.get('ci/runner-0/runner')?.cpuSeconds).toBe(994631.5);
    expect(s.rejected.duplicate).toBe(1);
  });

  test('wrapped uint64, negative, NaN and Inf values are implausible; the bound is 2^60 bytes', () => {
    const s = decodeKubeletMetrics(
      'node_swap_usage_bytes 1.8446743709127774e+19 1759920600913\n' +
        'node_memory_working_set_bytes 1.152921504606846976e+18 1759920600913\n' + // exactly 2^60: kept
        'pod_memory_working_set_bytes{namespace="ci",pod="a"} -4096 1759920600588\n' +
        'pod_cpu_usage_seconds_total{namespace="ci",pod="a"} NaN 1759920600588\n' +
        'container_swap_usage_bytes{container="c",namespace="ci",pod="a"} +Inf 1759920600588\n' +
        'container_memory_working_set_bytes{container="c",namespace="ci",pod="a"} 2.305843009213694e+18 1759920600588\n',
    );
    expect(s.node).toEqual({ memoryWorkingSetBytes: 2 ** 60 });
    expect(s.pods.size).toBe(0);
    expect(s.containers.size).toBe(0);
    expect(s.rejected.implausible_value).toBe(5);
  });

  test('scrape_error 1 (up to 1.29) sets kubeletScrapeError', () => {
    const s = decodeKubeletMetrics('# TYPE scrape_error gauge\nscrape_error 1\n');
    expect(s.kubeletScrapeError).toBe(true);
  });

  test('resource_scrape_error 1 (1.29+) sets kubeletScrapeError', () => {
    const s = decodeKubeletMetrics(
      '# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n' +
        '# TYPE resource_scrape_error gauge\nresource_scrape_error 1\n',
    );
    expect(s.kubeletScrapeError).toBe(true);
  });

  test('unknown labels and families are ignored; samples missing a needed label are skipped', () => {
    const s = decodeKubeletMetrics(
      'container_memory_working_set_bytes{container="build",id="/kubepods/x",namespace="ci",pod="build-7f9c"} 2048 1705499998204\n' +
        'container_memory_working_set_bytes{namespace="ci",pod="build-7f9c"} 999 1705499998204\n' +
        'container_memory_commit_bytes{container="build",namespace="ci",pod="build-7f9c"} 4096 1705499998204\n' +
        'kubelet_running_pods 12\n',
    );
    expect([...s.containers.values()]).toEqual([
      { namespace: 'ci', pod: 'build-7f9c', container: 'build', memoryWorkingSetBytes: 2048, memoryTimestampMs: 1705499998204 },
    ]);
  });
});
