import type pg from 'pg';
import type { BroadcastEnvelope } from '../shared/messages.js';
import { actAs, inRolledBackTransaction, type RlsFailure, type RlsOptions, type RlsRequest } from '../db/rls.js';

/**
 * Broadcast replay for private channels (spec §4.7): the newest stored broadcasts of a topic since a point in
 * time, read as the joining user so RLS decides what they may see, handed back oldest first.
 */

export const REPLAY_MAX_LIMIT = 25;

export interface ReplayParams {
  /** Unix milliseconds; rows inserted at or after it. */
  since: number;
  /** 1..25. */
  limit: number;
}

export interface ReplayRequest extends RlsRequest {
  /** As the client sent them in config.broadcast.replay; validated here. */
  since: unknown;
  limit?: unknown;
}

export interface ReplayedMessage {
  id: string;
  event: string;
  /** 1: payload is the stored JSON text (UTF-8); 0: payload is binary_payload's bytes. */
  encoding: 0 | 1;
  payload: Uint8Array;
}

export type ReplayResult =
  | { ok: true; messages: ReplayedMessage[] }
  | { ok: false; error: 'InvalidParams' }
  | { ok: false; error: 'Failed'; failure: RlsFailure };

/**
 * The snapshot rule: `since` must be an integer and is required; `limit` must be an integer when present and
 * defaults to 25; it is clamped to 1..25. (The post-snapshot defaults since=0 / limit=10 are not used.)
 */
export function parseReplayParams(raw: { since: unknown; limit?: unknown }): ReplayParams | null {
  const { since, limit } = raw;
  if (typeof since !== 'number' || !Number.isSafeInteger(since)) return null;
  if (limit !== undefined && limit !== null && (typeof limit !== 'number' || !Number.isSafeInteger(limit))) return null;
  const wanted = typeof limit === 'number' ? limit : REPLAY_MAX_LIMIT;
  return { since, limit: Math.min(REPLAY_MAX_LIMIT, Math.max(1, wanted)) };
}

/** Reads the messages to replay; never throws. */
export async function replayMessages(pool: pg.Pool, req: ReplayRequest, opts: RlsOptions = {}): Promise<ReplayResult> {
  const params = parseReplayParams(req);
  if (!params) return { ok: false, error: 'InvalidParams' };
  const outcome = await inRolledBackTransaction(
    pool,
    async (client) => {
      if (!(await actAs(client, req, opts))) return [];
      // inserted_at is a timestamp without time zone written with now(): comparing it with timestamptz values
      // interprets it in the session time zone, the same one its default used.
      const res = await client.query<{ id: string; event: string | null; payload: string | null; binary_payload: Buffer | null }>(
        `SELECT id::text AS id, event, payload::text AS payload, binary_payload
           FROM realtime.messages
          WHERE topic = $1
            AND private IS TRUE
            AND extension = 'broadcast'
            AND inserted_at >= to_timestamp($2::float8 / 1000)
            AND inserted_at < now() + interval '1 minute'
          ORDER BY inserted_at DESC
          LIMIT $3`,
        [req.topic, params.since, params.limit],
      );
      return res.rows;
    },
    opts,
  );
  if (!outcome.ok) return { ok: false, error: 'Failed', failure: outcome.failure };
  const messages: ReplayedMessage[] = [];
  for (let i = outcome.value.length - 1; i >= 0; i--) {
    const row = outcome.value[i]!;
    if (row.event === null) continue;
    if (row.payload !== null) messages.push({ id: row.id, event: row.event, encoding: 1, payload: Buffer.from(row.payload, 'utf8') });
    else if (row.binary_payload !== null) messages.push({ id: row.id, event: row.event, encoding: 0, payload: row.binary_payload });
  }
  return { ok: true, messages };
}

/**
 * A replayed message as a fan-out envelope: meta `{"id":…,"replayed":true}`. encodeFor() then yields the kind-4
 * frame for V2 and `{"event","payload","type":"broadcast","meta"}` for V1 (binary rows: null, skipped for V1).
 */
export function replayEnvelope(msg: ReplayedMessage): BroadcastEnvelope {
  return {
    type: 'user',
    userEvent: msg.event,
    encoding: msg.encoding,
    payload: msg.payload,
    metaJson: JSON.stringify({ id: msg.id, replayed: true }),
  };
}

/** The join refusal (spec §3.3 row 11) for a failed replay. */
export function replayRefusal(result: Extract<ReplayResult, { ok: false }>): string {
  return result.error === 'InvalidParams'
    ? 'UnableToReplayMessages: Replay params are not valid'
    : 'UnableToReplayMessages: Realtime was unable to replay messages';
}
