/**
 * The WAGI convention (CGI over WASI preview 1), pure: a request becomes a command module's environment (method,
 * path after the function's name, query, content type and length, each header as HTTP_<NAME>), and what the module
 * wrote to stdout becomes a response: header lines, an empty line, the body. A `Status:` header gives the status
 * (200 without one; a `Location:` alone gives 302, as CGI says).
 */

export interface GuestRequest {
  method: string;
  /** The part of the path after `/functions/v1/<name>` ('' or starting with '/'). */
  path: string;
  /** Without the '?'. */
  query: string;
  /** Lower-cased names. */
  headers: Record<string, string>;
  body: Uint8Array;
}

export interface GuestResponse {
  status: number;
  headers: [string, string][];
  body: Uint8Array;
}

/** Headers that say how the caller's hop was framed: not the function's business, and never echoed back. */
const HOP_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-connection']);

/** The environment of one WAGI invocation; `secrets` come last but never replace the request's variables. */
export function wagiEnvironment(request: GuestRequest, functionName: string, secrets: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(secrets)) env[key] = value;
  for (const [name, value] of Object.entries(request.headers)) {
    if (HOP_HEADERS.has(name) || name === 'content-type' || name === 'content-length') continue;
    env[`HTTP_${name.toUpperCase().replace(/-/g, '_')}`] = value;
  }
  Object.assign(env, {
    REQUEST_METHOD: request.method,
    SCRIPT_NAME: `/functions/v1/${functionName}`,
    PATH_INFO: request.path,
    QUERY_STRING: request.query,
    CONTENT_TYPE: request.headers['content-type'] ?? '',
    CONTENT_LENGTH: String(request.body.byteLength),
    SERVER_PROTOCOL: 'HTTP/1.1',
    GATEWAY_INTERFACE: 'CGI/1.1',
    X_FULL_URL: `/functions/v1/${functionName}${request.path}${request.query ? `?${request.query}` : ''}`,
  });
  return env;
}

export class CgiParseError extends Error {}

const CRLF_CRLF = Buffer.from('\r\n\r\n');
const LF_LF = Buffer.from('\n\n');
/** Response headers a function may not set: framing is the server's. */
const RESERVED_RESPONSE_HEADERS = new Set([...HOP_HEADERS, 'content-length', 'status']);

/** Parses a CGI response; throws CgiParseError when it has no header block or a malformed line. */
export function parseCgiOutput(output: Uint8Array): GuestResponse {
  const buffer = Buffer.from(output.buffer, output.byteOffset, output.byteLength);
  const crlf = buffer.indexOf(CRLF_CRLF);
  const lf = buffer.indexOf(LF_LF);
  let end: number;
  let separator: number;
  if (crlf !== -1 && (lf === -1 || crlf < lf)) [end, separator] = [crlf, 4];
  else if (lf !== -1) [end, separator] = [lf, 2];
  else throw new CgiParseError('the output has no header block (header lines, then an empty line)');
  const headers: [string, string][] = [];
  let status: number | null = null;
  let location = false;
  for (const line of buffer.subarray(0, end).toString('latin1').split(/\r?\n/)) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new CgiParseError(`malformed header line ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name) || /[\0\r\n]/.test(value)) throw new CgiParseError(`malformed header line ${JSON.stringify(line.slice(0, 80))}`);
    if (name === 'status') {
      const code = /^(\d{3})(?:\s.*)?$/.exec(value);
      if (!code || Number(code[1]) < 100 || Number(code[1]) > 999) throw new CgiParseError(`malformed Status ${JSON.stringify(value.slice(0, 40))}`);
      status = Number(code[1]);
      continue;
    }
    if (name === 'location') location = true;
    if (RESERVED_RESPONSE_HEADERS.has(name)) continue;
    headers.push([name, value]);
  }
  return { status: status ?? (location ? 302 : 200), headers, body: buffer.subarray(end + separator) };
}
