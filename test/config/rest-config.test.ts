import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { configError } from './config-error.js';

describe('REST configuration', () => {
  it('defaults: schema public, no row cap, an 8 s statement timeout', () => {
    const c = loadConfig({});
    expect(c.restSchemas).toEqual(['public']);
    expect(c.restMaxRows).toBeNull();
    expect(c.restStatementTimeoutMs).toBe(8000);
  });

  it('reads a schema list in order, trimmed and without repeats', () => {
    const c = loadConfig({ REST_SCHEMAS: ' api , public,api', REST_MAX_ROWS: '100', REST_STATEMENT_TIMEOUT_MS: '0' });
    expect(c.restSchemas).toEqual(['api', 'public']);
    expect(c.restMaxRows).toBe(100);
    expect(c.restStatementTimeoutMs).toBe(0);
  });

  it.each([
    ['REST_SCHEMAS', 'public,"x"'],
    ['REST_SCHEMAS', 'a b'],
    ['REST_MAX_ROWS', '0'],
    ['REST_MAX_ROWS', 'many'],
    ['REST_STATEMENT_TIMEOUT_MS', '-1'],
    ['REST_STATEMENT_TIMEOUT_MS', '1s'],
  ])('refuses %s=%s naming the variable', (name, value) => {
    expect(configError({ [name]: value }).variable).toBe(name);
  });
});
