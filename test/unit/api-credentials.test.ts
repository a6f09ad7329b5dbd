import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createCertificateAuthority, createServerCertificate } from '../../src/lab/tls.ts';
import { inClusterCredentials, kubeconfigFileCredentials } from '../../src/scrapers/api-credentials.ts';
import { SourceError } from '../../src/scrapers/source-error.ts';

/** A real HTTPS server that answers with the Authorization header it received. */
let server: Server;
let port: number;
let dir: string;
let caPem: string;
let otherCaPem: string;

beforeAll(async () => {
  const ca = await createCertificateAuthority();
  const other = await createCertificateAuthority();
  const leaf = await createServerCertificate(ca);
  caPem = ca.certPem;
  otherCaPem = other.certPem;
  server = createServer({ key: leaf.keyPem, cert: leaf.certPem }, (req, res) => res.end(req.headers.authorization ?? 'none'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  dir = await mkdtemp(join(os.tmpdir(), 'kmb-sa-'));
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

const env = () => ({ KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(port) });

async function get(credentials: ReturnType<typeof inClusterCredentials>): Promise<string> {
  const url = `${credentials.server}/api/v1/pods`;
  const { headers, dispatcher } = await credentials.prepare(url);
  try {
    return await (await fetch(url, { headers, dispatcher })).text();
  } finally {
    await dispatcher.destroy();
  }
}

describe('in-cluster credentials', () => {
  test('address the server from the environment and verify it with the service account CA', async () => {
    await writeFile(join(dir, 'token'), 'first-token\n');
    await writeFile(join(dir, 'ca.crt'), caPem);
    const credentials = inClusterCredentials(env(), dir);
    expect(credentials.server).toBe(`https://127.0.0.1:${port}`);
    expect(await get(credentials)).toBe('Bearer first-token');
  });

  test('a rotated token is sent from the next request on', async () => {
    await writeFile(join(dir, 'token'), 'first-token');
    await writeFile(join(dir, 'ca.crt'), caPem);
    const credentials = inClusterCredentials(env(), dir);
    expect(await get(credentials)).toBe('Bearer first-token');
    await writeFile(join(dir, 'token'), 'rotated-token');
    expect(await get(credentials)).toBe('Bearer rotated-token');
  });

  test('a server certificate from another CA is refused', async () => {
    await writeFile(join(dir, 'token'), 't');
    await writeFile(join(dir, 'ca.crt'), otherCaPem);
    await expect(get(inClusterCredentials(env(), dir))).rejects.toThrow();
  });

  test('IPv6 service hosts are bracketed', async () => {
    await writeFile(join(dir, 'token'), 't');
    await writeFile(join(dir, 'ca.crt'), caPem);
    expect(inClusterCredentials({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, dir).server).toBe(
      'https://[fd00::1]:443',
    );
  });

  test('missing environment or service account files fail at start-up, naming what is missing', async () => {
    expect(() => inClusterCredentials({}, dir)).toThrow(/KUBERNETES_SERVICE_HOST\/PORT are not set/);
    const empty = await mkdtemp(join(os.tmpdir(), 'kmb-sa-empty-'));
    try {
      const error = (() => {
        try {
          inClusterCredentials(env(), empty);
        } catch (caught) {
          return caught;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(SourceError);
      expect((error as SourceError).target).toBe(join(empty, 'token'));
      expect((error as SourceError).message).toMatch(/--kubeconfig/);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  test('a token past 1 MiB is refused at start-up, naming the file', async () => {
    const big = await mkdtemp(join(os.tmpdir(), 'kmb-sa-big-'));
    try {
      await writeFile(join(big, 'token'), 'x'.repeat(1024 * 1024 + 1));
      await writeFile(join(big, 'ca.crt'), caPem);
      expect(() => inClusterCredentials(env(), big)).toThrow(`${join(big, 'token')}: the service account token is larger than 1 MiB`);
    } finally {
      await rm(big, { recursive: true, force: true });
    }
  });
});

/** Whether @kubernetes/client-node has been loaded through require (how api-credentials.ts loads it). */
function clientNodeLoaded(): boolean {
  return Object.keys(createRequire(import.meta.url).cache).some((path) => path.includes('@kubernetes/client-node'));
}

describe('kubeconfig credentials', () => {
  test('@kubernetes/client-node is loaded only for a kubeconfig, never for the in-cluster path', async () => {
    await writeFile(join(dir, 'token'), 't');
    await writeFile(join(dir, 'ca.crt'), caPem);
    await get(inClusterCredentials(env(), dir));
    expect(clientNodeLoaded()).toBe(false);
    expect(() => kubeconfigFileCredentials(join(dir, 'absent'))).toThrow();
    expect(clientNodeLoaded()).toBe(true);
  });

  test('a kubeconfig file with a token and a CA goes through @kubernetes/client-node', async () => {
    const file = join(dir, 'kubeconfig');
    const ca = Buffer.from(caPem).toString('base64');
    await writeFile(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{name: c, cluster: {server: "https://127.0.0.1:' + port + '/", certificate-authority-data: ' + ca + '}}]',
        'users: [{name: u, user: {token: from-kubeconfig}}]',
        'contexts: [{name: x, context: {cluster: c, user: u}}]',
        'current-context: x',
      ].join('\n'),
    );
    const credentials = kubeconfigFileCredentials(file);
    expect(credentials.server).toBe(`https://127.0.0.1:${port}`);
    expect(await get(credentials)).toBe('Bearer from-kubeconfig');
  });

  test('an unreadable kubeconfig names the file', () => {
    expect(() => kubeconfigFileCredentials(join(dir, 'absent'))).toThrow(/absent.*cannot load the kubeconfig/);
  });
});
