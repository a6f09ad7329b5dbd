/**
 * Bounds audit (docs/security.md): a build controls everything inside its VM, so its shim's
 * /metrics answer is hostile input. A fake shim of our own serves each crafted payload at the
 * hostile pod's real socket path; the real exporter scrapes the lab. For every payload: the
 * sandbox is cut off with the right reason (or its bad values are refused and counted), /metrics
 * still parses and answers in time, no series outside kata_bridge_* appears, and every other pod's
 * series are identical to the run without the hostile payload (frozen clock).
 */

import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { ANSWER_BOUND_MS, replaceShim, timedScrape, type ReplacedShim, type Scrape } from '../support/fault-helpers.ts';
import { startExporterOn, startLabExporter, type LabExporter } from '../support/lab-exporter.ts';
import { find, foreignNames, otherPods, podGaps, podLines, valueOf } from '../support/scrape.ts';

const MAX_SERIES = 2000;
const HOSTILE = 'hostile';
const BYSTANDERS = ['steady', 'clh-only', 'rs-dragonball'];
const MIB = 2 ** 20;

/** Replaces the value of one exact series line. */
function withValue(payload: string, series: string, value: string): string {
  const lines = payload.split('\n');
  const i = lines.findIndex((l) => l.startsWith(`${series} `));
  if (i < 0) throw new Error(`payload has no ${series}`);
  lines[i] = `${series} ${value}`;
  return lines.join('\n');
}

/** Inserts lines right after the last sample of a family, so the family stays contiguous. */
function insertIntoFamily(payload: string, family: string, extra: readonly string[]): string {
  const lines = payload.split('\n');
  let last = -1;
  lines.forEach((l, i) => {
    if (l.startsWith(`${family}{`) || l.startsWith(`${family} `)) last = i;
  });
  if (last < 0) throw new Error(`payload has no ${family}`);
  lines.splice(last + 1, 0, ...extra);
  return lines.join('\n');
}

/** The hostile pod's series that come from anything but its shim (host cgroups, kubelet, spec). */
const notFromShim = (name: string): boolean => !name.startsWith('kata_bridge_pod_guest_') && name !== 'kata_bridge_pod_metrics_gap';

describe('a hostile guest behind its shim socket', () => {
  const nowMs = Date.now();
  let node: LabExporter;
  let hostile: ReplacedShim;
  let normalPayload: string;
  let baseline: Scrape;

  beforeAll(async () => {
    node = await startLabExporter(
      {
        pods: [
          { name: HOSTILE, hypervisor: 'qemu' },
          { name: 'steady', hypervisor: 'qemu' },
          { name: 'clh-only', hypervisor: 'cloud-hypervisor', sandboxCgroupOnly: true },
          { name: 'rs-dragonball', hypervisor: 'dragonball', runtime: 'rs' },
        ],
      },
      { flags: ['--shim.timeout=1s', `--shim.max-series=${MAX_SERIES}`], now: () => nowMs },
    );
    normalPayload = node.lab.shimPayload(node.lab.pods.get(`ci/${HOSTILE}`)!);
    hostile = await replaceShim(node.lab, 'ci', HOSTILE, normalPayload);
    baseline = await timedScrape(node);
  });

  afterEach(async () => {
    hostile.setPayload(normalPayload);
    await hostile.shim.setBehaviour({ kind: 'normal' });
  });

  afterAll(async () => {
    await node?.close();
  });

  async function serve(payload: string | Uint8Array): Promise<Scrape> {
    hostile.setPayload(payload);
    return timedScrape(node);
  }

  /** What holds whatever the guest sends. */
  function expectContained(scrape: Scrape): void {
    expect(scrape.status).toBe(200);
    expect(scrape.elapsedMs).toBeLessThan(ANSWER_BOUND_MS);
    expect(foreignNames(scrape.samples)).toEqual([]);
    for (const s of scrape.samples) expect(Number.isFinite(s.value), `${s.name} ${s.value}`).toBe(true);
    expect(otherPods(scrape.samples, [HOSTILE])).toEqual(otherPods(baseline.samples, [HOSTILE]));
    expect(Object.keys(otherPods(scrape.samples, [HOSTILE]))).toEqual([...BYSTANDERS].sort());
  }

  function expectCutOff(scrape: Scrape, reason: string): void {
    expect(podGaps(scrape.samples, HOSTILE)).toEqual([reason]);
    expect(podLines(scrape.samples, HOSTILE, 'ci', (n) => n.startsWith('kata_bridge_pod_guest_'))).toEqual([]);
    // The host and kubelet views of the same pod stand.
    expect(podLines(scrape.samples, HOSTILE, 'ci', notFromShim)).toEqual(podLines(baseline.samples, HOSTILE, 'ci', notFromShim));
  }

  test('baseline: the hostile pod, served its normal payload by our shim, is whole', () => {
    expectContained(baseline);
    expect(podGaps(baseline.samples, HOSTILE)).toEqual([]);
    expect(podLines(baseline.samples, HOSTILE, 'ci', (n) => n === 'kata_bridge_pod_guest_cpu_usage_seconds_total')).toHaveLength(1);
    expect(hostile.shim.stats.calls).toBeGreaterThan(0);
  });

  test('(a) more series than --shim.max-series: cut off as shim_malformed', async () => {
    const extra = Array.from({ length: MAX_SERIES + 500 }, (_, i) => `kata_guest_netdev_stat{interface="veth${i}",item="recv_bytes"} 1`);
    const errorsBefore = valueOf(baseline.samples, 'kata_bridge_shim_scrape_errors_total', { reason: 'malformed' }) ?? 0;
    const scrape = await serve(insertIntoFamily(normalPayload, 'kata_guest_netdev_stat', extra));
    expectContained(scrape);
    expectCutOff(scrape, 'shim_malformed');
    expect(valueOf(scrape.samples, 'kata_bridge_shim_scrape_errors_total', { reason: 'malformed' })).toBeGreaterThan(errorsBefore);
  });

  test('(b) a label value of 100 KB: cut off as shim_malformed', async () => {
    const huge = 'x'.repeat(100 * 1024);
    const scrape = await serve(
      insertIntoFamily(normalPayload, 'kata_guest_netdev_stat', [`kata_guest_netdev_stat{interface="${huge}",item="recv_bytes"} 1`]),
    );
    expectContained(scrape);
    expectCutOff(scrape, 'shim_malformed');
    expect(scrape.text).not.toContain('x'.repeat(200));
  });

  test('(c) 100 labels on one line: cut off as shim_malformed', async () => {
    const labels = Array.from({ length: 100 }, (_, i) => `l${i}="v${i}"`).join(',');
    const scrape = await serve(
      insertIntoFamily(normalPayload, 'kata_guest_netdev_stat', [`kata_guest_netdev_stat{interface="eth9",item="recv_bytes",${labels}} 1`]),
    );
    expectContained(scrape);
    expectCutOff(scrape, 'shim_malformed');
    expect(scrape.text).not.toContain('l99=');
  });

  test('(d) invalid UTF-8 in label values: neutralised, never republished; the exposition stays valid UTF-8', async () => {
    const bad = (s: string) => Buffer.from(s, 'latin1');
    const payload = Buffer.concat([
      Buffer.from(normalPayload.trimEnd() + '\n'),
      bad('kata_guest_netdev_stat{interface="eth\xff\xfe1",item="recv_bytes"} 5\n'),
      bad('kata_guest_diskstat{disk="vd\xc3\x28",item="sectors_read"} 3\n'),
      bad('kata_guest_meminfo{item="mem_\xe2\x82total"} 1\n'),
      bad('kata_guest_cpu_time{cpu="\xf0\x28\x8c\x28",item="user"} 7\n'),
    ]);
    const scrape = await serve(payload);
    // The harness's timedGet decodes with a fatal UTF-8 decoder: reaching here means our bytes are valid UTF-8.
    expectContained(scrape);
    expect(scrape.text).not.toContain('\uFFFD');
    // These labels only select items and devices: the sandbox is not cut off for them.
    expect(podGaps(scrape.samples, HOSTILE)).toEqual([]);
    expect(podLines(scrape.samples, HOSTILE, 'ci', notFromShim)).toEqual(podLines(baseline.samples, HOSTILE, 'ci', notFromShim));
  });

  test('(e) NaN, +Inf, negative and 1e300 guest counters: refused, counted, never published', async () => {
    const before = await timedScrape(node);
    const rejectedBefore = valueOf(before.samples, 'kata_bridge_shim_rejected_samples_total', { reason: 'implausible_value' })!;
    let payload = normalPayload;
    payload = withValue(payload, 'kata_guest_cpu_time{cpu="total",item="user"}', 'NaN');
    payload = withValue(payload, 'kata_guest_cpu_time{cpu="total",item="system"}', '+Inf');
    payload = withValue(payload, 'kata_guest_netdev_stat{interface="eth0",item="recv_bytes"}', '-1024');
    payload = withValue(payload, 'kata_guest_netdev_stat{interface="eth0",item="sent_bytes"}', '1e300');
    payload = withValue(payload, 'kata_guest_diskstat{disk="vda",item="sectors_read"}', 'NaN');
    payload = withValue(payload, 'kata_guest_diskstat{disk="vda",item="sectors_written"}', '1e300');
    const scrape = await serve(payload);
    expectContained(scrape);
    expect(valueOf(scrape.samples, 'kata_bridge_shim_rejected_samples_total', { reason: 'implausible_value' })! - rejectedBefore).toBe(6);
    // The counters those samples feed are withheld for this scrape, not published from a lie.
    for (const family of [
      'kata_bridge_pod_guest_cpu_usage_seconds_total',
      'kata_bridge_pod_guest_network_receive_bytes_total',
      'kata_bridge_pod_guest_network_transmit_bytes_total',
      'kata_bridge_pod_guest_disk_read_bytes_total',
      'kata_bridge_pod_guest_disk_written_bytes_total',
    ]) {
      expect(find(scrape.samples, family, { pod: HOSTILE }), family).toEqual([]);
    }
    // The guest's honest values (memory, tasks) and the host view stay.
    const honest = (n: string) =>
      n === 'kata_bridge_pod_guest_memory_used_bytes' || n === 'kata_bridge_pod_guest_tasks' || n.startsWith('kata_bridge_pod_host_');
    expect(podLines(scrape.samples, HOSTILE, 'ci', honest)).toEqual(podLines(baseline.samples, HOSTILE, 'ci', honest));
    expect(podGaps(scrape.samples, HOSTILE)).toEqual([]);
  });

  const INJECTED_INTERFACE = 'eth0"} kata_bridge_pod_info{namespace="victim",pod="x"} 1\n# \\';
  const INJECTED_DISK = 'vdb\\"}\nkata_bridge_pod_metrics_gap{namespace="victim",pod="x",reason="shim_timeout"} 1';
  /** Prometheus text escaping of a label value: backslash, quote, newline. */
  const escape = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
  const escapedInjection = (): string => {
    let payload = insertIntoFamily(normalPayload, 'kata_guest_netdev_stat', [
      `kata_guest_netdev_stat{interface="${escape(INJECTED_INTERFACE)}",item="recv_bytes"} 11`,
    ]);
    payload = insertIntoFamily(payload, 'kata_guest_diskstat', [
      `kata_guest_diskstat{disk="${escape(INJECTED_DISK)}",item="sectors_read"} 13`,
    ]);
    return payload;
  };

  test('(f) label values crafted to inject series (escaped quotes, newlines, backslashes): no series or label of theirs appears', async () => {
    const scrape = await serve(escapedInjection());
    expectContained(scrape);
    expect(podGaps(scrape.samples, HOSTILE)).toEqual([]);
    expect(scrape.samples.filter((s) => s.labels.namespace === 'victim')).toEqual([]);
    expect(scrape.text).not.toContain('victim');
    expect(podLines(scrape.samples, HOSTILE, 'ci', notFromShim)).toEqual(podLines(baseline.samples, HOSTILE, 'ci', notFromShim));
  });

  test.each([
    ['an unescaped quote', `kata_guest_netdev_stat{interface="eth0"} kata_bridge_pod_info{namespace="victim",pod="x"} 1`],
    ['a raw newline', `kata_guest_netdev_stat{interface="eth0\nkata_bridge_pod_info{namespace="victim",pod="x"} 1`],
    ['a bad escape', `kata_guest_diskstat{disk="vd\\q",item="sectors_read"} 1`],
  ])('(f) raw injection with %s: cut off as shim_malformed', async (_what, line) => {
    const family = line.startsWith('kata_guest_diskstat') ? 'kata_guest_diskstat' : 'kata_guest_netdev_stat';
    const scrape = await serve(insertIntoFamily(normalPayload, family, [line]));
    expectContained(scrape);
    expectCutOff(scrape, 'shim_malformed');
    expect(scrape.text).not.toContain('victim');
  });

  test('(f) with --collector.shim-raw the injected text stays inside one escaped label value', async () => {
    const raw = await startExporterOn(node.lab, {
      flags: ['--shim.timeout=1s', `--shim.max-series=${MAX_SERIES}`, '--collector.shim-raw'],
      now: () => nowMs,
    });
    try {
      hostile.setPayload(escapedInjection());
      const scrape = await timedScrape(raw);
      expect(scrape.status).toBe(200);
      expect(scrape.elapsedMs).toBeLessThan(ANSWER_BOUND_MS);
      const net = find(scrape.samples, 'kata_guest_netdev_stat', { interface: INJECTED_INTERFACE, item: 'recv_bytes' });
      expect(net).toHaveLength(1);
      expect(net[0]!.labels.cri_name).toBe(HOSTILE);
      expect(find(scrape.samples, 'kata_guest_diskstat', { disk: INJECTED_DISK, item: 'sectors_read' })).toHaveLength(1);
      expect(scrape.samples.filter((s) => s.labels.namespace === 'victim' || s.labels.cri_namespace === 'victim')).toEqual([]);
      expect(
        find(scrape.samples, 'kata_bridge_pod_info')
          .map((s) => s.labels.pod)
          .sort(),
      ).toEqual([HOSTILE, ...BYSTANDERS].sort());
      const ours = scrape.samples.filter((s) => s.name.startsWith('kata_bridge_'));
      expect(otherPods(ours, [HOSTILE])).toEqual(otherPods(baseline.samples, [HOSTILE]));
    } finally {
      await raw.close();
    }
  });

  test('(g) 100 MB streamed without a length: cut off at --shim.max-bytes as shim_oversize', async () => {
    await hostile.shim.setBehaviour({ kind: 'oversize', bytes: 100 * MIB });
    const scrape = await timedScrape(node);
    expectContained(scrape);
    expectCutOff(scrape, 'shim_oversize');
    // The exporter hung up long before the guest finished: it never buffered 100 MB.
    expect(hostile.shim.stats.oversizeClientClosedEarly).toBe(true);
    expect(hostile.shim.stats.oversizeWritten).toBeLessThan(100 * MIB);
  });

  test('(g) 100 MB announced in Content-Length: refused before the body is read', async () => {
    await hostile.shim.setBehaviour({ kind: 'oversize', bytes: 100 * MIB, declareLength: true });
    const scrape = await timedScrape(node);
    expectContained(scrape);
    expectCutOff(scrape, 'shim_oversize');
    expect(hostile.shim.stats.oversizeClientClosedEarly).toBe(true);
  });

  test('after the hostile payloads the pod recovers to exactly its baseline series', async () => {
    const scrape = await serve(normalPayload);
    expectContained(scrape);
    expect(podGaps(scrape.samples, HOSTILE)).toEqual([]);
    // A refused or cut-off scrape added nothing to any counter. What the accepted payloads of (d)
    // and (f) invented is the guest's own claim about its own VM, and counters stay monotonic:
    // its extra devices added 5 + 11 bytes received and 3 + 13 sectors read, and nothing else moved.
    const invented = ['kata_bridge_pod_guest_network_receive_bytes_total', 'kata_bridge_pod_guest_disk_read_bytes_total'];
    const rest = (n: string) => !invented.includes(n);
    expect(podLines(scrape.samples, HOSTILE, 'ci', rest)).toEqual(podLines(baseline.samples, HOSTILE, 'ci', rest));
    const at = (s: Scrape, family: string) => valueOf(s.samples, family, { namespace: 'ci', pod: HOSTILE })!;
    expect(at(scrape, invented[0]!)).toBe(at(baseline, invented[0]!) + 5 + 11);
    expect(at(scrape, invented[1]!)).toBe(at(baseline, invented[1]!) + (3 + 13) * 512);
  });
});

describe('a hostile guest through the kubelet (the per-container CRI values it relays)', () => {
  const nowMs = Date.now();
  let node: LabExporter;

  beforeAll(async () => {
    node = await startLabExporter(
      {
        pods: [
          { name: HOSTILE, hypervisor: 'qemu' },
          { name: 'steady', hypervisor: 'qemu' },
        ],
      },
      { flags: ['--kubelet.timeout=1s'], now: () => nowMs },
    );
  });

  afterAll(async () => {
    await node?.close();
  });

  test.each([['NaN'], ['-5'], ['+Inf'], ['1.8446744073709552e+19']])(
    'container CPU %s for one pod: refused and counted, the other pod untouched',
    async (bad) => {
      node.lab.kubelet.setFault(undefined);
      const baseline = await timedScrape(node);
      const rejectedBefore = valueOf(baseline.samples, 'kata_bridge_kubelet_rejected_samples_total', { reason: 'implausible_value' }) ?? 0;
      const payload = node.lab
        .kubeletPayload()
        .split('\n')
        .map((l) =>
          l.startsWith('container_cpu_usage_seconds_total{') && l.includes(`pod="${HOSTILE}"`) ? l.replace(/^(\S+) \S+/, `$1 ${bad}`) : l,
        )
        .join('\n');
      expect(payload).toContain(` ${bad} `);
      node.lab.kubelet.setFault({ kind: 'raw', headers: { 'content-type': 'text/plain; version=0.0.4' }, body: payload });
      try {
        const scrape = await timedScrape(node);
        expect(scrape.status).toBe(200);
        expect(scrape.elapsedMs).toBeLessThan(ANSWER_BOUND_MS);
        expect(foreignNames(scrape.samples)).toEqual([]);
        for (const s of scrape.samples) expect(Number.isFinite(s.value) && s.value >= 0, `${s.name} ${s.value}`).toBe(true);
        expect(valueOf(scrape.samples, 'kata_bridge_kubelet_rejected_samples_total', { reason: 'implausible_value' })).toBe(
          rejectedBefore + 1,
        );
        expect(otherPods(scrape.samples, [HOSTILE])).toEqual(otherPods(baseline.samples, [HOSTILE]));
        // The refused value never reaches the counter: it holds at what was published before.
        const cpu = { namespace: 'ci', pod: HOSTILE, container: 'build' };
        const published = valueOf(scrape.samples, 'kata_bridge_container_cpu_usage_seconds_total', cpu);
        if (published !== undefined)
          expect(published).toBe(valueOf(baseline.samples, 'kata_bridge_container_cpu_usage_seconds_total', cpu));
      } finally {
        node.lab.kubelet.setFault(undefined);
      }
    },
  );
});
