/**
 * GoTrue's error answers (spec baas-api.md §2.5; internal/api/errors.go): the body shape follows the request's
 * `X-Supabase-Api-Version` (>= 2024-01-01: `{code, message}` and the version echoed; else the legacy
 * `{code: <status>, error_code, msg}`), always with `x-sb-error-code`; OAuth errors of the token endpoint are
 * `{error, error_description}`; a weak password carries its reasons.
 */

export const API_VERSION_HEADER = 'x-supabase-api-version';
const VERSION_2024 = '2024-01-01';

export class AuthError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Extra keys of the body (weak_password reasons). */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'AuthError';
  }

  static badRequest(code: string, message: string): AuthError {
    return new AuthError(400, code, message);
  }

  static unprocessable(code: string, message: string): AuthError {
    return new AuthError(422, code, message);
  }

  static forbidden(code: string, message: string): AuthError {
    return new AuthError(403, code, message);
  }

  static notFound(code: string, message: string): AuthError {
    return new AuthError(404, code, message);
  }

  static validation(message: string): AuthError {
    return new AuthError(400, 'validation_failed', message);
  }

  static weakPassword(min: number): AuthError {
    return new AuthError(422, 'weak_password', `Password should be at least ${min} characters.`, { weak_password: { reasons: ['length'] } });
  }

  static notAdmin(): AuthError {
    return new AuthError(403, 'not_admin', 'User not allowed');
  }

  static rateLimited(): AuthError {
    return new AuthError(429, 'over_request_rate_limit', 'Request rate limit reached');
  }
}

/** An RFC 6749 error of the token endpoint, always 400. */
export class OAuthError extends Error {
  constructor(
    readonly error: string,
    readonly description: string,
  ) {
    super(description);
  }
}

/** The API version a request asked for: '2024-01-01' or null (initial); an unparsable date is the initial one. */
export function requestedApiVersion(header: string | undefined): string | null {
  if (header === undefined || !/^\d{4}-\d{2}-\d{2}$/.test(header)) return null;
  const date = Date.parse(`${header}T00:00:00Z`);
  return Number.isFinite(date) && date >= Date.parse(`${VERSION_2024}T00:00:00Z`) ? VERSION_2024 : null;
}

export interface ErrorAnswer {
  status: number;
  headers: [string, string][];
  body: Record<string, unknown>;
}

/** The status, headers and body of an error for a request that sent `versionHeader`. */
export function errorAnswer(err: AuthError | OAuthError, versionHeader: string | undefined): ErrorAnswer {
  if (err instanceof OAuthError) return { status: 400, headers: [], body: { error: err.error, error_description: err.description } };
  const version = requestedApiVersion(versionHeader);
  const headers: [string, string][] = [['x-sb-error-code', err.code]];
  if (version !== null) {
    headers.push([API_VERSION_HEADER, version]);
    return { status: err.status, headers, body: { code: err.code, message: err.message, ...err.extra } };
  }
  return { status: err.status, headers, body: { code: err.status, error_code: err.code, msg: err.message, ...err.extra } };
}
