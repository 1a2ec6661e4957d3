import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { requestId } from '../../src/http/gate.js';

const GENERATED = /^[0-9a-f]{32}$/;

// Upstream's BaggageRequestId (baggage `request-id`, 10..200 bytes) in front of Plug.RequestId (x-request-id,
// 20..200 bytes, else a new id).
describe('the request id of a request', () => {
  it('is new for a request that brings none, and differs between requests', () => {
    const a = requestId({});
    expect(a).toMatch(GENERATED);
    expect(requestId({})).not.toBe(a);
  });

  it('is the caller x-request-id when it is 20 to 200 characters', () => {
    expect(requestId({ 'x-request-id': 'a'.repeat(20) })).toBe('a'.repeat(20));
    expect(requestId({ 'x-request-id': 'b'.repeat(200) })).toBe('b'.repeat(200));
    expect(requestId({ 'x-request-id': 'a'.repeat(19) })).toMatch(GENERATED);
    expect(requestId({ 'x-request-id': 'b'.repeat(201) })).toMatch(GENERATED);
  });

  it('prefers the request-id entry of the baggage header, percent-decoded, when it is 10 to 200 characters', () => {
    const given = 'c'.repeat(20);
    expect(requestId({ baggage: 'request-id=trace%2F0001;prop=1', 'x-request-id': given })).toBe('trace/0001');
    expect(requestId({ baggage: 'user=x, request-id = 0123456789 ,other=y' })).toBe('0123456789');
    expect(requestId({ baggage: 'request-id=short', 'x-request-id': given })).toBe(given);
    expect(requestId({ baggage: 'request-id=%E0%A4%A', 'x-request-id': given })).toBe(given);
    expect(requestId({ baggage: 'other-id=0123456789' })).toMatch(GENERATED);
  });

  it('never takes a value that is not visible ASCII: no line break reaches the response headers', () => {
    expect(requestId({ baggage: 'request-id=0123456789%0D%0Aset-cookie:%20x=1' })).toMatch(GENERATED);
    expect(requestId({ 'x-request-id': `${'d'.repeat(20)} with spaces` })).toMatch(GENERATED);
    fc.assert(
      fc.property(fc.string({ maxLength: 250 }), fc.string({ maxLength: 250 }), (xRequestId, baggageValue) => {
        const id = requestId({ 'x-request-id': xRequestId, baggage: `request-id=${encodeURIComponent(baggageValue)}` });
        expect(id).toMatch(/^[\x21-\x7e]{10,200}$/);
      }),
    );
  });
});
