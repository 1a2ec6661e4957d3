import { describe, expect, it } from 'vitest';
import { prepareRequest, type RawRestRequest, type RestConfig } from '../../../src/baas/rest/request.js';

// The pure front door: path, method, profile headers, query, Range, body, Accept and Prefer, checked in
// PostgREST's order, with its errors.

const config: RestConfig = { schemas: ['public', 'api'], maxRows: null, allowTransactionOverride: false };

function raw(method: string, path: string, query = '', headers: Record<string, string> = {}, body?: string): RawRestRequest {
  return { method, path, query, header: (n) => (headers[n] === undefined ? [] : [headers[n]]), ...(body !== undefined ? { body } : {}) };
}

const error = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    return { status: (err as { status: number }).status, ...(err as { body(): object }).body() };
  }
  throw new Error('no error');
};

describe('prepareRequest', () => {
  it('a read: default schema, the top range (Range intersected with limit), json output', () => {
    const r = prepareRequest(raw('GET', '/todos', 'select=id&limit=2', { range: '1-9' }), config);
    expect(r).toMatchObject({ method: 'GET', schema: 'public', profileHeader: true, target: { kind: 'relation', name: 'todos' }, topRange: { offset: 1n, upper: 1n } });
    expect(r.output.format).toBe('json');
    expect(r.payload).toBeUndefined();
  });

  it('Accept-Profile for reads, Content-Profile for writes; another schema is 406 PGRST106', () => {
    expect(prepareRequest(raw('GET', '/t', '', { 'accept-profile': 'api' }), config).schema).toBe('api');
    expect(prepareRequest(raw('DELETE', '/t', 'id=eq.1', { 'content-profile': 'api', 'accept-profile': 'x' }), config).schema).toBe('api');
    expect(error(() => prepareRequest(raw('GET', '/t', '', { 'accept-profile': 'private' }), config))).toEqual({
      status: 406, code: 'PGRST106', message: 'Invalid schema: private', details: null, hint: 'Only the following schemas are exposed: public, api',
    });
    expect(prepareRequest(raw('GET', '/t'), { ...config, schemas: ['public'] }).profileHeader).toBe(false);
  });

  it('paths: a relation, rpc/<fn> (percent-decoded); anything else is PGRST125 / PGRST126', () => {
    expect(prepareRequest(raw('POST', '/rpc/my%20fn', '', {}, '{"a":1}'), config)).toMatchObject({
      target: { kind: 'function', name: 'my fn' }, payload: { keys: ['a'], isArray: false },
    });
    expect(prepareRequest(raw('GET', '/rpc/add', 'a=1&b=eq.2'), config).query).toMatchObject({ rpcArguments: [{ name: 'a', value: '1' }] });
    expect(error(() => prepareRequest(raw('GET', '/a/b'), config))).toMatchObject({ status: 404, code: 'PGRST125', message: 'Invalid path specified in request URL' });
    expect(error(() => prepareRequest(raw('GET', '/'), config))).toMatchObject({ status: 404, code: 'PGRST126' });
  });

  it('methods: PGRST101 on rpc, PGRST117 unknown, PUT not implemented', () => {
    expect(error(() => prepareRequest(raw('PATCH', '/rpc/f'), config))).toEqual({ status: 405, code: 'PGRST101', message: 'Cannot use the PATCH method on RPC', details: null, hint: null });
    expect(error(() => prepareRequest(raw('TRACE', '/t'), config))).toEqual({ status: 405, code: 'PGRST117', message: 'Unsupported HTTP method: TRACE', details: null, hint: null });
    expect(error(() => prepareRequest(raw('PUT', '/t', 'id=eq.1', {}, '{}'), config))).toMatchObject({ status: 400, code: 'PGRST127' });
  });

  it('bodies: JSON only, keys from columns or the body; the Range header only on GET', () => {
    const post = prepareRequest(raw('POST', '/t', 'columns=a,b', { 'content-type': 'application/json', range: '5-1' }, '[{"a":1}]'), config);
    expect(post.payload).toEqual({ json: '[{"a":1}]', isArray: true, keys: ['a', 'b'] });
    expect(error(() => prepareRequest(raw('POST', '/t', '', { 'content-type': 'text/html' }, 'x'), config))).toMatchObject({
      status: 400, code: 'PGRST102', message: 'Content-Type not acceptable: text/html',
    });
    expect(error(() => prepareRequest(raw('GET', '/t', '', { range: '5-1' }), config))).toMatchObject({ status: 416, code: 'PGRST103' });
  });

  it('checks in upstream order: a bad query before a bad body, Accept and strict Prefer last', () => {
    expect(error(() => prepareRequest(raw('POST', '/t', 'id=bad', { accept: 'text/html' }, '{'), config))).toMatchObject({ code: 'PGRST100' });
    expect(error(() => prepareRequest(raw('POST', '/t', '', { accept: 'text/html' }, '{'), config))).toMatchObject({ code: 'PGRST102' });
    expect(error(() => prepareRequest(raw('GET', '/t', '', { accept: 'text/html', prefer: 'handling=strict,x' }), config))).toMatchObject({ code: 'PGRST107' });
    expect(error(() => prepareRequest(raw('GET', '/t', '', { prefer: 'handling=strict,x' }), config))).toMatchObject({ code: 'PGRST122' });
  });
});
