/**
 * `Accept` negotiation as PostgREST does it: the header is split on `,`, ordered by q-value and specificity, each
 * entry decoded to a media type; the first one we can produce wins, otherwise 406 PGRST107 listing them all.
 */
import { RestError } from '../errors.js';

export type MediaType =
  | { kind: 'json' }
  | { kind: 'any' }
  | { kind: 'csv' }
  | { kind: 'singular'; stripNulls: boolean }
  | { kind: 'array-stripped' }
  | { kind: 'geojson' }
  | { kind: 'openapi' }
  | { kind: 'text' }
  | { kind: 'xml' }
  | { kind: 'urlencoded' }
  | { kind: 'octet-stream' }
  | { kind: 'plan'; mime: string }
  | { kind: 'other'; text: string };

/** How the body is shaped: a JSON array, one JSON object (PGRST116 unless exactly one row), or CSV. */
export type OutputFormat = 'json' | 'singular' | 'csv';

export interface Negotiated {
  format: OutputFormat;
  stripNulls: boolean;
  /** The Content-Type of a successful response. */
  contentType: string;
}

const isAlphaNum = (c: string): boolean => /^[\p{L}\p{N}]$/u.test(c);

interface Tokens {
  main: string;
  sub: string;
  params: Map<string, string>;
}

/** PostgREST's tokenizeMediaType: `type/subtype` then `; key=value` pairs; null when the type part is malformed. */
function tokenize(text: string): Tokens | null {
  const cps = Array.from(text);
  let i = 0;
  const run = (ok: (c: string) => boolean): string => {
    const start = i;
    while (i < cps.length && ok(cps[i])) i++;
    return cps.slice(start, i).join('');
  };
  const spaces = () => run((c) => /\s/u.test(c));
  const main = run((c) => isAlphaNum(c) || c === '.' || c === '*');
  if (main === '' || cps[i] !== '/') return null;
  i++;
  const sub = run((c) => isAlphaNum(c) || '.*+-'.includes(c));
  if (sub === '') return null;
  const params = new Map<string, string>();
  for (;;) {
    const save = i;
    spaces();
    if (cps[i] !== ';') {
      i = save;
      break;
    }
    i++;
    spaces();
    const key = run((c) => isAlphaNum(c) || c === '-');
    spaces();
    if (key === '' || cps[i] !== '=') {
      i = save;
      break;
    }
    i++;
    spaces();
    let value: string;
    if (cps[i] === '"') {
      const close = cps.indexOf('"', i + 1);
      if (close < 0) {
        i = save;
        break;
      }
      value = cps.slice(i + 1, close).join('');
      i = close + 1;
    } else {
      value = run((c) => isAlphaNum(c) || c === '|' || c === '-');
      if (value === '') {
        i = save;
        break;
      }
    }
    params.set(key.toLowerCase(), value);
  }
  return { main, sub, params };
}

export function decodeMediaType(text: string): MediaType {
  const t = tokenize(text);
  if (!t) return { kind: 'other', text };
  const main = t.main.toLowerCase();
  const sub = t.sub.toLowerCase();
  const stripped = (t.params.get('nulls') ?? 'false') === 'stripped';
  if (main === 'application') {
    switch (sub) {
      case 'json':
        return { kind: 'json' };
      case 'geo+json':
        return { kind: 'geojson' };
      case 'openapi+json':
        return { kind: 'openapi' };
      case 'x-www-form-urlencoded':
        return { kind: 'urlencoded' };
      case 'octet-stream':
        return { kind: 'octet-stream' };
      case 'vnd.pgrst.plan':
      case 'vnd.pgrst.plan+text':
      case 'vnd.pgrst.plan+json':
        return { kind: 'plan', mime: planMime(sub.endsWith('+json') ? 'json' : 'text', t.params) };
      case 'vnd.pgrst.object+json':
      case 'vnd.pgrst.object':
        return { kind: 'singular', stripNulls: stripped };
      case 'vnd.pgrst.array+json':
      case 'vnd.pgrst.array':
        return stripped ? { kind: 'array-stripped' } : { kind: 'json' };
    }
  }
  if (main === 'text' && sub === 'csv') return { kind: 'csv' };
  if (main === 'text' && sub === 'plain') return { kind: 'text' };
  if (main === 'text' && sub === 'xml') return { kind: 'xml' };
  if (main === '*' && sub === '*') return { kind: 'any' };
  return { kind: 'other', text };
}

function planMime(format: 'json' | 'text', params: Map<string, string>): string {
  const target = mimeOf(decodeMediaType(params.get('for') ?? 'application/json'));
  const options = (params.get('options') ?? '').split('|');
  const known = ['analyze', 'verbose', 'settings', 'buffers', 'wal'].filter((o) => options.includes(o));
  return `application/vnd.pgrst.plan+${format}; for="${target}"${known.length ? `; options=${known.join('|')}` : ''}`;
}

export function mimeOf(m: MediaType): string {
  switch (m.kind) {
    case 'json':
      return 'application/json';
    case 'array-stripped':
      return 'application/vnd.pgrst.array+json;nulls=stripped';
    case 'geojson':
      return 'application/geo+json';
    case 'csv':
      return 'text/csv';
    case 'text':
      return 'text/plain';
    case 'xml':
      return 'text/xml';
    case 'openapi':
      return 'application/openapi+json';
    case 'singular':
      return m.stripNulls ? 'application/vnd.pgrst.object+json;nulls=stripped' : 'application/vnd.pgrst.object+json';
    case 'urlencoded':
      return 'application/x-www-form-urlencoded';
    case 'octet-stream':
      return 'application/octet-stream';
    case 'any':
      return '*/*';
    case 'plan':
      return m.mime;
    case 'other':
      return m.text;
  }
}

/** wai-extra's parseHttpAccept: spaces dropped, sorted by q then specificity (stable), q=0 kept. */
export function parseAccept(header: string | undefined): MediaType[] {
  if (header === undefined) return [{ kind: 'any' }];
  const entries = header.split(',').map((raw, index) => {
    const s = raw.replace(/ /g, '');
    const at = s.indexOf(';q=');
    const type = at < 0 ? s : s.slice(0, at);
    const qText = at < 0 ? '' : s.slice(at + 3).split(';')[0];
    const qMatch = /^\s*(-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)/.exec(qText);
    const q = qMatch ? Number(qMatch[1]) : 1;
    const specificity = (type.match(/;/g)?.length ?? 0) - (type.match(/\*/g)?.length ?? 0);
    return { type, q, specificity, index };
  });
  entries.sort((a, b) => b.q - a.q || b.specificity - a.specificity || a.index - b.index);
  return entries.map((e) => decodeMediaType(e.type));
}

/** Picks the first acceptable output for a table, view or function response; 406 PGRST107 otherwise. */
export function negotiate(accepted: readonly MediaType[]): Negotiated {
  for (const m of accepted) {
    switch (m.kind) {
      case 'any':
      case 'json':
        return { format: 'json', stripNulls: false, contentType: 'application/json; charset=utf-8' };
      case 'array-stripped':
        return { format: 'json', stripNulls: true, contentType: `${mimeOf(m)}; charset=utf-8` };
      case 'singular':
        return { format: 'singular', stripNulls: m.stripNulls, contentType: `${mimeOf(m)}; charset=utf-8` };
      case 'csv':
        return { format: 'csv', stripNulls: false, contentType: 'text/csv; charset=utf-8' };
    }
  }
  throw RestError.mediaType(accepted.map(mimeOf));
}
