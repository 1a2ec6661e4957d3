/** The gateway's answers of spec baas-api.md §5.3, built in one place. */
import type { Outcome } from './runtime/protocol.js';

export interface GatewayError {
  status: number;
  body: Record<string, unknown>;
}

export const NOT_FOUND: GatewayError = { status: 404, body: { code: 'NOT_FOUND', message: 'Requested function was not found' } };
export const INVALID_JWT: GatewayError = { status: 401, body: { code: 401, message: 'Invalid JWT' } };
export const WORKER_ERROR: GatewayError = { status: 500, body: { code: 'WORKER_ERROR', message: 'Function exited due to an error (please check logs)' } };
export const BOOT_ERROR: GatewayError = { status: 503, body: { code: 'BOOT_ERROR', message: 'Function failed to start (please check logs)' } };
export const WORKER_LIMIT: GatewayError = {
  status: 546,
  body: { code: 'WORKER_LIMIT', message: 'Function failed due to not having enough compute resources (please check logs)' },
};
export const METHOD_NOT_ALLOWED: GatewayError = { status: 405, body: { code: 'METHOD_NOT_ALLOWED', message: 'Method not allowed' } };

/** The error code of a failed outcome, as metrics and logs name it. */
export function errorFor(outcome: Exclude<Outcome, 'ok'>): GatewayError {
  return outcome === 'boot' ? BOOT_ERROR : outcome === 'limit' ? WORKER_LIMIT : WORKER_ERROR;
}
