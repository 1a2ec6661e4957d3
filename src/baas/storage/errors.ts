/**
 * Supabase Storage's error bodies (spec baas-api.md §4.6; upstream src/internal/errors/codes.ts): the real status
 * travels in the body as a string `statusCode`, and the HTTP status is 400 for every client error (500 stays 500),
 * except where upstream sets another on purpose. storage-js reads `statusCode`, `code`, `error` and `message`.
 */
export class StorageError extends Error {
  constructor(
    /** The status upstream reports in the body. */
    readonly statusCode: number,
    readonly code: string,
    readonly error: string,
    message: string,
    /** The HTTP status; 400 for client errors unless upstream says otherwise. */
    readonly httpStatus = statusCode >= 500 ? statusCode : 400,
  ) {
    super(message);
  }

  body(): Record<string, string> {
    return { statusCode: String(this.statusCode), code: this.code, error: this.error, message: this.message };
  }
}

export const errors = {
  noSuchBucket: () => new StorageError(404, 'NoSuchBucket', 'Bucket not found', 'Bucket not found'),
  noSuchKey: () => new StorageError(404, 'NoSuchKey', 'not_found', 'Object not found'),
  keyExists: () => new StorageError(409, 'KeyAlreadyExists', 'Duplicate', 'The resource already exists'),
  bucketExists: () => new StorageError(409, 'BucketAlreadyExists', 'Duplicate', 'The resource already exists'),
  bucketNotEmpty: () => new StorageError(409, 'ResourceNotEmpty', 'ResourceNotEmpty', 'The bucket you tried to delete is not empty'),
  accessDenied: (message = 'Access denied', httpStatus?: number) => new StorageError(403, 'AccessDenied', 'Unauthorized', message, httpStatus),
  entityTooLarge: () => new StorageError(413, 'EntityTooLarge', 'Payload too large', 'The object exceeded the maximum allowed size'),
  invalidMimeType: (mime: string) => new StorageError(415, 'InvalidMimeType', 'invalid_mime_type', `mime type ${mime} is not supported`),
  invalidKey: (key: string) => new StorageError(400, 'InvalidKey', 'InvalidKey', `Invalid key: ${key}`),
  invalidBucketName: () => new StorageError(400, 'InvalidBucketName', 'Invalid Input', 'Bucket name invalid'),
  invalidRequest: (message: string) => new StorageError(400, 'InvalidRequest', 'InvalidRequest', message),
  missingParameter: (name: string) => new StorageError(400, 'MissingParameter', 'MissingParameter', `Missing Required Parameter ${name}`),
  invalidJwt: (message: string) => new StorageError(400, 'InvalidJWT', 'InvalidJWT', message),
  invalidSignature: (message = 'Invalid signature') => new StorageError(400, 'InvalidSignature', 'InvalidSignature', message),
  expiredToken: () => new StorageError(400, 'ExpiredToken', 'ExpiredToken', 'The provided token has expired.'),
  invalidRange: () => new StorageError(400, 'InvalidRange', 'invalid_range', 'invalid range provided', 416),
  noContent: () => new StorageError(400, 'InvalidRequest', 'InvalidRequest', 'No content provided'),
  notFound: () => new StorageError(404, 'NotFound', 'Not Found', 'Route not found', 404),
  internal: () => new StorageError(500, 'InternalError', 'Internal', 'Internal Server Error'),
  slowDown: () => new StorageError(429, 'SlowDown', 'too_many_connections', 'Too many connections issued to the database', 429),
};

interface PgErrorLike {
  code?: unknown;
  message?: unknown;
  severity?: unknown;
}

export function isDatabaseError(err: unknown): err is PgErrorLike & Error {
  return err instanceof Error && 'severity' in err && typeof (err as PgErrorLike).code === 'string';
}

/** Upstream's DBError.fromDBError: what a failed statement means to the caller. */
export function fromDatabaseError(err: PgErrorLike & Error, duplicate: () => StorageError = errors.keyExists): StorageError {
  switch (err.code) {
    case '42501':
      return errors.accessDenied(err.message.includes('row-level security') ? 'new row violates row-level security policy' : err.message);
    case '23505':
      return duplicate();
    case '23503':
      return new StorageError(404, 'InvalidRequest', 'InvalidRequest', 'The related resource does not exist');
    case '22P02':
      return new StorageError(400, 'InvalidParameter', 'InvalidParameter', 'Invalid Parameter value');
    case '57014':
      return new StorageError(544, 'DatabaseTimeout', 'DatabaseTimeout', 'The connection to the database timed out', 544);
    case '22023':
      // SET ROLE to a role the database does not have: the token's role claim is not one of the API roles.
      return errors.accessDenied(err.message);
    default:
      return errors.internal();
  }
}
