import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON logs on stdout; every line about a tenant carries `tenant` (and `error_code` for errors) via child loggers. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'performer' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
