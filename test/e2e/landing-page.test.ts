import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEMO_SCENARIO } from '../../src/lab/demo.ts';
import { coverageOf } from '../../src/publish/coverage.ts';
import { POD_TABLE_REFRESH_MS, renderLandingPage } from '../../src/publish/landing.ts';
import { POD_COLUMNS } from '../../src/publish/pod-table.ts';
import { startExporterOn, startLabExporter, type LabExporter } from '../support/lab-exporter.ts';
import { waitFor } from '../support/wait.ts';

/** The lab's Kata pods as the table names them: in the API server, with a RuntimeClass. */
const KATA_PODS = DEMO_SCENARIO.pods
  .filter((p) => p.inApiServer !== false && p.runtimeClassName !== null)
  .map((p) => `${p.namespace ?? 'ci'}/${p.name}`);
const COL = (heading: string) => POD_COLUMNS.findIndex((c) => c.heading === heading);

/** The pod table as the page shows it now: the text of every cell, row by row. */
function tableCells(page: Page): Promise<string[][]> {
  return page.$$eval('#pod-table tbody tr', (rows) => rows.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
}

/** Host CPU of each row, in page order; NaN for "—". */
const hostCpu = (rows: string[][]) => rows.map((r) => Number.parseFloat(r[COL('Host CPU (cores)')]!));

describe('landing page in a real browser', () => {
  let node: LabExporter;
  let browser: Browser;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kmb-landing-'));
    // Every page refresh may collect, as a scrape would: the lab's changes show at the next one.
    node = await startLabExporter(DEMO_SCENARIO, { minInterval: '0s' });
    node.lab.startTicking(250);
    await fetch(`${node.base}/metrics`).then((r) => r.text());
    // Playwright gives each launch a fresh temporary profile.
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await node?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('shows the node, the coverage of the last collection and links /metrics', async () => {
    const snapshot = node.exporter.latest();
    expect(snapshot).toBeDefined();
    // The demo default namespace is what KATA_PODS assumes for pods that name none.
    expect(snapshot!.pods.map((p) => `${p.namespace}/${p.pod}`).sort()).toEqual([...KATA_PODS].sort());
    const coverage = coverageOf(snapshot!);
    // Independent of the page: the demo scenario's own inputs.
    // Kata pods only: a pod without RuntimeClass (runc) is the audit's business, not a Kata pod.
    expect(coverage.pods).toBe(DEMO_SCENARIO.pods.filter((p) => p.inApiServer !== false && p.runtimeClassName !== null).length);

    const page = await browser.newPage();
    try {
      await page.goto(`${node.base}/`);
      expect(await page.locator('#node').textContent()).toBe(DEMO_SCENARIO.nodeName);
      expect(await page.locator('#pods').textContent()).toBe(String(coverage.pods));
      expect(await page.locator('#containers').textContent()).toBe(String(coverage.containers));
      expect(await page.locator('#first-hand').textContent()).toBe(String(coverage.firstHand));
      expect(await page.locator('#container-gaps').textContent()).toContain('kubelet_zero');
      expect(await page.locator('#pod-gaps').textContent()).toContain('shim_unsafe_runtime');
      const sandboxes = await page.locator('#sandboxes').textContent();
      expect(sandboxes).toContain('unmapped');
      expect(sandboxes).toContain('unsafe_skipped');

      const shot = join(dir, 'landing.png');
      await page.screenshot({ path: shot, fullPage: true });
      const png = await readFile(shot);
      expect(png.length).toBeGreaterThan(1000);
      expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));

      await page.click(`a[href="${node.config.telemetryPath}"]`);
      await page.waitForURL(`${node.base}${node.config.telemetryPath}`);
      const body = (await page.locator('body').textContent()) ?? '';
      expect(body).toContain(`# TYPE kata_bridge_pod_info gauge`);
      expect(body).toContain(`pod="${DEMO_SCENARIO.pods[0]!.name}"`);
    } finally {
      await page.close();
    }
  });

  test("the pod table lists the lab's Kata pods by host CPU and follows the lab without a reload", async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${node.base}/`);
      await page.evaluate('window.loadedOnce = true');
      // The first refreshes: every pod with host data gets a rate.
      const first = await waitFor(
        'a pod table with host CPU rates',
        async () => {
          const rows = await tableCells(page);
          return rows.length === KATA_PODS.length && hostCpu(rows).filter((v) => !Number.isNaN(v)).length >= KATA_PODS.length - 2
            ? rows
            : undefined;
        },
        { timeoutMs: 6 * POD_TABLE_REFRESH_MS, intervalMs: 200 },
      );
      expect(first.map((r) => r[COL('Pod')]).sort()).toEqual([...KATA_PODS].sort());
      const rates = hostCpu(first).filter((v) => !Number.isNaN(v));
      expect(rates).toEqual([...rates].sort((a, b) => b - a));
      // Rows without a rate come last.
      expect(hostCpu(first).slice(rates.length).every(Number.isNaN)).toBe(true);

      // The lab advances: the quietest pod with a rate starts burning far more than any other.
      const quietest = first[rates.length - 1]![COL('Pod')]!;
      const [namespace, name] = quietest.split('/') as [string, string];
      const scenario = DEMO_SCENARIO.pods.find((p) => p.name === name)!;
      node.lab.setContainerCpu(namespace, name, scenario.containers?.[0]?.name ?? 'build', 16);
      const after = await waitFor(
        `${quietest} at the top of the table`,
        async () => {
          const rows = await tableCells(page);
          return rows[0]?.[COL('Pod')] === quietest ? rows : undefined;
        },
        { timeoutMs: 6 * POD_TABLE_REFRESH_MS, intervalMs: 200 },
      );
      expect(hostCpu(after)[0]).toBeGreaterThan(rates[0]!);
      // Same document: updated in place, never reloaded.
      expect(await page.evaluate('window.loadedOnce')).toBe(true);
      expect(await page.locator('#pod-table-status').textContent()).toBe('');
    } finally {
      await page.close();
    }
  });

  test('behind --web.config.file basic auth, the page refreshes its table with the credentials it was opened with', async () => {
    const password = 'correct horse';
    const webConfig = join(dir, 'web.yml');
    await writeFile(webConfig, `basic_auth_users:\n  viewer: "${bcrypt.hashSync(password, 4)}"\n`);
    const secured = await startExporterOn(node.lab, { minInterval: '0s', flags: [`--web.config.file=${webConfig}`] });
    const context = await browser.newContext({ httpCredentials: { username: 'viewer', password } });
    try {
      expect((await fetch(`${secured.base}/top.json`)).status).toBe(401);
      const page = await context.newPage();
      await page.goto(`${secured.base}/`);
      // Nothing collected yet: the table fills only through the authenticated fetch.
      expect(await tableCells(page)).toEqual([]);
      const rows = await waitFor(
        'the table filled by /top.json',
        async () => {
          const cells = await tableCells(page);
          return cells.length > 0 ? cells : undefined;
        },
        { timeoutMs: 4 * POD_TABLE_REFRESH_MS, intervalMs: 200 },
      );
      expect(rows.map((r) => r[COL('Pod')]).sort()).toEqual([...KATA_PODS].sort());
      expect(await page.locator('#pod-table-status').textContent()).toBe('');
    } finally {
      await context.close();
      await secured.close();
    }
  });
});

describe('renderLandingPage', () => {
  test('escapes a hostile node name and telemetry path', () => {
    const html = renderLandingPage(
      { nodeName: '<script>alert("x")</script>&', version: '1', telemetryPath: '/m"><img src=x>', ready: true },
      undefined,
    );
    expect(html).not.toContain('<script>alert');
    expect(html).not.toContain('<img src=x>');
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;');
    expect(html).toContain('href="/m&quot;&gt;&lt;img src=x&gt;"');
    expect(html).toContain('No collection yet.');
  });

  test('escapes reasons and states in the coverage tables', () => {
    const html = renderLandingPage(
      { nodeName: 'n', version: '1', telemetryPath: '/metrics', ready: false },
      {
        pods: 1,
        containers: 2,
        firstHand: 1,
        estimated: 1,
        noValue: 0,
        containerGaps: { '<b>x</b>': 1 },
        podGaps: {},
        sandboxes: { scraped: 1 },
      },
    );
    expect(html).toContain('<td>&lt;b&gt;x&lt;/b&gt;</td>');
    expect(html).toContain('<dd id="containers">2</dd>');
    expect(html).toContain('not ready');
  });
});
