import type { Envelope } from '../shared/messages.js';
import { payloadLimitBytes } from '../tenants/limits.js';
import type { ChannelPort } from './ports.js';
import type { PhoenixMessage, UserBroadcast } from './protocol/index.js';

/** A text `broadcast` push: re-broadcast verbatim to the channel's topic. */
export function handleTextBroadcast(channel: ChannelPort, msg: PhoenixMessage): void {
  const payloadJson = JSON.stringify(msg.payload ?? null);
  const size = Buffer.byteLength(payloadJson);
  publishBroadcast(channel, msg.joinRef, msg.ref, size, { type: 'json', event: 'broadcast', payloadJson });
}

/** A kind-3 user broadcast: the payload bytes are forwarded untouched; client metadata is dropped. */
export function handleUserBroadcast(channel: ChannelPort, msg: UserBroadcast): void {
  const env: Envelope = { type: 'user', userEvent: msg.userEvent, encoding: msg.encoding, payload: msg.payload, metaJson: null };
  publishBroadcast(channel, msg.joinRef, msg.ref, msg.payload.length, env);
}

/**
 * Private channels need broadcast.write, asked of RLS on the first send and cached. A denied send is dropped
 * silently, with no ack and no rate counting, as upstream. Sends made while the check runs wait for it in order
 * (their payload bytes copied, since uWS reuses the frame's memory after the message callback).
 */
function publishBroadcast(channel: ChannelPort, joinRef: string | null, ref: string | null, size: number, env: Envelope): void {
  const allowed = channel.policies.canWrite('broadcast');
  if (allowed === true) return publishAllowed(channel, joinRef, ref, size, env);
  if (allowed === false) return;
  const kept: Envelope = env.type === 'user' ? { ...env, payload: Buffer.from(env.payload) } : env;
  allowed
    .then((ok) => {
      if (ok && !channel.closed) publishAllowed(channel, joinRef, ref, size, kept);
    })
    .catch((err: unknown) => channel.conn.tenant.onFault(err, 'private broadcast'));
}

function publishAllowed(channel: ChannelPort, joinRef: string | null, ref: string | null, size: number, env: Envelope): void {
  const { conn } = channel;
  const tenant = conn.tenant;
  const metrics = conn.ctx.metrics;
  const series = metrics.forTenant(tenant.id);
  series.broadcastPayload.observe(size);
  if (size > payloadLimitBytes(tenant.settings.limits.maxPayloadSizeInKb)) {
    metrics.channelErrors.inc({ tenant: tenant.id, code: 'PayloadSizeExceeded' });
    conn.log.warn({ error_code: 'PayloadSizeExceeded', size, topic: channel.topic }, 'broadcast over the payload limit dropped');
    if (channel.ack) conn.reply(joinRef ?? channel.joinRef, ref, channel.topic, 'error', 'payload_size_exceeded');
    return;
  }
  tenant.events.add(1);
  series.events.inc();
  conn.ctx.pubsub.publish(
    { tenantId: tenant.id, key: channel.key, subTopic: channel.subTopic, env },
    channel.self ? null : conn.ctx.fanout.sender(conn),
  );
  if (channel.ack) conn.reply(joinRef ?? channel.joinRef, ref, channel.topic, 'ok', {});
}
