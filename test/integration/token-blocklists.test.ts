import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signHs256 } from '../../src/auth/jwt.js';
import { startTestServer, TEST_API_SECRET, type TestServer } from '../support/server.js';

const exp = () => Math.floor(Date.now() / 1000) + 600;

describe('token blocklists compare the token as verification reads it', () => {
  let t: TestServer;
  let blockedApi: string;
  let blockedMetrics: string;
  const METRICS_SECRET = 'metrics-secret-for-blocklist-with-32-characters';

  /** The same token written differently: URL-encoded dots, whitespace inside, both, and double encoding. */
  const spellings = (token: string) => [
    token,
    token.replace('.', '%2E'),
    token.replace(/\./g, '%2e'),
    `${token.slice(0, 10)} ${token.slice(10)}`,
    // (A raw newline cannot be sent inside an HTTP header; a tab can.)
    `${token.slice(0, 10)}\t${token.slice(10, 20)}  ${token.slice(20)}`,
    `${token.slice(0, 10)} ${token.slice(10)}`.replace('.', '%2E'),
    `${token.slice(0, 10)}%20${token.slice(10)}`,
    token.replace('.', '%252E'),
  ];

  beforeAll(async () => {
    blockedApi = await signHs256({ sub: 'leaked-api', exp: exp() }, TEST_API_SECRET);
    blockedMetrics = await signHs256({ sub: 'leaked-metrics', exp: exp() }, METRICS_SECRET);
    t = await startTestServer({
      // Listed as written in some config file: with an encoded dot; still the same token.
      API_TOKEN_BLOCKLIST: `unrelated, ${blockedApi.replace('.', '%2E')}`,
      METRICS_JWT_SECRET: METRICS_SECRET,
      METRICS_TOKEN_BLOCKLIST: blockedMetrics,
    });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('refuses every spelling of a blocklisted management token', async () => {
    for (const spelled of spellings(blockedApi)) {
      const res = await fetch(`${t.url}/api/tenants`, { headers: { authorization: `Bearer ${spelled}` } });
      expect([spelled, res.status, await res.text()]).toEqual([spelled, 403, '']);
    }
    // A token not on the list, written the same odd ways, still works (the spellings are otherwise accepted).
    const fine = await signHs256({ sub: 'fine', exp: exp() }, TEST_API_SECRET);
    for (const spelled of spellings(fine).slice(0, -1)) {
      const res = await fetch(`${t.url}/api/tenants`, { headers: { authorization: `Bearer ${spelled}` } });
      expect([spelled, res.status]).toEqual([spelled, 200]);
    }
  });

  it('refuses every spelling of a blocklisted metrics token', async () => {
    for (const spelled of spellings(blockedMetrics)) {
      const res = await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${spelled}` } });
      expect([spelled, res.status, await res.text()]).toEqual([spelled, 403, '']);
    }
    const fine = await signHs256({ sub: 'fine', exp: exp() }, METRICS_SECRET);
    for (const spelled of spellings(fine).slice(0, -1)) {
      const res = await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${spelled}` } });
      expect([spelled, res.status]).toEqual([spelled, 200]);
    }
  });
});
