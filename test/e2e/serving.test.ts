import { createServer, connect, type AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { NodeLab, type LabScenario } from '../../src/lab/node-lab.ts';
import { FAMILIES } from '../../src/publish/families.ts';
import { freePort, httpGet, promtoolCheckMetrics, spawnNode, NPM_START, BIN } from '../support/e2e-helpers.ts';
import { startLabExporter, type LabExporter } from '../support/lab-exporter.ts';
import { familyNames, parseSamples, type Sample } from '../support/scrape.ts';
import { waitFor } from '../support/wait.ts';

const SCENARIO: LabScenario = {
  nodeName: 'serving-node',
  pods: [
    { name: 'web-a', hypervisor: 'qemu', runtime: 'go' },
    { name: 'web-b', hypervisor: 'cloud-hypervisor', runtime: 'go' },
  ],
};
const OPENMETRICS_ACCEPT = 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5';

function seriesKeys(text: string): string[] {
  return parseSamples(text)
    .map((s) => `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`)
    .sort();
}

/** The samples of one family. */
function samplesOf(text: string, family: string): Sample[] {
  return parseSamples(text).filter((s) => s.family === family);
}

/** The bridge's own lines (HELP, TYPE and samples of kata_bridge_* families). */
function bridgeLines(text: string): string {
  return `${text
    .split('\n')
    .filter((line) => /^(# (HELP|TYPE) )?kata_bridge_/.test(line))
    .join('\n')}\n`;
}

describe('/metrics, /healthz and deleted pods', () => {
  let node: LabExporter;
  beforeAll(async () => {
    node = await startLabExporter(SCENARIO);
  });
  afterAll(async () => {
    await node?.close();
  });

  test('text format: content type, and it parses with every lab pod identified', async () => {
    const res = await httpGet(`${node.base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; ?version=0\.0\.4/);
    expect(res.headers['content-encoding']).toBeUndefined();
    const info = samplesOf(res.body.toString('utf8'), 'kata_bridge_pod_info');
    const uids = info.map((s) => s.labels.uid).sort();
    expect(uids).toEqual([...node.lab.pods.values()].map((p) => p.uid).sort());
    expect(info.map((s) => s.labels.sandbox_id).sort()).toEqual([...node.lab.pods.values()].map((p) => p.sandboxId).sort());
  });

  test('OpenMetrics on request: content type, # EOF last, counters typed without _total', async () => {
    const res = await httpGet(`${node.base}/metrics`, { Accept: OPENMETRICS_ACCEPT });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/openmetrics-text; ?version=1\.0\.0/);
    const text = res.body.toString('utf8');
    const lines = text.split('\n');
    expect(lines.at(-1)).toBe('');
    expect(lines.at(-2)).toBe('# EOF');
    for (const family of FAMILIES.filter((f) => f.type === 'counter')) {
      const base = `kata_bridge_${family.name.replace(/_total$/, '')}`;
      expect(text).toContain(`# TYPE ${base} counter\n`);
      expect(text).not.toContain(`# TYPE ${base}_total `);
    }
  });

  test('gzip on request decompresses to the same series', async () => {
    const zipped = await httpGet(`${node.base}/metrics`, { 'Accept-Encoding': 'gzip, deflate' });
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(zipped.body.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    const plain = await httpGet(`${node.base}/metrics`);
    const unzipped = gunzipSync(zipped.body).toString('utf8');
    expect(familyNames(unzipped).sort()).toEqual(familyNames(plain.body.toString('utf8')).sort());
    expect(seriesKeys(unzipped).filter((k) => !k.startsWith('kata_bridge_collection_duration'))).toEqual(
      seriesKeys(plain.body.toString('utf8')).filter((k) => !k.startsWith('kata_bridge_collection_duration')),
    );
  });

  test('/healthz answers 200', async () => {
    const res = await httpGet(`${node.base}/healthz`);
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('ok\n');
  });

  test('our own families pass promtool check metrics cleanly', async () => {
    const text = (await httpGet(`${node.base}/metrics`)).body.toString('utf8');
    const result = await promtoolCheckMetrics(text);
    expect(result, result.stdout + result.stderr).toMatchObject({ code: 0 });
  });

  test("a deleted pod's series are gone at the next scrape", async () => {
    const before = (await httpGet(`${node.base}/metrics`)).body.toString('utf8');
    expect(before).toContain('pod="web-b"');
    await node.lab.removePod('ci', 'web-b');
    await waitFor('the watch to see the deletion', () => ![...node.exporter.watcher.pods().values()].some((p) => p.name === 'web-b'));
    const after = (await httpGet(`${node.base}/metrics`)).body.toString('utf8');
    expect(after).not.toContain('web-b');
    expect(after).toContain('pod="web-a"');
    expect(samplesOf(after, 'kata_bridge_sandboxes').reduce((sum, s) => sum + s.value, 0)).toBe(1);
  });
});

describe('single flight and --collector.shim-raw', () => {
  let node: LabExporter;
  beforeAll(async () => {
    node = await startLabExporter(SCENARIO, { minInterval: '10m', flags: ['--collector.shim-raw'] });
  });
  afterAll(async () => {
    await node?.close();
  });

  test('concurrent scrapes share one collection within --collect.min-interval', async () => {
    expect(node.exporter.collections).toBe(0);
    const responses = await Promise.all(Array.from({ length: 12 }, () => httpGet(`${node.base}/metrics`)));
    expect(responses.map((r) => r.status)).toEqual(Array(12).fill(200));
    expect(node.exporter.collections).toBe(1);
    const bodies = new Set(responses.map((r) => r.body.toString('utf8')));
    expect(bodies.size).toBe(1);
    await httpGet(`${node.base}/metrics`);
    expect(node.exporter.collections).toBe(1);
  });

  test('raw shim families carry the kata-monitor labels and renamed Go families', async () => {
    const text = (await httpGet(`${node.base}/metrics`)).body.toString('utf8');
    const raw = parseSamples(text).filter((s) => s.family.startsWith('kata_') && !s.family.startsWith('kata_bridge_'));
    expect(raw.length).toBeGreaterThan(0);
    const expected = [...node.lab.pods.values()].map((p) =>
      JSON.stringify({ sandbox_id: p.sandboxId, cri_uid: p.uid, cri_name: p.scenario.name, cri_namespace: p.scenario.namespace }),
    );
    for (const sample of raw) {
      const { sandbox_id, cri_uid, cri_name, cri_namespace } = sample.labels;
      expect(expected, `${sample.name}`).toContain(JSON.stringify({ sandbox_id, cri_uid, cri_name, cri_namespace }));
    }
    const names = familyNames(text);
    expect(names.some((n) => n.startsWith('kata_shim_go_'))).toBe(true);
    expect(names.some((n) => n.startsWith('kata_shim_process_'))).toBe(true);
    expect(names.filter((n) => n.startsWith('go_') || n.startsWith('process_'))).toEqual([]);
  });

  test('promtool: bridge families clean; raw Kata families only draw naming lint, never errors', async () => {
    const text = (await httpGet(`${node.base}/metrics`)).body.toString('utf8');
    expect(await promtoolCheckMetrics(bridgeLines(text))).toMatchObject({ code: 0 });
    // Exit 1 would be a parse error; 3 is lint only (Kata's own names, e.g. _milliseconds units).
    const whole = await promtoolCheckMetrics(text);
    expect([0, 3], whole.stdout + whole.stderr).toContain(whole.code);
    const problems = (whole.stdout + whole.stderr).split('\n').filter((l) => l.trim() !== '');
    expect(problems.filter((l) => !/^kata_(?!bridge_)\w+ /.test(l))).toEqual([]);
  });
});

describe('/readyz', () => {
  let node: LabExporter;
  beforeAll(async () => {
    node = await startLabExporter(SCENARIO, { readyTimeoutMs: 0, beforeStart: (lab) => lab.apiServer.goDown() });
  });
  afterAll(async () => {
    await node?.close();
  });

  test('503 before the first pod list, 200 once the API server answers', async () => {
    const waiting = await httpGet(`${node.base}/readyz`);
    expect(waiting.status).toBe(503);
    expect((await httpGet(`${node.base}/healthz`)).status).toBe(200);
    await node.lab.apiServer.comeUp();
    await waitFor('the first pod list', () => node.exporter.isReady(), { timeoutMs: 60_000 });
    expect((await httpGet(`${node.base}/readyz`)).status).toBe(200);
  });
});

describe.concurrent('the real process', () => {
  async function servesThenStops(entry: string[]): Promise<void> {
    const port = await freePort();
    const child = spawnNode([...entry, '--demo', `--web.listen-address=127.0.0.1:${port}`]);
    try {
      await waitFor('/healthz', async () => (await httpGet(`http://127.0.0.1:${port}/healthz`)).status === 200, { timeoutMs: 90_000 });
      child.kill('SIGTERM');
      expect(await child.exited(30_000)).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
    const logs = child.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logs.find((l) => l.msg === 'shutting down')).toMatchObject({ signal: 'SIGTERM', app: 'kata-metrics-bridge' });
  }

  test('SIGTERM: `npm start`\'s command (node --import tsx src/main.ts) exits 0 and logs "shutting down" as JSON', async () => {
    await servesThenStops(NPM_START);
  });

  test('SIGTERM to the bin reaches the exporter, which exits 0', async () => {
    await servesThenStops([BIN]);
  });

  test('the listen port already taken: exits 1 with a message naming the address and what to do', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as AddressInfo;
    try {
      const child = spawnNode([BIN, '--demo', `--web.listen-address=127.0.0.1:${port}`]);
      expect(await child.exited(90_000)).toBe(1);
      expect(child.stderr).toContain(`kata-metrics-bridge: cannot listen on 127.0.0.1:${port}: another process already listens there`);
      expect(child.stderr).toContain('choose another --web.listen-address');
    } finally {
      holder.close();
    }
  }, 120_000);

  test('SIGTERM while a client trickles its request headers: the process still exits 0', async () => {
    const port = await freePort();
    const child = spawnNode([BIN, '--demo', `--web.listen-address=127.0.0.1:${port}`]);
    let trickle: NodeJS.Timeout | undefined;
    try {
      await waitFor('/healthz', async () => (await httpGet(`http://127.0.0.1:${port}/healthz`)).status === 200, { timeoutMs: 90_000 });
      const slow = connect(port, '127.0.0.1');
      slow.on('error', () => undefined);
      await new Promise<void>((resolve) => slow.once('connect', () => resolve()));
      // One header line now and one every second: the request never completes on its own.
      slow.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
      trickle = setInterval(() => slow.write('X-Slow: 1\r\n'), 1_000);
      child.kill('SIGTERM');
      // Node's default request timeouts alone would hold the exit for 60 s or more.
      expect(await child.exited(30_000)).toBe(0);
    } finally {
      clearInterval(trickle);
      child.kill('SIGKILL');
    }
  }, 150_000);

  test('--once --demo prints an exposition and exits 0', async () => {
    const child = spawnNode([...NPM_START, '--once', '--demo']);
    expect(await child.exited(90_000)).toBe(0);
    const sourceUp = samplesOf(child.stdout, 'kata_bridge_source_up');
    expect(sourceUp.length).toBeGreaterThan(0);
    expect(sourceUp.every((s) => s.value === 1)).toBe(true);
    expect(familyNames(child.stdout)).toContain('kata_bridge_pod_info');
  });
});

describe('--once against an unreachable kubelet', () => {
  // Only the lab: the exporter under test is the child process.
  let lab: NodeLab;
  beforeAll(async () => {
    lab = await NodeLab.start(SCENARIO);
  });
  afterAll(async () => {
    await lab?.close();
  });

  test('exits non-zero and names the failed source', async () => {
    const closed = await freePort();
    const child = spawnNode([...NPM_START, '--once', ...lab.flags(), `--kubelet.url=https://127.0.0.1:${closed}`, '--kubelet.timeout=1s']);
    expect(await child.exited(90_000)).not.toBe(0);
    expect(child.stdout).toContain('kata_bridge_source_up{source="kubelet"} 0');
    const failed = child.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg?: string; sources?: string[] });
    expect(failed.find((l) => l.msg === 'sources failed during the collection')?.sources).toContain('kubelet');
  });
});
