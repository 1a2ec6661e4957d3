/**
 * Issue 17: without AUTH_SMTP_URL the mails are not sent; the management API shows the last ones with their links
 * and codes (GET /api/tenants/<tenant>/auth/mails), to the management token only, and they work with supabase-js.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAuthCli } from '../../../src/auth-cli.js';
import { signManagementToken } from '../../../src/auth/management.js';
import { UnsentMails } from '../../../src/baas/auth/unsent-mails.js';
import { TEST_API_SECRET } from '../../support/server.js';
import { startAuthWorld, type AuthWorld } from './support.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The `performer` executable from source, as `npx performer` runs its built form. */
function performer(args: string[], env: Record<string, string> = {}) {
  return promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/performer.ts', ...args], { cwd: ROOT, env: { ...process.env, ...env } }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

interface Listed {
  data: { kind: string; to: string; link: string; otp: string; created_at: string }[];
  smtp: boolean;
}

describe('UnsentMails', () => {
  const mail = (to: string) => ({ kind: 'magiclink' as const, to, link: `http://x/verify?token=${to}`, otp: '123456' });

  it('keeps per tenant the newest, bounded in count and age', () => {
    let now = 1_000_000;
    const box = new UnsentMails(() => now, 3, 60_000);
    for (const to of ['a', 'b', 'c', 'd']) box.add('t1', mail(to));
    box.add('t2', mail('z'));
    expect(box.list('t1', 10).map((m) => m.to)).toEqual(['d', 'c', 'b']);
    expect(box.list('t1', 1).map((m) => m.to)).toEqual(['d']);
    expect(box.list('t2', 10).map((m) => m.to)).toEqual(['z']);
    expect(box.list('none', 10)).toEqual([]);
    now += 30_000;
    box.add('t1', mail('e'));
    now += 30_000;
    // a-d are 60 s old: gone; e is 30 s old.
    expect(box.list('t1', 10).map((m) => m.to)).toEqual(['e']);
  });

  it('never lists more than the limit, the bound or what was added (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('t1', 't2'), { maxLength: 40 }), fc.integer({ min: 0, max: 60 }), fc.integer({ min: 1, max: 10 }), (tenants, limit, bound) => {
        const box = new UnsentMails(() => 0, bound, 60_000);
        tenants.forEach((t, i) => box.add(t, mail(String(i))));
        const listed = box.list('t1', limit);
        const added = tenants.map((t, i) => [t, String(i)]).filter(([t]) => t === 't1').map(([, i]) => i);
        expect(listed.map((m) => m.to)).toEqual(added.reverse().slice(0, Math.min(limit, bound)));
      }),
    );
  });
});

describe('GET /api/tenants/<tenant>/auth/mails', () => {
  let w: AuthWorld;
  const mails = (token: string | null, query = '') =>
    fetch(`${w.t.url}/api/tenants/realtime-dev/auth/mails${query}`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });

  beforeAll(async () => {
    w = await startAuthWorld();
  });
  afterAll(() => w?.stop());

  it('shows unsent mails to the management token only, and their link and code sign in with supabase-js', async () => {
    // Existing users get a magic link (a new address would get a confirmation mail).
    for (const email of ['link@example.com', 'code@example.com']) expect((await w.svc.auth.admin.createUser({ email, email_confirm: true })).error).toBeNull();
    expect((await w.client().auth.signInWithOtp({ email: 'link@example.com' })).error).toBeNull();
    expect((await w.client().auth.signInWithOtp({ email: 'code@example.com' })).error).toBeNull();
    for (const token of [null, w.t.anonKey, w.t.serviceKey, await w.t.sign({ role: 'service_role', exp: Math.floor(Date.now() / 1000) + 60 })]) {
      const refused = await mails(token);
      expect([refused.status, await refused.text()]).toEqual([403, '']);
    }
    const admin = await signManagementToken(w.t.managementSecret);
    expect((await mails(admin, '?limit=x')).status).toBe(400);
    expect((await fetch(`${w.t.url}/api/tenants/nope/auth/mails`, { headers: { authorization: `Bearer ${admin}` } })).status).toBe(404);
    const res = await mails(admin);
    expect(res.status).toBe(200);
    const listed = (await res.json()) as Listed;
    expect(listed.smtp).toBe(false);
    expect(listed.data.map((m) => [m.to, m.kind])).toEqual([['code@example.com', 'magiclink'], ['link@example.com', 'magiclink']]);
    expect(((await (await mails(admin, '?limit=1')).json()) as Listed).data.map((m) => m.to)).toEqual(['code@example.com']);

    // The link's token hash, as the browser would follow it, through supabase-js verifyOtp.
    const linkMail = listed.data[1];
    const tokenHash = new URL(linkMail.link).searchParams.get('token');
    expect(tokenHash).toMatch(/^[0-9a-f]{56}$/);
    const byLink = await w.client().auth.verifyOtp({ token_hash: tokenHash!, type: 'magiclink' });
    expect(byLink.error).toBeNull();
    expect(byLink.data.user?.email).toBe('link@example.com');
    // The code typed in.
    const codeMail = listed.data[0];
    expect(codeMail.otp).toMatch(/^\d{6}$/);
    const byCode = await w.client().auth.verifyOtp({ email: 'code@example.com', token: codeMail.otp, type: 'email' });
    expect(byCode.error).toBeNull();
    expect(byCode.data.session?.access_token).toBeTruthy();
  });

  it('`performer auth mails` prints them, given a management token', async () => {
    expect(parseAuthCli(['mails', '--limit', 'x'], {})).toMatchObject({ kind: 'print', exitCode: 1 });
    expect(parseAuthCli(['nope'], {})).toMatchObject({ kind: 'print', exitCode: 1 });
    expect(parseAuthCli(['mails', '--url', 'http://x:1/', '--limit', '3'], {})).toEqual({
      kind: 'mails', mails: { url: 'http://x:1', tenant: 'realtime-dev', token: null, limit: 3, json: false },
    });
    expect((await w.client().auth.signInWithOtp({ email: 'cli@example.com' })).error).toBeNull();
    const printed = await performer(['auth', 'mails', '--url', w.t.url, '--limit', '1'], { API_JWT_SECRET: TEST_API_SECRET });
    expect(printed.code).toBe(0);
    expect(printed.stdout).toMatch(/^\S+ {2}confirmation {2}to cli@example\.com\n {2}code: \d{6}\n {2}link: http:\/\/\S+\/auth\/v1\/verify\?token=[0-9a-f]{56}&type=signup/);
    const refused = await performer(['auth', 'mails', '--url', w.t.url, '--token', w.t.serviceKey]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('403');
  });
});
