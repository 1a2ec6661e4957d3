/**
 * Intervals for filter comparisons. Postgres orders intervals by one span where a month counts as 30 days and a
 * day as 24 hours (interval_cmp_value), so `1 mon` = `30 days`. We read the `postgres` IntervalStyle output
 * (`1 year 2 mons 3 days 04:05:06.789`, `-1 days +02:00:00`), the verbose form (`@ 1 day ago`), ISO 8601
 * (`P1Y2M3DT4H5M6S`) and the usual `<number> <unit>` input; other input forms are rejected.
 */

const US_PER_SEC = 1_000_000;
const US_PER_DAY = 86_400n * 1_000_000n;

interface Parts {
  months: number;
  days: number;
  micros: number;
}

const UNITS: Record<string, (p: Parts, n: number) => void> = {};
const addMonths = (p: Parts, n: number): void => {
  const whole = Math.trunc(n);
  p.months += whole;
  addDays(p, (n - whole) * 30);
};
const addDays = (p: Parts, n: number): void => {
  const whole = Math.trunc(n);
  p.days += whole;
  p.micros += Math.round((n - whole) * 86_400 * US_PER_SEC);
};
const addMicros = (scale: number) => (p: Parts, n: number): void => {
  p.micros += Math.round(n * scale);
};
// Fractions of years (and longer units) become whole months, rounded half to even like rint().
const addYears = (months: number) => (p: Parts, n: number): void => {
  const whole = Math.trunc(n);
  p.months += whole * months + roundHalfEven((n - whole) * months);
};
const roundHalfEven = (x: number): number => {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};
for (const u of ['millennium', 'millennia', 'millenniums', 'mil', 'mils']) UNITS[u] = addYears(12000);
for (const u of ['century', 'centuries', 'cent', 'c']) UNITS[u] = addYears(1200);
for (const u of ['decade', 'decades', 'dec', 'decs']) UNITS[u] = addYears(120);
for (const u of ['year', 'years', 'yr', 'yrs', 'y']) UNITS[u] = addYears(12);
for (const u of ['month', 'months', 'mon', 'mons']) UNITS[u] = addMonths;
for (const u of ['week', 'weeks', 'w']) UNITS[u] = (p, n) => addDays(p, n * 7);
for (const u of ['day', 'days', 'd']) UNITS[u] = addDays;
for (const u of ['hour', 'hours', 'hr', 'hrs', 'h']) UNITS[u] = addMicros(3600 * US_PER_SEC);
for (const u of ['minute', 'minutes', 'min', 'mins', 'm']) UNITS[u] = addMicros(60 * US_PER_SEC);
for (const u of ['second', 'seconds', 'sec', 'secs', 's']) UNITS[u] = addMicros(US_PER_SEC);
for (const u of ['millisecond', 'milliseconds', 'msec', 'msecs', 'ms']) UNITS[u] = addMicros(1000);
for (const u of ['microsecond', 'microseconds', 'usec', 'usecs', 'us']) UNITS[u] = addMicros(1);

const TIME = /^([+-])?(\d+):(\d{1,2})(?::(\d{1,2}(?:\.\d+)?))?$/;
const NUM = String.raw`(-?\d+(?:\.\d+)?)`;
const ISO = new RegExp(`^P(?:${NUM}Y)?(?:${NUM}M)?(?:${NUM}W)?(?:${NUM}D)?(?:T(?:${NUM}H)?(?:${NUM}M)?(?:${NUM}S)?)?$`, 'i');

/** The comparison span in microseconds, or undefined for unsupported/invalid text. */
export function parseIntervalSpan(text: string): bigint | undefined {
  const p = parseInterval(text);
  if (!p) return undefined;
  return (BigInt(p.months) * 30n + BigInt(p.days)) * US_PER_DAY + BigInt(p.micros);
}

function parseInterval(input: string): Parts | undefined {
  const text = input.trim();
  if (text === '') return undefined;
  const p: Parts = { months: 0, days: 0, micros: 0 };
  const iso = ISO.exec(text);
  if (iso) {
    if (text.length === 1 || /T$/i.test(text)) return undefined;
    const [, y, mo, w, d, h, mi, s] = iso.map((v) => (v === undefined ? 0 : Number(v)));
    addYears(12)(p, y!);
    addMonths(p, mo!);
    addDays(p, w! * 7 + d!);
    p.micros += Math.round((h! * 3600 + mi! * 60 + s!) * US_PER_SEC);
    return p;
  }
  let tokens = text.split(/\s+/);
  let ago = false;
  if (tokens[0] === '@') tokens = tokens.slice(1);
  if (tokens.length > 0 && tokens[tokens.length - 1]!.toLowerCase() === 'ago') {
    ago = true;
    tokens = tokens.slice(0, -1);
  }
  if (tokens.length === 0) return undefined;
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i]!;
    const time = TIME.exec(tok);
    if (time) {
      const sign = time[1] === '-' ? -1 : 1;
      const secs = Number(time[2]) * 3600 + Number(time[3]) * 60 + (time[4] === undefined ? 0 : Number(time[4]));
      p.micros += sign * Math.round(secs * US_PER_SEC);
      continue;
    }
    // `<number><unit>` written together (`3d`) or as two tokens (`3 days`); a bare number means seconds.
    const joined = /^([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)([a-z]*)$/i.exec(tok);
    if (!joined) return undefined;
    const n = Number(joined[1]);
    let unit = joined[2]!.toLowerCase();
    if (unit === '' && i + 1 < tokens.length && /^[a-z]+$/i.test(tokens[i + 1]!)) unit = tokens[++i]!.toLowerCase();
    const apply = unit === '' ? UNITS.s : UNITS[unit];
    if (!apply || !Number.isFinite(n)) return undefined;
    apply(p, n);
  }
  if (ago) {
    p.months = -p.months;
    p.days = -p.days;
    p.micros = -p.micros;
  }
  return p;
}
