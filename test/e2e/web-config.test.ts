/**
 * --web.config.file end to end: the real exporter on a simulated node, served over real TLS to
 * real TLS clients (node:https), with certificates generated into a temp dir for each run.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import type { SecureVersion, TLSSocket } from 'node:tls';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Exporter } from '../../src/exporter.ts';
import { NodeLab, type LabScenario } from '../../src/lab/node-lab.ts';
import { createCertificateAuthority, createClientCertificate, createServerCertificate, type PemPair } from '../../src/lab/tls.ts';
import { BIN, httpGet, spawnNode } from '../support/e2e-helpers.ts';
import { startSourcesOn } from '../support/lab-exporter.ts';
import { familyNames, parseSamples } from '../support/scrape.ts';
import { waitFor } from '../support/wait.ts';

const SCENARIO: LabScenario = {
  nodeName: 'tls-node',
  pods: [{ name: 'build-1', hypervisor: 'qemu', runtime: 'go' }],
};
/** Go's bcrypt via exporter-toolkit's test data (dave / dave123): proves $2y$ interoperability. */
const GO_DAVE_HASH = '$2y$10$2UXri9cIDdgeKjBo4Rlpx.U3ZLDV8X1IxKmsfOvhcM5oXQt/mLmXq';
const PASSWORD = 'scrape-me-please';

interface Client {
  ca?: string;
  cert?: PemPair;
  auth?: [string, string];
  minVersion?: SecureVersion;
  maxVersion?: SecureVersion;
  ciphers?: string;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  protocol: string | null;
  cipher: string;
}

/** One HTTPS GET on a fresh connection (no agent: no session reuse between cases). */
function get(port: number, path: string, client: Client): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        agent: false,
        ca: client.ca,
        cert: client.cert?.certPem,
        key: client.cert?.keyPem,
        minVersion: client.minVersion,
        maxVersion: client.maxVersion,
        ciphers: client.ciphers,
        headers: client.auth === undefined ? {} : { Authorization: `Basic ${Buffer.from(client.auth.join(':')).toString('base64')}` },
        timeout: 20_000,
      },
      (res) => {
        const socket = res.socket as TLSSocket;
        const protocol = socket.getProtocol();
        const cipher = socket.getCipher().name;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, protocol, cipher }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** What a request that must not get through ended with: an error, or a response without metrics. */
async function refused(attempt: Promise<Answer>): Promise<string> {
  try {
    const answer = await attempt;
    expect(answer.status).not.toBe(200);
    expect(answer.body).not.toContain('kata_bridge_');
    return `HTTP ${answer.status}`;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
  }
}

describe('--web.config.file', () => {
  let dir: string;
  let lab: NodeLab;
  const running: Exporter[] = [];
  let serverCa: Awaited<ReturnType<typeof createCertificateAuthority>>;
  let clientCa: Awaited<ReturnType<typeof createCertificateAuthority>>;
  let otherCa: Awaited<ReturnType<typeof createCertificateAuthority>>;
  let goodClient: PemPair;
  let strangerClient: PemPair;
  let hash: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'web-config-e2e-'));
    serverCa = await createCertificateAuthority({ commonName: 'exporter serving CA' });
    clientCa = await createCertificateAuthority({ commonName: 'prometheus client CA' });
    otherCa = await createCertificateAuthority({ commonName: 'someone else' });
    const server = await createServerCertificate(serverCa);
    writeFileSync(join(dir, 'tls.crt'), server.certPem);
    writeFileSync(join(dir, 'tls.key'), server.keyPem);
    writeFileSync(join(dir, 'client-ca.crt'), clientCa.certPem);
    goodClient = await createClientCertificate(clientCa, { commonName: 'prometheus' });
    strangerClient = await createClientCertificate(otherCa, { commonName: 'prometheus' });
    hash = bcrypt.hashSync(PASSWORD, 4);
    lab = await NodeLab.start(SCENARIO);
  });

  afterAll(async () => {
    for (const exporter of running) await exporter.close();
    await lab?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** Writes the web config (a name in the temp dir, or a path) and starts the real exporter with it; resolves with its port. */
  async function serve(name: string, yaml: string): Promise<number> {
    const file = isAbsolute(name) ? name : join(dir, name);
    writeFileSync(file, yaml);
    const { exporter } = await startSourcesOn(lab, { flags: [`--web.config.file=${file}`] });
    running.push(exporter);
    const address = await exporter.listen();
    expect(address.address).toBe('127.0.0.1');
    return address.port;
  }

  describe('TLS with basic auth and headers', () => {
    let port: number;
    beforeAll(async () => {
      port = await serve(
        'tls-auth.yml',
        [
          'tls_server_config:',
          '  cert_file: tls.crt', // relative: next to the config file
          '  key_file: tls.key',
          'http_server_config:',
          '  headers:',
          '    X-Frame-Options: deny',
          '    X-Content-Type-Options: nosniff',
          '    Strict-Transport-Security: max-age=31536000',
          'basic_auth_users:',
          `  prometheus: "${hash}"`,
          `  dave: ${GO_DAVE_HASH}`,
        ].join('\n'),
      );
    });

    test('an HTTPS scrape with the CA and the right password returns metrics that parse', async () => {
      const answer = await get(port, '/metrics', { ca: serverCa.certPem, auth: ['prometheus', PASSWORD] });
      expect(answer.status).toBe(200);
      expect(answer.headers['content-type']).toMatch(/^text\/plain; ?version=0\.0\.4/);
      const info = parseSamples(answer.body).filter((s) => s.family === 'kata_bridge_pod_info');
      expect(info.map((s) => s.labels.pod)).toEqual(['build-1']);
      // Repeated scrapes are served from the verification cache and keep working.
      for (let i = 0; i < 3; i++)
        expect((await get(port, '/metrics', { ca: serverCa.certPem, auth: ['prometheus', PASSWORD] })).status).toBe(200);
    });

    test('a hash made by Go (htpasswd-style $2y$) is accepted', async () => {
      expect((await get(port, '/metrics', { ca: serverCa.certPem, auth: ['dave', 'dave123'] })).status).toBe(200);
    });

    test('no credentials: 401 with WWW-Authenticate: Basic and no metrics', async () => {
      const answer = await get(port, '/metrics', { ca: serverCa.certPem });
      expect(answer.status).toBe(401);
      expect(answer.headers['www-authenticate']).toBe('Basic');
      expect(answer.body).not.toContain('kata_bridge_');
    });

    test('a wrong password, an unknown user and a known password under another user: 401', async () => {
      for (const auth of [
        ['prometheus', `${PASSWORD}x`],
        ['prometheus', ''],
        ['mallory', PASSWORD],
        ['dave', PASSWORD],
        ['prometheus', 'dave123'],
      ] as [string, string][]) {
        const answer = await get(port, '/metrics', { ca: serverCa.certPem, auth });
        expect(answer.status, auth.join(':')).toBe(401);
        expect(answer.headers['www-authenticate']).toBe('Basic');
        expect(answer.body).not.toContain('kata_bridge_');
      }
    });

    test('every path but the probes needs credentials; the probes still need TLS', async () => {
      for (const path of ['/', '/no-such-page', '/metrics?x=1', '/healthz/../metrics']) {
        expect((await get(port, path, { ca: serverCa.certPem })).status, path).toBe(401);
      }
      const health = await get(port, '/healthz', { ca: serverCa.certPem });
      expect(health.status).toBe(200);
      expect(health.body).toBe('ok\n');
      expect((await get(port, '/readyz', { ca: serverCa.certPem })).status).toBe(200);
      const landing = await get(port, '/', { ca: serverCa.certPem, auth: ['prometheus', PASSWORD] });
      expect(landing.status).toBe(200);
      expect(landing.body).toContain('/metrics');
    });

    test('the configured response headers are set, on refusals too', async () => {
      for (const answer of [
        await get(port, '/metrics', { ca: serverCa.certPem, auth: ['prometheus', PASSWORD] }),
        await get(port, '/metrics', { ca: serverCa.certPem }),
        await get(port, '/healthz', { ca: serverCa.certPem }),
      ]) {
        expect(answer.headers['x-frame-options']).toBe('deny');
        expect(answer.headers['x-content-type-options']).toBe('nosniff');
        expect(answer.headers['strict-transport-security']).toBe('max-age=31536000');
        expect(answer.headers['content-security-policy']).toBeUndefined();
      }
    });

    test('HTTP/1.1 over TLS 1.3 by default, and a TLS 1.2-only client still connects (min_version TLS12)', async () => {
      const modern = await get(port, '/healthz', { ca: serverCa.certPem });
      expect(modern.protocol).toBe('TLSv1.3');
      const old = await get(port, '/healthz', { ca: serverCa.certPem, maxVersion: 'TLSv1.2' });
      expect(old.status).toBe(200);
      expect(old.protocol).toBe('TLSv1.2');
    });

    test('a client that does not trust the serving CA refuses the server', async () => {
      const outcome = await refused(get(port, '/healthz', { ca: otherCa.certPem }));
      expect(outcome).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|unable to verify/i);
    });

    test('plaintext HTTP to the TLS port gets no metrics', async () => {
      let outcome: string;
      try {
        const res = await httpGet(`http://127.0.0.1:${port}/metrics`);
        expect(res.body.toString('utf8')).not.toContain('kata_bridge_');
        expect(res.status).not.toBe(200);
        outcome = `HTTP ${res.status}`;
      } catch (error) {
        outcome = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      }
      expect(outcome).toMatch(/ECONNRESET|socket hang up|HPE_|HTTP 4\d\d/);
      // And no raw bytes that look like a response either.
      const raw = await new Promise<string>((resolve) => {
        const socket = netConnect(port, '127.0.0.1', () => socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'));
        let data = '';
        socket.setEncoding('latin1');
        socket.on('data', (chunk: string) => (data += chunk));
        socket.on('close', () => resolve(data));
        socket.on('error', () => resolve(data));
      });
      expect(raw).not.toContain('kata_bridge_');
      expect(raw).not.toMatch(/^HTTP\/1\.1 200/);
    });
  });

  describe('client certificates: RequireAndVerifyClientCert with client_ca_file', () => {
    let port: number;
    beforeAll(async () => {
      port = await serve(
        'mtls.yml',
        [
          'tls_server_config:',
          '  cert_file: tls.crt',
          '  key_file: tls.key',
          '  client_ca_file: client-ca.crt',
          '  client_auth_type: RequireAndVerifyClientCert',
        ].join('\n'),
      );
    });

    test('no client certificate: the handshake fails', async () => {
      for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
        const outcome = await refused(get(port, '/metrics', { ca: serverCa.certPem, maxVersion }));
        expect(outcome, maxVersion).not.toMatch(/^HTTP/);
      }
    });

    test('a client certificate from another CA fails', async () => {
      for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
        const outcome = await refused(get(port, '/metrics', { ca: serverCa.certPem, cert: strangerClient, maxVersion }));
        expect(outcome, maxVersion).not.toMatch(/^HTTP/);
      }
    });

    test('the right client certificate gets metrics (TLS 1.2 and 1.3)', async () => {
      for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
        const answer = await get(port, '/metrics', { ca: serverCa.certPem, cert: goodClient, maxVersion });
        expect(answer.status, maxVersion).toBe(200);
        expect(familyNames(answer.body)).toContain('kata_bridge_pod_info');
      }
    });
  });

  describe('client certificates: RequireAnyClientCert with client_allowed_sans', () => {
    let port: number;
    let sanClient: PemPair;
    let otherSanClient: PemPair;
    beforeAll(async () => {
      // Any CA is fine under RequireAnyClientCert; the SAN decides.
      sanClient = await createServerCertificate(otherCa, { altNames: ['prometheus.monitoring.svc'] });
      otherSanClient = await createServerCertificate(otherCa, { altNames: ['grafana.monitoring.svc'] });
      port = await serve(
        'sans.yml',
        [
          'tls_server_config:',
          '  cert_file: tls.crt',
          '  key_file: tls.key',
          '  client_auth_type: RequireAnyClientCert',
          '  client_allowed_sans: [prometheus.monitoring.svc]',
        ].join('\n'),
      );
    });

    test('a certificate with an allowed SAN gets in; another SAN, none, or no certificate does not', async () => {
      expect((await get(port, '/metrics', { ca: serverCa.certPem, cert: sanClient })).status).toBe(200);
      expect(await refused(get(port, '/metrics', { ca: serverCa.certPem, cert: otherSanClient }))).not.toMatch(/^HTTP/);
      expect(await refused(get(port, '/metrics', { ca: serverCa.certPem, cert: goodClient }))).not.toMatch(/^HTTP/);
      expect(await refused(get(port, '/metrics', { ca: serverCa.certPem }))).not.toMatch(/^HTTP/);
    });
  });

  describe('TLS versions and cipher suites', () => {
    test('min_version TLS13 refuses a TLS 1.2-only client', async () => {
      const port = await serve('tls13.yml', 'tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n  min_version: TLS13\n');
      const outcome = await refused(get(port, '/healthz', { ca: serverCa.certPem, maxVersion: 'TLSv1.2' }));
      expect(outcome).toMatch(/ERR_SSL|EPROTO|alert|version/i);
      const ok = await get(port, '/healthz', { ca: serverCa.certPem });
      expect(ok.status).toBe(200);
      expect(ok.protocol).toBe('TLSv1.3');
    });

    test('max_version TLS12 with cipher_suites: only the listed suite is negotiated', async () => {
      const port = await serve(
        'ciphers.yml',
        'tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n  max_version: TLS12\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]\n',
      );
      const ok = await get(port, '/healthz', { ca: serverCa.certPem });
      expect(ok.protocol).toBe('TLSv1.2');
      expect(ok.cipher).toBe('ECDHE-ECDSA-AES256-GCM-SHA384');
      expect(await refused(get(port, '/healthz', { ca: serverCa.certPem, ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }))).not.toMatch(/^HTTP/);
    });
  });

  test('plain HTTP with basic auth when there is no tls_server_config', async () => {
    const port = await serve('http-auth.yml', `basic_auth_users:\n  prometheus: "${hash}"\n`);
    const denied = await httpGet(`http://127.0.0.1:${port}/metrics`);
    expect(denied.status).toBe(401);
    expect(denied.headers['www-authenticate']).toBe('Basic');
    const ok = await httpGet(`http://127.0.0.1:${port}/metrics`, {
      Authorization: `Basic ${Buffer.from(`prometheus:${PASSWORD}`).toString('base64')}`,
    });
    expect(ok.status).toBe(200);
    expect(ok.body.toString('utf8')).toContain('kata_bridge_pod_info');
  });

  test('a rotated certificate is served without a restart', async () => {
    const rotDir = mkdtempSync(join(dir, 'rotation-'));
    const first = await createServerCertificate(serverCa);
    writeFileSync(join(rotDir, 'tls.crt'), first.certPem);
    writeFileSync(join(rotDir, 'tls.key'), first.keyPem);
    const port = await serve(join(rotDir, 'web.yml'), 'tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n');
    expect((await get(port, '/healthz', { ca: serverCa.certPem })).status).toBe(200);

    const newCa = await createCertificateAuthority({ commonName: 'rotated CA' });
    const second = await createServerCertificate(newCa);
    writeFileSync(join(rotDir, 'tls.crt'), second.certPem);
    writeFileSync(join(rotDir, 'tls.key'), second.keyPem);
    // The files are checked at most once a second, on a new connection.
    // A refused handshake throws: waitFor counts that as "not yet".
    await waitFor('the rotated certificate', async () => (await get(port, '/healthz', { ca: newCa.certPem })).status === 200);
    expect(await refused(get(port, '/healthz', { ca: serverCa.certPem }))).not.toMatch(/^HTTP/);
  });

  describe('the process', () => {
    test('a bad web config exits 2 at start-up with a message naming the file and the key', async () => {
      const file = join(dir, 'bad.yml');
      writeFileSync(file, 'tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n  client_auth_type: Sometimes\n');
      const child = spawnNode([
        BIN,
        '--node.name=n',
        '--kubelet.url=https://127.0.0.1:1',
        `--web.config.file=${file}`,
        '--web.listen-address=127.0.0.1:0',
      ]);
      expect(await child.exited()).toBe(2);
      expect(child.stderr).toContain(`kata-metrics-bridge: ${file}: tls_server_config.client_auth_type: must be one of`);
      expect(child.stdout).toBe('');
    });

    test('an unreadable certificate exits 2 naming the certificate file', async () => {
      const file = join(dir, 'missing-cert.yml');
      writeFileSync(file, 'tls_server_config:\n  cert_file: nope.crt\n  key_file: tls.key\n');
      const child = spawnNode([
        BIN,
        '--node.name=n',
        '--kubelet.url=https://127.0.0.1:1',
        `--web.config.file=${file}`,
        '--web.listen-address=127.0.0.1:0',
      ]);
      expect(await child.exited()).toBe(2);
      expect(child.stderr).toContain(`${file}: tls_server_config.cert_file: cannot read ${join(dir, 'nope.crt')}: ENOENT`);
    });
  });
});
