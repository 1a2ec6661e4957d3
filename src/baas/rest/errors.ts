/**
 * Errors of the REST API with PostgREST's status codes and bodies (spec baas-api.md §1.6; texts as in PostgREST's
 * Error.hs). A body always carries the four keys `code`, `message`, `details`, `hint`.
 */

export interface RestErrorBody {
  code: string;
  message: string;
  details: string | null | unknown[];
  hint: string | null;
}

export type RangeErrorKind =
  | { kind: 'negative-limit' }
  | { kind: 'lower-gt-upper' }
  | { kind: 'out-of-bounds'; lower: string; total: string };

export class RestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: string | null | unknown[] = null,
    readonly hint: string | null = null,
  ) {
    super(message);
    this.name = 'RestError';
  }

  body(): RestErrorBody {
    return { code: this.code, message: this.message, details: this.details, hint: this.hint };
  }

  /** PGRST100: a query parameter that does not parse (message carries the position). */
  static queryParam(message: string, details: string): RestError {
    return new RestError(400, 'PGRST100', message, details);
  }

  static invalidRpcMethod(method: string): RestError {
    return new RestError(405, 'PGRST101', `Cannot use the ${method} method on RPC`);
  }

  static invalidBody(message: string): RestError {
    return new RestError(400, 'PGRST102', message);
  }

  static invalidRange(range: RangeErrorKind): RestError {
    const details =
      range.kind === 'negative-limit'
        ? 'Limit should be greater than or equal to zero.'
        : range.kind === 'lower-gt-upper'
          ? 'The lower boundary must be lower than or equal to the upper boundary in the Range header.'
          : `An offset of ${range.lower} was requested, but there are only ${range.total} rows.`;
    return new RestError(416, 'PGRST103', 'Requested range not satisfiable', details);
  }

  static unacceptableSchema(schema: string, exposed: readonly string[]): RestError {
    return new RestError(406, 'PGRST106', `Invalid schema: ${schema}`, null, `Only the following schemas are exposed: ${exposed.join(', ')}`);
  }

  static mediaType(accepted: readonly string[]): RestError {
    return new RestError(406, 'PGRST107', `None of these media types are available: ${accepted.join(', ')}`);
  }

  static notEmbedded(resource: string): RestError {
    return new RestError(
      400,
      'PGRST108',
      `'${resource}' is not an embedded resource in this request`,
      null,
      `Verify that '${resource}' is included in the 'select' query parameter.`,
    );
  }

  static singularity(rows: number | bigint): RestError {
    return new RestError(406, 'PGRST116', 'Cannot coerce the result to a single JSON object', `The result contains ${rows} rows`);
  }

  static unsupportedMethod(method: string): RestError {
    return new RestError(405, 'PGRST117', `Unsupported HTTP method: ${method}`);
  }

  static spreadNotToOne(origin: string, target: string): RestError {
    return new RestError(
      400,
      'PGRST119',
      `A spread operation on '${target}' is not possible`,
      `'${origin}' and '${target}' do not form a many-to-one or one-to-one relationship`,
    );
  }

  static relatedOrderNotToOne(origin: string, target: string): RestError {
    return new RestError(
      400,
      'PGRST118',
      `A related order on '${target}' is not possible`,
      `'${origin}' and '${target}' do not form a many-to-one or one-to-one relationship`,
    );
  }

  static invalidPreferences(prefs: readonly string[]): RestError {
    return new RestError(400, 'PGRST122', 'Invalid preferences given with handling=strict', `Invalid preferences: ${prefs.join(', ')}`);
  }

  static aggregatesNotAllowed(): RestError {
    return new RestError(400, 'PGRST123', 'Use of aggregate functions is not allowed');
  }

  static notImplemented(details: string): RestError {
    return new RestError(400, 'PGRST127', 'Feature not implemented', details);
  }

  static noRelationship(parent: string, child: string, hint: string | undefined, schema: string): RestError {
    return new RestError(
      400,
      'PGRST200',
      `Could not find a relationship between '${parent}' and '${child}' in the schema cache`,
      `Searched for a foreign key relationship between '${parent}' and '${child}${hint !== undefined ? `' using the hint '${hint}` : ''}' in the schema '${schema}', but no matches were found.`,
    );
  }

  static ambiguousRelationship(parent: string, child: string, details: unknown[], hintTargets: string[]): RestError {
    return new RestError(
      300,
      'PGRST201',
      `Could not embed because more than one relationship was found for '${parent}' and '${child}'`,
      details,
      `Try changing '${child}' to one of the following: ${hintTargets.join(', ')}. Find the desired relationship in the 'details' key.`,
    );
  }

  static noFunction(schema: string, name: string, argumentKeys: readonly string[]): RestError {
    const params = argumentKeys.length === 0 ? ' without parameters' : `(${argumentKeys.join(', ')})`;
    const detailParams =
      argumentKeys.length === 0
        ? ' without parameters'
        : ` with parameter${argumentKeys.length > 1 ? 's' : ''} ${argumentKeys.join(', ')}`;
    return new RestError(
      404,
      'PGRST202',
      `Could not find the function ${schema}.${name}${params} in the schema cache`,
      `Searched for the function ${schema}.${name}${detailParams}, but no matches were found in the schema cache.`,
    );
  }

  static ambiguousFunction(candidates: string[]): RestError {
    return new RestError(
      300,
      'PGRST203',
      `Could not choose the best candidate function between: ${candidates.join(', ')}`,
      null,
      'Try renaming the parameters or the function itself in the database so function overloading can be resolved',
    );
  }

  static columnNotFound(relation: string, column: string): RestError {
    return new RestError(400, 'PGRST204', `Could not find the '${column}' column of '${relation}' in the schema cache`);
  }

  static tableNotFound(schema: string, table: string): RestError {
    return new RestError(404, 'PGRST205', `Could not find the table '${schema}.${table}' in the schema cache`);
  }

  /** What Postgres answers for an unknown column reference (`column t.c does not exist`). */
  static undefinedColumn(qualifier: string | null, column: string): RestError {
    const message = qualifier === null ? `column "${column}" does not exist` : `column ${qualifier}.${column} does not exist`;
    return new RestError(400, '42703', message);
  }

  /** What Postgres answers for an unknown type in a cast. */
  static undefinedType(type: string): RestError {
    return new RestError(400, '42704', `type "${type}" does not exist`);
  }
}

/**
 * HTTP status of a Postgres error (PostgREST's mapping, §1.6). `authenticated`: the request carried a user JWT
 * (42501 is 403 then, 401 as anon). `message` matters for a few codes, as upstream.
 */
export function statusForPostgresError(code: string, message: string, authenticated: boolean): number {
  switch (code) {
    case '23503':
    case '23505':
      return 409;
    case '25006':
      return 405;
    case '21000':
      return message.endsWith('requires a WHERE clause') ? 400 : 500;
    case '22023':
      return message.startsWith('role') && message.endsWith('does not exist') ? 401 : 400;
    case '53400':
      return 500;
    case '57P01':
      return 503;
    case 'P0001':
      return 400;
    case '42883':
      return message.startsWith('function xmlagg(') ? 406 : 404;
    case '42P01':
      return 404;
    case '42P17':
      return 500;
    case '42501':
      return authenticated ? 403 : 401;
  }
  const cls = code.slice(0, 2);
  const byClass: Record<string, number> = {
    '08': 503, '09': 500, '0L': 403, '0P': 403, '25': 500, '28': 403, '2D': 500, '38': 500, '39': 500, '3B': 500,
    '40': 500, '53': 503, '54': 500, '55': 500, '57': 500, '58': 500, F0: 500, HV: 500, P0: 500, XX: 500,
  };
  if (cls in byClass) return byClass[cls];
  if (cls === 'PT') {
    const n = Number(code.slice(2));
    return Number.isInteger(n) && /^\d+$/.test(code.slice(2)) && n >= 100 && n <= 999 ? n : 500;
  }
  return 400;
}
