/** The routes of /auth/v1 and who may call them (the handlers check the bearer token; see call.ts). */
import type { AuthAnswer, AuthCall } from './call.js';
import { AuthError } from './errors.js';
import { auditLog, createUser, deleteUser, getUserById, listUsers, updateUserById } from './handlers/admin.js';
import { health, jwks, settings } from './handlers/meta.js';
import { challenge, enroll, unenroll, verifyFactor } from './handlers/mfa.js';
import { generateLink, invite, otp, recover, resend, verifyGet, verifyPost } from './handlers/otp.js';
import { signup, token } from './handlers/signup-token.js';
import { getUser, logout, putUser } from './handlers/user.js';

type Handler = (call: AuthCall) => Promise<AuthAnswer> | AuthAnswer;

interface Route {
  method: string;
  /** Path below /auth/v1; `:id` matches one segment. */
  path: string;
  handler: Handler;
  /** Open routes need no API key (the links of e-mails, health, keys), as Supabase's gateway. */
  open?: boolean;
}

const unsupported = (status: number, code: string, message: string): Handler => () => {
  throw new AuthError(status, code, message);
};

export const ROUTES: readonly Route[] = [
  // anyone
  { method: 'GET', path: '/health', handler: health, open: true },
  { method: 'GET', path: '/.well-known/jwks.json', handler: jwks, open: true },
  { method: 'GET', path: '/verify', handler: verifyGet, open: true },
  { method: 'GET', path: '/settings', handler: settings },
  { method: 'POST', path: '/signup', handler: signup },
  { method: 'POST', path: '/token', handler: token },
  { method: 'POST', path: '/recover', handler: recover },
  { method: 'POST', path: '/otp', handler: otp },
  { method: 'POST', path: '/magiclink', handler: otp },
  { method: 'POST', path: '/verify', handler: verifyPost },
  { method: 'POST', path: '/resend', handler: resend },
  // the signed-in user (bearer token of a live session)
  { method: 'GET', path: '/user', handler: getUser },
  { method: 'PUT', path: '/user', handler: putUser },
  { method: 'POST', path: '/logout', handler: logout },
  { method: 'POST', path: '/factors', handler: enroll },
  { method: 'POST', path: '/factors/:id/challenge', handler: challenge },
  { method: 'POST', path: '/factors/:id/verify', handler: verifyFactor },
  { method: 'DELETE', path: '/factors/:id', handler: unenroll },
  // admin roles only (service_role)
  { method: 'GET', path: '/admin/users', handler: listUsers },
  { method: 'POST', path: '/admin/users', handler: createUser },
  { method: 'GET', path: '/admin/users/:id', handler: getUserById },
  { method: 'PUT', path: '/admin/users/:id', handler: updateUserById },
  { method: 'DELETE', path: '/admin/users/:id', handler: deleteUser },
  { method: 'POST', path: '/admin/generate_link', handler: generateLink },
  { method: 'POST', path: '/invite', handler: invite },
  { method: 'GET', path: '/admin/audit', handler: auditLog },
  // known upstream endpoints Performer does not offer: a real 4xx with upstream's code
  { method: 'GET', path: '/authorize', handler: unsupported(400, 'provider_disabled', 'Unsupported provider: provider is not enabled'), open: true },
  { method: 'GET', path: '/callback', handler: unsupported(400, 'provider_disabled', 'Unsupported provider: provider is not enabled'), open: true },
  { method: 'POST', path: '/sso', handler: unsupported(404, 'sso_provider_not_found', 'No SSO provider assigned for this domain') },
  { method: 'GET', path: '/reauthenticate', handler: unsupported(422, 'reauthentication_not_valid', 'Reauthentication is not enabled') },
];

/** The route for a method and path, with its `:id` parameter; null when none matches. */
export function matchRoute(method: string, path: string): { route: Route; params: Record<string, string> } | null {
  const segments = path.split('/');
  for (const route of ROUTES) {
    if (route.method !== method) continue;
    const pattern = route.path.split('/');
    if (pattern.length !== segments.length) continue;
    const params: Record<string, string> = {};
    if (pattern.every((part, i) => (part.startsWith(':') ? ((params[part.slice(1)] = safeDecode(segments[i])), segments[i] !== '') : part === segments[i]))) {
      return { route, params };
    }
  }
  return null;
}

/** Whether any route has this path (405 rather than 404 for another method). */
export function pathKnown(path: string): boolean {
  return ROUTES.some((r) => matchRoute(r.method, path) !== null);
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
