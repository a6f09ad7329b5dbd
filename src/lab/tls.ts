/**
 * Throwaway PKI for the node lab and tests: a CA, server certificates for 127.0.0.1/localhost
 * and client certificates, all in pure JS (@peculiar/x509 over Node's WebCrypto), returned as PEM.
 * ECDSA P-256 keeps generation fast (a few ms), and Node's TLS accepts PKCS#8 EC keys.
 */
import { webcrypto, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type * as X509 from '@peculiar/x509';

// Passed explicitly to every call rather than set globally, so this module does not change
// @peculiar/x509's process-wide provider for other users.
const crypto: webcrypto.Crypto = webcrypto;

type CryptoKey = webcrypto.CryptoKey;

/**
 * @peculiar/x509 uses tsyringe, which refuses to load without a Reflect metadata API
 * (reflect-metadata is not a dependency here). It only stores and reads decorator metadata, so a
 * small WeakMap-backed shim is enough; it is installed only when no polyfill is present, and the
 * library is imported after it.
 */
function ensureReflectMetadata(): void {
  const r = Reflect as unknown as Record<string, unknown>;
  if (typeof r.getMetadata === 'function') return;
  const store = new WeakMap<object, Map<string | symbol | undefined, Map<unknown, unknown>>>();
  const own = (target: object, prop?: string | symbol): Map<unknown, unknown> | undefined => store.get(target)?.get(prop);
  const getOwnMetadata = (key: unknown, target: object, prop?: string | symbol): unknown => own(target, prop)?.get(key);
  const getMetadata = (key: unknown, target: object, prop?: string | symbol): unknown => {
    for (let t: object | null = target; t !== null; t = Object.getPrototypeOf(t) as object | null) {
      const m = own(t, prop);
      if (m?.has(key)) return m.get(key);
    }
    return undefined;
  };
  const defineMetadata = (key: unknown, value: unknown, target: object, prop?: string | symbol): void => {
    let byProp = store.get(target);
    if (!byProp) store.set(target, (byProp = new Map()));
    let m = byProp.get(prop);
    if (!m) byProp.set(prop, (m = new Map()));
    m.set(key, value);
  };
  Object.assign(r, {
    getOwnMetadata,
    getMetadata,
    defineMetadata,
    hasMetadata: (key: unknown, target: object, prop?: string | symbol) => getMetadata(key, target, prop) !== undefined,
    metadata: (key: unknown, value: unknown) => (target: object, prop?: string | symbol) => defineMetadata(key, value, target, prop),
  });
}

let x509Module: Promise<typeof X509> | undefined;
function loadX509(): Promise<typeof X509> {
  ensureReflectMetadata();
  return (x509Module ??= import('@peculiar/x509'));
}

const KEY_ALGORITHM: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING_ALGORITHM: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const DAY_MS = 24 * 60 * 60 * 1000;
// Tolerate clock skew between the process that signs and the one that verifies.
const BACKDATE_MS = 5 * 60 * 1000;

export interface PemPair {
  certPem: string;
  /** PKCS#8 private key. */
  keyPem: string;
}

export interface CertificateAuthority extends PemPair {
  readonly subject: string;
  /** Kept in memory to sign leaf certificates; never exported beyond keyPem. */
  readonly signingKey: CryptoKey;
  readonly publicKey: CryptoKey;
}

export interface CertificateOptions {
  commonName?: string;
  validityDays?: number;
  /** Override the validity start (e.g. to make an expired certificate). Default: now minus 5 min. */
  notBefore?: Date;
}

export interface ServerCertificateOptions extends CertificateOptions {
  /** Host names and IP addresses for the subjectAltName. Default: 127.0.0.1, ::1, localhost. */
  altNames?: string[];
}

export interface ClientCertificateOptions extends CertificateOptions {
  commonName: string;
  /** O= entries (Kubernetes maps them to groups). */
  organizations?: string[];
}

function serialNumber(): string {
  // Positive and minimally encoded in DER: top bit clear (not negative), next bit set (no
  // leading zero byte).
  const bytes = randomBytes(8);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString('hex');
}

function validity(opts: CertificateOptions, defaultDays: number): { notBefore: Date; notAfter: Date } {
  const notBefore = opts.notBefore ?? new Date(Date.now() - BACKDATE_MS);
  const notAfter = new Date(notBefore.getTime() + (opts.validityDays ?? defaultDays) * DAY_MS);
  return { notBefore, notAfter };
}

function escapeDn(value: string): string {
  return value.replace(/([,+"\\<>;=])/g, '\\$1');
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return crypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
}

async function exportKeyPem(x509: typeof X509, key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await crypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/** A self-signed CA allowed to sign leaf certificates only (pathLength 0). */
export async function createCertificateAuthority(opts: CertificateOptions = {}): Promise<CertificateAuthority> {
  const x509 = await loadX509();
  const keys = await generateKeys();
  const subject = `CN=${escapeDn(opts.commonName ?? 'kata-metrics-bridge lab CA')}`;
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serialNumber(),
      name: subject,
      ...validity(opts, 30),
      keys,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return {
    certPem: cert.toString('pem'),
    keyPem: await exportKeyPem(x509, keys.privateKey),
    subject,
    signingKey: keys.privateKey,
    publicKey: keys.publicKey,
  };
}

async function issue(ca: CertificateAuthority, subject: string, opts: CertificateOptions, extensions: X509.Extension[]): Promise<PemPair> {
  const x509 = await loadX509();
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject,
      issuer: ca.subject,
      ...validity(opts, 30),
      publicKey: keys.publicKey,
      signingKey: ca.signingKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        await x509.AuthorityKeyIdentifierExtension.create(ca.publicKey, false, crypto),
        ...extensions,
      ],
    },
    crypto,
  );
  return { certPem: cert.toString('pem'), keyPem: await exportKeyPem(x509, keys.privateKey) };
}

/** A TLS server certificate signed by `ca`, valid for 127.0.0.1, ::1 and localhost by default. */
export async function createServerCertificate(ca: CertificateAuthority, opts: ServerCertificateOptions = {}): Promise<PemPair> {
  const x509 = await loadX509();
  const altNames = opts.altNames ?? ['127.0.0.1', '::1', 'localhost'];
  const names: X509.JsonGeneralNames = altNames.map((n) => ({
    type: isIP(n) ? 'ip' : 'dns',
    value: n,
  }));
  return issue(ca, `CN=${escapeDn(opts.commonName ?? altNames[0] ?? 'localhost')}`, opts, [
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
    ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names, false)] : []),
  ]);
}

/** A TLS client certificate signed by `ca` (for mTLS tests). */
export async function createClientCertificate(ca: CertificateAuthority, opts: ClientCertificateOptions): Promise<PemPair> {
  const x509 = await loadX509();
  const rdns = [...(opts.organizations ?? []).map((o) => `O=${escapeDn(o)}`), `CN=${escapeDn(opts.commonName)}`];
  return issue(ca, rdns.join(', '), opts, [
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
  ]);
}
