/**
 * E-mail flows through a real SMTP server started here (smtp-server): confirmation on sign-up with AUTH_AUTOCONFIRM
 * off, magic link and e-mail OTP, recovery, e-mail change, the GET /verify redirect, generate_link; codes are read
 * from the received mail. Without SMTP, mails are recorded in the audit log.
 */
import type { AddressInfo } from 'node:net';
import { createClient } from '@supabase/supabase-js';
import { SMTPServer } from 'smtp-server';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimsOf, email, startAuthWorld, type AuthWorld } from './support.js';

interface Received {
  to: string;
  raw: string;
}

let smtp: SMTPServer;
const inbox: Received[] = [];
const waiters: (() => void)[] = [];
let w: AuthWorld;

beforeAll(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onAuth: (_auth, _session, callback) => callback(null, { user: 'performer' }),
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        inbox.push({ to: session.envelope.rcptTo.map((r) => r.address).join(','), raw: Buffer.concat(chunks).toString('utf8') });
        for (const wake of waiters.splice(0)) wake();
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  const port = (smtp.server.address() as AddressInfo).port;
  w = await startAuthWorld({ AUTH_SMTP_URL: `smtp://user:pass@127.0.0.1:${port}`, AUTH_AUTOCONFIRM: 'false', AUTH_EMAIL_MAX_FREQUENCY: '0', AUTH_SITE_URL: 'http://app.example.com/welcome' });
}, 60_000);
afterAll(async () => {
  await w?.stop();
  await new Promise<void>((resolve) => smtp?.close(() => resolve()));
});

/** The next mail to `to`: its 6-digit code and its link (quoted-printable undone). */
async function mailTo(to: string): Promise<{ code: string; link: string; text: string }> {
  for (let i = 0; i < 100; i++) {
    const index = inbox.findIndex((m) => m.to === to);
    if (index !== -1) {
      const [mail] = inbox.splice(index, 1);
      const text = mail.raw.replace(/=\r?\n/g, '').replace(/=3D/g, '=');
      const code = /enter the code: (\d{6})/.exec(text)?.[1] ?? '';
      const link = /(http:\/\/[^\s"<]+\/auth\/v1\/verify\?[^\s"<]+)/.exec(text)?.[1] ?? '';
      return { code, link: link.replace(/&amp;/g, '&'), text };
    }
    await new Promise<void>((resolve) => {
      waiters.push(resolve);
      setTimeout(resolve, 100);
    });
  }
  throw new Error(`no mail to ${to}`);
}

describe('with e-mail confirmation', () => {
  it('sign-up answers the user without a session, mails a code that confirms it and signs in', async () => {
    const address = email('confirm');
    const { data, error } = await w.anon.auth.signUp({ email: address, password: 'secret123' });
    expect(error).toBeNull();
    expect(data.session).toBeNull();
    expect(data.user!.confirmation_sent_at).toEqual(expect.any(String));
    const early = await w.anon.auth.signInWithPassword({ email: address, password: 'secret123' });
    expect(early.error).toMatchObject({ status: 400, code: 'email_not_confirmed' });
    const mail = await mailTo(address);
    expect(mail.text).toContain('Confirm Your Signup');
    const verified = await w.client().auth.verifyOtp({ email: address, token: mail.code, type: 'signup' });
    expect(verified.error).toBeNull();
    expect(verified.data.user!.email_confirmed_at).toEqual(expect.any(String));
    expect(claimsOf(verified.data.session!.access_token).amr).toEqual([{ method: 'otp', timestamp: expect.any(Number) }]);
    // A code works once.
    const again = await w.client().auth.verifyOtp({ email: address, token: mail.code, type: 'signup' });
    expect(again.error).toMatchObject({ status: 403, code: 'otp_expired', message: 'Token has expired or is invalid' });
    expect((await w.anon.auth.signInWithPassword({ email: address, password: 'secret123' })).error).toBeNull();
  });

  it('magic link: signInWithOtp mails a link whose GET /verify redirects with the session in the fragment', async () => {
    const address = email('magic');
    await w.svc.auth.admin.createUser({ email: address, password: 'secret123', email_confirm: true });
    expect((await w.anon.auth.signInWithOtp({ email: address, options: { shouldCreateUser: false } })).error).toBeNull();
    const mail = await mailTo(address);
    expect(mail.text).toContain('Your Magic Link');
    const res = await fetch(mail.link, { redirect: 'manual' });
    expect(res.status).toBe(303);
    const location = new URL(res.headers.get('location')!);
    expect(`${location.origin}${location.pathname}`).toBe('http://app.example.com/welcome');
    const fragment = new URLSearchParams(location.hash.slice(1));
    expect(fragment.get('type')).toBe('magiclink');
    expect(claimsOf(fragment.get('access_token')!)).toMatchObject({ email: address, amr: [{ method: 'magiclink' }] });
    // A redirect_to outside the site and the allow list is replaced by the site URL (the session must not leave).
    await w.anon.auth.signInWithOtp({ email: address, options: { shouldCreateUser: false, emailRedirectTo: 'https://evil.example.net/steal' } });
    const evil = await mailTo(address);
    expect(evil.link).not.toContain('evil.example.net');
    const sent = new URL((await fetch(evil.link, { redirect: 'manual' })).headers.get('location')!);
    expect(sent.hostname).toBe('app.example.com');
    // The same link again: redirected with the error instead.
    const reused = new URL((await fetch(mail.link, { redirect: 'manual' })).headers.get('location')!);
    expect(new URLSearchParams(reused.hash.slice(1)).get('error_code')).toBe('otp_expired');
  });

  it('e-mail OTP for an unknown address creates the user unless told not to', async () => {
    const address = email('otp');
    const refused = await w.anon.auth.signInWithOtp({ email: address, options: { shouldCreateUser: false } });
    expect(refused.error).toMatchObject({ status: 422, code: 'otp_disabled' });
    expect((await w.anon.auth.signInWithOtp({ email: address })).error).toBeNull();
    const mail = await mailTo(address);
    const { data, error } = await w.client().auth.verifyOtp({ email: address, token: mail.code, type: 'email' });
    expect(error).toBeNull();
    expect(data.user!.email).toBe(address);
  });

  it('recovery: the mailed code signs in, then the password changes', async () => {
    const address = email('recover');
    await w.svc.auth.admin.createUser({ email: address, password: 'secret123', email_confirm: true });
    expect((await w.anon.auth.resetPasswordForEmail(address)).error).toBeNull();
    // Unknown addresses get the same answer and no mail.
    expect((await w.anon.auth.resetPasswordForEmail(email('ghost'))).error).toBeNull();
    const mail = await mailTo(address);
    expect(mail.text).toContain('Reset Your Password');
    const c = w.client();
    const verified = await c.auth.verifyOtp({ email: address, token: mail.code, type: 'recovery' });
    expect(verified.error).toBeNull();
    expect((await c.auth.updateUser({ password: 'changed-secret' })).error).toBeNull();
    expect((await w.anon.auth.signInWithPassword({ email: address, password: 'changed-secret' })).error).toBeNull();
  });

  it('e-mail change: the new address gets a code that moves the account', async () => {
    const address = email('old');
    const next = email('new');
    await w.svc.auth.admin.createUser({ email: address, password: 'secret123', email_confirm: true });
    const c = w.client();
    await c.auth.signInWithPassword({ email: address, password: 'secret123' });
    const { data } = await c.auth.updateUser({ email: next });
    expect(data.user).toMatchObject({ email: address, new_email: next });
    const mail = await mailTo(next);
    expect(mail.text).toContain('Confirm Email Change');
    const verified = await w.client().auth.verifyOtp({ email: next, token: mail.code, type: 'email_change' });
    expect(verified.error).toBeNull();
    expect(verified.data.user!.email).toBe(next);
  });

  it('admin generate_link answers the link and code without mailing', async () => {
    const address = email('gen');
    const { data, error } = await w.svc.auth.admin.generateLink({ type: 'signup', email: address, password: 'secret123' });
    expect(error).toBeNull();
    expect(data.properties).toMatchObject({ verification_type: 'signup', email_otp: expect.stringMatching(/^\d{6}$/) });
    expect(data.properties!.action_link).toContain('/auth/v1/verify?token=');
    expect(data.user!.email).toBe(address);
    const verified = await w.client().auth.verifyOtp({ token_hash: data.properties!.hashed_token, type: 'signup' });
    expect(verified.error).toBeNull();
  });
});

describe('resend and invite', () => {
  it('resend mails a new sign-up code; the earlier one no longer works', async () => {
    const address = email('resend');
    await w.anon.auth.signUp({ email: address, password: 'secret123' });
    const first = await mailTo(address);
    expect((await w.anon.auth.resend({ type: 'signup', email: address })).error).toBeNull();
    const second = await mailTo(address);
    expect(second.code).not.toBe(first.code);
    expect((await w.client().auth.verifyOtp({ email: address, token: first.code, type: 'signup' })).error).toMatchObject({ code: 'otp_expired' });
    expect((await w.client().auth.verifyOtp({ email: address, token: second.code, type: 'signup' })).error).toBeNull();
  });

  it('inviteUserByEmail (service key only) mails an invite whose link signs the user in', async () => {
    const address = email('invite');
    expect((await w.anon.auth.admin.inviteUserByEmail(address)).error).toMatchObject({ status: 403, code: 'not_admin' });
    const { data, error } = await w.svc.auth.admin.inviteUserByEmail(address, { data: { team: 'a' } });
    expect(error).toBeNull();
    expect(data.user).toMatchObject({ email: address, user_metadata: { team: 'a' }, invited_at: expect.any(String) });
    const mail = await mailTo(address);
    expect(mail.text).toContain('You have been invited');
    const location = new URL((await fetch(mail.link, { redirect: 'manual' })).headers.get('location')!);
    expect(new URLSearchParams(location.hash.slice(1)).get('type')).toBe('invite');
  });
});

describe('PKCE (flowType pkce)', () => {
  it('a magic link redirects with ?code= and exchangeCodeForSession trades it for the session', async () => {
    const address = email('pkce');
    await w.svc.auth.admin.createUser({ email: address, password: 'secret123', email_confirm: true });
    const c = createClient(w.t.url, w.t.anonKey, { auth: { flowType: 'pkce', persistSession: false, autoRefreshToken: false, detectSessionInUrl: false }, realtime: { transport: WebSocket as never } });
    expect((await c.auth.signInWithOtp({ email: address, options: { shouldCreateUser: false } })).error).toBeNull();
    const mail = await mailTo(address);
    expect(mail.link).toContain('token=pkce_');
    const res = await fetch(mail.link, { redirect: 'manual' });
    expect(res.status).toBe(303);
    const location = new URL(res.headers.get('location')!);
    expect(location.hash).toBe('');
    const code = location.searchParams.get('code')!;
    expect(code).toMatch(/^[0-9a-f-]{36}$/);
    // Someone else's verifier does not match.
    const stolen = await w.http('/token?grant_type=pkce', { method: 'POST', body: { auth_code: code, code_verifier: 'x'.repeat(50) } });
    expect(stolen.status).toBe(400);
    expect(await stolen.json()).toMatchObject({ code: 'bad_code_verifier' });
    const { data, error } = await c.auth.exchangeCodeForSession(code);
    expect(error).toBeNull();
    expect(data.session!.user.email).toBe(address);
    expect(claimsOf(data.session!.access_token).amr).toEqual([{ method: 'magiclink', timestamp: expect.any(Number) }]);
    // A code is good once.
    expect((await w.http('/token?grant_type=pkce', { method: 'POST', body: { auth_code: code, code_verifier: 'x'.repeat(50) } })).status).toBe(404);
  });

  it('the mailed code of a PKCE request still verifies when typed in', async () => {
    const address = email('pkce-otp');
    const c = createClient(w.t.url, w.t.anonKey, { auth: { flowType: 'pkce', persistSession: false, autoRefreshToken: false, detectSessionInUrl: false }, realtime: { transport: WebSocket as never } });
    expect((await c.auth.signInWithOtp({ email: address })).error).toBeNull();
    const mail = await mailTo(address);
    const { error } = await c.auth.verifyOtp({ email: address, token: mail.code, type: 'email' });
    expect(error).toBeNull();
  });
});

describe('without SMTP', () => {
  it('records the mail in the audit log', async () => {
    const quiet = await startAuthWorld({ AUTH_AUTOCONFIRM: 'false' });
    try {
      const address = email('quiet');
      expect((await quiet.anon.auth.signUp({ email: address, password: 'secret123' })).error).toBeNull();
      const res = await quiet.http(`/admin/audit?query=email_not_sent`, { token: quiet.t.serviceKey });
      const entries = (await res.json()) as { payload: { action: string; traits: { mail: string; to: string } } }[];
      expect(entries).toEqual([expect.objectContaining({ payload: expect.objectContaining({ action: 'email_not_sent', traits: { mail: 'confirmation', to: address } }) })]);
    } finally {
      await quiet.stop();
    }
  });

  it('limits mails per address (429 over_email_send_rate_limit)', async () => {
    const quiet = await startAuthWorld({ AUTH_AUTOCONFIRM: 'false' });
    try {
      const address = email('freq');
      expect((await quiet.anon.auth.signInWithOtp({ email: address })).error).toBeNull();
      const second = await quiet.anon.auth.signInWithOtp({ email: address });
      expect(second.error).toMatchObject({ status: 429, code: 'over_email_send_rate_limit' });
    } finally {
      await quiet.stop();
    }
  });
});
