import { packageInfo } from '../version.js';
import { openRequest } from './gate.js';
import type { Module } from './module.js';

const ROOT_DOCUMENT = {
  name: packageInfo.name,
  version: packageInfo.version,
  description: packageInfo.description,
  links: {
    websocket: '/realtime/v1/websocket',
    phoenix_websocket: '/socket/websocket',
    broadcast: '/realtime/v1/api/broadcast',
    healthcheck: '/healthcheck',
    metrics: '/metrics',
    tenants: '/api/tenants',
  },
};

/** `GET /`: what someone who opens the printed URL in a browser sees: what this is and where to go, for any Host. */
export const rootModule: Module = {
  name: 'root',
  mount(app) {
    app.get('/', (res, req) => openRequest(res, req).reply.json(200, ROOT_DOCUMENT));
  },
};
