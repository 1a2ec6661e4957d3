/**
 * Data shapes of the presence CRDT: the in-memory entry, and the JSON form shared by deltas and snapshots (the
 * cluster layer ships both over Redis, so they must survive JSON.stringify/parse unchanged).
 */
import { normalizeIntervals, type Interval } from './crdt-context.js';

export type { Interval } from './crdt-context.js';

export type PresenceMeta = Record<string, unknown>;

/** One tracked presence. Treated as immutable: the CRDT shares these objects with callers. */
export interface PresenceEntry {
  /** Replica that added the entry and alone may remove it. */
  readonly replica: string;
  /** Dot counter; (replica, counter) identifies the entry cluster-wide. */
  readonly counter: number;
  readonly topic: string;
  readonly key: string;
  /** Owning channel/connection on the owning replica. */
  readonly pid: string;
  readonly meta: Readonly<PresenceMeta>;
  /** phx_ref: opaque, unique per track, derived from the dot. */
  readonly ref: string;
  /** phx_ref of the entry this one replaced (an update of the same topic/pid/key), if any. */
  readonly prevRef?: string;
}

/** Entry as shipped: [counter, topic, key, pid, meta, prevCounter?]; the replica is the enclosing key. */
export type WireEntry =
  | [counter: number, topic: string, key: string, pid: string, meta: PresenceMeta]
  | [counter: number, topic: string, key: string, pid: string, meta: PresenceMeta, prevCounter: number];

/**
 * A delta or a full snapshot (the same lattice, so one merge handles both).
 * `ctx`: replica -> intervals of dots this state knows about; `entries`: replica -> entries still alive.
 * A dot covered by `ctx` without an entry means "removed" and wins over any copy of that add.
 */
export interface PresenceState {
  v: 1;
  ctx: Record<string, Interval[]>;
  entries: Record<string, WireEntry[]>;
}

/** presence_state payload: key -> metas (meta plus phx_ref), metas ordered by dot. */
export type PresenceList = Record<string, { metas: WireMeta[] }>;

export type WireMeta = PresenceMeta & { phx_ref: string; phx_ref_prev?: string };

/** presence_diff payload. */
export interface PresenceDiff {
  joins: PresenceList;
  leaves: PresenceList;
}

const MAX_COUNTER = 2 ** 48 - 1;

/**
 * phx_ref of a dot: base64url of the 6-byte big-endian counter followed by the replica id in UTF-8. The fixed-width
 * prefix makes the encoding injective, so refs are unique cluster-wide and the same on every replica.
 */
export function refFor(replica: string, counter: number): string {
  const id = Buffer.from(replica, 'utf8');
  const buf = Buffer.allocUnsafe(6 + id.length);
  buf.writeUIntBE(counter, 0, 6);
  id.copy(buf, 6);
  return buf.toString('base64url');
}

/** Counter of the dot a ref was made from (inverse of refFor for the counter part). */
export function counterOfRef(ref: string): number {
  return Buffer.from(ref, 'base64url').readUIntBE(0, 6);
}

/** Total order of dots used for every listing: counters are Lamport-like, replica id breaks ties. */
export function compareEntries(a: PresenceEntry, b: PresenceEntry): number {
  if (a.counter !== b.counter) return a.counter - b.counter;
  return a.replica < b.replica ? -1 : a.replica > b.replica ? 1 : 0;
}

export function encodeEntry(e: PresenceEntry): WireEntry {
  return e.prevRef === undefined
    ? [e.counter, e.topic, e.key, e.pid, e.meta as PresenceMeta]
    : [e.counter, e.topic, e.key, e.pid, e.meta as PresenceMeta, counterOfRef(e.prevRef)];
}

export function decodeEntry(replica: string, w: WireEntry): PresenceEntry {
  const entry: PresenceEntry = {
    replica,
    counter: w[0],
    topic: w[1],
    key: w[2],
    pid: w[3],
    meta: w[4],
    ref: refFor(replica, w[0]),
  };
  return w.length === 6 ? { ...entry, prevRef: refFor(replica, w[5]) } : entry;
}

/** The meta as clients see it. phx_ref is written last so a meta cannot forge it. */
export function wireMeta(e: PresenceEntry, withPrev: boolean): WireMeta {
  const m: WireMeta = { ...e.meta, phx_ref: e.ref };
  if (withPrev && e.prevRef !== undefined) m.phx_ref_prev = e.prevRef;
  else delete m.phx_ref_prev;
  return m;
}

/** Groups entries by presence key (entries must already be in dot order). */
export function groupByKey(entries: Iterable<PresenceEntry>, withPrev: boolean): PresenceList {
  const byKey = new Map<string, WireMeta[]>();
  for (const e of entries) {
    let metas = byKey.get(e.key);
    if (metas === undefined) {
      metas = [];
      byKey.set(e.key, metas);
    }
    metas.push(wireMeta(e, withPrev));
  }
  // fromEntries defines own properties: a client key "__proto__" stays a plain key.
  return Object.fromEntries([...byKey].map(([k, metas]) => [k, { metas }]));
}

const isCounter = (n: unknown): n is number =>
  Number.isSafeInteger(n) && (n as number) >= 1 && (n as number) <= MAX_COUNTER;
const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

function fail(what: string): never {
  throw new TypeError(`invalid presence state: ${what}`);
}

/**
 * Checks a state received from another node (after JSON.parse) and returns it with normalized intervals. Throws a
 * TypeError on anything malformed, so a bad message is rejected whole instead of half-merged.
 */
export function parsePresenceState(input: unknown): PresenceState {
  if (!isObject(input) || input.v !== 1) fail('not a v1 state');
  const { ctx, entries } = input;
  if (!isObject(ctx) || !isObject(entries)) fail('ctx/entries must be objects');
  const outCtx: [string, Interval[]][] = [];
  for (const [r, ivs] of Object.entries(ctx)) {
    if (!Array.isArray(ivs)) fail(`ctx of ${r}`);
    for (const iv of ivs) {
      if (!Array.isArray(iv) || iv.length !== 2 || !isCounter(iv[0]) || !isCounter(iv[1]) || iv[0] > iv[1]) {
        fail(`interval of ${r}`);
      }
    }
    outCtx.push([r, normalizeIntervals(ivs as Interval[])]);
  }
  for (const [r, list] of Object.entries(entries)) {
    if (!Array.isArray(list)) fail(`entries of ${r}`);
    for (const w of list) {
      if (
        !Array.isArray(w) ||
        (w.length !== 5 && w.length !== 6) ||
        !isCounter(w[0]) ||
        typeof w[1] !== 'string' ||
        typeof w[2] !== 'string' ||
        typeof w[3] !== 'string' ||
        !isObject(w[4]) ||
        (w.length === 6 && !isCounter(w[5]))
      ) {
        fail(`entry of ${r}`);
      }
    }
  }
  return { v: 1, ctx: Object.fromEntries(outCtx), entries: entries as Record<string, WireEntry[]> };
}
