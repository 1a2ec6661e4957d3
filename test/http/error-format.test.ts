import { describe, expect, it } from 'vitest';
import { errorFormat } from '../../src/http/respond.js';

// Phoenix's accepts(conn, ["html", "json"]) as its error renderer uses it, case by case.
describe('the format of an error page', () => {
  it.each([
    [undefined, 'html'],
    ['', 'html'],
    ['*/*', 'html'],
    ['application/json', 'json'],
    ['application/json, text/plain, */*', 'json'],
    ['text/plain, */*', 'html'],
    ['application/*', 'json'],
    ['text/*', 'html'],
    ['text/html;q=0.5, application/json;q=0.9', 'json'],
    ['application/json;q=0.5, text/html;q=0.9', 'html'],
    ['application/json;q=0.5, */*;q=0.1', 'json'],
    ['application/json;q=oops', 'json'],
    ['image/png', 'html'],
    ['garbage', 'html'],
  ] as const)('Accept %j gives %s', (accept, format) => {
    expect(errorFormat(accept)).toBe(format);
  });
});
