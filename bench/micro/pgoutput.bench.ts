import { bench, describe } from 'vitest';
import { createPgoutputContext, decodePgoutput, type TupleData } from '../../src/replication/pgoutput/index.js';
import { buildPreparedChangeData, createRowPlan, formatCommitTimestamp, prepareView, renderTuple } from '../../src/replication/changes/index.js';
import { COLUMNS, insertMessage, relationMessage, rowValues } from './pgoutput.js';

// The per-change path of Postgres Changes before the fan-out: decode the Insert, render the tuple, build `data`.

const ctx = createPgoutputContext(1);
decodePgoutput(relationMessage(), ctx);
const inserts = Array.from({ length: 100 }, (_, i) => insertMessage(rowValues(i + 1)));
const plan = createRowPlan(COLUMNS);
const view = prepareView(plan);
const tuple = (decodePgoutput(inserts[0]!, ctx) as { new: TupleData }).new;
const record = renderTuple(plan, tuple);
const commitTimestamp = formatCommitTimestamp(818_218_800_123_456n);

describe('pgoutput', () => {
  bench('decode 100 Insert messages', () => {
    for (const m of inserts) decodePgoutput(m, ctx);
  });

  bench('render 1 tuple (4 columns)', () => {
    renderTuple(plan, tuple);
  });

  bench('build the data object of 1 INSERT', () => {
    buildPreparedChangeData({ type: 'INSERT', schema: 'public', table: 'bench', commitTimestamp, plan, record }, view);
  });
});
