/** Why a source could not be read. Shared by every scraper so correlation can map it to a gap reason. */
export type SourceErrorReason =
  | 'unreachable' // connection refused, no such socket or host, reset
  | 'timeout' // the deadline for the whole exchange passed
  | 'oversize' // the response passed its byte cap
  | 'unauthorized' // 401 / 403
  | 'not_found' // 404 (after any fallback)
  | 'http_status' // any other non-2xx
  | 'tls' // certificate or handshake failure
  | 'malformed' // the bytes could not be decoded
  | 'io'; // a local file could not be read

/**
 * An error that names what was read (URL, socket or file) and says what the operator can do.
 * Scrapers throw or return it; nothing else leaves a scraper.
 */
export class SourceError extends Error {
  constructor(
    readonly reason: SourceErrorReason,
    /** The URL, socket path or file involved. */
    readonly target: string,
    detail: string,
    /** What to do about it, in one sentence. */
    readonly hint?: string,
  ) {
    super(`${target}: ${detail}${hint ? ` (${hint})` : ''}`);
    this.name = 'SourceError';
  }
}

/**
 * The system or undici code of an error (ECONNREFUSED, ENOENT, UND_ERR_BODY_TIMEOUT…), looking
 * through `cause` (fetch wraps the real error) and past undici's generic abort wrapper.
 */
export function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, cause } = error as { code?: unknown; cause?: unknown };
  if (typeof code === 'string' && code !== 'UND_ERR_ABORTED') return code;
  return errorCode(cause) ?? (typeof code === 'string' ? code : undefined);
}

/**
 * Churn, not failure: the file, directory, cgroup or process went away (or never was) between
 * listing and reading. ENODEV: read through a removed cgroup; ESRCH: a process that exited.
 */
export function isGone(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENODEV' || code === 'ESRCH';
}
