/**
 * The fault matrix (docs/security.md, "Faults"): each fault once on the simulated node, with a
 * frozen clock so a run with the fault compares series for series with the run without it. For
 * every fault: /metrics answers within the collection deadline (+2 s of margin: the only timing
 * bound asserted), the affected pod or source is flagged with the right reason, and every
 * unaffected pod's series are identical to the run without the fault.
 */

import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, test } from 'vitest';
import { parseCommandLine } from '../../src/config.ts';
import { createCertificateAuthority } from '../../src/lab/tls.ts';
import {
  ANSWER_BOUND_MS,
  deadSocket,
  flickerCgroups,
  hideSocket,
  kubeletIndependent,
  projectedToken,
  scrapeUntil,
  setPersistedVmmPid,
  socketPathOf,
  timedScrape,
  useFaultNode,
  writeProcess,
  type Scrape,
} from '../support/fault-helpers.ts';
import { startExporterOn, type LabExporter } from '../support/lab-exporter.ts';
import { containerGaps, find, foreignNames, otherPods, podGaps, podLines, sourceUp, valueOf, type Sample } from '../support/scrape.ts';
import { waitFor } from '../support/wait.ts';

const MIB = 2 ** 20;

/** What every fault must leave standing: an answer in time that parses, and only our own families. */
function expectAnswered(scrape: Scrape): void {
  expect(scrape.status).toBe(200);
  expect(scrape.elapsedMs).toBeLessThan(ANSWER_BOUND_MS);
  expect(foreignNames(scrape.samples)).toEqual([]);
}

/** Every pod's series restricted to the families a fault of this kind cannot touch. */
function podsWhere(samples: readonly Sample[], keep: (name: string) => boolean): Record<string, string[]> {
  const all = otherPods(samples, []);
  return Object.fromEntries(Object.entries(all).map(([pod, lines]) => [pod, lines.filter((l) => keep(l.slice(0, l.indexOf('{'))))]));
}

// ─── kubelet ────────────────────────────────────────────────────────────────────

describe('kubelet faults', () => {
  const PODS = ['steady', 'clh-only'];
  const setup = useFaultNode([
    { name: 'steady', hypervisor: 'qemu' },
    { name: 'clh-only', hypervisor: 'cloud-hypervisor', sandboxCgroupOnly: true },
  ]);
  const nowMs = setup.nowMs;
  let node: LabExporter;
  let token: string;
  let baseline: Scrape;

  beforeAll(async () => {
    ({ node, baseline } = setup);
    token = (await readFile(node.lab.endpoints.kubeletTokenFile, 'utf8')).trim();
  });

  /** The kubelet is down for this exporter: flagged per source, per pod and per container; the rest stands. */
  function expectKubeletDown(scrape: Scrape): void {
    expectAnswered(scrape);
    expect(sourceUp(scrape.samples, 'kubelet')).toBe(0);
    for (const pod of PODS) {
      expect(podGaps(scrape.samples, pod), pod).toEqual(['kubelet_unreachable']);
      expect(containerGaps(scrape.samples, pod), pod).toEqual(['build:kubelet_unreachable']);
    }
    expect(podsWhere(scrape.samples, kubeletIndependent)).toEqual(podsWhere(baseline.samples, kubeletIndependent));
    for (const source of ['shims', 'cgroups', 'pods']) expect(sourceUp(scrape.samples, source), source).toBe(1);
  }

  async function expectRecovered(): Promise<void> {
    const scrape = await timedScrape(node);
    expectAnswered(scrape);
    expect(sourceUp(scrape.samples, 'kubelet')).toBe(1);
    // Counters switched to the guest estimate and back without a jump: identical to before.
    expect(otherPods(scrape.samples, [])).toEqual(otherPods(baseline.samples, []));
  }

  test('baseline: the kubelet answers', () => {
    expectAnswered(baseline);
    expect(sourceUp(baseline.samples, 'kubelet')).toBe(1);
    for (const pod of PODS) expect(podGaps(baseline.samples, pod)).toEqual([]);
  });

  test.each([
    ['HTTP 500', { kind: 'status', status: 500 }],
    ['slow: answers after --kubelet.timeout', { kind: 'delay', ms: 3000 }],
    ['a garbage body', { kind: 'garbage' }],
  ] as const)('kubelet %s: source down, kubelet_unreachable on every pod and container', async (_name, fault) => {
    node.lab.kubelet.setFault(fault);
    try {
      expectKubeletDown(await timedScrape(node));
    } finally {
      node.lab.kubelet.setFault(undefined);
    }
    await expectRecovered();
  });

  test('kubelet 401 (the exporter holds a wrong token): source down, kubelet_unreachable', async () => {
    node.lab.kubelet.setToken('a-token-the-exporter-does-not-have');
    try {
      expectKubeletDown(await timedScrape(node));
      expect(node.lab.kubelet.lastRequest?.authorization).toBe(`Bearer ${token}`);
    } finally {
      node.lab.kubelet.setToken(token);
    }
    await expectRecovered();
  });

  test('TLS mismatch (exporter pinned to another CA): source down, kubelet_unreachable', async () => {
    const other = await createCertificateAuthority({ commonName: 'not the kubelet CA' });
    const caFile = join(node.lab.dir, 'other-ca.crt');
    await writeFile(caFile, other.certPem);
    const pinned = await startExporterOn(node.lab, {
      flags: ['--kubelet.timeout=1s', '--shim.timeout=1s', `--kubelet.ca-file=${caFile}`],
      now: () => nowMs,
    });
    try {
      expectKubeletDown(await timedScrape(pinned));
    } finally {
      await pinned.close();
    }
  });

  test('token rotation: the projected token is swapped by symlink and the kubelet expects the new one; the next scrape succeeds', async () => {
    const projected = await projectedToken(join(node.lab.dir, 'serviceaccount'), token);
    const rotating = await startExporterOn(node.lab, {
      flags: ['--kubelet.timeout=1s', '--shim.timeout=1s', `--kubelet.token-file=${projected.path}`],
      now: () => nowMs,
    });
    try {
      const before = await timedScrape(rotating);
      expectAnswered(before);
      expect(sourceUp(before.samples, 'kubelet')).toBe(1);
      const next = 'rotated-token-0123456789abcdef';
      await projected.rotate(next);
      node.lab.kubelet.setToken(next);
      const after = await timedScrape(rotating);
      expectAnswered(after);
      expect(sourceUp(after.samples, 'kubelet')).toBe(1);
      expect(node.lab.kubelet.lastRequest?.authorization).toBe(`Bearer ${next}`);
      expect(otherPods(after.samples, [])).toEqual(otherPods(baseline.samples, []));
    } finally {
      node.lab.kubelet.setToken(token);
      await rotating.close();
    }
  });

  test('a --kubelet.timeout above --collect.deadline cannot hold /metrics past the deadline (rejected at start, or cut by the deadline)', async () => {
    const flags = ['--collect.deadline=2s', '--shim.timeout=1s', '--kubelet.timeout=6s'];
    let refused = false;
    try {
      parseCommandLine([...node.lab.flags(), ...flags], {});
    } catch {
      refused = true; // a ConfigError, like --shim.timeout >= --collect.deadline: the contract holds
    }
    if (refused) return;
    const slow = await startExporterOn(node.lab, { flags, now: () => nowMs });
    node.lab.kubelet.setFault({ kind: 'hang' });
    try {
      const scrape = await timedScrape(slow);
      expect(scrape.status).toBe(200);
      // --collect.deadline=2s: "a collection answers within this time with whatever sources finished".
      expect(scrape.elapsedMs).toBeLessThan(2000 + 2000);
    } finally {
      node.lab.kubelet.setFault(undefined);
      await slow.close();
    }
  });

  // Last: a closed FakeKubelet cannot listen again.
  test('kubelet down (port closed): source down, kubelet_unreachable on every pod and container', async () => {
    await node.lab.kubelet.close();
    expectKubeletDown(await timedScrape(node));
  });
});

// ─── API server ─────────────────────────────────────────────────────────────────

describe('API server faults', () => {
  const setup = useFaultNode([
    { name: 'steady', hypervisor: 'qemu' },
    { name: 'clh-only', hypervisor: 'cloud-hypervisor', sandboxCgroupOnly: true },
    { name: 'doomed', hypervisor: 'qemu' },
  ]);
  const nowMs = setup.nowMs;
  let node: LabExporter;
  let baseline: Scrape;

  beforeAll(async () => {
    ({ node, baseline } = setup);
  });

  /** Throws unless the exporter's pod watch is (re-)established within 10 s. */
  const watching = () =>
    waitFor('the pod watch to be established', () => node.exporter.watcher.stats().pods.watching, { timeoutMs: 10_000, intervalMs: 100 });

  test('baseline: three pods, the pod source up', () => {
    expectAnswered(baseline);
    expect(Object.keys(otherPods(baseline.samples, []))).toEqual(['clh-only', 'doomed', 'steady']);
    expect(sourceUp(baseline.samples, 'pods')).toBe(1);
  });

  test('watch ended with 410 Gone: the exporter relists, and a pod deleted meanwhile disappears', async () => {
    await watching();
    const relists = node.exporter.watcher.stats().pods.relists;
    await node.lab.apiServer.goDown();
    // Deleted while the watch is away: no DELETED event can reach it; history is then compacted.
    await node.lab.removePod('ci', 'doomed');
    node.lab.apiServer.compact();
    await node.lab.apiServer.comeUp();
    const after = await scrapeUntil(
      node,
      'the pod source up again without ci/doomed',
      (s) => sourceUp(s.samples, 'pods') === 1 && find(s.samples, 'kata_bridge_pod_info', { pod: 'doomed' }).length === 0,
      10_000,
    );
    expectAnswered(after);
    expect(node.exporter.watcher.stats().pods.relists).toBeGreaterThan(relists);
    expect(after.samples.filter((s) => s.labels.pod === 'doomed')).toEqual([]);
    expect(otherPods(after.samples, [])).toEqual(otherPods(baseline.samples, ['doomed']));
  });

  test('down in the middle of a watch: pods keep their last known state, the source is flagged, then it recovers', async () => {
    await watching();
    const before = await timedScrape(node);
    expect(sourceUp(before.samples, 'pods')).toBe(1);
    await node.lab.apiServer.goDown();
    try {
      const down = await scrapeUntil(node, 'the pod source flagged down', (s) => sourceUp(s.samples, 'pods') === 0, 10_000);
      expectAnswered(down);
      expect((await node.get('/readyz')).status).toBe(200);
      expect(otherPods(down.samples, [])).toEqual(otherPods(before.samples, []));
    } finally {
      await node.lab.apiServer.comeUp();
    }
    // The watch is re-established from its resourceVersion (no relist needed)...
    await watching();
    // ...and the source must say so within 5 s: an operator alerting on source_up would otherwise
    // see an outage for the whole life of the new watch (5–10 minutes).
    const back = await scrapeUntil(node, 'the pod source up again', (s) => sourceUp(s.samples, 'pods') === 1, 5_000);
    expectAnswered(back);
    expect(otherPods(back.samples, [])).toEqual(otherPods(before.samples, []));
  });

  test('down at start: not ready (/readyz 503) and /metrics still answers; it comes up: ready, and the pods appear', async () => {
    const expected = await timedScrape(node);
    await node.lab.apiServer.goDown();
    const late = await startExporterOn(node.lab, {
      flags: ['--shim.timeout=1s', '--kubelet.timeout=1s'],
      now: () => nowMs,
      readyTimeoutMs: 0,
    });
    try {
      expect((await late.get('/readyz')).status).toBe(503);
      const down = await timedScrape(late);
      expectAnswered(down);
      expect(sourceUp(down.samples, 'pods')).toBe(0);
      expect(find(down.samples, 'kata_bridge_pod_info')).toEqual([]);
      // The node's sandboxes are not hidden meanwhile: each is reported as unmapped.
      expect(find(down.samples, 'kata_bridge_sandbox_unmapped')).toHaveLength(2);
      await node.lab.apiServer.comeUp();
      await waitFor('/readyz 200 once the API server is back', async () => (await late.get('/readyz')).status === 200, {
        timeoutMs: 10_000,
        intervalMs: 100,
      });
      const up = await scrapeUntil(
        late,
        'the pod source up with both pods',
        (s) => sourceUp(s.samples, 'pods') === 1 && find(s.samples, 'kata_bridge_pod_info').length === 2,
        10_000,
      );
      expectAnswered(up);
      // A fresh exporter on the same frozen node publishes exactly what the first one does.
      expect(otherPods(up.samples, [])).toEqual(otherPods(expected.samples, []));
    } finally {
      await node.lab.apiServer.comeUp();
      await late.close();
    }
  });
});

// ─── Kata shims ─────────────────────────────────────────────────────────────────

describe('shim faults', () => {
  const VICTIM = 'victim';
  const setup = useFaultNode([
    { name: VICTIM, hypervisor: 'qemu' },
    { name: 'steady', hypervisor: 'qemu' },
    { name: 'clh-only', hypervisor: 'cloud-hypervisor', sandboxCgroupOnly: true },
  ]);
  const nowMs = setup.nowMs;
  let node: LabExporter;
  let baseline: Scrape;

  beforeAll(async () => {
    ({ node, baseline } = setup);
  });

  const notFromShim = (name: string) => !name.startsWith('kata_bridge_pod_guest_') && name !== 'kata_bridge_pod_metrics_gap';

  function expectVictimFlagged(scrape: Scrape, reason: string, state: string): void {
    expectAnswered(scrape);
    expect(podGaps(scrape.samples, VICTIM)).toEqual([reason]);
    expect(podLines(scrape.samples, VICTIM, 'ci', (n) => n.startsWith('kata_bridge_pod_guest_'))).toEqual([]);
    expect(podLines(scrape.samples, VICTIM, 'ci', notFromShim)).toEqual(podLines(baseline.samples, VICTIM, 'ci', notFromShim));
    expect(otherPods(scrape.samples, [VICTIM])).toEqual(otherPods(baseline.samples, [VICTIM]));
    expect(valueOf(scrape.samples, 'kata_bridge_sandboxes', { runtime: 'go', state })).toBe(1);
    // One shim failing is a pod gap, not a source outage.
    expect(sourceUp(scrape.samples, 'shims')).toBe(1);
  }

  async function expectRecovered(): Promise<void> {
    const scrape = await timedScrape(node);
    expectAnswered(scrape);
    expect(otherPods(scrape.samples, [])).toEqual(otherPods(baseline.samples, []));
  }

  test('baseline: every shim answers', () => {
    expectAnswered(baseline);
    expect(valueOf(baseline.samples, 'kata_bridge_sandboxes', { runtime: 'go', state: 'scraped' })).toBe(3);
  });

  test('socket missing: shim_socket_missing', async () => {
    const restore = await hideSocket(node.lab, 'ci', VICTIM);
    try {
      expectVictimFlagged(await timedScrape(node), 'shim_socket_missing', 'no_socket');
    } finally {
      await restore();
    }
    await expectRecovered();
  });

  test('socket refusing (a dead shim left its socket file): shim_unreachable', async () => {
    const restore = await deadSocket(node.lab, 'ci', VICTIM);
    try {
      expectVictimFlagged(await timedScrape(node), 'shim_unreachable', 'failed');
    } finally {
      await restore();
    }
    await expectRecovered();
  });

  test.each([
    ['hanging', 'shim_timeout', { kind: 'hang' }],
    ['trickling one byte per 100 ms', 'shim_timeout', { kind: 'trickle', intervalMs: 100 }],
    ['sending 100 MB', 'shim_oversize', { kind: 'oversize', bytes: 100 * MIB }],
    ['answering garbage', 'shim_malformed', { kind: 'garbage' }],
    ['closing mid-response', 'shim_unreachable', { kind: 'close_mid_response' }],
    ['answering HTTP 500', 'shim_unreachable', { kind: 'status', status: 500 }],
  ] as const)('shim %s: %s', async (_name, reason, behaviour) => {
    await node.lab.setShimBehaviour('ci', VICTIM, behaviour);
    try {
      expectVictimFlagged(await timedScrape(node), reason, 'failed');
    } finally {
      await node.lab.setShimBehaviour('ci', VICTIM, { kind: 'normal' });
    }
    await expectRecovered();
  });

  // Guards a NodeLab bug that was fixed: the lab binds each shim at a short path and renames it into
  // the sandbox, and FakeShim once kept the short path, so switching a running shim to `refuse`
  // hard-linked a path that no longer existed.
  test('lab: setShimBehaviour(refuse) on a running pod leaves a refusing socket at the sandbox path', async () => {
    // Last in this block, and not undone: after the failed switch only lab.close() can stop the shim.
    await node.lab.setShimBehaviour('ci', VICTIM, { kind: 'refuse' });
    expect(socketPathOf(node.lab, 'ci', VICTIM)).toContain(node.lab.pods.get(`ci/${VICTIM}`)!.sandboxId);
    expectVictimFlagged(await timedScrape(node), 'shim_unreachable', 'failed');
  });
});

// ─── host cgroups and processes ─────────────────────────────────────────────────

describe('cgroup and process faults', () => {
  const setup = useFaultNode([
    { name: 'flicker', hypervisor: 'qemu' },
    { name: 'reused', hypervisor: 'cloud-hypervisor' },
    { name: 'steady', hypervisor: 'qemu' },
  ]);
  const nowMs = setup.nowMs;
  let node: LabExporter;
  let baseline: Scrape;

  beforeAll(async () => {
    ({ node, baseline } = setup);
  });

  const hostFamily = (name: string) => name.startsWith('kata_bridge_pod_host_');

  /** A pod whose cgroups come and go shows cgroup_not_found or its whole value, never a part of it. */
  function expectWholeOrGap(scrape: Scrape, pod: string): void {
    const host = podLines(scrape.samples, pod, 'ci', hostFamily);
    if (podGaps(scrape.samples, pod).includes('cgroup_not_found')) expect(host, 'no host value during cgroup_not_found').toEqual([]);
    else expect(host, 'a torn host value').toEqual(podLines(baseline.samples, pod, 'ci', hostFamily));
  }

  test('the pod cgroup gone while its /kata_overhead cgroup remains: cgroup_not_found, not the overhead alone', async () => {
    const state = node.lab.pods.get('ci/flicker')!;
    const paths = node.lab.cgroups.paths(state.uid)!;
    const root = node.lab.endpoints.cgroupRoot;
    const stash = join(node.lab.dir, 'pod-cgroup-stash');
    for (const h of ['cpu,cpuacct', 'memory']) {
      await cp(join(root, h, paths.pod), join(stash, h), { recursive: true });
      await rm(join(root, h, paths.pod), { recursive: true });
    }
    try {
      const gone = await timedScrape(node);
      expectAnswered(gone);
      expectWholeOrGap(gone, 'flicker');
      expect(podGaps(gone.samples, 'flicker')).toContain('cgroup_not_found');
    } finally {
      for (const h of ['cpu,cpuacct', 'memory']) await cp(join(stash, h), join(root, h, paths.pod), { recursive: true });
      await rm(stash, { recursive: true });
    }
    // Back: the host CPU counter must not have swallowed the pod cgroup's whole CPU a second time.
    const back = await timedScrape(node);
    expectWholeOrGap(back, 'flicker');
    expect(otherPods(back.samples, ['flicker'])).toEqual(otherPods(baseline.samples, ['flicker']));
  });

  test('cgroup directories vanishing and reappearing while being read: never a crash, cgroup_not_found or the whole value', async () => {
    // A fresh exporter: the deterministic test above may have left this one's counters inflated.
    const fresh = await startExporterOn(node.lab, { flags: ['--shim.timeout=1s', '--kubelet.timeout=1s'], now: () => nowMs });
    let release!: () => void;
    const stop = new Promise<void>((resolve) => (release = resolve));
    const flicker = flickerCgroups(node.lab, 'ci', 'flicker', stop);
    const outcomes = { gap: 0, whole: 0 };
    try {
      for (let i = 0; i < 30; i++) {
        const scrape = await timedScrape(fresh);
        expectAnswered(scrape);
        expect(otherPods(scrape.samples, ['flicker'])).toEqual(otherPods(baseline.samples, ['flicker']));
        expectWholeOrGap(scrape, 'flicker');
        outcomes[podGaps(scrape.samples, 'flicker').includes('cgroup_not_found') ? 'gap' : 'whole']++;
      }
    } finally {
      release();
      expect(await flicker).toBeGreaterThan(0);
      await fresh.close();
    }
    expect(outcomes.gap + outcomes.whole).toBe(30);
  });

  test('a pid reused by an unrelated process: the hypervisor stays from the state file and nothing is attributed wrongly', async () => {
    const steady = node.lab.pods.get('ci/steady')!;
    // Pid 4242 is now steady's QEMU; 4343 an ordinary shell. reused's persist.json still names 4242.
    await writeProcess(node.lab, 4242, 'qemu-system-x86', ['/usr/bin/qemu-system-x86_64', '-name', `sandbox-${steady.sandboxId}`]);
    await writeProcess(node.lab, 4343, 'bash', ['/bin/bash']);
    const before = await timedScrape(node);
    await setPersistedVmmPid(node.lab, 'ci', 'reused', 4242);
    const after = await timedScrape(node);
    expectAnswered(after);
    expect(find(after.samples, 'kata_bridge_pod_info', { pod: 'reused' })[0]?.labels.hypervisor).toBe('cloud-hypervisor');
    expect(find(after.samples, 'kata_bridge_pod_info', { pod: 'steady' })[0]?.labels.hypervisor).toBe('qemu');
    expect(otherPods(after.samples, [])).toEqual(otherPods(before.samples, []));
    await setPersistedVmmPid(node.lab, 'ci', 'reused', 4343);
    expect(otherPods((await timedScrape(node)).samples, [])).toEqual(otherPods(before.samples, []));
  });
});

// ─── sandbox churn ──────────────────────────────────────────────────────────────

describe('sandbox churn', () => {
  const setup = useFaultNode([
    { name: 'steady', hypervisor: 'qemu' },
    { name: 'clh-only', hypervisor: 'cloud-hypervisor', sandboxCgroupOnly: true },
  ]);
  const nowMs = setup.nowMs;
  let node: LabExporter;
  let baseline: Scrape;

  beforeAll(async () => {
    ({ node, baseline } = setup);
  });

  test('sandboxes appear and disappear during collections: stable pods identical, churned pods only ever their own', async () => {
    const sandboxOf = new Map<string, string>();
    let stopped = false;
    const churn = (async () => {
      for (let i = 0; !stopped; i++) {
        const name = `churn-${i}`;
        const state = await node.lab.addPod({ name, hypervisor: i % 2 === 0 ? 'qemu' : 'cloud-hypervisor' });
        sandboxOf.set(name, state.sandboxId);
        await sleep(i % 3 === 0 ? 0 : 15);
        await node.lab.removePod('ci', name);
      }
    })();
    try {
      for (let i = 0; i < 25; i++) {
        const scrape = await timedScrape(node);
        expectAnswered(scrape);
        expect(otherPods(scrape.samples, [...sandboxOf.keys()])).toEqual(otherPods(baseline.samples, []));
        for (const info of find(scrape.samples, 'kata_bridge_pod_info')) {
          const expected = sandboxOf.get(info.labels.pod!);
          if (expected !== undefined && info.labels.sandbox_id !== '') expect(info.labels.sandbox_id).toBe(expected);
        }
      }
    } finally {
      stopped = true;
      await churn;
    }
    const settled = await scrapeUntil(
      node,
      'the two stable pods alone, no sandbox unmapped',
      (s) => find(s.samples, 'kata_bridge_pod_info').length === 2 && find(s.samples, 'kata_bridge_sandbox_unmapped').length === 0,
      15_000,
    );
    expectAnswered(settled);
    expect(otherPods(settled.samples, [])).toEqual(otherPods(baseline.samples, []));
  });
});

// ─── starvation ─────────────────────────────────────────────────────────────────

describe('starvation: 30 hanging shims and 6 honest pods, default flags', () => {
  const HONEST = Array.from({ length: 6 }, (_, i) => `honest-${i}`);
  const HANGING = Array.from({ length: 30 }, (_, i) => `hanging-${i}`);
  // Interleaved, so that discovery meets honest sandboxes among, before and after the hanging ones.
  const pods = HANGING.flatMap((name, i) =>
    i % 5 === 4 ? [{ name, shim: { kind: 'hang' } as const }, { name: HONEST[(i - 4) / 5]! }] : [{ name, shim: { kind: 'hang' } as const }],
  );
  // No flags: --shim.timeout 3s, --shim.concurrency 8, --collect.deadline 5s, as the issue ran it.
  const setup = useFaultNode(pods, []);
  const COLLECTIONS = 8;

  test(
    'after the first collection, every honest pod has guest data in every collection; every hanging one keeps shim_timeout',
    { timeout: 180_000 },
    async () => {
      const { node } = setup;
      const hangingCalls = () => HANGING.reduce((sum, name) => sum + node.lab.pods.get(`ci/${name}`)!.shim!.stats.calls, 0);
      const gapsPerCollection: string[][] = [];
      for (let i = 0; i < COLLECTIONS; i++) {
        const scrape = await timedScrape(node);
        expectAnswered(scrape);
        const missing = HONEST.filter(
          (pod) =>
            podGaps(scrape.samples, pod).length > 0 ||
            find(scrape.samples, 'kata_bridge_pod_guest_cpu_usage_seconds_total', { pod }).length !== 1,
        );
        gapsPerCollection.push(missing);
        for (const pod of HANGING) expect(podGaps(scrape.samples, pod), `${pod} in collection ${i + 2}`).toEqual(['shim_timeout']);
      }
      // The baseline scrape was the first collection, in which every sandbox was new to the exporter.
      expect(gapsPerCollection).toEqual(Array.from({ length: COLLECTIONS }, () => []));
      // Backed off: the hanging shims were not all asked in every collection.
      expect(hangingCalls()).toBeLessThan(HANGING.length * (COLLECTIONS + 1));
    },
  );
});
