/** Where e-mail links may send the session (GoTrue's redirect URL check): golden cases. */
import { describe, expect, it } from 'vitest';
import { redirectAllowed } from '../../../src/baas/auth/handlers/mail-links.js';

const SITE = 'https://app.example.com/welcome';

describe('redirectAllowed', () => {
  it.each([
    ['https://app.example.com/after', [], true],
    ['http://app.example.com:3000/x', [], true],
    ['https://evil.example.net/steal', [], false],
    ['https://app.example.com.evil.net/', [], false],
    ['javascript:alert(1)', [], false],
    ['not a url', [], false],
    ['https://preview-42.vercel.app/cb', ['https://*.vercel.app/**'], true],
    ['https://a.b.vercel.app/cb', ['https://*.vercel.app/**'], false],
    ['https://other.io/cb', ['https://other.io'], true],
    ['https://other.io.evil.net/cb', ['https://other.io'], false],
    ['https://other.io?x=1', ['https://other.io'], true],
    ['myapp://callback', ['myapp://'], true],
  ] as const)('%s with %j: %s', (target, allow, expected) => {
    expect(redirectAllowed(target, SITE, allow)).toBe(expected);
  });
});
