/**
 * TLS server options from validated web-config settings. Apart from web-config.ts so that the
 * listener needs neither the YAML parser nor the schema library: those load only when
 * --web.config.file is given.
 */
import type { TlsMaterial, TlsSettings } from './web-config.ts';

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
