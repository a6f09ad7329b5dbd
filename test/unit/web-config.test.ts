import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import express from 'express';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { ConfigError } from '../../src/config.ts';
import { createCertificateAuthority, createClientCertificate, createServerCertificate } from '../../src/lab/tls.ts';
import { BcryptWorkerPool, type PasswordVerifier } from '../../src/publish/bcrypt-pool.ts';
import {
  BasicAuthenticator,
  clientCertificateProblem,
  parseBasicAuth,
  parseSubjectAltNames,
  sanAllowed,
  webMiddleware,
} from '../../src/publish/listener.ts';
import { silentLogger } from '../../src/log.ts';
import type { TlsSettings } from '../../src/publish/tls-context.ts';
import { loadWebConfig, parseWebConfig, WebConfigError, WebConfigSource } from '../../src/publish/web-config.ts';

const FILE = '/etc/kata-bridge/web.yml';
/** Produced by Go's bcrypt (exporter-toolkit's web/testdata/web_config_users_noTLS.good.yml): dave / dave123, cost 10. */
const GO_DAVE_HASH = '$2y$10$2UXri9cIDdgeKjBo4Rlpx.U3ZLDV8X1IxKmsfOvhcM5oXQt/mLmXq';
const HASH4 = bcrypt.hashSync('s3cret', 4);

function failure(yaml: string, file = FILE): string {
  try {
    parseWebConfig(yaml, file);
  } catch (error) {
    expect(error).toBeInstanceOf(WebConfigError);
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error(`accepted:\n${yaml}`);
}

const basicAuth = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('parseWebConfig: accepted files', () => {
  test('an empty file means plain HTTP without auth', () => {
    for (const text of ['', '# nothing\n', '{}\n']) {
      const config = parseWebConfig(text, FILE);
      expect(config.tls).toBeUndefined();
      expect(config.users.size).toBe(0);
      expect(config.headers).toEqual({});
      expect(config.http2).toBe(true);
      expect(config.file).toBe(FILE);
    }
  });

  test('every key, with relative paths resolved against the file directory', () => {
    const config = parseWebConfig(
      [
        'tls_server_config:',
        '  cert_file: server.crt',
        '  key_file: keys/server.key',
        '  client_ca_file: /etc/pki/clients.pem',
        '  client_auth_type: RequireAndVerifyClientCert',
        '  client_allowed_sans: [prometheus.monitoring.svc, 10.0.0.7]',
        '  min_version: TLS13',
        '  max_version: TLS13',
        '  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256]',
        '  prefer_server_cipher_suites: false',
        '  curve_preferences: [X25519, CurveP256]',
        'http_server_config:',
        '  http2: false',
        '  headers:',
        '    X-Frame-Options: deny',
        '    Strict-Transport-Security: max-age=31536000; includeSubDomains',
        '    X-Content-Type-Options: nosniff',
        '    X-XSS-Protection: 1',
        '    Content-Security-Policy: ""',
        'basic_auth_users:',
        `  prometheus: ${GO_DAVE_HASH}`,
        `  alice: "${HASH4}"`,
      ].join('\n'),
      FILE,
    );
    expect(config.tls).toEqual({
      certFile: '/etc/kata-bridge/server.crt',
      keyFile: '/etc/kata-bridge/keys/server.key',
      clientCaFile: '/etc/pki/clients.pem',
      certPem: undefined,
      keyPem: undefined,
      clientCaPem: undefined,
      clientAuthType: 'RequireAndVerifyClientCert',
      clientAllowedSans: ['prometheus.monitoring.svc', '10.0.0.7'],
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      ciphers:
        'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305',
      honorCipherOrder: false,
      ecdhCurve: 'X25519:P-256',
    } satisfies TlsSettings);
    expect(config.http2).toBe(false);
    // A YAML number is taken as its text (Go reads the map as strings); a blank value unsets.
    expect(config.headers).toEqual({
      'X-Frame-Options': 'deny',
      'Strict-Transport-Security': 'max-age=31536000; includeSubDomains',
      'X-Content-Type-Options': 'nosniff',
      'X-XSS-Protection': '1',
    });
    expect([...config.users.keys()]).toEqual(['prometheus', 'alice']);
    expect(config.users.get('prometheus')).toBe(GO_DAVE_HASH);
  });

  test('defaults of tls_server_config: NoClientCert, TLS 1.2 to 1.3, Node ciphers', () => {
    const tls = parseWebConfig('tls_server_config: {cert_file: a.crt, key_file: a.key}\n', 'conf/web.yml').tls!;
    expect(tls.clientAuthType).toBe('NoClientCert');
    expect(tls.minVersion).toBe('TLSv1.2');
    expect(tls.maxVersion).toBe('TLSv1.3');
    expect(tls.ciphers).toBeUndefined();
    expect(tls.ecdhCurve).toBeUndefined();
    expect(tls.honorCipherOrder).toBe(true);
    expect(tls.clientAllowedSans).toEqual([]);
    // Relative to the config file's directory, not to the working directory's root.
    expect(tls.certFile).toBe(join(process.cwd(), 'conf', 'a.crt'));
  });

  test('inline PEM (cert, key, client_ca) instead of files', () => {
    const tls = parseWebConfig(
      'tls_server_config:\n  cert: "-----BEGIN CERTIFICATE-----"\n  key: "k"\n  client_ca: "c"\n  client_auth_type: RequireAndVerifyClientCert\n',
      FILE,
    ).tls!;
    expect(tls.certFile).toBeUndefined();
    expect(tls.certPem).toBe('-----BEGIN CERTIFICATE-----');
    expect(tls.clientCaPem).toBe('c');
  });

  test('every client_auth_type and TLS version name is accepted', () => {
    for (const type of [
      'NoClientCert',
      'RequestClientCert',
      'RequireAnyClientCert',
      'VerifyClientCertIfGiven',
      'RequireAndVerifyClientCert',
    ]) {
      const ca = type === 'NoClientCert' ? '' : '  client_ca_file: ca.pem\n';
      expect(
        parseWebConfig(`tls_server_config:\n  cert_file: a\n  key_file: b\n${ca}  client_auth_type: ${type}\n`, FILE).tls?.clientAuthType,
      ).toBe(type);
    }
    const versions = { TLS10: 'TLSv1', TLS11: 'TLSv1.1', TLS12: 'TLSv1.2', TLS13: 'TLSv1.3' };
    for (const [name, node] of Object.entries(versions)) {
      expect(parseWebConfig(`tls_server_config: {cert_file: a, key_file: b, min_version: ${name}}\n`, FILE).tls?.minVersion).toBe(node);
    }
  });

  test('bcrypt hash prefixes $2a$, $2b$ and $2y$ (htpasswd, Go) are accepted', () => {
    const salt = GO_DAVE_HASH.slice(7);
    for (const prefix of ['$2a$10$', '$2b$10$', '$2y$10$', '$2y$04$', '$2b$31$']) {
      expect(parseWebConfig(`basic_auth_users:\n  u: "${prefix}${salt}"\n`, FILE).users.get('u')).toBe(`${prefix}${salt}`);
    }
  });
});

describe('parseWebConfig: refused files name the file and the key', () => {
  const CERT = 'tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n';
  const table: [string, string, RegExp][] = [
    ['unknown top-level key', 'basic_auth_user:\n  a: b\n', /web\.yml: unknown key basic_auth_user$/],
    ['two unknown keys', 'foo: 1\nbar: 2\n', /unknown keys foo, bar/],
    ['unknown tls key', `${CERT}  certfile: x\n`, /unknown key tls_server_config\.certfile/],
    ['unknown http_server_config key', 'http_server_config:\n  http3: true\n', /unknown key http_server_config\.http3/],
    ['rate_limit is not supported', 'rate_limit:\n  interval: 1s\n  burst: 20\n', /rate_limit is not supported/],
    ['tls_server_config not a map', 'tls_server_config: yes\n', /tls_server_config: must be a map/],
    [
      'cert_file not a string',
      'tls_server_config:\n  cert_file: [a]\n  key_file: b\n',
      /tls_server_config\.cert_file: cert_file must be a string/,
    ],
    [
      'cert_file empty',
      'tls_server_config:\n  cert_file: ""\n  key_file: b\n',
      /tls_server_config\.cert_file: cert_file must not be empty/,
    ],
    ['missing cert_file', 'tls_server_config:\n  key_file: b\n', /tls_server_config\.cert_file: missing/],
    ['missing key_file', 'tls_server_config:\n  cert_file: a\n', /tls_server_config\.key_file: missing/],
    ['cert and cert_file', `${CERT}  cert: x\n`, /tls_server_config\.cert: set cert or cert_file, not both/],
    [
      'bad client_auth_type',
      `${CERT}  client_auth_type: RequireClientCert\n`,
      /tls_server_config\.client_auth_type: must be one of NoClientCert, /,
    ],
    ['client_auth_type a number', `${CERT}  client_auth_type: 4\n`, /tls_server_config\.client_auth_type: must be one of/],
    [
      'client CA without client auth',
      `${CERT}  client_ca_file: ca.pem\n`,
      /tls_server_config\.client_ca_file: a client CA is set but client_auth_type is NoClientCert/,
    ],
    ['verification without a CA', `${CERT}  client_auth_type: RequireAndVerifyClientCert\n`, /tls_server_config\.client_ca_file: missing/],
    [
      'VerifyClientCertIfGiven without a CA',
      `${CERT}  client_auth_type: VerifyClientCertIfGiven\n`,
      /tls_server_config\.client_ca_file: missing/,
    ],
    [
      'allowed SANs when a certificate is optional',
      `${CERT}  client_ca_file: ca.pem\n  client_auth_type: VerifyClientCertIfGiven\n  client_allowed_sans: [a]\n`,
      /tls_server_config\.client_allowed_sans: needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert/,
    ],
    [
      'allowed SANs not a list',
      `${CERT}  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: a\n`,
      /tls_server_config\.client_allowed_sans: client_allowed_sans must be a list/,
    ],
    ['unknown TLS version', `${CERT}  min_version: TLS14\n`, /tls_server_config\.min_version: must be one of TLS10, TLS11, TLS12, TLS13/],
    ['Go-style version spelled differently', `${CERT}  max_version: TLSv1.3\n`, /tls_server_config\.max_version: must be one of/],
    [
      'min above max',
      `${CERT}  min_version: TLS13\n  max_version: TLS12\n`,
      /tls_server_config\.min_version: TLS13 is above max_version TLS12/,
    ],
    [
      'an insecure cipher suite',
      `${CERT}  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n`,
      /tls_server_config\.cipher_suites\.0: cipher suite "TLS_RSA_WITH_AES_128_CBC_SHA" is not supported/,
    ],
    [
      'an invented cipher suite',
      `${CERT}  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_INVALID_CIPHER]\n`,
      /cipher_suites\.1: cipher suite "TLS_INVALID_CIPHER"/,
    ],
    ['TLS 1.3 suites are not configurable', `${CERT}  cipher_suites: [TLS_AES_128_GCM_SHA256]\n`, /TLS 1\.3 suites are not configurable/],
    [
      'cipher_suites a string',
      `${CERT}  cipher_suites: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n`,
      /tls_server_config\.cipher_suites: must be a list/,
    ],
    [
      'an invented curve',
      `${CERT}  curve_preferences: [CurveP257]\n`,
      /tls_server_config\.curve_preferences\.0: curve "CurveP257" is not supported/,
    ],
    [
      'prefer_server_cipher_suites not a boolean',
      `${CERT}  prefer_server_cipher_suites: "yes"\n`,
      /prefer_server_cipher_suites: must be true or false/,
    ],
    ['http2 not a boolean', 'http_server_config:\n  http2: "true"\n', /http_server_config\.http2: must be true or false/],
    ['headers a list', 'http_server_config:\n  headers: [X-Frame-Options]\n', /http_server_config\.headers: must be a map/],
    [
      'a header outside the allowed set',
      'http_server_config:\n  headers:\n    X-Powered-By: me\n',
      /http_server_config\.headers\.X-Powered-By: header is not allowed/,
    ],
    [
      'X-Frame-Options value',
      'http_server_config:\n  headers:\n    X-Frame-Options: allow-from x\n',
      /headers\.X-Frame-Options: "allow-from x" is not allowed: use deny or sameorigin/,
    ],
    [
      'X-Content-Type-Options value',
      'http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n',
      /headers\.X-Content-Type-Options: "sniff" is not allowed: use nosniff/,
    ],
    ['basic_auth_users a list', 'basic_auth_users:\n  - alice\n', /basic_auth_users: must be a map of user names to bcrypt hashes/],
    ['a plain-text password', 'basic_auth_users:\n  alice: alice123\n', /basic_auth_users\.alice: is not a bcrypt hash/],
    [
      'an apr1 (MD5) hash from htpasswd -m',
      'basic_auth_users:\n  alice: $apr1$Q3g3dV1r$3Ck7k5v7x0bkqcPQbyB0s1\n',
      /basic_auth_users\.alice: is not a bcrypt hash/,
    ],
    ['a SHA-crypt hash', 'basic_auth_users:\n  alice: $6$salt$abc\n', /basic_auth_users\.alice: is not a bcrypt hash/],
    [
      'a truncated bcrypt hash',
      `basic_auth_users:\n  alice: "${GO_DAVE_HASH.slice(0, -1)}"\n`,
      /basic_auth_users\.alice: is not a bcrypt hash/,
    ],
    [
      'a bcrypt cost below 4',
      `basic_auth_users:\n  alice: "$2y$03$${GO_DAVE_HASH.slice(7)}"\n`,
      /basic_auth_users\.alice: is not a bcrypt hash/,
    ],
    [
      'a bcrypt hash with a bad character',
      `basic_auth_users:\n  alice: "${GO_DAVE_HASH.slice(0, -1)}!"\n`,
      /basic_auth_users\.alice: is not a bcrypt hash/,
    ],
    ['a hash that is a number', 'basic_auth_users:\n  alice: 12\n', /basic_auth_users\.alice: must be a bcrypt hash string/],
    [
      'a $2x$ hash (no password matches it)',
      `basic_auth_users:\n  alice: "$2x$10$${GO_DAVE_HASH.slice(7)}"\n`,
      /basic_auth_users\.alice: is a \$2x\$ bcrypt hash, which no password can match: generate a \$2y\$ hash/,
    ],
    [
      'a $2$ hash (no password matches it)',
      `basic_auth_users:\n  alice: "$2$10$${GO_DAVE_HASH.slice(7)}"\n`,
      /basic_auth_users\.alice: is a \$2\$ bcrypt hash, which no password can match/,
    ],
    ['not YAML, with the line', 'basic_auth_users: {}\ntls_server_config: [\n', /web\.yml:3: not valid YAML: /],
    ['a duplicate key', 'basic_auth_users:\n  a: x\n  a: y\n', /web\.yml:3: not valid YAML: Map keys must be unique$/],
    ['a list at the top', '- a\n- b\n', /\(top level\): must be a map/],
  ];
  test.each(table)('%s', (_name, yaml, pattern) => {
    const message = failure(yaml);
    expect(message.startsWith(FILE)).toBe(true);
    expect(message).toMatch(pattern);
  });
});

describe('loadWebConfig: reading the files', () => {
  let dir: string;
  let pki: { ca: string; cert: string; key: string; otherKey: string };
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'web-config-unit-'));
    const ca = await createCertificateAuthority();
    const server = await createServerCertificate(ca);
    const other = await createServerCertificate(ca);
    pki = { ca: ca.certPem, cert: server.certPem, key: server.keyPem, otherKey: other.keyPem };
    writeFileSync(join(dir, 'server.crt'), pki.cert);
    writeFileSync(join(dir, 'server.key'), pki.key);
    writeFileSync(join(dir, 'other.key'), pki.otherKey);
    writeFileSync(join(dir, 'ca.pem'), pki.ca);
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function write(name: string, yaml: string): string {
    const file = join(dir, name);
    writeFileSync(file, yaml);
    return file;
  }

  function loadFailure(file: string): string {
    try {
      loadWebConfig(file);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as Error).message;
    }
    throw new Error(`${file} was accepted`);
  }

  test('relative certificate paths are read from the config file directory', () => {
    const loaded = loadWebConfig(
      write(
        'ok.yml',
        'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: ca.pem\n  client_auth_type: RequireAndVerifyClientCert\n',
      ),
    );
    expect(loaded.material).toEqual({ cert: pki.cert, key: pki.key, ca: pki.ca });
  });

  test('no TLS, no material', () => {
    expect(loadWebConfig(write('auth.yml', `basic_auth_users:\n  a: "${HASH4}"\n`)).material).toBeUndefined();
  });

  test('a missing config file names the file', () => {
    const missing = join(dir, 'nope.yml');
    expect(loadFailure(missing)).toBe(`--web.config.file ${missing}: cannot read: ENOENT`);
  });

  test('a missing certificate names the config file, the key and the certificate path', () => {
    const file = write('missing-cert.yml', 'tls_server_config:\n  cert_file: gone.crt\n  key_file: server.key\n');
    expect(loadFailure(file)).toBe(`${file}: tls_server_config.cert_file: cannot read ${join(dir, 'gone.crt')}: ENOENT`);
  });

  test('an unreadable key file names it', () => {
    const file = write('dir-key.yml', `tls_server_config:\n  cert_file: server.crt\n  key_file: ${dir}\n`);
    expect(loadFailure(file)).toMatch(new RegExp(`tls_server_config\\.key_file: cannot read ${dir}: EISDIR`));
  });

  test('a certificate file without PEM, and a key that does not match the certificate', () => {
    writeFileSync(join(dir, 'junk.crt'), 'hello\n');
    expect(loadFailure(write('junk.yml', 'tls_server_config:\n  cert_file: junk.crt\n  key_file: server.key\n'))).toMatch(
      /junk\.crt holds no PEM certificate/,
    );
    expect(loadFailure(write('mismatch.yml', 'tls_server_config:\n  cert_file: server.crt\n  key_file: other.key\n'))).toMatch(
      /tls_server_config: the certificate \(.*server\.crt\), key \(.*other\.key\) is unusable/,
    );
  });

  test('a client CA file without a certificate', () => {
    const file = write(
      'bad-ca.yml',
      'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n',
    );
    expect(loadFailure(file)).toMatch(/tls_server_config\.client_ca_file: .*server\.key holds no PEM certificate/);
  });

  test('a file nobody may read (skipped as root, who reads anything)', () => {
    const file = write('secret.yml', '{}\n');
    chmodSync(file, 0o000);
    if (process.getuid?.() === 0) {
      expect(loadWebConfig(file).config.users.size).toBe(0);
    } else {
      expect(loadFailure(file)).toMatch(/cannot read: EACCES/);
    }
  });
});

describe('WebConfigSource: reloads on change', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'web-config-reload-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('a rotated certificate, a new user, a broken file and a policy change', async () => {
    const ca = await createCertificateAuthority();
    const first = await createServerCertificate(ca);
    const second = await createServerCertificate(ca);
    writeFileSync(join(dir, 'tls.crt'), first.certPem);
    writeFileSync(join(dir, 'tls.key'), first.keyPem);
    const file = join(dir, 'web.yml');
    const base = 'tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n';
    writeFileSync(file, base);
    let now = 0;
    const source = new WebConfigSource(file, 1000, () => now);
    expect(source.current.material?.cert).toBe(first.certPem);
    expect(source.refresh()).toEqual({ changed: false });

    // Rotation: both files replaced (as a kubelet-updated secret volume does).
    writeFileSync(join(dir, 'tls.crt'), second.certPem);
    writeFileSync(join(dir, 'tls.key'), second.keyPem);
    expect(source.refresh()).toEqual({ changed: false }); // within the check interval
    now += 1000;
    expect(source.refresh()).toEqual({ changed: true });
    expect(source.current.material?.cert).toBe(second.certPem);
    now += 1000;
    expect(source.refresh()).toEqual({ changed: false });

    writeFileSync(file, `${base}basic_auth_users:\n  a: "${HASH4}"\n`);
    now += 1000;
    expect(source.refresh()).toEqual({ changed: true });
    expect(source.current.config.users.has('a')).toBe(true);

    writeFileSync(file, `${base}  bogus: 1\n`);
    now += 1000;
    const broken = source.refresh();
    expect(broken.changed).toBe(false);
    expect(broken.error).toMatch(/unknown key tls_server_config\.bogus/);
    expect(source.current.config.users.has('a')).toBe(true);

    writeFileSync(file, `${base}  client_auth_type: RequireAnyClientCert\n`);
    now += 1000;
    expect(source.refresh().error).toMatch(/changing client_auth_type needs a restart/);

    writeFileSync(file, '{}\n');
    now += 1000;
    expect(source.refresh().error).toMatch(/turning TLS on or off needs a restart/);
    expect(source.current.config.tls).toBeDefined();
  });
});

describe('basic auth', () => {
  test('parseBasicAuth', () => {
    expect(parseBasicAuth(basicAuth('alice', 'pa:ss'))).toEqual({ user: 'alice', password: 'pa:ss' });
    expect(parseBasicAuth(`basic ${Buffer.from('a:').toString('base64')}`)).toEqual({ user: 'a', password: '' });
    expect(parseBasicAuth(undefined)).toBeUndefined();
    expect(parseBasicAuth('Bearer abc')).toBeUndefined();
    expect(parseBasicAuth(`Basic ${Buffer.from('nocolon').toString('base64')}`)).toBeUndefined();
    expect(parseBasicAuth('Basic !!!')).toBeUndefined();
  });

  test('a hash made here (cost 4) and one made by Go ($2y$, cost 10) both verify', async () => {
    const auth = new BasicAuthenticator();
    const users = new Map([
      ['alice', HASH4],
      ['dave', GO_DAVE_HASH],
    ]);
    expect(await auth.check(users, basicAuth('alice', 's3cret'))).toBe('ok');
    expect(await auth.check(users, basicAuth('alice', 's3cret!'))).toBe('denied');
    expect(await auth.check(users, basicAuth('dave', 'dave123'))).toBe('ok');
    expect(await auth.check(users, basicAuth('dave', 'dave1234'))).toBe('denied');
    expect(await auth.check(users, basicAuth('mallory', 's3cret'))).toBe('denied');
    expect(await auth.check(users, basicAuth('Alice', 's3cret'))).toBe('denied');
    expect(await auth.check(users, undefined)).toBe('denied');
    expect(await auth.check(new Map(), basicAuth('alice', 's3cret'))).toBe('denied');
  });

  test('successes are cached for a while; failures are not; a changed hash is not served from the cache', async () => {
    let now = 0;
    const auth = new BasicAuthenticator({ cacheTtlMs: 60_000, now: () => now });
    const users = new Map([['alice', HASH4]]);
    expect(await auth.check(users, basicAuth('alice', 's3cret'))).toBe('ok');
    expect(auth.bcryptRuns).toBe(1);
    expect(await auth.check(users, basicAuth('alice', 's3cret'))).toBe('ok');
    expect(auth.bcryptRuns).toBe(1);
    expect(await auth.check(users, basicAuth('alice', 'wrong'))).toBe('denied');
    expect(await auth.check(users, basicAuth('alice', 'wrong'))).toBe('denied');
    expect(auth.bcryptRuns).toBe(3);
    now += 60_001;
    expect(await auth.check(users, basicAuth('alice', 's3cret'))).toBe('ok');
    expect(auth.bcryptRuns).toBe(4);
    const changed = new Map([['alice', bcrypt.hashSync('other', 4)]]);
    expect(await auth.check(changed, basicAuth('alice', 's3cret'))).toBe('denied');
  });

  test('the cache cannot be poisoned by moving text between user and password (CVE-2022-46146)', async () => {
    const auth = new BasicAuthenticator();
    const users = new Map([['alice', HASH4]]);
    expect(await auth.check(users, basicAuth(`alice${HASH4}`, 'fakepassword'))).toBe('denied');
    expect(await auth.check(users, basicAuth('alice', `${HASH4}fakepassword`))).toBe('denied');
    expect(await auth.check(users, basicAuth('alice', 'fakepassword'))).toBe('denied');
  });

  test('the same credentials checked concurrently share one verification', async () => {
    const auth = new BasicAuthenticator();
    const users = new Map([['alice', HASH4]]);
    const results = await Promise.all(Array.from({ length: 5 }, () => auth.check(users, basicAuth('alice', 's3cret'))));
    expect(results).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    expect(auth.bcryptRuns).toBe(1);
    await auth.close();
  });

  test('bcrypt runs on worker threads: the main thread never calls it', async () => {
    const compare = vi.spyOn(bcrypt, 'compare');
    const compareSync = vi.spyOn(bcrypt, 'compareSync');
    const pool = new BcryptWorkerPool({ workers: 2 });
    const auth = new BasicAuthenticator({ verifier: pool });
    const users = new Map([
      ['alice', HASH4],
      ['dave', GO_DAVE_HASH],
    ]);
    try {
      expect(await auth.check(users, basicAuth('alice', 's3cret'))).toBe('ok');
      expect(await auth.check(users, basicAuth('dave', 'dave123'))).toBe('ok');
      expect(await auth.check(users, basicAuth('alice', 'wrong'))).toBe('denied');
      expect(pool.dispatched).toBe(3);
      expect(compare).not.toHaveBeenCalled();
      expect(compareSync).not.toHaveBeenCalled();
    } finally {
      compare.mockRestore();
      compareSync.mockRestore();
      await auth.close();
    }
  });

  test('a hash bcryptjs cannot read matches nothing, and a closed pool takes no work', async () => {
    const pool = new BcryptWorkerPool({ workers: 1 });
    expect(await pool.verify('x', '$2x$10$abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyza')).toBe(false);
    await pool.close();
    expect(pool.verify('s3cret', HASH4)).toBeUndefined();
  });
});

/** A verifier whose verifications wait until the test releases them. */
function gatedVerifier(maxWaiting: number) {
  const gates: ((matches: boolean) => void)[] = [];
  const verifier: PasswordVerifier = {
    verify: () => (gates.length >= maxWaiting ? undefined : new Promise<boolean>((resolve) => gates.push(resolve))),
    get pending() {
      return gates.length;
    },
    close: async () => undefined,
  };
  return { verifier, release: () => gates.splice(0).forEach((resolve) => resolve(false)) };
}

describe('basic auth under a wrong-password flood', () => {
  let server: Server;
  let base: string;
  const gate = gatedVerifier(4);
  const auth = new BasicAuthenticator({ verifier: gate.verifier });

  beforeAll(async () => {
    const app = express();
    const config = { file: FILE, http2: true, headers: {}, users: new Map([['alice', HASH4]]) };
    app.use(...webMiddleware(() => config, silentLogger, auth));
    app.get('/healthz', (_req, res) => res.send('ok\n'));
    app.get('/metrics', (_req, res) => res.send('metrics\n'));
    server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    gate.release();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('/healthz answers while verifications are pending; beyond the queue a guess gets 429 without work', async () => {
    const answered: number[] = [];
    const guesses = Array.from({ length: 6 }, (_, i) =>
      fetch(`${base}/metrics`, { headers: { authorization: basicAuth('alice', `guess${i}`) } }).then((answer) => {
        answered.push(answer.status);
        return answer.status;
      }),
    );
    await expect.poll(() => answered.length).toBe(2);
    // The two guesses past the queue were answered at once, without a verification.
    expect(answered).toEqual([429, 429]);
    expect(auth.bcryptRuns).toBe(4);
    expect(gate.verifier.pending).toBe(4);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect(gate.verifier.pending).toBe(4);
    gate.release();
    expect((await Promise.all(guesses)).sort()).toEqual([401, 401, 401, 401, 429, 429]);
  });
});

describe('client certificates', () => {
  test('parseSubjectAltNames reads the format Node prints, quoted values included', () => {
    expect(parseSubjectAltNames('DNS:a.example, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, email:x@y, URI:spiffe://c/ns/m')).toEqual(
      [
        { type: 'DNS', value: 'a.example' },
        { type: 'IP Address', value: '127.0.0.1' },
        { type: 'IP Address', value: '0:0:0:0:0:0:0:1' },
        { type: 'email', value: 'x@y' },
        { type: 'URI', value: 'spiffe://c/ns/m' },
      ],
    );
    expect(parseSubjectAltNames('DNS:"a, DNS:evil", DNS:b')).toEqual([
      { type: 'DNS', value: 'a, DNS:evil' },
      { type: 'DNS', value: 'b' },
    ]);
    expect(parseSubjectAltNames(undefined)).toEqual([]);
  });

  test('sanAllowed: exact matches; IPs compared as addresses; no injection through quoting', () => {
    expect(sanAllowed('DNS:prom.example, IP Address:10.0.0.7', ['10.0.0.7'])).toBe(true);
    expect(sanAllowed('DNS:prom.example', ['prom.example'])).toBe(true);
    expect(sanAllowed('DNS:prom.example', ['PROM.example', 'example', '*.example'])).toBe(false);
    expect(sanAllowed('IP Address:0:0:0:0:0:0:0:1', ['::1'])).toBe(true);
    expect(sanAllowed('IP Address:10.0.0.70', ['10.0.0.7'])).toBe(false);
    expect(sanAllowed('DNS:"a, DNS:evil"', ['evil'])).toBe(false);
    expect(sanAllowed(undefined, ['a'])).toBe(false);
  });

  test('clientCertificateProblem applies each client_auth_type after the handshake', async () => {
    const ca = await createCertificateAuthority();
    const client = await createClientCertificate(ca, { commonName: 'prometheus' });
    expect(client.certPem).toContain('BEGIN CERTIFICATE');
    const base: TlsSettings = {
      clientAuthType: 'NoClientCert',
      clientAllowedSans: [],
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.3',
      honorCipherOrder: true,
    };
    const none = { getPeerCertificate: () => ({}) as never, authorized: false, authorizationError: new Error('x') };
    const unverified = {
      getPeerCertificate: () => ({ subject: { CN: 'x' } }) as never,
      authorized: false,
      authorizationError: new Error('UNABLE_TO_VERIFY_LEAF_SIGNATURE'),
    };
    const verified = {
      getPeerCertificate: () => ({ subject: { CN: 'x' }, subjectaltname: 'DNS:prom' }) as never,
      authorized: true,
      authorizationError: undefined as unknown as Error,
    };
    const at = (type: TlsSettings['clientAuthType'], sans: string[] = []) => ({ ...base, clientAuthType: type, clientAllowedSans: sans });
    expect(clientCertificateProblem(at('NoClientCert'), none)).toBeUndefined();
    expect(clientCertificateProblem(at('RequestClientCert'), unverified)).toBeUndefined();
    expect(clientCertificateProblem(at('RequireAnyClientCert'), none)).toBe('no client certificate');
    expect(clientCertificateProblem(at('RequireAnyClientCert'), unverified)).toBeUndefined();
    expect(clientCertificateProblem(at('VerifyClientCertIfGiven'), none)).toBeUndefined();
    expect(clientCertificateProblem(at('VerifyClientCertIfGiven'), unverified)).toMatch(/not verified: .*UNABLE_TO_VERIFY/);
    expect(clientCertificateProblem(at('RequireAndVerifyClientCert'), none)).toBe('no client certificate');
    expect(clientCertificateProblem(at('RequireAndVerifyClientCert'), verified)).toBeUndefined();
    expect(clientCertificateProblem(at('RequireAndVerifyClientCert', ['prom']), verified)).toBeUndefined();
    expect(clientCertificateProblem(at('RequireAndVerifyClientCert', ['other']), verified)).toMatch(/no allowed subject alternative name/);
  });
});
