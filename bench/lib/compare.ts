import { f, table } from './report.js';
import { median } from './stats.js';

/**
 * Before and after in one run (`--compare=<rev>`): the same rows measured on two Performer builds, interleaved and
 * repeated, summarised per configuration and measure as each build's median and range over the repetitions and the
 * change of the medians. Rows taken in one run share the machine's state, so the change is the closest look at what
 * a commit did; whether it is more than noise shows in the ranges.
 */
export interface Measure<R> {
  name: string;
  of: (row: R) => number;
  digits: number;
  /** Context only (e.g. outside load): no change of the medians is worked out. */
  context?: boolean;
}

export interface CompareOptions<R> {
  /** The configuration a row measures (rows of one configuration are compared). */
  config: (row: R) => string;
  system: (row: R) => string;
  /** The build measured as "after" (this tree) and "before" (the other revision). */
  after: string;
  before: string;
  measures: Measure<R>[];
}

export function compareTable<R>(rows: readonly R[], o: CompareOptions<R>): string {
  const configs = [...new Set(rows.map(o.config))];
  const out: string[][] = [];
  for (const config of configs) {
    const of = (system: string) => rows.filter((r) => o.config(r) === config && o.system(r) === system);
    const before = of(o.before);
    const after = of(o.after);
    if (before.length === 0 || after.length === 0) continue;
    for (const m of o.measures) {
      const b = before.map(m.of).filter(Number.isFinite);
      const a = after.map(m.of).filter(Number.isFinite);
      const cell = (xs: number[]) => (xs.length ? `${f(median(xs), m.digits)} (${f(Math.min(...xs), m.digits)}-${f(Math.max(...xs), m.digits)}, ${xs.length})` : '-');
      const change = (median(a) - median(b)) / median(b);
      const overlap = b.length && a.length ? Math.max(...b) >= Math.min(...a) && Math.max(...a) >= Math.min(...b) : false;
      const changed = m.context || !Number.isFinite(change) ? '-' : `${change >= 0 ? '+' : ''}${f(100 * change, 1)} %`;
      out.push([config, m.name, cell(b), cell(a), changed, m.context ? '-' : overlap ? 'yes' : 'no']);
    }
  }
  return table(['configuration', 'measure', `${o.before}: median (range, reps)`, `${o.after}: median (range, reps)`, 'after vs before (medians)', 'ranges overlap'], out);
}
