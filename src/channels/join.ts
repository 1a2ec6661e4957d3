import { jwtFailureCode, jwtFailureMessage, type Claims } from '../auth/jwt.js';
import { replayMessages, replayRefusal, type ReplayedMessage } from '../replication/replay.js';
import { checkRead, joinRefusal } from '../tenants/authorization.js';
import { Channel } from './channel.js';
import { JoinError, MAX_SUB_TOPIC_BYTES, reasonCode } from './errors.js';
import { ChannelPolicies } from './policies.js';
import { postgresChangesId } from '../shared/subscription-id.js';
import { parseJoinPayload, type JoinConfig } from './join-payload.js';
import { legacyTopicParams } from '../replication/changes/index.js';
import type { PhoenixMessage } from './protocol/index.js';
import type { SocketPort } from './ports.js';

const TOPIC_PREFIX = 'realtime:';

type JoinOutcome =
  | { ok: true; token: string; claims: Claims; exp: number | null; policies: ChannelPolicies; replayed: ReplayedMessage[] | null }
  | { ok: false; reason: string; disconnect?: boolean };

/**
 * phx_join, with upstream's checks in upstream's order. A failed join is answered only after the channel error
 * backoff, so a misconfigured client cannot spin in a tight join loop.
 */
export async function handleJoin(conn: SocketPort, msg: PhoenixMessage): Promise<void> {
  if (!acceptsTopic(conn, msg)) return;
  const { topic, ref } = msg;
  const joinRef = msg.joinRef ?? msg.ref;
  const existing = conn.channels.get(topic);
  if (existing) existing.close('rejoin');
  const config = parseJoinPayload(msg.payload);
  if (config.problems.length > 0) {
    conn.log.info({ error_code: 'InvalidJoinPayload', problems: config.problems, topic }, 'join payload partly invalid');
  }
  conn.joinStarted(topic);
  let outcome: JoinOutcome;
  try {
    outcome = await checkJoin(conn, topic.slice(TOPIC_PREFIX.length), config);
  } catch (err) {
    conn.log.error({ err, topic, error_code: 'UnknownErrorOnChannel' }, 'join failed unexpectedly');
    outcome = { ok: false, reason: JoinError.unknown };
  } finally {
    conn.joinEnded(topic);
  }
  if (conn.closed) return;
  if (!outcome.ok) return refuseAfterBackoff(conn, joinRef, ref, topic, outcome);
  const tenant = conn.tenant;
  // A second join for the topic may have completed while this one awaited the database.
  conn.channels.get(topic)?.close('rejoin');
  const channel = new Channel(conn, topic, joinRef, config, outcome.token, outcome.claims, outcome.exp, outcome.policies);
  channel.start(outcome.replayed);
  // In a cluster, the client hears it joined once this node's interest in the topic reached the other nodes, so a
  // message they send right after is not lost on the way (bounded: a slow or absent Redis does not hold joins).
  const interest = conn.ctx.pubsub.interestReady(channel.key);
  if (interest !== null) {
    await interest;
    if (conn.closed || channel.closed) return;
  }
  conn.ctx.metrics.channelJoins.inc({ tenant: tenant.id });
  const echoed = config.hasConfig ? config.postgresChanges.map((p) => ({ ...p.raw, id: p.id })) : legacyEcho(channel.subTopic);
  conn.reply(joinRef, ref, topic, 'ok', { postgres_changes: echoed });
  // Replayed messages come first after the reply, then presence_state (upstream's order).
  if (outcome.replayed) tenant.metrics.replayedMessages.inc(channel.pushReplayed(outcome.replayed));
  // presence_state follows the ok reply (the client ignores channel pushes before it has joined).
  channel.presenceAfterJoin();
  if (config.replicationReady) channel.watchReplicationReady(conn.ctx.config.replicationReadyTimeoutMs);
  channel.startChanges();
}

/**
 * A phx_join whose payload could not be taken (nested too deeply): refused like any failed join, after the backoff,
 * once the topic itself has been checked. As for any join, an existing channel on the topic closes first.
 */
export function refuseJoin(conn: SocketPort, header: JoinHeader, reason: string): void {
  if (!acceptsTopic(conn, header)) return;
  conn.channels.get(header.topic)?.close('rejoin');
  conn.tenant.joins.add(1);
  refuseAfterBackoff(conn, header.joinRef ?? header.ref, header.ref, header.topic, { reason });
}

type JoinHeader = Omit<PhoenixMessage, 'payload'>;

/**
 * The topic checks answered at once: a topic outside `realtime:` is not routed (Phoenix's "unmatched topic"), and an
 * over-long one is refused before anything sized by it is kept. Its refusal skips the backoff, which would hold the
 * topic until the reply goes out. False when the join was answered.
 */
function acceptsTopic(conn: SocketPort, header: JoinHeader): boolean {
  const { topic, ref } = header;
  const joinRef = header.joinRef ?? ref;
  if (!topic.startsWith(TOPIC_PREFIX)) {
    conn.reply(joinRef, ref, topic, 'error', { reason: 'unmatched topic' });
    return false;
  }
  const subTopicBytes = Buffer.byteLength(topic) - TOPIC_PREFIX.length;
  if (subTopicBytes <= MAX_SUB_TOPIC_BYTES) return true;
  conn.tenant.joins.add(1);
  conn.ctx.metrics.channelErrors.inc({ tenant: conn.tenant.id, code: reasonCode(JoinError.topicNameTooLong) });
  conn.log.warn({ error_code: reasonCode(JoinError.topicNameTooLong), sub_topic_bytes: subTopicBytes }, 'join refused');
  conn.reply(joinRef, ref, topic, 'error', { reason: JoinError.topicNameTooLong });
  return false;
}

function refuseAfterBackoff(conn: SocketPort, joinRef: string | null, ref: string | null, topic: string, failure: { reason: string; disconnect?: boolean }): void {
  const code = reasonCode(failure.reason);
  conn.ctx.metrics.channelErrors.inc({ tenant: conn.tenant.id, code });
  conn.log.warn({ error_code: code, topic, reason: failure.reason }, 'join refused');
  const timer = setTimeout(() => {
    conn.reply(joinRef, ref, topic, 'error', { reason: failure.reason });
    if (failure.disconnect) conn.disconnect(1001, null);
  }, conn.ctx.config.channelErrorBackoffMs);
  timer.unref();
}

async function checkJoin(conn: SocketPort, subTopic: string, config: JoinConfig): Promise<JoinOutcome> {
  const { ctx, tenant } = conn;
  const limits = tenant.settings.limits;
  tenant.joins.add(1);
  if (subTopic === '') return { ok: false, reason: JoinError.topicNameRequired };
  if (ctx.shuttingDown) return { ok: false, reason: JoinError.restarting };
  if (ctx.registry.get(tenant.id) !== tenant) return { ok: false, reason: JoinError.tenantNotFound, disconnect: true };
  if (tenant.settings.privateOnly && !config.private) return { ok: false, reason: JoinError.privateOnly };
  if (!tenant.users.has(conn) && tenant.clusterUsers() >= limits.maxConcurrentUsers) {
    return { ok: false, reason: JoinError.tooManyUsers };
  }
  if (tenant.joins.rate > limits.maxJoinsPerSecond) return { ok: false, reason: JoinError.tooManyJoins, disconnect: true };
  if (conn.channels.size >= limits.maxChannelsPerClient) return { ok: false, reason: JoinError.tooManyChannels };

  // The same token as the socket's (what supabase-js sends): keep one copy of the string, not one per channel.
  const token = config.accessToken === null || config.accessToken === conn.token ? conn.token : config.accessToken;
  const verified = await tenant.verifier.verify(token, { requireRoleAndExp: true });
  if (!verified.ok) return { ok: false, reason: `${jwtFailureCode(verified.error)}: ${jwtFailureMessage(verified.error)}` };

  let pool;
  try {
    pool = await tenant.database();
  } catch {
    return { ok: false, reason: JoinError.unableToConnect };
  }
  let policies = ChannelPolicies.public();
  const request = { topic: subTopic, claims: verified.claims, headers: conn.headers };
  if (config.private) {
    // Presence read is asked at join only when presence is on; otherwise at the first track.
    const presenceOn = config.presenceEnabled || tenant.settings.presenceEnabled;
    const read = await checkRead(pool, { ...request, extensions: presenceOn ? ['broadcast', 'presence'] : ['broadcast'] }, { log: tenant.log, latencyMs: tenant.metrics.readAuthorization });
    if (!read.ok) return { ok: false, reason: joinRefusal(read.failure, subTopic) };
    if (!read.broadcast && !read.presence) return { ok: false, reason: JoinError.unauthorized(subTopic) };
    policies = ChannelPolicies.private(tenant, request, read.broadcast, presenceOn ? read.presence : null);
  }
  let replayed: ReplayedMessage[] | null = null;
  if (config.replay !== null) {
    if (!config.private) return { ok: false, reason: JoinError.replayPublic };
    if (!policies.broadcastRead) return { ok: false, reason: JoinError.unauthorized(subTopic) };
    const result = await replayMessages(pool, { ...request, since: config.replay.since, limit: config.replay.limit }, { latencyMs: tenant.metrics.replay });
    if (!result.ok) return { ok: false, reason: replayRefusal(result) };
    replayed = result.messages;
  }
  // The socket's own token: share its claims too (same text, same claims), not a copy per channel.
  const claims = token === conn.token ? conn.claims : verified.claims;
  return { ok: true, token, claims, exp: verified.exp, policies, replayed };
}

/** The legacy topic form (no `config`) still echoes its one derived subscription in the join reply. */
function legacyEcho(subTopic: string): Record<string, unknown>[] {
  const params = legacyTopicParams(subTopic);
  return [{ ...params, id: postgresChangesId(params) }];
}
