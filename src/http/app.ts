import type { AppContext } from '../context.js';
import { openRequest } from './gate.js';
import { checkModules, type Module } from './module.js';
import type { TemplatedApp } from './uws.js';

/**
 * Mounts on the uWS app every module in list order (src/modules.ts), then the answers for what no module routes:
 * CORS preflight, and 404.
 */
export function mountApp(app: TemplatedApp, ctx: AppContext, modules: readonly Module[]): void {
  checkModules(modules);
  for (const module of modules) module.mount(app, ctx);
  app.options('/*', (res, req) => openRequest(res, req, { cors: true }).reply.send(204));
  app.any('/*', (res, req) => {
    const { reply, info } = openRequest(res, req);
    // Unknown tenants get the same answer on every path, as clients of a wrong host would expect.
    if (!ctx.registry.resolve(info.headers.host ?? '')) return reply.json(404, { error: 'Tenant not found' });
    reply.json(404, { error: 'Not found' });
  });
}
