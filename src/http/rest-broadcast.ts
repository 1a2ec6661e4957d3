import type { AppContext } from '../context.js';
import { MAX_SUB_TOPIC_BYTES } from '../channels/errors.js';
import { jsonTextDeeperThan, jsonValueDeeperThan, MAX_PAYLOAD_DEPTH } from '../channels/protocol/index.js';
import type { Envelope } from '../shared/messages.js';
import { topicKey } from '../shared/topic-keys.js';
import { checkWrite, restRefusal } from '../tenants/authorization.js';
import { payloadLimitBytes } from '../tenants/limits.js';
import type { TenantRuntime } from '../tenants/tenant.js';
import { parseJson, serveTenantRequest, wholeBody, type BodyReader, type TenantCall, type TenantRouteOptions } from './gate.js';
import type { Module } from './module.js';
import { MAX_REQUEST_BODY_BYTES, readBodyUpTo } from './respond.js';
import type { TemplatedApp } from './uws.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A single broadcast's body is its payload: nothing past the tenant's payload limit is kept (null then). */
const payloadBody: BodyReader<Buffer | null> = (res, reply, info, tenant) =>
  readBodyUpTo(res, reply, info.headers, MAX_REQUEST_BODY_BYTES, payloadLimitBytes(tenant.settings.limits.maxPayloadSizeInKb));

const FAILURE = { errorCode: 'UnableToBroadcast', log: 'REST broadcast failed', message: 'Unable to broadcast' };
/** A batch is read whole, up to upstream's body limit: its messages are checked one by one. */
const BATCH: TenantRouteOptions<Buffer> = { cors: true, body: wholeBody, failure: FAILURE };
const SINGLE: TenantRouteOptions<Buffer | null> = { cors: true, body: payloadBody, failure: FAILURE };

/** `POST /api/broadcast` and `POST /api/broadcast/:topic/events/:event`, at the root and under `/realtime/v1`. */
export const restBroadcastModule: Module = { name: 'rest-broadcast', mount: mountRestBroadcast };

function mountRestBroadcast(app: TemplatedApp, ctx: AppContext): void {
  for (const prefix of ['', '/realtime/v1']) {
    app.post(`${prefix}/api/broadcast`, (res, req) => serveTenantRequest(ctx, res, req, BATCH, (call) => batch(ctx, call)));
    app.post(`${prefix}/api/broadcast/:topic/events/:event`, (res, req) => {
      const topic = safeDecode(req.getParameter(0) ?? '');
      const event = safeDecode(req.getParameter(1) ?? '');
      serveTenantRequest(ctx, res, req, SINGLE, (call) => single(ctx, call, topic, event));
    });
  }
}

async function batch(ctx: AppContext, { tenant, reply, info, body, claims }: TenantCall<Buffer>): Promise<void> {
  const text = body.toString('utf8');
  const parsed = parseJson(text);
  // Only a body this deep can hold a payload nested past the bound: {"messages":[{"payload": …}]} adds three levels.
  const mayNestTooDeep = jsonTextDeeperThan(text, MAX_PAYLOAD_DEPTH + 3);
  const messages = parsed.ok ? (parsed.value as { messages?: unknown } | null)?.messages : undefined;
  if (messages === undefined || messages === null || (Array.isArray(messages) && messages.length === 0)) {
    return reply.json(422, { errors: { messages: ["can't be blank"] } });
  }
  if (!Array.isArray(messages)) return reply.json(422, { errors: { messages: ['is invalid'] } });
  const limitBytes = payloadLimitBytes(tenant.settings.limits.maxPayloadSizeInKb);
  const errors = messages.map((m) => validateBatchMessage(m, limitBytes, mayNestTooDeep));
  if (errors.some((e) => Object.keys(e).length > 0)) return reply.json(422, { errors: { messages: errors } });
  const max = tenant.settings.limits.maxEventsPerSecond;
  if (tenant.events.rate > max) return reply.json(429, { message: 'You have exceeded your rate limit' });
  if (tenant.events.rate + messages.length > max) {
    return reply.json(429, { message: 'Too many messages to broadcast, please reduce the batch size' });
  }
  const list = messages as BatchMessage[];
  const isPrivate = (m: BatchMessage) => m.private === true || m.private === 'true';
  // Private messages are checked once per topic with the caller's claims and every request header; topics the
  // caller may not write to are skipped silently (still 202), as upstream does.
  const writable = new Map<string, boolean>();
  const privateTopics = [...new Set(list.filter(isPrivate).map((m) => m.topic))];
  if (privateTopics.length > 0) {
    const pool = await tenant.database().catch(() => null);
    await Promise.all(
      privateTopics.map(async (topic) => {
        const r = pool ? await checkWrite(pool, { topic, claims, headers: info.headers, extension: 'broadcast' }, { log: tenant.log, latencyMs: tenant.metrics.writeAuthorization }) : null;
        writable.set(topic, r !== null && r.ok && r.allowed);
      }),
    );
  }
  for (const m of list) {
    const priv = isPrivate(m);
    if (priv && !writable.get(m.topic)) continue;
    const meta = m.id === undefined ? '' : `,"meta":{"id":${JSON.stringify(m.id)}}`;
    const payloadText = JSON.stringify(m.payload);
    const payloadJson = `{"event":${JSON.stringify(m.event)}${meta},"payload":${payloadText},"type":"broadcast"}`;
    publish(ctx, tenant, m.topic, priv, Buffer.byteLength(payloadText), { type: 'json', event: 'broadcast', payloadJson });
  }
  reply.send(202);
}

interface BatchMessage {
  topic: string;
  event: string;
  payload: Record<string, unknown>;
  private?: boolean | string;
  id?: string;
}

function validateBatchMessage(m: unknown, limitBytes: number, mayNestTooDeep: boolean): Record<string, string[]> {
  const errors: Record<string, string[]> = {};
  if (m === null || typeof m !== 'object' || Array.isArray(m)) return { topic: ["can't be blank"], event: ["can't be blank"], payload: ["can't be blank"] };
  const o = m as Record<string, unknown>;
  // As Ecto casts them: a wrong type is "is invalid", a blank (or whitespace-only) string "can't be blank".
  for (const field of ['topic', 'event'] as const) {
    const v = o[field];
    if (v === undefined || v === null || (typeof v === 'string' && v.trim() === '')) errors[field] = ["can't be blank"];
    else if (typeof v !== 'string') errors[field] = ['is invalid'];
  }
  if (o.payload === undefined || o.payload === null) errors.payload = ["can't be blank"];
  else if (typeof o.payload !== 'object' || Array.isArray(o.payload)) errors.payload = ['is invalid'];
  // Measuring and re-encoding it would overflow the stack (upstream has no such bound: Performer's own).
  else if (mayNestTooDeep && jsonValueDeeperThan(o.payload, MAX_PAYLOAD_DEPTH)) errors.payload = [`is nested more than ${MAX_PAYLOAD_DEPTH} levels deep`];
  else if (Buffer.byteLength(JSON.stringify(o.payload)) > limitBytes) errors.payload = ['Payload size exceeds tenant limit'];
  if (o.id !== undefined && o.id !== null && (typeof o.id !== 'string' || !UUID.test(o.id))) errors.id = ['is invalid'];
  if (o.private !== undefined && o.private !== null && typeof o.private !== 'boolean' && o.private !== 'true' && o.private !== 'false') {
    errors.private = ['is invalid'];
  }
  return errors;
}

async function single(
  ctx: AppContext,
  /** The body is null when it passed the tenant's payload limit (not kept). */
  { tenant, reply, info, body, claims }: TenantCall<Buffer | null>,
  topic: string,
  event: string,
): Promise<void> {
  const contentType = (info.headers['content-type'] ?? 'application/json').split(';')[0].trim().toLowerCase();
  const binary = contentType === 'application/octet-stream';
  if (!binary && contentType !== 'application/json') {
    return reply.json(415, { error: 'Unsupported Media Type. Use application/json or application/octet-stream' });
  }
  if (body === null) return reply.json(422, { errors: { payload: ['Payload size exceeds tenant limit'] } });
  let payload: Uint8Array = body;
  if (!binary) {
    if (body.length === 0) payload = Buffer.from('{}');
    else if (!parseJson(body.toString('utf8')).ok) return reply.json(400, { error: 'Invalid JSON body' });
  }
  if (payload.length > payloadLimitBytes(tenant.settings.limits.maxPayloadSizeInKb)) {
    return reply.json(422, { errors: { payload: ['Payload size exceeds tenant limit'] } });
  }
  if (tenant.events.rate >= tenant.settings.limits.maxEventsPerSecond) {
    return reply.json(429, { message: 'You have exceeded your rate limit' });
  }
  if (Buffer.byteLength(topic) > MAX_SUB_TOPIC_BYTES || Buffer.byteLength(event) > 255) {
    return reply.json(422, { errors: { topic: ['is too long'] } });
  }
  const priv = info.query.get('private') === 'true';
  if (priv) {
    const pool = await tenant.database().catch(() => null);
    if (!pool) return reply.json(422, { message: 'Tenant database unavailable' });
    const r = await checkWrite(pool, { topic, claims, headers: info.headers, extension: 'broadcast' }, { log: tenant.log, latencyMs: tenant.metrics.writeAuthorization });
    if (!r.ok) {
      const refusal = restRefusal(r.failure);
      return reply.json(refusal.status, { message: refusal.message });
    }
    if (!r.allowed) return reply.json(403, { message: 'Unauthorized' });
  }
  publish(ctx, tenant, topic, priv, payload.length, { type: 'user', userEvent: event, encoding: binary ? 0 : 1, payload, metaJson: null });
  reply.send(202);
}

function publish(ctx: AppContext, tenant: TenantRuntime, subTopic: string, isPrivate: boolean, payloadBytes: number, env: Envelope): void {
  tenant.events.add(1);
  tenant.metrics.events.inc();
  tenant.metrics.broadcastPayload.observe(payloadBytes);
  ctx.pubsub.publish({ tenantId: tenant.id, key: topicKey(tenant.id, subTopic, isPrivate), subTopic, env }, null);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
