import { openRequest, tenantGate } from './gate.js';
import type { Module } from './module.js';

/** `GET /healthcheck` (the process is up) and `GET /api/ping` (this Host's tenant is reachable, within its rate). */
export const healthModule: Module = {
  name: 'health',
  mount(app, ctx) {
    app.get('/healthcheck', (res, req) => openRequest(res, req).reply.send(200, 'ok', 'text/plain'));
    for (const prefix of ['', '/realtime/v1']) {
      app.get(`${prefix}/api/ping`, (res, req) => {
        const { reply, info } = openRequest(res, req);
        if (tenantGate(ctx, reply, info)) reply.json(200, { message: 'Success' });
      });
    }
  },
};
