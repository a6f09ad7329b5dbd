/**
 * The whole exposition of a fixed simulated node, compared with test/fixtures/e2e-output.txt
 * (as node_exporter's e2e-output.txt), and linted by promtool, as is the live exposition of the
 * real exporter (self and process metrics included). With a frozen clock every value is
 * determined by the scenario; only collection durations are normalised.
 * Update after an intended change: UPDATE_GOLDEN=1 npx vitest run test/e2e/golden.test.ts
 */

import { readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { DEMO_SCENARIO } from '../../src/lab/demo.ts';
import { BIN, promtoolCheckMetrics, spawnNode } from '../support/e2e-helpers.ts';
import { startLabExporter, type LabExporter } from '../support/lab-exporter.ts';

const GOLDEN = new URL('../fixtures/e2e-output.txt', import.meta.url);
const FROZEN_MS = Date.parse('2026-06-01T12:00:00Z');

/** Collection durations vary, and the lab's temporary directory is in the audit's config paths. */
function normalise(text: string, labDir: string): string {
  return text.replace(/^(kata_bridge_collection_duration_seconds\{[^}]*\}) .*$/gm, '$1 0').replaceAll(`path="${labDir}/`, 'path="/lab/');
}

let bridge: LabExporter;
let exposition: string;

beforeAll(async () => {
  bridge = await startLabExporter(DEMO_SCENARIO, { now: () => FROZEN_MS });
  exposition = normalise(await bridge.scrapeText(), bridge.lab.dir);
});

afterAll(async () => {
  await bridge?.close();
});

test('the exposition of the demo node matches the golden file', async () => {
  if (process.env.UPDATE_GOLDEN === '1') await writeFile(GOLDEN, exposition);
  expect(exposition).toBe(await readFile(GOLDEN, 'utf8'));
});

test('promtool check metrics accepts the exposition', async () => {
  const result = await promtoolCheckMetrics(exposition);
  expect(`${result.stdout}${result.stderr}`).toBe('');
  expect(result.code).toBe(0);
});

test('promtool check metrics accepts the live exposition of the real exporter, process metrics included', async () => {
  const child = spawnNode([BIN, '--demo', '--once']);
  expect(await child.exited(60_000)).toBe(0);
  for (const family of ['process_cpu_seconds_total', 'nodejs_heap_size_used_bytes', 'kata_bridge_build_info']) {
    expect(child.stdout).toMatch(new RegExp(`^${family}[ {]`, 'm'));
  }
  const result = await promtoolCheckMetrics(child.stdout);
  expect(`${result.stdout}${result.stderr}`).toBe('');
  expect(result.code).toBe(0);
}, 90_000);
