import { pino, type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs on stderr, so `--once` can keep stdout for the exposition. */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { app: 'kata-metrics-bridge' } }, pino.destination(2));
}

/** A logger that drops everything: for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });
