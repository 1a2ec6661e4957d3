import { restModule } from './baas/rest/module.js';
import { clusterApiModule } from './http/cluster-api.js';
import { healthModule } from './http/health.js';
import { metricsModule } from './http/metrics.js';
import type { Module } from './http/module.js';
import { restBroadcastModule } from './http/rest-broadcast.js';
import { rootModule } from './http/root.js';
import { tenantsApiModule } from './http/tenants-api.js';
import { websocketModule } from './http/websocket.js';

/**
 * Every module of the server, in mount order (http/module.ts says what a module is). A new module, a BaaS one in
 * src/baas/<name>/ say, is its folder and one line here: the app mounts it and every tenant's supervisor runs its
 * tenant children.
 */
export const MODULES: readonly Module[] = [
  websocketModule,
  restBroadcastModule,
  tenantsApiModule,
  clusterApiModule,
  restModule,
  healthModule,
  rootModule,
  metricsModule,
];
