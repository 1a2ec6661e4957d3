/**
 * What a deploy request's body becomes before it is stored: a WebAssembly module as it is (checked for the magic
 * number only; whether it compiles is the invocation's 503 BOOT_ERROR, as upstream reports a function that fails
 * to start), or JavaScript/TypeScript turned into one CommonJS script by esbuild: types stripped, `export default`
 * made `module.exports.default`, so the WebAssembly JS engine runs it without a module loader. esbuild does this in
 * one call and is already installed (tsx uses it); TypeScript 7's compiler has no JavaScript API to call.
 */
import { createHash } from 'node:crypto';
import { transform } from 'esbuild';
import type { FunctionKind } from './store.js';

/** Function names as the Supabase CLI allows them: a letter, then letters, digits, `-` and `_`. */
const NAME = /^[A-Za-z][A-Za-z0-9_-]{0,127}$/;

export function validFunctionName(name: string): boolean {
  return NAME.test(name);
}

export interface PreparedCode {
  kind: FunctionKind;
  sourceType: string;
  code: Buffer;
  sha256: string;
}

export class DeployRefusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const WASM_MAGIC = Buffer.from([0x00, 0x61, 0x73, 0x6d]);

/** The media type of a Content-Type header, lower-cased, without parameters. */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0].trim().toLowerCase();
}

export async function prepareCode(contentType: string | undefined, body: Buffer): Promise<PreparedCode> {
  const type = mediaType(contentType);
  const sha256 = createHash('sha256').update(body).digest('hex');
  if (type === 'application/wasm') {
    if (body.length < 8 || !body.subarray(0, 4).equals(WASM_MAGIC)) throw new DeployRefusal(400, 'the body is not a WebAssembly module');
    return { kind: 'wasm', sourceType: type, code: body, sha256 };
  }
  const loader = type === 'application/typescript' || type === 'text/typescript' ? 'ts' : type === 'application/javascript' || type === 'text/javascript' ? 'js' : null;
  if (loader === null) {
    throw new DeployRefusal(415, 'Content-Type must be application/wasm, application/javascript or application/typescript');
  }
  const source = body.toString('utf8');
  try {
    const out = await transform(source, { loader, format: 'cjs', target: 'es2020', sourcefile: loader === 'ts' ? 'index.ts' : 'index.js', logLevel: 'silent' });
    return { kind: 'js', sourceType: type, code: Buffer.from(out.code, 'utf8'), sha256 };
  } catch (err) {
    const first = (err as { errors?: { text: string; location?: { line: number; column: number } | null }[] }).errors?.[0];
    const where = first?.location ? ` (line ${first.location.line}, column ${first.location.column})` : '';
    throw new DeployRefusal(400, `the source does not compile: ${first?.text ?? 'syntax error'}${where}`);
  }
}
