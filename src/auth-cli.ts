/**
 * `performer auth mails`: prints the e-mails a Performer without AUTH_SMTP_URL did not send (newest first, with
 * their links and codes), read from the management API (`GET /api/tenants/<tenant>/auth/mails`), so a developer can
 * finish a sign-up or magic-link sign-in. Same options and token as `performer functions deploy`.
 */
import { parseArgs as parseNodeArgs } from 'node:util';
import { signManagementToken } from './auth/management.js';

export function authUsage(): string {
  return `Usage: performer auth mails [options]

Prints the last e-mails not sent for want of AUTH_SMTP_URL, newest first, with their links and codes
(kept in the node's memory: at most 50 per tenant, for an hour).

Options:
  --url <url>        the Performer (default $PERFORMER_URL, else http://127.0.0.1:4000)
  --tenant <id>      the tenant (default $PERFORMER_TENANT, else realtime-dev)
  --token <jwt>      a management API token (default $PERFORMER_TOKEN; else one is signed with $API_JWT_SECRET)
  --limit <n>        at most n mails (default 10)
  --json             print the API's JSON answer
  -h, --help         print this help
`;
}

export interface MailsCommand {
  url: string;
  tenant: string;
  token: string | null;
  limit: number;
  json: boolean;
}

export type AuthCliCommand = { kind: 'mails'; mails: MailsCommand } | { kind: 'print'; exitCode: number; stdout: string; stderr: string };

/** `args` after `auth`. */
export function parseAuthCli(args: readonly string[], env: Record<string, string | undefined>): AuthCliCommand {
  if (args.includes('--help') || args.includes('-h')) return { kind: 'print', exitCode: 0, stdout: authUsage(), stderr: '' };
  if (args[0] !== 'mails') return { kind: 'print', exitCode: 1, stdout: '', stderr: `Unknown command: auth ${args.join(' ')}\n\n${authUsage()}` };
  let parsed;
  try {
    parsed = parseNodeArgs({
      args: args.slice(1),
      allowPositionals: false,
      options: { url: { type: 'string' }, tenant: { type: 'string' }, token: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } },
    });
  } catch (err) {
    return { kind: 'print', exitCode: 1, stdout: '', stderr: `${err instanceof Error ? err.message : String(err)}\n\n${authUsage()}` };
  }
  const limit = parsed.values.limit ?? '10';
  if (!/^\d{1,3}$/.test(limit)) return { kind: 'print', exitCode: 1, stdout: '', stderr: `--limit is a number\n\n${authUsage()}` };
  return {
    kind: 'mails',
    mails: {
      url: (parsed.values.url ?? (env.PERFORMER_URL || 'http://127.0.0.1:4000')).replace(/\/+$/, ''),
      tenant: parsed.values.tenant ?? (env.PERFORMER_TENANT || 'realtime-dev'),
      token: parsed.values.token ?? (env.PERFORMER_TOKEN || null),
      limit: Number(limit),
      json: parsed.values.json === true,
    },
  };
}

interface ListedMail {
  kind: string;
  to: string;
  link: string;
  otp: string;
  created_at: string;
}

/** Reads and prints the mails; resolves to the exit code. */
export async function runMails(command: MailsCommand, env: Record<string, string | undefined>, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const token = command.token ?? (env.API_JWT_SECRET ? await signManagementToken(env.API_JWT_SECRET) : null);
  if (token === null) {
    err('No management token: pass --token, or set PERFORMER_TOKEN or API_JWT_SECRET\n');
    return 1;
  }
  const res = await fetch(`${command.url}/api/tenants/${encodeURIComponent(command.tenant)}/auth/mails?limit=${command.limit}`, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  if (!res.ok) {
    err(`Reading mails failed: ${res.status}${text ? ` ${text}` : res.status === 403 ? ' (the token is not a management token)' : ''}\n`);
    return 1;
  }
  if (command.json) {
    out(`${text}\n`);
    return 0;
  }
  const { data, smtp } = JSON.parse(text) as { data: ListedMail[]; smtp: boolean };
  if (data.length === 0) out(smtp ? 'No unsent mails (AUTH_SMTP_URL is set: mails are sent).\n' : 'No unsent mails.\n');
  for (const mail of data) out(`${mail.created_at}  ${mail.kind}  to ${mail.to}\n  code: ${mail.otp}\n  link: ${mail.link}\n`);
  return 0;
}
