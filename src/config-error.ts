/** A bad flag or configuration file: reported at start-up with what to change, never a stack trace. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}
