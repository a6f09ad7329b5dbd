/**
 * The TLS settings of a web config and the server options they make. Apart from web-config.ts so
 * that the listener needs neither the YAML parser nor the schema library: those load only when
 * --web.config.file is given.
 */

import type { SecureVersion } from 'node:tls';

export const CLIENT_AUTH_TYPES = [
  'NoClientCert',
  'RequestClientCert',
  'RequireAnyClientCert',
  'VerifyClientCertIfGiven',
  'RequireAndVerifyClientCert',
] as const;
export type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number];

export interface TlsSettings {
  /** Absolute paths, or undefined when the PEM is given inline. */
  certFile?: string;
  keyFile?: string;
  clientCaFile?: string;
  /** Inline PEM (exporter-toolkit's `cert`, `key`, `client_ca`). */
  certPem?: string;
  keyPem?: string;
  clientCaPem?: string;
  clientAuthType: ClientAuthType;
  clientAllowedSans: string[];
  minVersion: SecureVersion;
  maxVersion: SecureVersion;
  /** OpenSSL cipher list, or undefined for Node's defaults. */
  ciphers?: string;
  honorCipherOrder: boolean;
  ecdhCurve?: string;
}

/** PEM read from the files (or inline), ready for `tls.createSecureContext`. */
export interface TlsMaterial {
  cert: string;
  key: string;
  ca?: string;
}

/** The options of `tls.createSecureContext` / `https.createServer` for these settings. */
export function secureContextOptions(tls: TlsSettings, material: TlsMaterial) {
  return {
    cert: material.cert,
    key: material.key,
    ...(material.ca !== undefined ? { ca: material.ca } : {}),
    minVersion: tls.minVersion,
    maxVersion: tls.maxVersion,
    ...(tls.ciphers !== undefined ? { ciphers: tls.ciphers } : {}),
    ...(tls.ecdhCurve !== undefined ? { ecdhCurve: tls.ecdhCurve } : {}),
    honorCipherOrder: tls.honorCipherOrder,
  };
}
