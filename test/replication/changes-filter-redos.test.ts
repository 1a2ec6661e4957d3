import { spawn } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_PATTERN_LENGTH } from '../../src/replication/changes/pattern.js';
import type { EvaluationCase } from '../support/evaluate-filters.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

// The patterns that froze the server when filters were backtracking RegExps. They are evaluated in a child process
// with a hard limit, a hang detector rather than a speed test: the current matchers finish in milliseconds, the
// backtracking ones would need longer than the age of the universe for these subjects (C(2000, 6) ways to place
// `%a%a%a%a%a%a`, 2^2000 ways to split the a's of `(a+)+`). The answers must also be Postgres' answers.

const repoRoot = path.resolve(import.meta.dirname, '../..');
const HARD_LIMIT_MS = 30_000;
const TEXT = 25;

/** Evaluates the cases in a fresh Node process; rejects when it has not answered within HARD_LIMIT_MS. */
function evaluateInChild(cases: EvaluationCase[]): Promise<Array<boolean | null | string>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/evaluate-filters.ts'], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`filter evaluation still running after ${HARD_LIMIT_MS / 1000} s: a matcher is backtracking`));
    }, HARD_LIMIT_MS);
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(JSON.parse(out) as Array<boolean | null | string>);
      else reject(new Error(`evaluator exited with ${code}: ${err}`));
    });
    child.stdin.end(JSON.stringify(cases));
  });
}

const SQL: Record<string, string> = { like: 'LIKE', ilike: 'ILIKE', match: '~', imatch: '~*' };

const as = 'a'.repeat(2000);
const PATHOLOGICAL: EvaluationCase[] = [
  { typeOid: TEXT, op: 'like', value: '%a%a%a%a%a%a%b', subject: as },
  { typeOid: TEXT, op: 'like', value: '%a%a%a%a%a%a%b', subject: `${as}b` },
  { typeOid: TEXT, op: 'ilike', value: '%A%A%A%A%A%A%B', subject: as },
  { typeOid: TEXT, op: 'like', value: '_%_%_%_%_%_%_%b', subject: as },
  // The longest pattern allowed: 500 `%a` runs.
  { typeOid: TEXT, op: 'like', value: `${'%a'.repeat(MAX_PATTERN_LENGTH / 2 - 1)}%b`, subject: 'a'.repeat(20_000) },
  { typeOid: TEXT, op: 'match', value: '(a+)+$', subject: `${as}b` },
  { typeOid: TEXT, op: 'match', value: '^(a|a)*$', subject: `${as}b` },
  { typeOid: TEXT, op: 'match', value: '^(a|aa)+$', subject: `${as}b` },
  { typeOid: TEXT, op: 'match', value: '(x+x+)+y', subject: 'x'.repeat(2000) },
  { typeOid: TEXT, op: 'match', value: '(.*a){20}$', subject: `${as}b` },
  { typeOid: TEXT, op: 'imatch', value: '^(\\w+\\s?)*$', subject: `${'ab '.repeat(700)}!` },
  { typeOid: TEXT, op: 'imatch', value: '^(\\w+\\s?)*$', subject: 'ab '.repeat(700) },
];

describe('pathological patterns (ReDoS)', () => {
  let db: TestDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase('redos');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  it('are evaluated without hanging, with the answers Postgres gives', async () => {
    const expected: boolean[] = [];
    for (const c of PATHOLOGICAL) {
      const res = await client.query<{ r: boolean }>(`SELECT $1::text ${SQL[c.op]} $2::text AS r`, [c.subject, c.value]);
      expected.push(res.rows[0]!.r);
    }
    // Both answers occur, so a matcher answering one way always would fail.
    expect(expected).toContain(true);
    expect(expected).toContain(false);
    const got = await evaluateInChild(PATHOLOGICAL);
    expect(PATHOLOGICAL.map((c, k) => ({ op: c.op, pattern: c.value, result: got[k] }))).toEqual(
      PATHOLOGICAL.map((c, k) => ({ op: c.op, pattern: c.value, result: expected[k] })),
    );
  });
});
