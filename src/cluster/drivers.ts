import type { Config } from '../config/index.js';
import { LocalPubSub } from './local.js';
import type { PubSub, PubSubHandler } from './pubsub.js';

/** The pub/sub drivers by name (soketi's adapters, centrifuge's brokers): each passes test/cluster's contract. */
const DRIVERS = {
  local: (handler: PubSubHandler, _config: Config) => new LocalPubSub(handler),
} satisfies Record<string, (handler: PubSubHandler, config: Config) => PubSub>;

export type PubSubDriverName = keyof typeof DRIVERS;

/** The driver this configuration runs on. */
export function pubsubDriverName(_config: Config): PubSubDriverName {
  // The one branch where a driver is picked. REDIS_URL will pick the Redis driver once the cluster issue adds it;
  // until then it is read, and every node runs alone.
  return 'local';
}

/** The configured pub/sub, delivering what reaches this node to `handler` (the channels dispatcher). */
export function createPubSub(config: Config, handler: PubSubHandler): PubSub {
  return DRIVERS[pubsubDriverName(config)](handler, config);
}
