/**
 * Evaluates filter conditions in a process of its own, for tests that must survive a matcher that never returns:
 * reads `[{ typeOid, op, value, subject }]` as JSON on stdin, prints each condition's SQL truth value as a JSON
 * array on stdout.
 */
import { compileFilters, postgresErrorText, type FilterOp } from '../../src/replication/changes/index.js';

export interface EvaluationCase {
  typeOid: number;
  op: FilterOp;
  value: string;
  subject: string | null;
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => (input += chunk));
process.stdin.on('end', () => {
  const cases = JSON.parse(input) as EvaluationCase[];
  const results = cases.map((c) => {
    const compiled = compileFilters([{ column: 'c', op: c.op, value: c.value, negate: false }], [{ name: 'c', typeOid: c.typeOid }]);
    if (!compiled.ok) return postgresErrorText(compiled.error);
    return compiled.filters.conditions[0]!.test(c.subject);
  });
  process.stdout.write(JSON.stringify(results));
});
