import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON logs on stdout; every line about a tenant carries `tenant` (and `error_code` for errors) via child loggers. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'performer' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    serializers: { err: serializeError },
    // Second line of defence for objects logged under other keys: a pg client carries its cancel key.
    redact: { paths: ['client', '*.client', 'secretKey', '*.secretKey'], remove: true },
  };
  return destination ? pino(options, destination) : pino(options);
}

const MAX_DEPTH = 6;

/**
 * pino's error serializer, keeping data only. The standard one copies every enumerable field of the error as it
 * is, and some libraries hang live objects there: pg-pool puts the whole pg Client on an idle client's error
 * (connection parameters, socket, and the backend's cancel key).
 */
export function serializeError(err: unknown): unknown {
  const serialized = pino.stdSerializers.err(err as Error) as unknown;
  if (serialized === null || typeof serialized !== 'object') return serialized;
  // Serialized errors (the top one, nested ones) share pino's error prototype; they are data too.
  const errorProto = serialized === err ? null : Object.getPrototypeOf(serialized);
  return dataOnly(serialized, errorProto, 0);
}

/** A copy of `value` without class instances (clients, sockets, buffers): plain objects, arrays, scalars, dates. */
function dataOnly(value: unknown, errorProto: object | null, depth: number): unknown {
  if (value === null || typeof value !== 'object') return typeof value === 'function' ? undefined : value;
  if (value instanceof Date) return value;
  if (depth >= MAX_DEPTH) return undefined;
  if (Array.isArray(value)) return value.map((item) => dataOnly(item, errorProto, depth + 1));
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null && proto !== errorProto) return undefined;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const kept = dataOnly(item, errorProto, depth + 1);
    if (kept !== undefined) out[key] = kept;
  }
  return out;
}
