/** AUTH_SIGNING_KEYS: access tokens signed ES256 with a `kid`, the public key published, verified by supabase-js. */
import { decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { email, startAuthWorld, type AuthWorld } from './support.js';

let w: AuthWorld;
let publicJwk: Record<string, unknown>;
beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const privateJwk = { ...(await exportJWK(privateKey)), kid: 'key-1', alg: 'ES256' };
  publicJwk = { ...(await exportJWK(publicKey)), kid: 'key-1', alg: 'ES256' };
  // The tenant's JWKS lists the public key too, so REST and realtime accept the tokens.
  w = await startAuthWorld({ AUTH_SIGNING_KEYS: JSON.stringify([privateJwk]), JWT_JWKS: JSON.stringify({ keys: [publicJwk] }) });
}, 60_000);
afterAll(async () => w?.stop());

describe('asymmetric signing keys', () => {
  it('signs ES256 with the kid, publishes the public half only, and the tokens verify everywhere', async () => {
    const c = w.client();
    const { data, error } = await c.auth.signUp({ email: email('es'), password: 'secret123' });
    expect(error).toBeNull();
    expect(decodeProtectedHeader(data.session!.access_token)).toMatchObject({ alg: 'ES256', kid: 'key-1' });
    const jwks = (await (await w.http('/.well-known/jwks.json')).json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kid: 'key-1', kty: 'EC', crv: 'P-256', x: publicJwk.x, y: publicJwk.y });
    expect(jwks.keys[0].d).toBeUndefined();
    // supabase-js verifies an asymmetric token locally against the published JWKS.
    const claims = await c.auth.getClaims();
    expect(claims.error).toBeNull();
    expect(claims.data!.claims.sub).toBe(data.user!.id);
    expect((await c.auth.getUser()).error).toBeNull();
    const rest = await fetch(`${w.t.url}/rest/v1/nothing`, { headers: { apikey: w.t.anonKey, authorization: `Bearer ${data.session!.access_token}` } });
    expect(rest.status).toBe(404);
  });
});
