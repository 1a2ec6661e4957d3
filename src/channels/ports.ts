/**
 * The narrow views channel code has of a joined channel and of its connection. Handlers (join, broadcast, presence,
 * postgres_changes) depend on these, not on the Channel and Connection classes, so the classes can use the handlers
 * without an import cycle.
 */
import type { ChangesRoutes } from '../tenants/changes-routes.js';
import type { Claims } from '../auth/jwt.js';
import type { PubSub } from '../cluster/pubsub.js';
import type { Config } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { TenantRegistry } from '../tenants/registry.js';
import type { SocketHandle, TenantRuntime } from '../tenants/tenant.js';
import type { Dispatcher } from './dispatcher.js';
import type { BatchSocket, Fanout } from './fanout.js';
import type { ChannelPolicies } from './policies.js';
import type { PhoenixMessage, UserBroadcast } from './protocol/index.js';

/** What channel code uses of the app context (src/context.ts builds one for the whole server). */
export interface ChannelServices {
  readonly config: Config;
  readonly registry: TenantRegistry;
  readonly metrics: Metrics;
  readonly pubsub: PubSub;
  readonly fanout: Fanout;
  readonly dispatcher: Dispatcher;
  /** In a cluster: where Postgres Changes subscriptions are routed to the tenant's owner. */
  readonly clusterState: { readonly routes: ChangesRoutes; replicationUp(tenant: string): boolean } | null;
  /** Set when the node is stopping: new joins are refused with RealtimeRestarting. */
  readonly shuttingDown: boolean;
}

export type CloseReason = 'leave' | 'rejoin' | 'socket_closed' | 'shutdown';

/** A joined topic on one socket, as its handlers and its socket see it. */
export interface ChannelPort {
  readonly conn: SocketPort;
  /** `realtime:<subTopic>`. */
  readonly topic: string;
  readonly subTopic: string;
  /** Topic key of its broadcasts (topicKey). */
  readonly key: string;
  readonly joinRef: string | null;
  readonly isPrivate: boolean;
  /** Broadcast `self`: the sender gets its own messages. */
  readonly self: boolean;
  /** Broadcast `ack`: the sender gets a reply per message. */
  readonly ack: boolean;
  readonly closed: boolean;
  readonly claims: Claims;
  /** What RLS lets this member do (public channels: everything). */
  readonly policies: ChannelPolicies;
  /** A channel push (`system`, `presence_state`, replays): the channel's join_ref, no ref. */
  push(event: string, payloadJson: string): void;
  pushSystem(status: 'ok' | 'error', message: string, extension?: string): void;
  /** Tells the client why, then closes the channel normally. */
  shutdown(message: string): void;
  close(reason: CloseReason): void;
  canReadPresence(): boolean | Promise<boolean>;
  canWritePresence(): boolean | Promise<boolean>;
  handleMessage(msg: PhoenixMessage): void;
  handleUserBroadcast(msg: UserBroadcast): void;
}

/** A connection, as its channels and their handlers see it (and its tenant: SocketHandle). */
export interface SocketPort extends BatchSocket, SocketHandle {
  readonly ctx: ChannelServices;
  readonly tenant: TenantRuntime;
  /** The socket's token; a join carrying the same one shares this string. */
  readonly token: string;
  /** The claims of that token: a join carrying the same token shares them too. */
  readonly claims: Claims;
  /** `x-*` headers of the upgrade request (exposed to RLS policies as request.headers). */
  readonly headers: Record<string, string>;
  /** Joined channels by topic. */
  readonly channels: Map<string, ChannelPort>;
  /** When the socket last had no channel (the no-channel sweeper looks at it). */
  lastChannelAt: number;
  readonly log: Logger;
  joinStarted(topic: string): void;
  joinEnded(topic: string): void;
  /** A `phx_reply`. */
  reply(joinRef: string | null, ref: string | null, topic: string, status: 'ok' | 'error', response: unknown): void;
  /** Encodes a message for this socket's serializer. */
  encode(joinRef: string | null, ref: string | null, topic: string, event: string, payloadJson: string): string;
  countOutput(bytes: number): void;
}
