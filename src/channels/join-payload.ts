import { postgresChangesId } from '../shared/subscription-id.js';

/**
 * Tolerant parsing of the phx_join payload, as upstream does it: invalid parts are reported (for logging) and
 * replaced by defaults, never a reason to refuse the join.
 */
export interface PostgresChangeParams {
  /** The entry exactly as the client sent it (echoed back with an `id`). */
  raw: Record<string, unknown>;
  id: number;
}

export interface ReplayParams {
  since: unknown;
  limit: unknown;
}

export interface JoinConfig {
  hasConfig: boolean;
  broadcastSelf: boolean;
  broadcastAck: boolean;
  replay: ReplayParams | null;
  replicationReady: boolean;
  presenceEnabled: boolean;
  presenceKey: string | null;
  postgresChanges: PostgresChangeParams[];
  private: boolean;
  accessToken: string | null;
  problems: string[];
}

export function parseJoinPayload(payload: unknown): JoinConfig {
  const problems: string[] = [];
  const out: JoinConfig = {
    hasConfig: false,
    broadcastSelf: false,
    broadcastAck: false,
    replay: null,
    replicationReady: false,
    presenceEnabled: false,
    presenceKey: null,
    postgresChanges: [],
    private: false,
    accessToken: null,
    problems,
  };
  const root = asMap(payload, 'payload', problems);
  if (!root) return out;
  out.accessToken = channelToken(root);
  if (!('config' in root)) return out;
  out.hasConfig = true;
  const config = asMap(root.config, 'config', problems);
  if (!config) return out;

  const broadcast = config.broadcast === undefined ? null : asMap(config.broadcast, 'broadcast', problems);
  if (broadcast) {
    out.broadcastSelf = flexibleBool(broadcast.self, 'broadcast.self', problems);
    out.broadcastAck = flexibleBool(broadcast.ack, 'broadcast.ack', problems);
    out.replicationReady = flexibleBool(broadcast.replication_ready, 'broadcast.replication_ready', problems);
    if (broadcast.replay !== undefined && broadcast.replay !== null) {
      const replay = asMap(broadcast.replay, 'broadcast.replay', problems);
      out.replay = replay ? { since: replay.since, limit: replay.limit } : { since: undefined, limit: undefined };
    }
  }
  const presence = config.presence === undefined ? null : asMap(config.presence, 'presence', problems);
  if (presence) {
    out.presenceEnabled = flexibleBool(presence.enabled, 'presence.enabled', problems);
    const key = presence.key;
    if (typeof key === 'string' && key !== '') out.presenceKey = key;
    else if (typeof key === 'number') out.presenceKey = String(key);
  }
  out.private = flexibleBool(config.private, 'private', problems);
  out.postgresChanges = postgresChanges(config.postgres_changes, problems);
  return out;
}

/** Channel token = user_token, else access_token, else the socket token (null here); `sb_` keys are ignored. */
function channelToken(root: Record<string, unknown>): string | null {
  for (const candidate of [root.user_token, root.access_token]) {
    if (typeof candidate === 'string') return candidate.startsWith('sb_') ? null : candidate;
  }
  return null;
}

function postgresChanges(value: unknown, problems: string[]): PostgresChangeParams[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    problems.push('postgres_changes: unable to parse, expected an array of maps');
    return [];
  }
  const out: PostgresChangeParams[] = [];
  for (const entry of value) {
    if (entry === null) continue;
    if (typeof entry !== 'object' || Array.isArray(entry)) {
      problems.push('postgres_changes: unable to parse, expected an array of maps');
      continue;
    }
    const raw = entry as Record<string, unknown>;
    out.push({ raw, id: postgresChangesId(raw) });
  }
  return out;
}

function asMap(value: unknown, field: string, problems: string[]): Record<string, unknown> | null {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  problems.push(`${field}: unable to parse, expected a map`);
  return null;
}

export function flexibleBool(value: unknown, field: string, problems: string[]): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    const lower = value.toLowerCase();
    if (lower === 'true') return true;
    if (lower === 'false') return false;
  }
  problems.push(`${field}: unable to parse, expected boolean`);
  return false;
}
