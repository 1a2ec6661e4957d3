/**
 * Date/time values in the forms Postgres prints them with DateStyle ISO (pgoutput text mode) and in the ISO 8601
 * forms people write in filters. Instants are microseconds since 1970-01-01 UTC as bigint; infinities are values
 * beyond any representable timestamp, so plain comparison orders them correctly.
 *
 * Approximations (documented for filters): only ISO-style input is understood (`2026-01-02`, `2026-01-02 03:04`,
 * `2026-01-02T03:04:05.678+02:00`, `Z`/`UTC`/`±hh[:mm[:ss]]` zones, ` BC`, and the special words); a timestamptz
 * written without a zone is read as UTC (the session TimeZone upstream's database normally runs with).
 */

// Postgres' range ends at 294276 AD, past int64 microseconds counted from 1970; bigint has room beyond it.
export const TS_NEG_INFINITY = -(2n ** 70n);
export const TS_INFINITY = 2n ** 70n;
const US_PER_SEC = 1_000_000n;
const US_PER_DAY = 86_400_000_000n;

/** Days since 1970-01-01 of a proleptic Gregorian date (astronomical years: 1 BC = 0). */
export function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

export function civilFromDays(days: number): [number, number, number] {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [m <= 2 ? era * 400 + yoe + 1 : era * 400 + yoe, m, d];
}

const isLeap = (y: number): boolean => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Parsed pieces of a date-time text. `zone` is the UTC offset in seconds east, or null when none was written. */
export interface DateTimeParts {
  days: number;
  /** Microseconds into the day (may reach 24:00:00 exactly). */
  micros: bigint;
  zone: number | null;
  /** Fraction digits as written (for re-formatting without rounding). */
  fraction: string;
  secondsOfDay: number;
}

const ZONE = String.raw`(Z|z|UTC|GMT|[+-]\d{1,2}(?::?\d{2}(?::?\d{2})?)?)`;
const TIME = String.raw`(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?`;
// date [T|spaces time] [zone] [BC|AD]
const DATE_TIME = new RegExp(String.raw`^\s*(\d{1,7})-(\d{1,2})-(\d{1,2})(?:(?:[Tt]|\s+)${TIME})?\s*${ZONE}?\s*(BC|AD)?\s*$`, 'i');
const TIME_ONLY = new RegExp(String.raw`^\s*${TIME}\s*${ZONE}?\s*$`, 'i');

/** Parses a zone written as `Z`, `UTC`, `+05`, `-0330`, `+05:30`, `+00:53:28` into seconds east of UTC. */
export function parseZone(text: string): number | undefined {
  const up = text.toUpperCase();
  if (up === 'Z' || up === 'UTC' || up === 'GMT') return 0;
  const m = /^([+-])(\d{1,2})(?::?(\d{2})(?::?(\d{2}))?)?$/.exec(text);
  if (!m) return undefined;
  const h = Number(m[2]);
  const min = m[3] === undefined ? 0 : Number(m[3]);
  const s = m[4] === undefined ? 0 : Number(m[4]);
  if (h > 15 || min > 59 || s > 59) return undefined;
  const total = h * 3600 + min * 60 + s;
  return m[1] === '-' ? -total : total;
}

// Microseconds from a fraction string, rounded to 6 digits as Postgres does.
function fractionMicros(fraction: string): bigint {
  if (fraction === '') return 0n;
  const six = (fraction + '000000').slice(0, 6);
  let us = BigInt(six);
  if (fraction.length > 6 && fraction.charCodeAt(6) >= 0x35) us += 1n;
  return us;
}

function timeOfDay(h: string | undefined, mi: string | undefined, s: string | undefined, f: string | undefined) {
  const hour = h === undefined ? 0 : Number(h);
  const minute = mi === undefined ? 0 : Number(mi);
  const second = s === undefined ? 0 : Number(s);
  if (hour > 24 || minute > 59 || second > 60) return undefined;
  const fraction = f ?? '';
  const secondsOfDay = hour * 3600 + minute * 60 + second;
  const micros = BigInt(secondsOfDay) * US_PER_SEC + fractionMicros(fraction);
  if (micros > US_PER_DAY) return undefined;
  return { secondsOfDay, micros, fraction };
}

/** Date and optional time and zone; undefined when the text is not in a supported form or out of range. */
export function parseDateTime(text: string): DateTimeParts | undefined {
  const m = DATE_TIME.exec(text);
  if (!m) return undefined;
  let year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const bc = m[9]?.toUpperCase() === 'BC';
  if (year === 0 || month < 1 || month > 12 || day < 1) return undefined;
  if (bc) year = 1 - year;
  const maxDay = month === 2 && isLeap(year) ? 29 : MONTH_DAYS[month - 1]!;
  if (day > maxDay) return undefined;
  const t = timeOfDay(m[4], m[5], m[6], m[7]);
  if (!t) return undefined;
  let zone: number | null = null;
  if (m[8] !== undefined) {
    const z = parseZone(m[8]);
    if (z === undefined) return undefined;
    zone = z;
  }
  const days = daysFromCivil(year, month, day);
  return { days, micros: t.micros, zone, fraction: t.fraction, secondsOfDay: t.secondsOfDay };
}

export interface TimeParts {
  micros: bigint;
  zone: number | null;
}

export function parseTime(text: string): TimeParts | undefined {
  const m = TIME_ONLY.exec(text);
  if (!m) return undefined;
  const t = timeOfDay(m[1], m[2], m[3], m[4]);
  if (!t) return undefined;
  if (m[5] === undefined) return { micros: t.micros, zone: null };
  const zone = parseZone(m[5]);
  return zone === undefined ? undefined : { micros: t.micros, zone };
}

type Special = 'infinity' | '-infinity' | 'epoch' | 'now' | 'today' | 'tomorrow' | 'yesterday';

function special(text: string): Special | undefined {
  const t = text.trim().toLowerCase();
  if (t === 'infinity' || t === '+infinity') return 'infinity';
  if (t === '-infinity' || t === 'epoch' || t === 'now' || t === 'today' || t === 'tomorrow' || t === 'yesterday') {
    return t;
  }
  return undefined;
}

/** True for inputs whose value depends on the evaluation time (`now`, `today`, ...), re-read per evaluation. */
export function isRelativeDateTime(text: string): boolean {
  const s = special(text);
  return s === 'now' || s === 'today' || s === 'tomorrow' || s === 'yesterday';
}

function specialMicros(s: Special, nowMs: number): bigint {
  const now = BigInt(Math.trunc(nowMs)) * 1000n;
  const midnight = now - (((now % US_PER_DAY) + US_PER_DAY) % US_PER_DAY);
  switch (s) {
    case 'infinity':
      return TS_INFINITY;
    case '-infinity':
      return TS_NEG_INFINITY;
    case 'epoch':
      return 0n;
    case 'now':
      return now;
    case 'today':
      return midnight;
    case 'tomorrow':
      return midnight + US_PER_DAY;
    case 'yesterday':
      return midnight - US_PER_DAY;
  }
}

/**
 * A timestamp (`withZone` false: the zone, if written, is ignored as Postgres does for `timestamp`) or timestamptz
 * (a missing zone means UTC) as microseconds since the Unix epoch.
 */
export function parseTimestamp(text: string, withZone: boolean, nowMs = Date.now()): bigint | undefined {
  const s = special(text);
  if (s !== undefined) return specialMicros(s, nowMs);
  const p = parseDateTime(text);
  if (!p) return undefined;
  const local = BigInt(p.days) * US_PER_DAY + p.micros;
  return withZone && p.zone !== null ? local - BigInt(p.zone) * US_PER_SEC : local;
}

/** A date as days since the Unix epoch; infinities as ±Infinity. */
export function parseDate(text: string, nowMs = Date.now()): number | undefined {
  const s = special(text);
  if (s === 'infinity') return Infinity;
  if (s === '-infinity') return -Infinity;
  if (s !== undefined) return Number(specialMicros(s, nowMs) / US_PER_DAY);
  const p = parseDateTime(text);
  return p?.days;
}

/** timetz ordering key per Postgres: UTC-adjusted time first, then the zone (so equal only with equal zones). */
export function parseTimetz(text: string): { utc: bigint; zone: number } | undefined {
  const t = parseTime(text);
  if (!t) return undefined;
  const zone = t.zone ?? 0;
  return { utc: t.micros - BigInt(zone) * US_PER_SEC, zone };
}

const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

function formatYear(astronomical: number): { year: string; bc: boolean } {
  const bc = astronomical <= 0;
  const y = bc ? 1 - astronomical : astronomical;
  return { year: String(y).padStart(4, '0'), bc };
}

/**
 * Re-renders a timestamptz from Postgres' ISO output (any session zone) the way `to_jsonb` prints it with
 * TimeZone=UTC: `2026-01-02T03:04:05.678+00:00` (XSD style, ` BC` suffix kept). Returns the text unchanged
 * (`infinity`, unparsable input) when it is not a date-time.
 */
export function timestamptzToJsonText(text: string): string {
  // Fast path: a UTC session prints `2026-01-02 03:04:05+00`.
  if (text.length >= 22 && text.charCodeAt(10) === 0x20 && text.endsWith('+00') && text.charCodeAt(4) === 0x2d) {
    return `${text.slice(0, 10)}T${text.slice(11)}:00`;
  }
  const p = parseDateTime(text);
  if (!p || p.zone === null) return text;
  let seconds = p.secondsOfDay - p.zone;
  let days = p.days;
  while (seconds < 0) {
    seconds += 86400;
    days -= 1;
  }
  while (seconds >= 86400) {
    seconds -= 86400;
    days += 1;
  }
  const [y, mo, d] = civilFromDays(days);
  const { year, bc } = formatYear(y);
  const hh = Math.floor(seconds / 3600);
  const mi = Math.floor((seconds % 3600) / 60);
  const ss = seconds % 60;
  const frac = p.fraction === '' ? '' : `.${p.fraction}`;
  return `${year}-${pad2(mo)}-${pad2(d)}T${pad2(hh)}:${pad2(mi)}:${pad2(ss)}${frac}+00:00${bc ? ' BC' : ''}`;
}

/** `2026-01-02 03:04:05` -> `2026-01-02T03:04:05` (to_jsonb's XSD form of a timestamp); specials unchanged. */
export function timestampToJsonText(text: string): string {
  const space = text.indexOf(' ');
  if (space < 0 || !/^\d/.test(text)) return text;
  return `${text.slice(0, space)}T${text.slice(space + 1)}`;
}
