import type { PubSub } from '../cluster/pubsub.js';
import type { Fanout } from './fanout.js';
import type { Config } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { TenantRegistry } from '../tenants/registry.js';

/** What channel code needs from the server around it; one per server instance. */
export interface ChannelsContext {
  config: Config;
  registry: TenantRegistry;
  pubsub: PubSub;
  metrics: Metrics;
  log: Logger;
  /** Every secret a management API token may be signed with (ManagementSecrets.accepted), resolved at start. */
  managementSecrets: readonly string[];
  /** Local delivery; set once the uWS app exists. */
  fanout: Fanout | null;
  /** Set when the node is stopping: new joins are refused with RealtimeRestarting. */
  shuttingDown: boolean;
}
