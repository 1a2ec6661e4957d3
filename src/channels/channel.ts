import { jwtFailureMessage, type Claims } from '../auth/jwt.js';
import type { ReplayedMessage } from '../replication/replay.js';
import { topicKey } from '../shared/topic-keys.js';
import type { ChannelHandle } from '../tenants/tenant.js';
import { handleTextBroadcast, handleUserBroadcast } from './broadcast.js';
import { DueGroups, type DueGroup } from './due-groups.js';
import { ChannelPolicies } from './policies.js';
import { ChannelChanges } from './postgres-changes.js';
import type { JoinConfig } from './join-payload.js';
import type { PhoenixMessage, UserBroadcast } from './protocol/index.js';
import type { ChannelPort, CloseReason, SocketPort } from './ports.js';
import { ChannelPresence } from './presence.js';

/** The longest a token re-check timer waits; a timer beyond ~24 days would overflow setTimeout anyway. */
const MAX_TOKEN_CHECK_MS = 60 * 60 * 1000;

/** Every channel's token check; channels due at the same moment (same token expiry, same minute) share a timer. */
const tokenChecks = new DueGroups<Channel>((channel) => channel.onTokenCheckDue());

/** One joined topic on one socket: its options, token, and the handlers for its events. */
export class Channel implements ChannelHandle, ChannelPort {
  readonly subTopic: string;
  readonly key: string;
  readonly isPrivate: boolean;
  readonly self: boolean;
  readonly ack: boolean;
  /** Made at join when presence is on, else on first use: most channels never use presence. */
  private presenceState: ChannelPresence | null;
  private readonly presenceKey: string | null;
  closed = false;
  private tokenCheck: DueGroup<Channel> | null = null;
  private readyTimer: NodeJS.Timeout | null = null;
  /** The join's options, until the channel has started what they ask for (idle channels are many: not kept). */
  private config: JoinConfig | null;
  /** Postgres Changes of this channel, when it asked for any (or joined with the legacy topic form). */
  changes: ChannelChanges | null = null;

  constructor(
    readonly conn: SocketPort,
    readonly topic: string,
    readonly joinRef: string | null,
    config: JoinConfig,
    public token: string,
    public claims: Claims,
    private tokenExp: number | null,
    /** What RLS lets this member do (public channels: everything). */
    readonly policies: ChannelPolicies = ChannelPolicies.public(),
  ) {
    this.subTopic = topic.slice('realtime:'.length);
    this.config = config;
    this.isPrivate = config.private;
    this.self = config.broadcastSelf;
    this.ack = config.broadcastAck;
    this.key = topicKey(conn.tenant.id, this.subTopic, this.isPrivate);
    // Client flag OR tenant default, as upstream; a track can still turn it on later.
    this.presenceKey = config.presenceKey;
    this.presenceState = config.presenceEnabled || conn.tenant.settings.presenceEnabled ? new ChannelPresence(this, config.presenceKey, true) : null;
  }

  /** Presence track/untrack, presence_state and diffs of this channel (src/presence/channel-presence.ts). */
  get presence(): ChannelPresence {
    return (this.presenceState ??= new ChannelPresence(this, this.presenceKey, false));
  }

  /** After the join reply: presence_state, when presence was on at join. */
  presenceAfterJoin(): void {
    this.presenceState?.afterJoin();
  }

  /**
   * Makes the channel live: registered with the socket and tenant, and subscribed to its broadcasts when it may
   * read them. A channel that replayed messages is served directly, so a live copy of a replayed one is skipped.
   */
  start(replayed: ReplayedMessage[] | null = null): void {
    const { conn } = this;
    conn.channels.set(this.topic, this);
    // Interest: where this node has channels of a key, a cluster brings that key's messages (and limits apply).
    if (conn.tenant.addChannel(this.key, this)) conn.ctx.pubsub.subscribe(this.key);
    conn.tenant.users.add(conn);
    if (this.policies.storageEvents) {
      conn.ctx.dispatcher.storageEvents.join(this.key, this);
    } else if (this.policies.broadcastRead) {
      const seenIds = replayed === null ? null : new Set(replayed.map((m) => m.id));
      conn.ctx.fanout.join(conn, this.key, seenIds);
    }
    this.scheduleTokenCheck();
  }

  /** Subscribes the channel's postgres_changes bindings; the legacy form (no `config`) derives one from the topic. */
  startChanges(): void {
    const config = this.config;
    this.config = null;
    if (!config) return;
    const legacy = !config.hasConfig;
    if (!legacy && config.postgresChanges.length === 0) return;
    this.changes = new ChannelChanges(this, legacy);
    this.changes.start(config.postgresChanges);
  }

  /**
   * `broadcast.replication_ready`: tell the client once the tenant's replication stream is up (checked every
   * 500 ms, as upstream), or shut the channel down if it does not come up in time.
   */
  watchReplicationReady(timeoutMs: number): void {
    const deadline = Date.now() + timeoutMs;
    const check = () => {
      this.readyTimer = null;
      if (this.closed) return;
      // In a cluster the stream runs on the tenant's owner, wherever that is.
      const cluster = this.conn.ctx.clusterState;
      const up = cluster ? cluster.replicationUp(this.conn.tenant.id) : this.conn.tenant.replication?.status === 'up';
      if (up) return this.pushSystem('ok', 'Replication connection established');
      if (Date.now() >= deadline) return this.shutdown('Replication connection was not established in time');
      this.readyTimer = setTimeout(check, 500);
      this.readyTimer.unref();
    };
    check();
  }

  /** Replayed messages, oldest first, as channel pushes; returns how many went out (binary ones skip V1 sockets). */
  pushReplayed(messages: ReplayedMessage[]): number {
    return this.conn.ctx.dispatcher.replay(this.conn, this.topic, messages);
  }

  handleMessage(msg: PhoenixMessage): void {
    switch (msg.event) {
      case 'broadcast':
        handleTextBroadcast(this, msg);
        return;
      case 'presence':
        this.presence.handle(msg);
        return;
      case 'access_token':
        this.refreshToken(msg.payload).catch((err: unknown) => this.conn.tenant.onFault(err, 'access_token'));
        return;
      default:
        this.conn.tenant.events.add(1);
        this.conn.log.info({ event: msg.event, topic: this.topic }, 'ignored unknown channel event');
    }
  }

  handleUserBroadcast(msg: UserBroadcast): void {
    handleUserBroadcast(this, msg);
  }

  /** A channel push (`system`, `presence_state`, replays) carries the channel's join_ref and no ref. */
  push(event: string, payloadJson: string): void {
    this.conn.send(this.conn.encode(this.joinRef, null, this.topic, event, payloadJson));
  }

  /**
   * Presence permissions. Public channels may always read and write presence. Private channels are refused at join
   * until RLS authorization lands; that issue answers these from the channel's policies (presence.read at join when
   * presence is enabled, else at the first track; presence.write at the first track), asynchronously if it must ask
   * the database: the presence glue awaits a promise and keeps the channel's presence messages in order.
   */
  canReadPresence(): boolean | Promise<boolean> {
    return this.policies.canReadPresence();
  }

  canWritePresence(): boolean | Promise<boolean> {
    return this.policies.canWrite('presence');
  }

  pushSystem(status: 'ok' | 'error', message: string, extension = 'system'): void {
    this.push('system', JSON.stringify({ extension, status, message, channel: this.subTopic }));
  }

  /** Upstream "shutdown_response": tell the client why, then close the channel normally (phx_close). */
  shutdown(message: string): void {
    if (this.closed) return;
    this.conn.log.info({ topic: this.topic, error_code: 'ChannelShutdown', reason: message }, 'channel shut down');
    this.pushSystem('error', message);
    this.close('shutdown');
  }

  /** Closes the channel; the client hears phx_close unless it left or its socket is gone. */
  close(reason: CloseReason): void {
    if (this.closed) return;
    this.closed = true;
    const { conn } = this;
    if (this.tokenCheck) tokenChecks.cancel(this.tokenCheck, this);
    if (this.readyTimer) clearTimeout(this.readyTimer);
    this.changes?.close();
    if (conn.channels.get(this.topic) === this) conn.channels.delete(this.topic);
    if (conn.tenant.removeChannel(this.key, this)) conn.ctx.pubsub.unsubscribe(this.key);
    if (conn.channels.size === 0) {
      conn.tenant.users.delete(conn);
      conn.lastChannelAt = Date.now();
    }
    // Presence entries go at once, whatever the reason: the others get their leave diff now.
    this.presenceState?.close(reason);
    conn.ctx.fanout.leave(conn, this.key);
    if (this.policies.storageEvents) conn.ctx.dispatcher.storageEvents.leave(this.key, this);
    if (reason === 'socket_closed') return;
    conn.send(conn.encode(this.joinRef, this.joinRef, this.topic, 'phx_close', '{}'));
  }

  /** `access_token`: ignored when absent, an `sb_` key or unchanged; otherwise re-verified, or the channel ends. */
  async refreshToken(payload: unknown): Promise<void> {
    const token = (payload as { access_token?: unknown } | null)?.access_token;
    if (typeof token !== 'string' || token.startsWith('sb_') || token === this.token) return;
    const result = await this.conn.tenant.verifier.verify(token, { requireRoleAndExp: true });
    if (this.closed) return;
    if (!result.ok) return this.shutdown(jwtFailureMessage(result.error));
    this.token = token;
    this.claims = result.claims;
    this.tokenExp = result.exp;
    this.scheduleTokenCheck();
    this.changes?.refreshClaims(result.claims);
    if (!this.policies.isPrivate) return;
    // New claims: the policies are asked again; losing read ends the channel, as upstream.
    const refreshed = await this.policies.refresh({ topic: this.subTopic, claims: result.claims, headers: this.conn.headers });
    if (this.closed) return;
    if ('failed' in refreshed) return this.shutdown('Realtime was unable to connect to the project database');
    if (refreshed.lostBroadcastRead || refreshed.lostPresenceRead) {
      this.shutdown(`You no longer have permission to read from this Channel topic: ${this.subTopic}`);
    }
  }

  private scheduleTokenCheck(): void {
    if (this.tokenCheck) tokenChecks.cancel(this.tokenCheck, this);
    this.tokenCheck = null;
    if (this.tokenExp === null) return;
    // Just after expiry; a token further away is checked again within the hour, rounded up to the minute so that
    // channels joined in the same minute share the timer.
    const hourly = Math.ceil((Date.now() + MAX_TOKEN_CHECK_MS) / 60_000) * 60_000;
    this.tokenCheck = tokenChecks.add(Math.min(this.tokenExp * 1000 + 50, hourly), this);
  }

  /** Called by the token check schedule. */
  onTokenCheckDue(): void {
    this.tokenCheck = null;
    if (this.closed) return;
    this.checkToken().catch((err: unknown) => this.conn.tenant.onFault(err, 'token check'));
  }

  private async checkToken(): Promise<void> {
    const result = await this.conn.tenant.verifier.verify(this.token, { requireRoleAndExp: true });
    if (this.closed) return;
    if (!result.ok) return this.shutdown(jwtFailureMessage(result.error));
    this.scheduleTokenCheck();
  }
}
