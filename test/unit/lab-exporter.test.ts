/**
 * The harness's one rule about --collect.min-interval: always explicit, 0s unless a test says
 * otherwise; and its GET, which refuses a body that is not valid UTF-8.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { labExporterConfig, timedGet } from '../support/lab-exporter.ts';

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

describe('timedGet', () => {
  const bodies: Record<string, Buffer> = {
    '/valid': Buffer.from('kata_bridge_x{pod="é"} 1\n'),
    '/invalid': Buffer.from('kata_bridge_x{pod="\xff\xfe"} 1\n', 'latin1'),
  };
  let server: Server;
  let base: string;

  beforeAll(async () => {
    server = createServer((request, response) => {
      const body = bodies[request.url ?? ''];
      response.writeHead(body === undefined ? 404 : 200).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('answers the status and the body decoded as UTF-8', async () => {
    expect(await timedGet(`${base}/valid`)).toMatchObject({ status: 200, text: 'kata_bridge_x{pod="é"} 1\n' });
    expect((await timedGet(`${base}/nothing`)).status).toBe(404);
  });

  test('throws on a body that is not valid UTF-8, so no test reads a replacement character as output', async () => {
    await expect(timedGet(`${base}/invalid`)).rejects.toThrow(TypeError);
  });
});
