import type { Counter } from 'prom-client';
import type { Claims } from '../auth/jwt.js';
import type { WebSocket } from 'uWebSockets.js';
import type { Logger } from '../observability/logger.js';
import type { SocketHandle, TenantRuntime } from '../tenants/tenant.js';
import { JoinError, reasonCode } from './errors.js';
import { handleJoin, refuseJoin } from './join.js';
import type { ChannelPort, ChannelServices, SocketPort } from './ports.js';
import { connectionIds } from '../shared/connection-ids.js';
import type { Vsn } from '../shared/serializer.js';
import { decodeFrame, encodeV1Raw, encodeV2Raw, FrameDecodeError, PayloadTooDeep, type Inbound } from './protocol/index.js';

export interface SocketData {
  conn: Connection;
}

/** uWS send status: written (or corked) without building up backpressure. */
const SENT = 1;

/** Told on every channel of a socket that fell too far behind, just before it is closed with 1008. */
export const SLOW_CLIENT_MESSAGE = 'Client too slow: messages backed up past the limit; disconnecting';

/**
 * Per tenant, shared by its sockets: the byte counters, labelled once (`labels()` makes a bound function and a label
 * object per call, ~270 B per socket), and the token of the last socket with its claims. Most sockets of a tenant
 * connect with the same key (supabase-js sends the anon key), so they share one copy of its text and claims instead of
 * each keeping its whole upgrade query string alive (the token is a slice of it).
 */
interface TenantShared {
  output: Counter.Internal;
  input: Counter.Internal;
  token: string | null;
  claims: Claims | null;
}

const tenantShared = new WeakMap<TenantRuntime, TenantShared>();

function sharedOf(ctx: ChannelServices, tenant: TenantRuntime): TenantShared {
  let shared = tenantShared.get(tenant);
  if (!shared) {
    shared = {
      output: ctx.metrics.outputBytes.labels({ tenant: tenant.id }),
      input: ctx.metrics.inputBytes.labels({ tenant: tenant.id }),
      token: null,
      claims: null,
    };
    tenantShared.set(tenant, shared);
  }
  return shared;
}

/** A copy of `text` that holds no larger string alive (a slice keeps its whole parent). */
function ownCopy(text: string): string {
  const copy = Buffer.from(text).toString();
  return copy === text ? copy : text;
}

/**
 * One WebSocket connection: its serializer, token, and joined channels by topic. Frames come in through
 * `onFrame`; everything the connection sends goes through `send`, which knows when the socket is gone.
 */
export class Connection implements SocketHandle, SocketPort {
  /** Unique in the cluster: other nodes exclude the sender of a `self: false` broadcast by it. */
  readonly id = connectionIds.next();
  /** Since when this socket has had no channel: what the no-channel sweeper looks at. */
  get idleSince(): number | null {
    return this.channels.size === 0 && this.pendingJoins === null ? this.lastChannelAt : null;
  }
  lastChannelAt = Date.now();
  readonly channels = new Map<string, ChannelPort>();
  /** Topics whose join is being processed (a join reply has not been sent yet); null when none (most of the time). */
  private pendingJoins: Set<string> | null = null;
  ws: WebSocket<SocketData> | null = null;
  closed = false;
  /**
   * Set once the socket fell too far behind: it was told why after everything it had been sent, gets nothing more,
   * and closes once it has read it all (or after the idle timeout).
   */
  private tooSlow: { deadline: NodeJS.Timeout } | null = null;
  /** While the too-slow notices are written: their own backpressure must not trigger the check again. */
  private telling = false;
  private logger: Logger | null = null;
  /** The tenant's labelled counters, looked up once: send() is on every hot path. */
  private readonly outputBytes: Counter.Internal;
  private readonly inputBytes: Counter.Internal;

  constructor(
    readonly ctx: ChannelServices,
    readonly tenant: TenantRuntime,
    readonly vsn: Vsn,
    public token: string,
    public claims: Claims,
    /** `x-*` headers of the upgrade request (exposed to RLS policies as request.headers). */
    readonly headers: Record<string, string>,
  ) {
    const shared = sharedOf(ctx, tenant);
    this.outputBytes = shared.output;
    this.inputBytes = shared.input;
    // Verified just now: the same text has the same claims.
    if (token === shared.token && shared.claims !== null) {
      this.token = shared.token;
      this.claims = shared.claims;
    } else {
      this.token = shared.token = ownCopy(token);
      shared.claims = claims;
    }
  }

  /** This socket's logger, made on first use: most sockets never log, and a child logger per socket adds up. */
  get log(): Logger {
    return (this.logger ??= this.tenant.log.child({ conn: this.id }));
  }

  joinStarted(topic: string): void {
    (this.pendingJoins ??= new Set()).add(topic);
  }

  joinEnded(topic: string): void {
    if (this.pendingJoins?.delete(topic) && this.pendingJoins.size === 0) this.pendingJoins = null;
  }

  opened(ws: WebSocket<SocketData>): void {
    this.ws = ws;
    this.tenant.sockets.add(this);
    this.ctx.metrics.connectionsConnected.inc({ tenant: this.tenant.id });
  }

  channelCount(): number {
    return this.channels.size;
  }

  send(frame: string | Uint8Array): void {
    if (this.closed || this.ws === null || this.tooSlow) return;
    const isBinary = typeof frame !== 'string';
    const status = this.ws.send(frame, isBinary);
    this.outputBytes.inc(isBinary ? frame.length : Buffer.byteLength(frame));
    if (status !== SENT && !this.telling) this.keepsUp();
  }

  /**
   * A text frame (as text, or already encoded as UTF-8); returns its size for {@link countOutput}. Nothing is
   * written once the socket fell behind: check {@link keepsUp} to stop a batch early.
   */
  sendUncounted(frame: string | Uint8Array): number {
    if (this.closed || this.ws === null || this.tooSlow) return 0;
    const status = this.ws.send(frame, false);
    if (status !== SENT) this.keepsUp();
    return typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length;
  }

  /**
   * Whether the socket keeps up with what is written to it. One whose unsent bytes passed WEBSOCKET_MAX_BUFFERED_BYTES
   * is told so on every channel (a `system` error after everything it was sent so far: what it got is a gap-free
   * prefix), its channels are closed so it gets nothing more, and the socket closes with 1008 once it has read that.
   * Checked after every write that built up backpressure, before each publish of changes, and by a sweep every
   * 250 ms (broadcasts are published by uWS without a per-socket call), which also closes a told socket once drained.
   */
  keepsUp(): boolean {
    if (this.closed || this.ws === null) return false;
    if (this.tooSlow) {
      this.closeIfDrained();
      return false;
    }
    if (this.telling) return true;
    const buffered = this.ws.getBufferedAmount();
    if (buffered <= this.ctx.config.maxBufferedBytes) return true;
    this.fellBehind(buffered);
    return false;
  }

  private fellBehind(buffered: number): void {
    this.log.warn({ error_code: 'ClientTooSlow', buffered_bytes: buffered, channels: this.channels.size }, 'socket not reading fast enough: told, and closed once drained');
    this.ctx.metrics.channelErrors.inc({ tenant: this.tenant.id, code: 'ClientTooSlow' });
    this.telling = true;
    for (const channel of this.channels.values()) channel.pushSystem('error', SLOW_CLIENT_MESSAGE);
    this.telling = false;
    // A client that keeps sending but never reads would otherwise hold its buffer until it goes.
    const deadline = setTimeout(() => this.ws?.end(1008, 'client too slow'), this.ctx.config.idleTimeoutSeconds * 1000);
    deadline.unref();
    this.tooSlow = { deadline };
    // Channels end without a word more (every send is refused now): postgres_changes unsubscribe at once, so the
    // positions they were told about can be confirmed, and broadcast, presence and fan-out topics are left.
    for (const channel of [...this.channels.values()]) channel.close('shutdown');
    this.ctx.fanout.unsubscribeAll(this);
  }

  /** A socket told it is too slow closes once it has read everything (the sweep asks again every 250 ms). */
  private closeIfDrained(): void {
    if (this.ws !== null && !this.closed && this.ws.getBufferedAmount() === 0) this.ws.end(1008, 'client too slow');
  }

  countOutput(bytes: number): void {
    if (bytes > 0) this.outputBytes.inc(bytes);
  }

  /** Runs sends in one uWS cork, so they leave in one write even outside a uWS callback. */
  cork(fn: () => void): void {
    if (this.closed || this.ws === null) return;
    this.ws.cork(fn);
    // The corked bytes are written on leaving the cork, where no send status reports what stayed behind.
    this.keepsUp();
  }

  /** Encodes a message for this connection's serializer (V1 output has no join_ref). */
  encode(joinRef: string | null, ref: string | null, topic: string, event: string, payloadJson: string): string {
    return this.vsn === '2.0.0'
      ? encodeV2Raw(joinRef, ref, topic, event, payloadJson)
      : encodeV1Raw(topic, event, payloadJson, ref);
  }

  reply(joinRef: string | null, ref: string | null, topic: string, status: 'ok' | 'error', response: unknown): void {
    this.send(this.encode(joinRef, ref, topic, 'phx_reply', `{"status":"${status}","response":${JSON.stringify(response)}}`));
  }

  onFrame(data: ArrayBuffer, isBinary: boolean): void {
    this.inputBytes.inc(data.byteLength);
    // A socket closing as too slow takes no new work (its joins and pushes would only be refused replies).
    if (this.tooSlow) return;
    let msg: Inbound;
    try {
      msg = decodeFrame(this.vsn, data, isBinary);
    } catch (err) {
      if (err instanceof PayloadTooDeep) return this.refuseTooDeep(err.header);
      const code = err instanceof FrameDecodeError ? 'MalformedWebSocketMessage' : 'UnknownErrorOnWebSocketMessage';
      this.log.warn({ error_code: code, reason: (err as Error).message }, 'dropped malformed frame');
      this.ctx.metrics.channelErrors.inc({ tenant: this.tenant.id, code });
      return;
    }
    try {
      this.dispatch(msg);
    } catch (err) {
      // A bug in one handler must not take the connection, the process or another tenant down with it: the
      // tenant's supervisor hears of it and degrades this tenant only.
      this.ctx.metrics.channelErrors.inc({ tenant: this.tenant.id, code: 'UnknownErrorOnWebSocketMessage' });
      this.tenant.onFault(err, 'websocket message');
    }
  }

  private dispatch(msg: Inbound): void {
    if (msg.kind === 'user_broadcast') {
      const channel = this.channels.get(msg.topic);
      if (!channel) return this.sendUnjoined(msg.topic, msg.joinRef);
      return channel.handleUserBroadcast(msg);
    }
    if (msg.kind === 'binary_push') {
      this.log.info({ event: msg.event, topic: msg.topic }, 'ignored binary push (only kind-3 user broadcasts carry binary payloads)');
      return;
    }
    const { topic, event } = msg;
    if (topic === 'phoenix') {
      if (event === 'heartbeat') this.reply(null, msg.ref, 'phoenix', 'ok', {});
      return;
    }
    if (event === 'phx_join') {
      handleJoin(this, msg).catch((err: unknown) => this.tenant.onFault(err, 'phx_join'));
      return;
    }
    const channel = this.channels.get(topic);
    if (event === 'phx_leave') {
      this.reply(msg.joinRef, msg.ref, topic, 'ok', {});
      channel?.close('leave');
      return;
    }
    if (!channel) return this.sendUnjoined(topic, msg.joinRef);
    channel.handleMessage(msg);
  }

  /**
   * A push whose payload nests too deeply to be walked safely: a join is refused like any failed join; any other push
   * with a ref gets an error reply. The socket and the channel stay as they were.
   */
  private refuseTooDeep(header: PayloadTooDeep['header']): void {
    const code = reasonCode(JoinError.payloadTooDeep);
    if (header.event === 'phx_join') return refuseJoin(this, header, JoinError.payloadTooDeep);
    this.ctx.metrics.channelErrors.inc({ tenant: this.tenant.id, code });
    this.log.warn({ error_code: code }, 'refused a payload nested too deeply');
    if (header.ref === null) return;
    const channel = this.channels.get(header.topic);
    this.reply(channel?.joinRef ?? header.joinRef, header.ref, header.topic, 'error', { reason: JoinError.payloadTooDeep });
  }

  /** A push on a topic this socket has not joined: Phoenix answers with phx_close. */
  private sendUnjoined(topic: string, joinRef: string | null): void {
    if (this.pendingJoins?.has(topic)) return;
    this.send(this.encode(joinRef, joinRef, topic, 'phx_close', '{}'));
  }

  /** Server-requested disconnect: every channel is told why, then the socket closes with `code`. */
  disconnect(code: number, systemMessage: string | null): void {
    if (this.closed || this.ws === null) return;
    if (systemMessage !== null) {
      for (const channel of this.channels.values()) channel.pushSystem('ok', systemMessage, 'system');
    }
    // A push above may have found the socket too slow, and closing it may have run already.
    this.ws?.end(code);
  }

  onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.tooSlow) clearTimeout(this.tooSlow.deadline);
    for (const channel of [...this.channels.values()]) channel.close('socket_closed');
    this.tenant.sockets.delete(this);
    this.tenant.users.delete(this);
    this.ctx.fanout.forgetSender(this.id);
    this.ctx.metrics.connectionsConnected.dec({ tenant: this.tenant.id });
    this.ws = null;
  }
}
