import { Writable } from 'node:stream';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createLogger, serializeError } from '../../src/observability/logger.js';

/** A logger at `debug` whose lines land in the returned array, parsed. */
function memoryLogger() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: createLogger('debug', sink), lines };
}

/** An error shaped as pg-pool hands over an idle client's failure: a DatabaseError with the live client on it. */
function idleClientError(): Error {
  const client = new pg.Client({ connectionString: 'postgres://postgres:hunter2@127.0.0.1:1/postgres' });
  Object.assign(client, { processID: 4242, secretKey: 987654321 });
  const err = Object.assign(new Error('terminating connection due to administrator command'), {
    code: '57P01',
    severity: 'FATAL',
    client,
  });
  return err;
}

describe('the err serializer', () => {
  it('keeps the message, stack and data fields of an error and drops the live client pg-pool attached', () => {
    const out = serializeError(idleClientError()) as Record<string, unknown>;
    expect(out).toMatchObject({ type: 'Error', message: 'terminating connection due to administrator command', code: '57P01', severity: 'FATAL' });
    expect(typeof out.stack).toBe('string');
    expect(out).not.toHaveProperty('client');
    const text = JSON.stringify(out);
    for (const leak of ['secretKey', 'processID', 'hunter2', 'connectionParameters']) expect(text).not.toContain(leak);
  });

  it('keeps plain data nested in an error, drops class instances at any depth, and leaves the error untouched', () => {
    const err = Object.assign(new Error('boom'), {
      detail: { table: 'messages', ids: [1, 2], at: new Date(0), nested: { socket: new Writable() } },
      buffer: Buffer.from('x'),
    });
    const out = serializeError(err) as Record<string, unknown>;
    expect(out.detail).toEqual({ table: 'messages', ids: [1, 2], at: new Date(0), nested: {} });
    expect(out).not.toHaveProperty('buffer');
    expect((err.detail.nested as { socket?: unknown }).socket).toBeInstanceOf(Writable);
  });

  it('serializes a cause chain and passes non-errors through as data', () => {
    const out = serializeError(new Error('outer', { cause: idleClientError() })) as Record<string, unknown>;
    expect(out.message).toContain('outer');
    expect(out.message).toContain('terminating connection');
    expect(JSON.stringify(out)).not.toContain('secretKey');
    expect(serializeError('plain text')).toBe('plain text');
    expect(serializeError({ code: 'X', client: new pg.Client() })).toEqual({ code: 'X' });
  });
});

describe('createLogger', () => {
  it('logs pool errors without the pg client, under err or any other key', () => {
    const { log, lines } = memoryLogger();
    log.warn({ err: idleClientError() }, 'idle client failed');
    log.warn({ client: new pg.Client(), pool: { client: new pg.Client(), size: 3 } }, 'state');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: 'warn', msg: 'idle client failed', err: { code: '57P01' } });
    expect(lines[1]).toMatchObject({ msg: 'state', pool: { size: 3 } });
    expect(lines[1]).not.toHaveProperty('client');
    const text = JSON.stringify(lines);
    for (const leak of ['"client"', 'secretKey', 'processID', 'hunter2']) expect(text).not.toContain(leak);
  });
});
