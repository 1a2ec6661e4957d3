import { RestError } from '../errors.js';

/** The abort a grammar throws when nesting goes over a bound (caught by the query-parameter parser). */
export class NestingTooDeep extends Error {
  constructor(readonly restError: RestError) {
    super(restError.message);
  }
}

export function nestingTooDeep(what: 'select' | 'logic', bound: number): NestingTooDeep {
  const subject = what === 'select' ? 'Embedded resources in select' : 'Conditions in or/and';
  return new NestingTooDeep(
    RestError.queryParam('Nesting too deep', `${subject} nest more than ${bound} levels deep; the limit is ${bound}.`),
  );
}
