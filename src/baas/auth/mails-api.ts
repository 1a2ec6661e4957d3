/**
 * `GET /api/tenants/<tenant>/auth/mails[?limit=N]`: the tenant's e-mails not sent for want of AUTH_SMTP_URL, newest
 * first, with their links and codes (unsent-mails.ts). The management token only, as the rest of the management API
 * (any auth failure is 403 with an empty body): the codes sign users in. What this node issued; another node of a
 * cluster keeps its own.
 */
import type { AppContext } from '../../context.js';
import { openRequest } from '../../http/gate.js';
import { managementAuthorizer } from '../../http/management-auth.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from '../../http/uws.js';
import { MAX_PER_TENANT, type UnsentMails } from './unsent-mails.js';

export const MAILS_PATH = '/api/tenants/:tenant/auth/mails';

export function mountMailsApi(app: TemplatedApp, ctx: AppContext, unsent: UnsentMails): void {
  const authorized = managementAuthorizer(ctx);
  app.get(MAILS_PATH, (res: HttpResponse, req: HttpRequest) => {
    const { reply, info, requestId } = openRequest(res, req);
    let tenant: string | null;
    try {
      tenant = decodeURIComponent(req.getParameter(0) ?? '');
    } catch {
      tenant = null;
    }
    authorized(info.headers.authorization)
      .then((ok) => {
        if (!ok) return reply.send(403);
        if (tenant === null || !ctx.registry.record(tenant)) return reply.json(404, { message: 'tenant not found' });
        const raw = info.query.get('limit');
        const limit = raw === null ? MAX_PER_TENANT : /^\d{1,3}$/.test(raw) ? Math.min(Number(raw), MAX_PER_TENANT) : null;
        if (limit === null) return reply.json(400, { message: `limit is an integer (at most ${MAX_PER_TENANT})` });
        reply.json(200, { data: unsent.list(tenant, limit), smtp: ctx.config.auth.smtpUrl !== null });
      })
      .catch((err: unknown) => {
        if (reply.aborted) return;
        ctx.log.error({ err, error_code: 'AuthMailsApiError', request_id: requestId }, 'auth mails request failed');
        reply.json(500, { errors: { detail: 'Internal Server Error' } });
      });
  });
}
