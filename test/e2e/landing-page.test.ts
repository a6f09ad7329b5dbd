import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEMO_SCENARIO } from '../../src/lab/demo.ts';
import { coverageOf } from '../../src/publish/coverage.ts';
import { renderLandingPage } from '../../src/publish/landing.ts';
import { startLabExporter, type LabExporter } from '../support/lab-exporter.ts';

describe('landing page in a real browser', () => {
  let node: LabExporter;
  let browser: Browser;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kmb-landing-'));
    node = await startLabExporter(DEMO_SCENARIO, { minInterval: '10m' });
    await fetch(`${node.base}/metrics`).then((r) => r.text());
    // Playwright gives each launch a fresh temporary profile.
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
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
      { pods: 1, containers: 2, firstHand: 1, estimated: 1, noValue: 0, containerGaps: { '<b>x</b>': 1 }, podGaps: {}, sandboxes: { scraped: 1 } },
    );
    expect(html).toContain('<td>&lt;b&gt;x&lt;/b&gt;</td>');
    expect(html).toContain('<dd id="containers">2</dd>');
    expect(html).toContain('not ready');
  });
});
