import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CgiParseError, parseCgiOutput, wagiEnvironment } from '../../../src/baas/functions/cgi.js';

const text = (s: string) => new TextEncoder().encode(s);

describe('WAGI environment', () => {
  it('maps a request to CGI variables (golden)', () => {
    const env = wagiEnvironment(
      { method: 'POST', path: '/a/b', query: 'x=1', headers: { 'content-type': 'application/json', 'content-length': '7', authorization: 'Bearer t', 'x-client-info': 'js', connection: 'keep-alive' }, body: text('{"a":1}') },
      'echo',
      { API_KEY: 's', REQUEST_METHOD: 'spoofed' },
    );
    expect(env).toEqual({
      API_KEY: 's',
      HTTP_AUTHORIZATION: 'Bearer t',
      HTTP_X_CLIENT_INFO: 'js',
      REQUEST_METHOD: 'POST',
      SCRIPT_NAME: '/functions/v1/echo',
      PATH_INFO: '/a/b',
      QUERY_STRING: 'x=1',
      CONTENT_TYPE: 'application/json',
      CONTENT_LENGTH: '7',
      SERVER_PROTOCOL: 'HTTP/1.1',
      GATEWAY_INTERFACE: 'CGI/1.1',
      X_FULL_URL: '/functions/v1/echo/a/b?x=1',
    });
  });

  it('always names every header HTTP_<UPPER_SNAKE> and never lets a secret replace a request variable', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/), fc.string({ maxLength: 20 })), fc.string({ maxLength: 10 }), (headers, method) => {
        const env = wagiEnvironment({ method, path: '', query: '', headers, body: new Uint8Array(3) }, 'f', { REQUEST_METHOD: 'x', CONTENT_LENGTH: 'y' });
        expect(env.REQUEST_METHOD).toBe(method);
        expect(env.CONTENT_LENGTH).toBe('3');
        for (const [name, value] of Object.entries(headers)) {
          if (['content-type', 'content-length', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-connection'].includes(name)) continue;
          expect(env[`HTTP_${name.toUpperCase().replace(/-/g, '_')}`]).toBe(value);
        }
      }),
    );
  });
});

describe('CGI output', () => {
  it('parses headers, Status and body (golden)', () => {
    expect(parseCgiOutput(text('Content-Type: application/json\r\nStatus: 400 Bad Request\r\nX-A: 1\r\n\r\n{"error":"bad"}'))).toEqual({
      status: 400,
      headers: [['content-type', 'application/json'], ['x-a', '1']],
      body: Buffer.from('{"error":"bad"}'),
    });
    expect(parseCgiOutput(text('Location: /x\n\n'))).toMatchObject({ status: 302, headers: [['location', '/x']] });
    expect(parseCgiOutput(text('Content-Type: text/plain\n\n'))).toMatchObject({ status: 200, body: Buffer.alloc(0) });
    // Framing is the server's: Content-Length and Transfer-Encoding from the guest are dropped.
    expect(parseCgiOutput(text('Content-Length: 99\nTransfer-Encoding: chunked\nX: y\n\nab')).headers).toEqual([['x', 'y']]);
  });

  it('refuses output without a header block, malformed lines and bad statuses', () => {
    for (const bad of ['just a body', 'no colon line\n\nbody', 'Status: abc\n\n', 'Status: 42\n\n', 'Bad Name: x\n\n', ': empty\n\n']) {
      expect(() => parseCgiOutput(text(bad)), bad).toThrow(CgiParseError);
    }
  });

  it('round-trips any header set and body', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.stringMatching(/^x-[a-z0-9-]{1,10}$/), fc.stringMatching(/^[ -~]{0,30}$/).map((s) => s.trim())), { maxLength: 5 }),
        fc.integer({ min: 100, max: 599 }),
        fc.uint8Array({ maxLength: 200 }),
        (headers, status, body) => {
          const head = [...headers.map(([k, v]) => `${k}: ${v}`), `Status: ${status}`].join('\r\n');
          const parsed = parseCgiOutput(Buffer.concat([Buffer.from(`${head}\r\n\r\n`), body]));
          expect(parsed.status).toBe(status);
          expect(parsed.headers).toEqual(headers);
          expect(Buffer.from(parsed.body).equals(Buffer.from(body))).toBe(true);
        },
      ),
    );
  });
});
