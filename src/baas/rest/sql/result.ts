/**
 * Putting a REST response body together from the rows of its statement (sql/statement.ts), without parsing them:
 * Postgres built each piece of text; here only the framing is added (`[`, `,`, `]` of a JSON array, the CSV header
 * and line breaks). Pure, so the HTTP layer can stream the pieces and the SQL tests can join them.
 */

export type BodyShape = 'array' | 'first' | 'csv' | 'none';

/**
 * `whole`: one row whose body column is the whole body. `rows`: one row per result row (or a single row with a
 * NULL body when there are none), its body column that row's JSON or CSV line.
 */
export type ResultLayout = { kind: 'whole'; shape: BodyShape } | { kind: 'rows'; shape: BodyShape; csvHeader: string };

/** The first row's metadata columns, as text (the statement's column order). */
export interface ResultMeta {
  total: string | null;
  page: string;
  inserted: number | null;
  location: string[];
}

/** Column positions in every statement's result. */
export const COLUMN = { total: 0, page: 1, inserted: 2, location: 3, body: 4 } as const;

export type ResultFields = ReadonlyArray<string | null>;

export function metaOf(fields: ResultFields): ResultMeta {
  const inserted = fields[COLUMN.inserted];
  const location = fields[COLUMN.location];
  return {
    total: fields[COLUMN.total] ?? null,
    page: fields[COLUMN.page] ?? '0',
    inserted: inserted === null || inserted === undefined ? null : Number(inserted),
    location: location && location !== '[]' ? (JSON.parse(location) as string[]) : [],
  };
}

/**
 * Turns result rows into body pieces, in order: `opening()` once the first row is known, `piece(fields)` per row
 * (including the first), `closing()` after the last. Pieces may be empty strings.
 */
export class BodyAssembler {
  private rows = 0;
  private lines = 0;
  private readonly empty: boolean;

  constructor(
    private readonly layout: ResultLayout,
    meta: ResultMeta,
  ) {
    this.empty = meta.page === '0';
  }

  opening(): string {
    if (this.layout.kind === 'whole') return '';
    switch (this.layout.shape) {
      case 'array':
        return '[';
      case 'csv':
        // As PostgREST: no header line for no rows, the line break either way.
        return this.empty ? '\n' : `${this.layout.csvHeader}\n`;
      default:
        return '';
    }
  }

  piece(fields: ResultFields): string {
    const body = fields[COLUMN.body] ?? null;
    if (this.layout.kind === 'whole') return this.rows++ === 0 ? (body ?? '') : '';
    if (this.empty) return '';
    const n = this.rows++;
    switch (this.layout.shape) {
      case 'array':
        return n === 0 ? (body ?? 'null') : `,${body ?? 'null'}`;
      case 'first':
        return n === 0 ? (body ?? 'null') : '';
      case 'csv':
        return body === null ? '' : this.lines++ === 0 ? body : `\n${body}`;
      case 'none':
        return '';
    }
  }

  closing(): string {
    if (this.layout.kind === 'whole') return '';
    if (this.layout.shape === 'array') return ']';
    if (this.layout.shape === 'first' && (this.empty || this.rows === 0)) return 'null';
    return '';
  }
}

/** The whole body of `rows` (tests, and answers small enough to send at once). */
export function assembleBody(layout: ResultLayout, rows: readonly ResultFields[]): { meta: ResultMeta; body: string } {
  const meta = rows.length > 0 ? metaOf(rows[0]) : { total: null, page: '0', inserted: null, location: [] };
  const assembler = new BodyAssembler(layout, meta);
  let body = assembler.opening();
  for (const row of rows) body += assembler.piece(row);
  return { meta, body: body + assembler.closing() };
}
