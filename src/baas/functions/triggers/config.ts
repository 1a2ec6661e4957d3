/**
 * A function's triggers as `PUT …/functions/<name>/triggers` takes them (pure): a JSON list of
 * `{"type":"cron","schedule":"*\/5 * * * *"}`, `{"type":"database","schema":"public","table":"todos",
 * "events":["INSERT"],"filter":"status=eq.done"}`, `{"type":"auth","events":["user.created"]}`,
 * `{"type":"storage","events":["object.created"],"bucket":"avatars"}`.
 */
import { Cron } from 'croner';

export type TriggerConfig =
  | { type: 'cron'; schedule: string; timezone?: string }
  | { type: 'database'; schema: string; table: string; events: ('INSERT' | 'UPDATE' | 'DELETE')[]; filter?: { column: string; value: string } }
  | { type: 'auth'; events: string[] }
  | { type: 'storage'; events: string[]; bucket?: string };

const MAX_TRIGGERS = 20;
const IDENT = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;
const EVENT = /^[a-z][a-z0-9_.]{0,63}$/;
const DB_EVENTS = ['INSERT', 'UPDATE', 'DELETE'] as const;

export function parseTriggers(value: unknown): { triggers: TriggerConfig[] } | { errors: string[] } {
  if (!Array.isArray(value)) return { errors: ['the body is a JSON list of triggers'] };
  if (value.length > MAX_TRIGGERS) return { errors: [`at most ${MAX_TRIGGERS} triggers`] };
  const errors: string[] = [];
  const triggers: TriggerConfig[] = [];
  value.forEach((entry, i) => {
    const parsed = parseOne(entry);
    if (typeof parsed === 'string') errors.push(`[${i}]: ${parsed}`);
    else triggers.push(parsed);
  });
  return errors.length > 0 ? { errors } : { triggers };
}

function parseOne(entry: unknown): TriggerConfig | string {
  if (!entry || typeof entry !== 'object' || Array.isArray(entry)) return 'a trigger is an object with a type';
  const e = entry as Record<string, unknown>;
  switch (e.type) {
    case 'cron': {
      if (typeof e.schedule !== 'string' || e.schedule.length > 200) return 'cron needs a schedule';
      if (e.timezone !== undefined && typeof e.timezone !== 'string') return 'timezone is a string';
      try {
        new Cron(e.schedule, { paused: true, timezone: e.timezone as string | undefined }).stop();
      } catch (err) {
        return `schedule: ${err instanceof Error ? err.message : String(err)}`;
      }
      return { type: 'cron', schedule: e.schedule, ...(e.timezone ? { timezone: e.timezone as string } : {}) };
    }
    case 'database': {
      const schema = e.schema ?? 'public';
      if (typeof schema !== 'string' || !IDENT.test(schema) || typeof e.table !== 'string' || !IDENT.test(e.table)) return 'database needs a schema and table name';
      const events = e.events ?? ['INSERT', 'UPDATE', 'DELETE'];
      if (!Array.isArray(events) || events.length === 0 || !events.every((x) => (DB_EVENTS as readonly unknown[]).includes(x))) return 'events are INSERT, UPDATE, DELETE';
      let filter: { column: string; value: string } | undefined;
      if (e.filter !== undefined) {
        const m = typeof e.filter === 'string' ? /^([A-Za-z_][A-Za-z0-9_$]{0,62})=eq\.(.{0,200})$/.exec(e.filter) : null;
        if (!m) return 'filter is column=eq.value';
        filter = { column: m[1], value: m[2] };
      }
      return { type: 'database', schema, table: e.table, events: [...new Set(events)] as ("INSERT" | "UPDATE" | "DELETE")[], ...(filter ? { filter } : {}) };
    }
    case 'auth':
    case 'storage': {
      const events = e.events;
      if (!Array.isArray(events) || events.length === 0 || !events.every((x) => typeof x === 'string' && EVENT.test(x))) return `${e.type} needs a list of event names`;
      if (e.type === 'auth') return { type: 'auth', events: [...new Set(events as string[])] };
      if (e.bucket !== undefined && (typeof e.bucket !== 'string' || e.bucket.length > 100)) return 'bucket is a name';
      return { type: 'storage', events: [...new Set(events as string[])], ...(e.bucket ? { bucket: e.bucket as string } : {}) };
    }
    default:
      return 'type is cron, database, auth or storage';
  }
}
