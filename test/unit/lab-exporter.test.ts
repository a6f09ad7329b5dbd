/** The harness's one rule about --collect.min-interval: always explicit, 0s unless a test says otherwise. */
import { describe, expect, test } from 'vitest';
import { labExporterConfig } from '../support/lab-exporter.ts';

// Only the lab's flags matter to the configuration; a real lab would start servers for nothing.
const lab = { flags: () => ['--node.name=n1', '--kubelet.url=https://127.0.0.1:1', '--kubeconfig=/dev/null'] };

describe('labExporterConfig', () => {
  test('every scrape collects anew unless the test says otherwise', () => {
    expect(labExporterConfig(lab).collectMinIntervalMs).toBe(0);
    expect(labExporterConfig(lab, { flags: ['--shim.timeout=1s'] }).collectMinIntervalMs).toBe(0);
  });

  test('a test that needs reuse says so with minInterval', () => {
    expect(labExporterConfig(lab, { minInterval: '10m' }).collectMinIntervalMs).toBe(600_000);
  });

  test('the min-interval cannot be set behind the harness, among the flags', () => {
    expect(() => labExporterConfig(lab, { flags: ['--collect.min-interval=5s'] })).toThrow(/minInterval/);
  });

});
