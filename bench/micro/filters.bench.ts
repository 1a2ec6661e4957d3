import { bench, describe } from 'vitest';
import { compileFilters, parseFilters, type CompiledFilters, type FilterColumn } from '../../src/replication/changes/index.js';
import { createPgoutputContext, decodePgoutput, type TupleData } from '../../src/replication/pgoutput/index.js';
import { COLUMNS, insertMessage, relationMessage, rowValues } from './pgoutput.js';

// Postgres Changes filters on a row: evaluated for every subscription of a table, on every change.

const columns: FilterColumn[] = COLUMNS.map((c) => ({ name: c.name, typeOid: c.typeOid }));
const ctx = createPgoutputContext(1);
decodePgoutput(relationMessage(), ctx);
const tuple = (decodePgoutput(insertMessage(rowValues(4242)), ctx) as { new: TupleData }).new;

function compiled(filter: string): CompiledFilters {
  const parsed = parseFilters(filter);
  if (!parsed.ok) throw new Error(parsed.reason);
  const c = compileFilters(parsed.filters, columns);
  if (!c.ok) throw new Error(c.error.message);
  // Every case matches the row, so the whole condition is evaluated.
  if (!c.filters.matchesTuple(tuple)) throw new Error(`${filter} does not match the row`);
  return c.filters;
}

const cases: [string, string][] = [
  ['id=eq.4242', 'eq on bigint'],
  ['id=in.(1,2,3,4242,5000)', 'in on bigint (5 values)'],
  ['owner=eq.6f1c7a3e-2b1d-4c55-9a0e-8d7b6c5a4f3e', 'eq on uuid'],
  ['body=like.m%x', 'like on text (100 characters)'],
  ['at=gt.2026-01-01', 'gt on timestamptz'],
];

describe('filters', () => {
  for (const [filter, name] of cases) {
    const f = compiled(filter);
    bench(`${name}: ${filter}`, () => {
      f.matchesTuple(tuple);
    });
  }

  bench('parse and compile `id=in.(1,2,3,4242,5000)`', () => {
    compiled('id=in.(1,2,3,4242,5000)');
  });
});
