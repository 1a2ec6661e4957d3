import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { histogram, scrape, value } from '../../support/metrics.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { cgiWat, FunctionsAdmin, wat } from './support.js';

describe('function metrics on /metrics', () => {
  let t: TestServer;

  beforeAll(async () => {
    t = await startTestServer();
    const admin = new FunctionsAdmin(t);
    await admin.deploy('ok', await wat(cgiWat('Content-Type: text/plain\n\nok')), 'application/wasm', '?verify_jwt=false');
    await admin.deploy('fails', 'export default { fetch() { throw new Error("x") } }', 'application/javascript', '?verify_jwt=false');
    await admin.deploy('strict', 'export default { fetch() { return new Response("x") } }', 'application/javascript');
  });
  afterAll(() => t?.stop());

  it('counts invocations by status, errors by code, durations and memory per function', async () => {
    const before = (await scrape(t.url)).samples;
    for (let i = 0; i < 3; i++) expect((await fetch(`${t.url}/functions/v1/ok`)).status).toBe(200);
    expect((await fetch(`${t.url}/functions/v1/fails`)).status).toBe(500);
    expect((await fetch(`${t.url}/functions/v1/strict`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    const after = (await scrape(t.url)).samples;
    const delta = (name: string, labels: Record<string, string>) => (value(after, name, labels) ?? 0) - (value(before, name, labels) ?? 0);
    const fn = (name: string) => ({ tenant: 'realtime-dev', function: name });
    expect(delta('performer_function_invocations_total', { ...fn('ok'), status: '200' })).toBe(3);
    expect(delta('performer_function_invocations_total', { ...fn('fails'), status: '500' })).toBe(1);
    expect(delta('performer_function_errors_total', { ...fn('fails'), code: 'WORKER_ERROR' })).toBe(1);
    expect(delta('performer_function_errors_total', { ...fn('strict'), code: 'INVALID_JWT' })).toBe(1);
    expect(histogram(after, 'performer_function_duration_seconds', { ...fn('ok'), kind: 'wasm' }).count - histogram(before, 'performer_function_duration_seconds', { ...fn('ok'), kind: 'wasm' }).count).toBe(3);
    expect(value(after, 'performer_function_memory_bytes', fn('ok'))).toBe(65536);
  });
});
