/**
 * The whole exposition of a fixed simulated node, compared with test/fixtures/e2e-output.txt
 * (as node_exporter's e2e-output.txt), and linted by promtool. With a frozen clock every value is
 * determined by the scenario; only collection durations are normalised.
 * Update after an intended change: UPDATE_GOLDEN=1 npx vitest run test/e2e/golden.test.ts
 */

import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { DEMO_SCENARIO } from '../../src/lab/demo.ts';
import { startBridge, type Bridge } from '../support/bridge-harness.ts';

const GOLDEN = new URL('../fixtures/e2e-output.txt', import.meta.url);
const FROZEN_MS = Date.parse('2026-06-01T12:00:00Z');

function normalise(text: string): string {
  return text.replace(/^(kata_bridge_collection_duration_seconds\{[^}]*\}) .*$/gm, '$1 0');
}

function promtool(args: string[], input: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = execFile('promtool', args, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` });
    });
    child.stdin?.end(input);
  });
}

let bridge: Bridge;
let exposition: string;

beforeAll(async () => {
  bridge = await startBridge(DEMO_SCENARIO, [], { now: () => FROZEN_MS });
  exposition = normalise(await bridge.scrapeText());
});

afterAll(async () => {
  await bridge?.close();
});

test('the exposition of the demo node matches the golden file', async () => {
  if (process.env.UPDATE_GOLDEN === '1') await writeFile(GOLDEN, exposition);
  expect(exposition).toBe(await readFile(GOLDEN, 'utf8'));
});

test('promtool check metrics accepts the exposition', async () => {
  const result = await promtool(['check', 'metrics'], exposition);
  expect(result.output).toBe('');
  expect(result.code).toBe(0);
});
