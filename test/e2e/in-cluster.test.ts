/**
 * End to end: the real exporter process with the in-cluster configuration a DaemonSet pod gets (a
 * service-account token and CA, KUBERNETES_SERVICE_HOST/PORT, no kubeconfig), against the lab's
 * API server over real TLS.
 */
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { NodeLab, type LabScenario } from '../../src/lab/node-lab.ts';
import { createCertificateAuthority } from '../../src/lab/tls.ts';
import { NPM_START, spawnNode } from '../support/e2e-helpers.ts';
import { parseSamples } from '../support/scrape.ts';

const SCENARIO: LabScenario = {
  nodeName: 'in-cluster-node',
  pods: [
    { name: 'web-a', hypervisor: 'qemu', runtime: 'go' },
    { name: 'web-b', hypervisor: 'cloud-hypervisor', runtime: 'go' },
  ],
};

let lab: NodeLab;
beforeAll(async () => {
  lab = await NodeLab.start(SCENARIO);
});
afterAll(async () => {
  await lab?.close();
});

/** `--once` with the in-cluster flags and environment; KUBECONFIG cleared so it cannot win. */
function runOnce(flags: string[], env: Record<string, string>) {
  return spawnNode([...NPM_START, '--once', ...flags], { ...env, KUBECONFIG: '' });
}

describe('in-cluster configuration', () => {
  test('the pod watch authenticates with the service account and verifies the API server with its CA', async () => {
    const { flags, env } = lab.inCluster();
    expect(flags.some((f) => f.startsWith('--kubeconfig='))).toBe(false);
    const child = runOnce(flags, env);
    expect(await child.exited(90_000)).toBe(0);
    const samples = parseSamples(child.stdout);
    expect(samples.find((s) => s.name === 'kata_bridge_source_up' && s.labels.source === 'pods')?.value).toBe(1);
    const pods = samples
      .filter((s) => s.name === 'kata_bridge_pod_info')
      .map((s) => s.labels.pod)
      .sort();
    expect(pods).toEqual(SCENARIO.pods.map((p) => p.name).sort());
  });

  test('an API server certificate from another CA is refused: the pod source is down and the log says TLS', async () => {
    const { flags, env } = lab.inCluster();
    const dir = await mkdtemp(join(os.tmpdir(), 'kmb-sa-other-'));
    try {
      const original = flags.find((f) => f.startsWith('--kubeconfig.service-account-dir='))!.split('=')[1]!;
      await cp(join(original, 'token'), join(dir, 'token'));
      await writeFile(join(dir, 'ca.crt'), (await createCertificateAuthority()).certPem);
      const child = runOnce(
        [...flags.filter((f) => f !== `--kubeconfig.service-account-dir=${original}`), `--kubeconfig.service-account-dir=${dir}`],
        env,
      );
      expect(await child.exited(90_000)).not.toBe(0);
      expect(child.stdout).toContain('kata_bridge_source_up{source="pods"} 0');
      expect(child.stderr).toMatch(/certificate|tls/i);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
