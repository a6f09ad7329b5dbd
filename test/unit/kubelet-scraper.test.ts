import { mkdir, mkdtemp, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { FakeKubelet, type FakeKubeletFault, type FakeKubeletOptions } from '../../src/lab/fake-kubelet.ts';
import { createCertificateAuthority, createServerCertificate, type CertificateAuthority, type PemPair } from '../../src/lab/tls.ts';
import { silentLogger } from '../../src/log.ts';
import { KubeletClient, type KubeletClientOptions } from '../../src/scrapers/kubelet.ts';
import { SourceError } from '../../src/scrapers/source-error.ts';
import { pastCtimeTick } from '../support/file-times.ts';

const TOKEN = 'token-of-the-kata-bridge-serviceaccount';
const PAYLOAD = [
  '# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds',
  '# TYPE node_cpu_usage_seconds_total counter',
  'node_cpu_usage_seconds_total 357.35491 1633253809720',
  '',
].join('\n');

let dir: string;
let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
let serverCert: PemPair;
let caFile: string;
let otherCaFile: string;
let tokenFile: string;
const kubelets: FakeKubelet[] = [];
const clients: KubeletClient[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubelet-scraper-'));
  ca = await createCertificateAuthority({ commonName: 'kubelet-ca' });
  otherCa = await createCertificateAuthority({ commonName: 'some-other-ca' });
  serverCert = await createServerCertificate(ca);
  caFile = join(dir, 'ca.crt');
  otherCaFile = join(dir, 'other-ca.crt');
  tokenFile = join(dir, 'token');
  await writeFile(caFile, ca.certPem);
  await writeFile(otherCaFile, otherCa.certPem);
  await writeFile(tokenFile, `${TOKEN}\n`);
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(kubelets.splice(0).map((k) => k.close()));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function startKubelet(opts: Partial<FakeKubeletOptions> = {}): Promise<FakeKubelet> {
  const k = await FakeKubelet.start({
    certPem: serverCert.certPem,
    keyPem: serverCert.keyPem,
    payload: () => PAYLOAD,
    token: TOKEN,
    ...opts,
  });
  kubelets.push(k);
  return k;
}

function client(baseUrl: string, opts: Partial<KubeletClientOptions> = {}): KubeletClient {
  const c = new KubeletClient({
    baseUrl,
    tokenFile,
    caFile,
    insecureSkipTlsVerify: false,
    timeoutMs: 5_000,
    maxBytes: 1024 * 1024,
    logger: silentLogger,
    ...opts,
  });
  clients.push(c);
  return c;
}

/** A 200 answer that is gzip on the wire whatever the server would choose. */
function gzipAnswer(body: Buffer): FakeKubeletFault {
  return { kind: 'raw', headers: { 'content-type': 'text/plain; version=0.0.4', 'content-encoding': 'gzip' }, body };
}

async function scrapeError(c: KubeletClient): Promise<SourceError> {
  const err = await c.scrape().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SourceError);
  return err as SourceError;
}

describe('KubeletClient against a real HTTPS kubelet', () => {
  test('a valid token gets the body from /metrics/resource', async () => {
    const k = await startKubelet();
    const res = await client(k.url).scrape();
    expect(res.body.toString('utf8')).toBe(PAYLOAD);
    expect(res.endpoint).toBe('resource');
    expect(res.url).toBe(`${k.url}/metrics/resource`);
    expect(k.lastRequest?.authorization).toBe(`Bearer ${TOKEN}`);
  });

  test('a wrong token is refused: unauthorized, naming the URL and the RBAC grant', async () => {
    const k = await startKubelet({ token: 'the-real-token' });
    const err = await scrapeError(client(k.url));
    expect(err.reason).toBe('unauthorized');
    expect(err.target).toBe(`${k.url}/metrics/resource`);
    expect(err.message).toContain('401');
    expect(err.message).toContain('nodes/metrics');
  });

  test('a 403 carries the kubelet explanation from the body', async () => {
    const k = await startKubelet();
    k.setFault({
      kind: 'status',
      status: 403,
      body: 'Forbidden (user=system:serviceaccount:monitoring:kmb, verb=get, resource=nodes, subresource=metrics)',
    });
    const err = await scrapeError(client(k.url));
    expect(err.reason).toBe('unauthorized');
    expect(err.message).toContain('subresource=metrics');
  });

  test('CA pinning: the signing CA is trusted, another CA is a tls failure', async () => {
    const k = await startKubelet();
    const good = await client(k.url, { caFile }).scrape();
    expect(good.body.toString('utf8')).toBe(PAYLOAD);

    const err = await scrapeError(client(k.url, { caFile: otherCaFile }));
    expect(err.reason).toBe('tls');
    expect(err.target).toBe(`${k.url}/metrics/resource`);
    expect(err.message).toContain('--kubelet.ca-file');
    expect(err.message).toContain('--kubelet.insecure-skip-tls-verify');
  });

  test('without a CA file the lab CA is not trusted (system roots only): tls', async () => {
    const k = await startKubelet();
    const err = await scrapeError(client(k.url, { caFile: undefined }));
    expect(err.reason).toBe('tls');
  });

  test('insecure mode succeeds without a CA', async () => {
    const k = await startKubelet();
    const res = await client(k.url, { caFile: undefined, insecureSkipTlsVerify: true }).scrape();
    expect(res.body.toString('utf8')).toBe(PAYLOAD);
  });

  test('gzip: the client asks for it and inflates what the server sends', async () => {
    const k = await startKubelet();
    const res = await client(k.url).scrape();
    expect(k.lastRequest?.acceptEncoding).toBe('gzip');
    expect(res.body.toString('utf8')).toBe(PAYLOAD);

    // An answer that is certainly gzip on the wire (not left to the server's choice).
    k.setFault(gzipAnswer(gzipSync(Buffer.from(PAYLOAD))));
    const gz = await client(k.url).scrape();
    expect(gz.body.toString('utf8')).toBe(PAYLOAD);
  });

  test('Content-Type with escaping=underscores is accepted; a protobuf answer is malformed', async () => {
    const k = await startKubelet();
    k.setFault({
      kind: 'raw',
      headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8; escaping=underscores' },
      body: PAYLOAD,
    });
    expect((await client(k.url).scrape()).body.toString('utf8')).toBe(PAYLOAD);

    k.setFault({
      kind: 'raw',
      headers: { 'content-type': 'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily' },
      body: 'x',
    });
    expect((await scrapeError(client(k.url))).reason).toBe('malformed');
  });

  test('404 on /metrics/resource falls back to v1alpha1 and remembers it', async () => {
    const k = await startKubelet({ legacyOnly: true });
    const c = client(k.url, { reprobeEvery: 3 });
    const first = await c.scrape();
    expect(first.endpoint).toBe('v1alpha1');
    expect(first.url).toBe(`${k.url}/metrics/resource/v1alpha1`);
    expect(first.body.toString('utf8')).toBe(PAYLOAD);
    expect(k.requests.map((r) => r.path)).toEqual(['/metrics/resource', '/metrics/resource/v1alpha1']);

    // Remembered: the next scrapes go straight to v1alpha1 ...
    k.requests.length = 0;
    await c.scrape();
    await c.scrape();
    expect(k.requests.map((r) => r.path)).toEqual(['/metrics/resource/v1alpha1', '/metrics/resource/v1alpha1']);

    // ... until the re-probe (every 3rd scrape) finds the upgraded kubelet.
    k.setLegacyOnly(false);
    k.requests.length = 0;
    const upgraded = await c.scrape();
    expect(upgraded.endpoint).toBe('resource');
    expect(k.requests.map((r) => r.path)).toEqual(['/metrics/resource']);
    expect(c.endpoint).toBe('resource');
  });

  test('404 on both paths is not_found naming both URLs', async () => {
    const k = await startKubelet();
    k.setFault({ kind: 'status', status: 404 });
    const err = await scrapeError(client(k.url));
    expect(err.reason).toBe('not_found');
    expect(err.message).toContain(`${k.url}/metrics/resource and ${k.url}/metrics/resource/v1alpha1`);
  });

  test('another status is http_status with the body in the message', async () => {
    const k = await startKubelet();
    k.setFault({ kind: 'status', status: 500, body: 'failed to get stats summary' });
    const err = await scrapeError(client(k.url));
    expect(err.reason).toBe('http_status');
    expect(err.message).toContain('HTTP 500: failed to get stats summary');
  });

  test('a kubelet that never answers is a timeout', async () => {
    const k = await startKubelet();
    k.setFault({ kind: 'hang' });
    const err = await scrapeError(client(k.url, { timeoutMs: 300 }));
    expect(err.reason).toBe('timeout');
    expect(err.target).toBe(`${k.url}/metrics/resource`);
  });

  test('a closed port is unreachable', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const err = await scrapeError(client(`https://127.0.0.1:${port}`));
    expect(err.reason).toBe('unreachable');
    expect(err.message).toContain('--kubelet.url');
  });

  test('token rotation by symlink swap: the next scrape sends the new token', async () => {
    // The layout of a projected ServiceAccount volume: token -> ..data/token, ..data -> ..<ts>/
    const vol = await mkdtemp(join(dir, 'sa-'));
    await mkdir(join(vol, '..2026_01_01_00_00_00.1'));
    await writeFile(join(vol, '..2026_01_01_00_00_00.1', 'token'), 'first-token');
    await symlink('..2026_01_01_00_00_00.1', join(vol, '..data'));
    await symlink(join('..data', 'token'), join(vol, 'token'));

    const k = await startKubelet({ token: 'first-token' });
    const c = client(k.url, { tokenFile: join(vol, 'token') });
    await c.scrape();
    expect(k.lastRequest?.authorization).toBe('Bearer first-token');

    // Kubernetes writes a new timestamped dir and renames a fresh symlink over ..data.
    await mkdir(join(vol, '..2026_01_01_01_00_00.2'));
    await writeFile(join(vol, '..2026_01_01_01_00_00.2', 'token'), 'second-token');
    await symlink('..2026_01_01_01_00_00.2', join(vol, '..data_tmp'));
    await rename(join(vol, '..data_tmp'), join(vol, '..data'));
    k.setToken('second-token');

    const res = await c.scrape();
    expect(res.body.toString('utf8')).toBe(PAYLOAD);
    expect(k.lastRequest?.authorization).toBe('Bearer second-token');
  });

  test('a token rewritten in place at the same size with its mtime put back (cp -p, rsync -t): the next scrape sends it', async () => {
    const file = join(dir, 'token-in-place');
    await writeFile(file, 'first-token');
    await utimes(file, 1_000_000, 1_000_000);
    const k = await startKubelet({ token: 'first-token' });
    const c = client(k.url, { tokenFile: file });
    await c.scrape();
    expect(k.lastRequest?.authorization).toBe('Bearer first-token');

    // Same inode, same size, same mtime: only the change time says the file is not the one read.
    await pastCtimeTick(file);
    await writeFile(file, 'other-token');
    await utimes(file, 1_000_000, 1_000_000);
    k.setToken('other-token');

    const res = await c.scrape();
    expect(res.body.toString('utf8')).toBe(PAYLOAD);
    expect(k.lastRequest?.authorization).toBe('Bearer other-token');
  });

  test('a missing token file is an io error naming the file', async () => {
    const k = await startKubelet();
    const missing = join(dir, 'no-such-token');
    const err = await scrapeError(client(k.url, { tokenFile: missing }));
    expect(err.reason).toBe('io');
    expect(err.target).toBe(missing);
    expect(err.message).toContain('--kubelet.token-file');
  });

  test('a body over maxBytes is oversize', async () => {
    const k = await startKubelet({ gzip: false, payload: () => PAYLOAD.repeat(100) });
    const err = await scrapeError(client(k.url, { maxBytes: 1024 }));
    expect(err.reason).toBe('oversize');
    expect(err.target).toBe(`${k.url}/metrics/resource`);
  });

  test('a gzip bomb is cut at maxBytes: oversize', async () => {
    const k = await startKubelet();
    const bomb = gzipSync(Buffer.alloc(16 * 1024 * 1024)); // 16 MiB of zeros, ~16 KiB on the wire
    k.setFault(gzipAnswer(bomb));
    const maxBytes = 256 * 1024;
    expect(bomb.length).toBeLessThan(maxBytes); // so it is the inflated size that trips the cap
    const err = await scrapeError(client(k.url, { maxBytes }));
    expect(err.reason).toBe('oversize');
    expect(err.message).toContain('gzip');
  });

  test('the fake kubelet serves what its callback returns at each request', async () => {
    let n = 0;
    const k = await startKubelet({ payload: () => `node_cpu_usage_seconds_total ${++n}\n` });
    const c = client(k.url);
    expect((await c.scrape()).body.toString('utf8')).toBe('node_cpu_usage_seconds_total 1\n');
    expect((await c.scrape()).body.toString('utf8')).toBe('node_cpu_usage_seconds_total 2\n');
  });
});
