/**
 * `--web.config.file`: TLS, client certificates, response headers and basic auth in the Prometheus
 * exporter-toolkit format (docs/web-config.md). Parsing is a pure function of the YAML text and the
 * file's path; loading reads the certificate files; `WebConfigSource` re-reads the file and the
 * certificates when they change on disk, so a rotated certificate is served without a restart.
 *
 * Anything the file says that this exporter cannot honour fails at start-up with a message naming
 * the file and the key, rather than being silently ignored.
 */

import { createSecureContext, type SecureVersion } from 'node:tls';
import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { identityOf } from '../file-identity.ts';
import { CLIENT_AUTH_TYPES, secureContextOptions, type TlsMaterial, type TlsSettings } from './tls-context.ts';
import { z } from 'zod';
import { ConfigError } from '../config-error.ts';

export class WebConfigError extends ConfigError {
  override name = 'WebConfigError';
}

const TLS_VERSIONS: Record<string, SecureVersion> = { TLS10: 'TLSv1', TLS11: 'TLSv1.1', TLS12: 'TLSv1.2', TLS13: 'TLSv1.3' };
const VERSION_ORDER: SecureVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/**
 * Go's names for the TLS 1.2 suites that Go's `tls.CipherSuites()` lists as secure, mapped to
 * OpenSSL's. Go's insecure suites (RC4, 3DES, plain RSA key exchange, CBC-SHA256) are refused.
 */
const CIPHER_SUITES: Record<string, string> = {
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: 'ECDHE-ECDSA-CHACHA20-POLY1305',
};
/** Go does not let TLS 1.3 suites be configured; keep OpenSSL's when cipher_suites narrows 1.2. */
const TLS13_SUITES = 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256';

const CURVES: Record<string, string> = { CurveP256: 'P-256', CurveP384: 'P-384', CurveP521: 'P-521', X25519: 'X25519' };

/** The response headers exporter-toolkit allows, with the values it accepts where it restricts them. */
const HEADERS: Record<string, readonly string[] | undefined> = {
  'Content-Security-Policy': undefined,
  'X-Frame-Options': ['deny', 'sameorigin'],
  'X-Content-Type-Options': ['nosniff'],
  'X-XSS-Protection': undefined,
  'Strict-Transport-Security': undefined,
};

/**
 * Modular crypt bcrypt: $2a$, $2b$ or $2y$, a two-digit cost 4..31, 53 characters of salt and
 * hash. The $2$ and $2x$ variants are refused: bcryptjs matches no password against them, so a
 * user with one could never log in.
 */
const BCRYPT = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;
const UNMATCHABLE_BCRYPT = /^\$2x?\$/;

const bcryptHash = z.string({ error: 'must be a bcrypt hash string' }).superRefine((hash, ctx) => {
  if (UNMATCHABLE_BCRYPT.test(hash)) {
    ctx.addIssue({
      code: 'custom',
      message: `is a ${hash.slice(0, hash.indexOf('$', 1) + 1)} bcrypt hash, which no password can match: generate a $2y$ hash (htpasswd -nbBC 10 user password)`,
    });
  } else if (!BCRYPT.test(hash)) {
    ctx.addIssue({ code: 'custom', message: 'is not a bcrypt hash ($2a$, $2b$ or $2y$, cost 04-31, 53 characters)' });
  }
});

const nonEmpty = (what: string) => z.string({ error: `${what} must be a string` }).min(1, `${what} must not be empty`);
const stringList = (what: string) => z.array(nonEmpty(what), { error: `${what} must be a list of strings` });
/** YAML reads `X-XSS-Protection: 1` as a number; Go's map[string]string takes it as "1". */
const scalarString = z.union([z.string(), z.number(), z.boolean()]).transform(String);

const MAP = { error: 'must be a map of keys to values' };

const tlsSchema = z.strictObject(
  {
    cert: nonEmpty('cert').optional(),
    key: nonEmpty('key').optional(),
    client_ca: nonEmpty('client_ca').optional(),
    cert_file: nonEmpty('cert_file').optional(),
    key_file: nonEmpty('key_file').optional(),
    client_ca_file: nonEmpty('client_ca_file').optional(),
    client_auth_type: z.enum(CLIENT_AUTH_TYPES, { error: `must be one of ${CLIENT_AUTH_TYPES.join(', ')}` }).default('NoClientCert'),
    client_allowed_sans: stringList('client_allowed_sans').optional(),
    min_version: z
      .enum(Object.keys(TLS_VERSIONS) as [string, ...string[]], { error: 'must be one of TLS10, TLS11, TLS12, TLS13' })
      .default('TLS12'),
    max_version: z
      .enum(Object.keys(TLS_VERSIONS) as [string, ...string[]], { error: 'must be one of TLS10, TLS11, TLS12, TLS13' })
      .default('TLS13'),
    cipher_suites: z
      .array(
        z.string().refine((name) => name in CIPHER_SUITES, {
          error: (issue) =>
            `cipher suite "${String(issue.input)}" is not supported: use one of ${Object.keys(CIPHER_SUITES).join(', ')} (TLS 1.3 suites are not configurable)`,
        }),
        { error: 'must be a list of cipher suite names' },
      )
      .optional(),
    prefer_server_cipher_suites: z.boolean({ error: 'must be true or false' }).default(true),
    curve_preferences: z
      .array(
        z.string().refine((name) => name in CURVES, {
          error: (issue) => `curve "${String(issue.input)}" is not supported: use one of ${Object.keys(CURVES).join(', ')}`,
        }),
        { error: 'must be a list of curve names' },
      )
      .optional(),
  },
  MAP,
);

const headersSchema = z
  .record(z.string(), scalarString, { error: 'must be a map of header names to values' })
  .superRefine((headers, ctx) => {
    for (const [name, value] of Object.entries(headers)) {
      if (!(name in HEADERS)) {
        ctx.addIssue({ code: 'custom', path: [name], message: `header is not allowed: use one of ${Object.keys(HEADERS).join(', ')}` });
        continue;
      }
      const allowed = HEADERS[name];
      if (allowed !== undefined && value !== '' && !allowed.includes(value.toLowerCase())) {
        ctx.addIssue({ code: 'custom', path: [name], message: `"${value}" is not allowed: use ${allowed.join(' or ')}` });
      }
    }
  });

const webConfigSchema = z.strictObject(
  {
    tls_server_config: tlsSchema.optional(),
    http_server_config: z
      .strictObject(
        {
          http2: z.boolean({ error: 'must be true or false' }).default(true),
          headers: headersSchema.optional(),
        },
        MAP,
      )
      .optional(),
    basic_auth_users: z.record(z.string(), bcryptHash, { error: 'must be a map of user names to bcrypt hashes' }).optional(),
    rate_limit: z.unknown().optional(),
  },
  MAP,
);

export interface WebConfig {
  /** Absolute path of the file this came from. */
  file: string;
  tls?: TlsSettings;
  /** Accepted for compatibility; this exporter serves HTTP/1.1 only (see docs/web-config.md). */
  http2: boolean;
  /** Response headers to set; empty values (unset in exporter-toolkit) are left out. */
  headers: Record<string, string>;
  /** user → bcrypt hash; empty when no basic auth. */
  users: Map<string, string>;
}

export interface LoadedWebConfig {
  config: WebConfig;
  /** Present when the config asks for TLS. */
  material?: TlsMaterial;
}

function keyPath(path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(top level)' : path.map(String).join('.');
}

function issueMessage(file: string, issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    const parent = issue.path.length === 0 ? '' : `${keyPath(issue.path)}.`;
    return `${file}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `${parent}${k}`).join(', ')}`;
  }
  return `${file}: ${keyPath(issue.path)}: ${issue.message}`;
}

/** Validates the YAML text of a web config; relative paths resolve against the file's directory. */
export function parseWebConfig(text: string, file: string): WebConfig {
  const absolute = resolve(file);
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    const error = doc.errors[0]!;
    const line = error.linePos?.[0]?.line;
    throw new WebConfigError(
      `${file}${line !== undefined ? `:${line}` : ''}: not valid YAML: ${error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`,
    );
  }
  const raw: unknown = doc.toJS() ?? {};
  const parsed = webConfigSchema.safeParse(raw);
  if (!parsed.success) throw new WebConfigError(parsed.error.issues.map((issue) => issueMessage(file, issue)).join('; '));
  const data = parsed.data;
  if (data.rate_limit !== undefined) {
    throw new WebConfigError(
      `${file}: rate_limit is not supported by kata-metrics-bridge: remove it (Prometheus scrapes share one collection anyway)`,
    );
  }

  const fail = (key: string, message: string): never => {
    throw new WebConfigError(`${file}: ${key}: ${message}`);
  };
  const dir = dirname(absolute);
  const at = (path: string | undefined) => (path === undefined ? undefined : isAbsolute(path) ? path : resolve(dir, path));

  let tls: TlsSettings | undefined;
  const t = data.tls_server_config;
  if (t !== undefined) {
    if (t.cert !== undefined && t.cert_file !== undefined) fail('tls_server_config.cert', 'set cert or cert_file, not both');
    if (t.key !== undefined && t.key_file !== undefined) fail('tls_server_config.key', 'set key or key_file, not both');
    if (t.client_ca !== undefined && t.client_ca_file !== undefined)
      fail('tls_server_config.client_ca', 'set client_ca or client_ca_file, not both');
    if (t.cert === undefined && t.cert_file === undefined) fail('tls_server_config.cert_file', 'missing: TLS needs a certificate');
    if (t.key === undefined && t.key_file === undefined) fail('tls_server_config.key_file', 'missing: TLS needs a private key');
    const hasCa = t.client_ca !== undefined || t.client_ca_file !== undefined;
    if (hasCa && t.client_auth_type === 'NoClientCert') {
      fail('tls_server_config.client_ca_file', 'a client CA is set but client_auth_type is NoClientCert: use RequireAndVerifyClientCert');
    }
    if (!hasCa && (t.client_auth_type === 'VerifyClientCertIfGiven' || t.client_auth_type === 'RequireAndVerifyClientCert')) {
      fail('tls_server_config.client_ca_file', `missing: client_auth_type ${t.client_auth_type} verifies client certificates against it`);
    }
    if (
      t.client_allowed_sans !== undefined &&
      t.client_auth_type !== 'RequireAnyClientCert' &&
      t.client_auth_type !== 'RequireAndVerifyClientCert'
    ) {
      fail(
        'tls_server_config.client_allowed_sans',
        'needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert (the others let a client connect without a certificate)',
      );
    }
    const minVersion = TLS_VERSIONS[t.min_version]!;
    const maxVersion = TLS_VERSIONS[t.max_version]!;
    if (VERSION_ORDER.indexOf(minVersion) > VERSION_ORDER.indexOf(maxVersion)) {
      fail('tls_server_config.min_version', `${t.min_version} is above max_version ${t.max_version}`);
    }
    tls = {
      certFile: at(t.cert_file),
      keyFile: at(t.key_file),
      clientCaFile: at(t.client_ca_file),
      certPem: t.cert,
      keyPem: t.key,
      clientCaPem: t.client_ca,
      clientAuthType: t.client_auth_type,
      clientAllowedSans: t.client_allowed_sans ?? [],
      minVersion,
      maxVersion,
      ciphers:
        t.cipher_suites === undefined || t.cipher_suites.length === 0
          ? undefined
          : [TLS13_SUITES, ...t.cipher_suites.map((name) => CIPHER_SUITES[name]!)].join(':'),
      honorCipherOrder: t.prefer_server_cipher_suites,
      ecdhCurve:
        t.curve_preferences === undefined || t.curve_preferences.length === 0
          ? undefined
          : t.curve_preferences.map((name) => CURVES[name]!).join(':'),
    };
  }

  const headers = Object.fromEntries(Object.entries(data.http_server_config?.headers ?? {}).filter(([, value]) => value !== ''));
  return {
    file: absolute,
    tls,
    http2: data.http_server_config?.http2 ?? true,
    headers,
    users: new Map(Object.entries(data.basic_auth_users ?? {})),
  };
}

function readPem(file: string, key: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new WebConfigError(`${file}: ${key}: cannot read ${path}: ${code ?? (error as Error).message}`);
  }
}

/** Reads the certificate, key and client CA, and checks that Node's TLS accepts them together. */
export function loadTlsMaterial(config: WebConfig): TlsMaterial | undefined {
  const tls = config.tls;
  if (tls === undefined) return undefined;
  const file = config.file;
  const cert = tls.certPem ?? readPem(file, 'tls_server_config.cert_file', tls.certFile!);
  const key = tls.keyPem ?? readPem(file, 'tls_server_config.key_file', tls.keyFile!);
  const ca =
    tls.clientCaPem ?? (tls.clientCaFile === undefined ? undefined : readPem(file, 'tls_server_config.client_ca_file', tls.clientCaFile));
  if (!cert.includes('-----BEGIN CERTIFICATE-----'))
    throw new WebConfigError(`${file}: tls_server_config.cert_file: ${tls.certFile ?? 'cert'} holds no PEM certificate`);
  if (ca !== undefined && !ca.includes('-----BEGIN CERTIFICATE-----')) {
    throw new WebConfigError(`${file}: tls_server_config.client_ca_file: ${tls.clientCaFile ?? 'client_ca'} holds no PEM certificate`);
  }
  const material: TlsMaterial = { cert, key, ...(ca !== undefined ? { ca } : {}) };
  try {
    createSecureContext(secureContextOptions(tls, material));
  } catch (error) {
    throw new WebConfigError(
      `${file}: tls_server_config: the certificate (${tls.certFile ?? 'cert'}), key (${tls.keyFile ?? 'key'})${ca !== undefined ? ` or client CA (${tls.clientCaFile ?? 'client_ca'})` : ''} is unusable: ${(error as Error).message}`,
    );
  }
  return material;
}

/** Reads and validates the file and the certificates it names. Throws WebConfigError naming the file. */
export function loadWebConfig(file: string): LoadedWebConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new WebConfigError(
      `--web.config.file ${file}: cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  const config = parseWebConfig(text, file);
  return { config, material: loadTlsMaterial(config) };
}

/** The files whose change means a reload: the config itself and the certificate files it names. */
function watchedFiles(config: WebConfig): string[] {
  const tls = config.tls;
  return [config.file, tls?.certFile, tls?.keyFile, tls?.clientCaFile].filter((f): f is string => f !== undefined);
}

function fingerprint(files: readonly string[]): string {
  return files
    .map((f) => {
      try {
        return `${f}:${identityOf(statSync(f, { bigint: true }))}`;
      } catch {
        return `${f}:missing`;
      }
    })
    .join('|');
}

export interface ReloadOutcome {
  changed: boolean;
  /** Set when the files changed but the new content was refused (the old config stays). */
  error?: string;
}

/**
 * The current web config, re-read when its file or a certificate file changes. `refresh()` is cheap
 * (a few stat calls, at most once per `minCheckIntervalMs`) and is called per new connection.
 * A change that cannot apply without a restart (turning TLS on or off) or a broken new file keeps
 * the old config and reports why; the exporter keeps serving.
 */
export class WebConfigSource {
  private loaded: LoadedWebConfig;
  private stamp: string;
  private lastCheck = 0;

  constructor(
    private readonly file: string,
    private readonly minCheckIntervalMs = 1000,
    private readonly clock: () => number = Date.now,
  ) {
    this.loaded = loadWebConfig(file);
    this.stamp = fingerprint(watchedFiles(this.loaded.config));
  }

  get current(): LoadedWebConfig {
    return this.loaded;
  }

  /** Re-reads when a watched file changed; `force` skips the rate limit (e.g. on SIGHUP). */
  refresh(force = false): ReloadOutcome {
    const now = this.clock();
    if (!force && now - this.lastCheck < this.minCheckIntervalMs) return { changed: false };
    this.lastCheck = now;
    const stamp = fingerprint(watchedFiles(this.loaded.config));
    if (!force && stamp === this.stamp) return { changed: false };
    this.stamp = stamp;
    let next: LoadedWebConfig;
    try {
      next = loadWebConfig(this.file);
    } catch (error) {
      return { changed: false, error: (error as Error).message };
    }
    if ((next.config.tls === undefined) !== (this.loaded.config.tls === undefined)) {
      return { changed: false, error: `${this.file}: turning TLS on or off needs a restart; keeping the running configuration` };
    }
    if (next.config.tls !== undefined && next.config.tls.clientAuthType !== this.loaded.config.tls?.clientAuthType) {
      return { changed: false, error: `${this.file}: changing client_auth_type needs a restart; keeping the running configuration` };
    }
    // The new config may name other files: watch those from now on.
    this.stamp = fingerprint(watchedFiles(next.config));
    this.loaded = next;
    return { changed: true };
  }
}
