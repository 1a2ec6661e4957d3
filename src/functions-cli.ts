/**
 * The `performer` command line (package.json `bin`), first verb: `performer functions deploy <name> <file>`, which
 * sends a WebAssembly module, or a JavaScript/TypeScript source compiled on the way with esbuild (syntax errors
 * show here, before anything is sent), to a Performer's management API. Pure apart from `run`'s I/O.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parseArgs as parseNodeArgs } from 'node:util';
import { transform } from 'esbuild';
import { signManagementToken } from './auth/management.js';
import { packageInfo } from './version.js';

export function functionsUsage(): string {
  return `Usage: performer functions deploy <name> <file> [options]

Deploys <file> as function <name>: a .wasm WASI command module (WAGI convention), or a .js/.mjs/.ts/.mts
source exporting default { fetch(request, env) } (TypeScript is compiled on the way).

Options:
  --url <url>        the Performer (default $PERFORMER_URL, else http://127.0.0.1:4000)
  --tenant <id>      the tenant (default $PERFORMER_TENANT, else realtime-dev)
  --token <jwt>      a management API token (default $PERFORMER_TOKEN; else one is signed with $API_JWT_SECRET)
  --no-verify-jwt    let callers in without a valid JWT (webhooks)
  -h, --help         print this help

Also: performer auth mails [--help]   the e-mails not sent for want of AUTH_SMTP_URL, with their links and codes
`;
}

export interface DeployCommand {
  name: string;
  file: string;
  url: string;
  tenant: string;
  token: string | null;
  verifyJwt: boolean;
}

export type CliCommand = { kind: 'deploy'; deploy: DeployCommand } | { kind: 'print'; exitCode: number; stdout: string; stderr: string };

export function parseCli(args: readonly string[], env: Record<string, string | undefined>): CliCommand {
  if (args.length === 1 && (args[0] === '--version' || args[0] === '-v')) return { kind: 'print', exitCode: 0, stdout: `${packageInfo.name} ${packageInfo.version}\n`, stderr: '' };
  if (args.length === 0 || args[0] === '--help' || args[0] === '-h' || (args[0] === 'functions' && (args[1] === '--help' || args[1] === '-h' || args.includes('--help')))) {
    return { kind: 'print', exitCode: args.length === 0 ? 1 : 0, stdout: args.length === 0 ? '' : functionsUsage(), stderr: args.length === 0 ? functionsUsage() : '' };
  }
  if (args[0] !== 'functions' || args[1] !== 'deploy') return { kind: 'print', exitCode: 1, stdout: '', stderr: `Unknown command: ${args.join(' ')}\n\n${functionsUsage()}` };
  let parsed;
  try {
    parsed = parseNodeArgs({
      args: args.slice(2),
      allowPositionals: true,
      options: { url: { type: 'string' }, tenant: { type: 'string' }, token: { type: 'string' }, 'no-verify-jwt': { type: 'boolean' } },
    });
  } catch (err) {
    return { kind: 'print', exitCode: 1, stdout: '', stderr: `${err instanceof Error ? err.message : String(err)}\n\n${functionsUsage()}` };
  }
  if (parsed.positionals.length !== 2) return { kind: 'print', exitCode: 1, stdout: '', stderr: `deploy takes a name and a file\n\n${functionsUsage()}` };
  const [name, file] = parsed.positionals;
  return {
    kind: 'deploy',
    deploy: {
      name,
      file,
      url: (parsed.values.url ?? (env.PERFORMER_URL || 'http://127.0.0.1:4000')).replace(/\/+$/, ''),
      tenant: parsed.values.tenant ?? (env.PERFORMER_TENANT || 'realtime-dev'),
      token: parsed.values.token ?? (env.PERFORMER_TOKEN || null),
      verifyJwt: parsed.values['no-verify-jwt'] !== true,
    },
  };
}

/** The body and Content-Type for a file, by its extension. */
export async function bodyFor(file: string, bytes: Buffer): Promise<{ body: Buffer; contentType: string }> {
  const ext = extname(file).toLowerCase();
  if (ext === '.wasm') return { body: bytes, contentType: 'application/wasm' };
  if (ext === '.ts' || ext === '.mts' || ext === '.js' || ext === '.mjs') {
    const out = await transform(bytes.toString('utf8'), { loader: ext.endsWith('ts') ? 'ts' : 'js', format: 'esm', target: 'es2020', sourcefile: file, logLevel: 'silent' });
    return { body: Buffer.from(out.code), contentType: 'application/javascript' };
  }
  throw new Error(`${file}: a function is a .wasm module or a .js/.mjs/.ts/.mts source`);
}

/** Runs a deploy; resolves to the exit code, having written what happened to `out`/`err`. */
export async function runDeploy(command: DeployCommand, env: Record<string, string | undefined>, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const token = command.token ?? (env.API_JWT_SECRET ? await signManagementToken(env.API_JWT_SECRET) : null);
  if (token === null) {
    err('No management token: pass --token, or set PERFORMER_TOKEN or API_JWT_SECRET\n');
    return 1;
  }
  let prepared;
  try {
    prepared = await bodyFor(command.file, await readFile(command.file));
  } catch (e) {
    const first = (e as { errors?: { text: string; location?: { line: number; column: number } | null }[] }).errors?.[0];
    err(`${first ? `${command.file}:${first.location?.line ?? 0}:${first.location?.column ?? 0}: ${first.text}` : e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  const target = `${command.url}/api/tenants/${encodeURIComponent(command.tenant)}/functions/${encodeURIComponent(command.name)}?verify_jwt=${command.verifyJwt}`;
  const res = await fetch(target, { method: 'PUT', body: prepared.body, headers: { authorization: `Bearer ${token}`, 'content-type': prepared.contentType } });
  const text = await res.text();
  if (!res.ok) {
    err(`Deploy failed: ${res.status}${text ? ` ${text}` : res.status === 403 ? ' (the token is not a management token)' : ''}\n`);
    return 1;
  }
  const result = JSON.parse(text) as { name: string; version: number; verify_jwt: boolean };
  out(`Deployed ${result.name} version ${result.version} (verify_jwt=${result.verify_jwt}) to ${command.url}/functions/v1/${result.name}\n`);
  return 0;
}
