/**
 * Postgres array literals (`{1,2,NULL}`, `{"a,b",c}`, `{{1,2},{3,4}}`, `[0:1]={1,2}`) as array_in reads them.
 * Used for array column values from pgoutput (text mode) and for `in` filter values, which upstream turns into
 * an array literal and casts to `<type>[]`.
 */
export type PgArray = Array<string | null | PgArray>;

export class ArrayLiteralError extends Error {
  override readonly name = 'ArrayLiteralError';
  constructor(input: string) {
    // Postgres' own wording (SQLSTATE 22P02), so callers can surface it as the cast error upstream would raise.
    super(`malformed array literal: "${input}"`);
  }
}

const isSpace = (c: string | undefined): boolean =>
  c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\v' || c === '\f';

/** @throws ArrayLiteralError */
export function parseArrayLiteral(input: string, delimiter = ','): PgArray {
  return new ArrayParser(input, delimiter).parse();
}

// A class rather than closures: this runs for every array column of every change.
class ArrayParser {
  private i = 0;

  constructor(
    private readonly input: string,
    private readonly delimiter: string,
  ) {}

  parse(): PgArray {
    const input = this.input;
    this.skipSpace();
    if (input[this.i] === '[') {
      // Explicit bounds (`[1:2][1:3]=`): to_jsonb and comparisons ignore them, so skip after a shape check.
      const eq = input.indexOf('=', this.i);
      if (eq < 0 || !/^(\[\s*-?\d+\s*(:\s*-?\d+\s*)?\]\s*)+$/.test(input.slice(this.i, eq))) this.fail();
      this.i = eq + 1;
      this.skipSpace();
    }
    if (input[this.i] !== '{') this.fail();
    const result = this.level();
    this.skipSpace();
    if (this.i !== input.length) this.fail();
    checkShape(result, input);
    return result;
  }

  private fail(): never {
    throw new ArrayLiteralError(this.input);
  }

  private skipSpace(): void {
    while (isSpace(this.input[this.i])) this.i++;
  }

  private level(): PgArray {
    const input = this.input;
    this.i++; // '{'
    const out: PgArray = [];
    this.skipSpace();
    if (input[this.i] === '}') {
      this.i++;
      return out;
    }
    for (;;) {
      this.skipSpace();
      const c = input[this.i];
      if (c === '{') out.push(this.level());
      else if (c === '"') out.push(this.quoted());
      else out.push(this.unquoted());
      this.skipSpace();
      const next = input[this.i];
      if (next === '}') {
        this.i++;
        return out;
      }
      if (next !== this.delimiter) this.fail();
      this.i++;
    }
  }

  private quoted(): string {
    const input = this.input;
    let i = ++this.i; // past the opening quote
    let s = '';
    let from = i;
    for (;;) {
      const c = input.charCodeAt(i);
      if (Number.isNaN(c)) this.fail();
      if (c === 0x5c) {
        if (i + 1 >= input.length) this.fail();
        s += input.slice(from, i) + input[i + 1];
        i += 2;
        from = i;
      } else if (c === 0x22) {
        this.i = i + 1;
        return s + input.slice(from, i);
      } else i++;
    }
  }

  private unquoted(): string | null {
    const input = this.input;
    let s = '';
    let escaped = false;
    // Trailing whitespace is dropped unless it was escaped; remember where the protected part ends.
    let keep = 0;
    for (;;) {
      const c = input[this.i];
      if (c === undefined || c === '{' || c === '"') this.fail();
      if (c === this.delimiter || c === '}') break;
      if (c === '\\') {
        if (this.i + 1 >= input.length) this.fail();
        s += input[this.i + 1];
        this.i += 2;
        escaped = true;
        keep = s.length;
        continue;
      }
      s += c;
      this.i++;
      if (!isSpace(c)) keep = s.length;
    }
    s = s.slice(0, keep);
    if (s === '' && !escaped) this.fail();
    if (!escaped && s.length === 4 && s.toUpperCase() === 'NULL') return null;
    return s;
  }
}

// Postgres rejects ragged arrays and scalars mixed with sub-arrays.
function checkShape(arr: PgArray, input: string): void {
  const dims: number[] = [];
  const walk = (node: PgArray, depth: number): void => {
    if (dims[depth] === undefined) dims[depth] = node.length;
    else if (dims[depth] !== node.length) throw new ArrayLiteralError(input);
    let nested: boolean | undefined;
    for (const el of node) {
      const isArr = Array.isArray(el);
      if (nested === undefined) nested = isArr;
      else if (nested !== isArr) throw new ArrayLiteralError(input);
      if (isArr) walk(el, depth + 1);
    }
    if (nested && dims.length > depth + 1 && node.length === 0) throw new ArrayLiteralError(input);
  };
  walk(arr, 0);
}

/** All leaf elements in row-major order (`= ANY` compares against these). */
export function flattenArray(arr: PgArray): Array<string | null> {
  const out: Array<string | null> = [];
  const walk = (node: PgArray): void => {
    for (const el of node) {
      if (Array.isArray(el)) walk(el);
      else out.push(el);
    }
  };
  walk(arr);
  return out;
}
