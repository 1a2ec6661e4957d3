import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildExamples } from '../../../examples/functions/build.js';
import { parseCli } from '../../../src/functions-cli.js';
import { startTestServer, TEST_API_SECRET, type TestServer } from '../../support/server.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The `performer` executable from source, as `npx performer` runs its built form. */
function performer(args: string[], env: Record<string, string> = {}) {
  return run(process.execPath, ['--import', 'tsx', 'src/performer.ts', ...args], { cwd: ROOT, env: { ...process.env, ...env } }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

describe('example functions and `performer functions deploy`', () => {
  let t: TestServer;

  beforeAll(async () => {
    t = await startTestServer();
    await buildExamples();
  });
  afterAll(() => t?.stop());

  it('parses the deploy command and refuses anything else', () => {
    expect(parseCli(['functions', 'deploy', 'a', 'b.ts', '--no-verify-jwt', '--url', 'http://x:1/'], {})).toEqual({
      kind: 'deploy',
      deploy: { name: 'a', file: 'b.ts', url: 'http://x:1', tenant: 'realtime-dev', token: null, verifyJwt: false },
    });
    expect(parseCli(['functions', 'deploy', 'a'], {})).toMatchObject({ kind: 'print', exitCode: 1 });
    expect(parseCli(['functions', 'remove', 'a'], {})).toMatchObject({ kind: 'print', exitCode: 1 });
    expect(parseCli(['functions', 'deploy', 'a', 'b', '--bogus'], {})).toMatchObject({ kind: 'print', exitCode: 1 });
    expect(parseCli(['--help'], {})).toMatchObject({ kind: 'print', exitCode: 0 });
  });

  it('builds the WAT example, deploys it with the CLI and serves it', async () => {
    const deployed = await performer(['functions', 'deploy', 'echo', 'examples/functions/echo-wasi/echo.wasm', '--url', t.url], { API_JWT_SECRET: TEST_API_SECRET });
    expect(deployed.stderr).toBe('');
    expect(deployed.code).toBe(0);
    expect(deployed.stdout).toContain('Deployed echo version 1 (verify_jwt=true)');
    const res = await fetch(`${t.url}/functions/v1/echo`, { method: 'POST', body: '{"x":1}', headers: { 'content-type': 'application/json', authorization: `Bearer ${t.anonKey}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ x: 1 });
  });

  it('deploys the TypeScript example, compiled on the way, and serves it', async () => {
    const deployed = await performer(['functions', 'deploy', 'hello', 'examples/functions/hello-ts/index.ts', '--no-verify-jwt', '--url', t.url], { API_JWT_SECRET: TEST_API_SECRET });
    expect(deployed.code).toBe(0);
    const res = await fetch(`${t.url}/functions/v1/hello?name=Ada`);
    expect(await res.json()).toEqual({ message: 'Hello, Ada!', method: 'GET' });
  });

  it('fails with a message and exit 1 without a management token, with a wrong one, or on a syntax error', async () => {
    const noToken = await performer(['functions', 'deploy', 'x', 'examples/functions/hello-ts/index.ts', '--url', t.url], { API_JWT_SECRET: '', PERFORMER_TOKEN: '' });
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toContain('No management token');
    const wrong = await performer(['functions', 'deploy', 'x', 'examples/functions/hello-ts/index.ts', '--url', t.url, '--token', t.serviceKey]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('Deploy failed: 403');
    const syntax = await performer(['functions', 'deploy', 'x', 'package.json', '--url', t.url], { API_JWT_SECRET: TEST_API_SECRET });
    expect(syntax.code).toBe(1);
  });
});
