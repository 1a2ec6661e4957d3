import { packageInfo } from './version.js';

/** What the command line asks for: run the server, or print something and exit without starting anything. */
export type CliAction = { kind: 'run' } | { kind: 'print'; exitCode: number; stdout: string; stderr: string };

export function usage(): string {
  return `${packageInfo.name} ${packageInfo.version}: ${packageInfo.description}

Usage: node dist/main.js [--help | --version]      (npm start builds, then runs this)

Starts the server. Without DATABASE_URL it starts an embedded PostgreSQL whose data lives in
PERFORMER_DATA_DIR (default .performer). Settings come from environment variables, among them:
  PORT           HTTP and WebSocket port (default 4000)
  HOST           listen address (default 127.0.0.1 while JWT_SECRET is the demo secret, else 0.0.0.0)
  DATABASE_URL   the default tenant's Postgres (default: the embedded one)
  JWT_SECRET     HS256 secret of client tokens (default: the public demo secret)
  LOG_LEVEL      fatal, error, warn, info, debug, trace or silent (default info)
README.md lists every variable.

Options:
  -h, --help     print this help and exit
  -v, --version  print the version and exit
`;
}

export function parseArgs(args: readonly string[]): CliAction {
  if (args.length === 0) return { kind: 'run' };
  if (args.length === 1 && (args[0] === '--help' || args[0] === '-h')) {
    return { kind: 'print', exitCode: 0, stdout: usage(), stderr: '' };
  }
  if (args.length === 1 && (args[0] === '--version' || args[0] === '-v')) {
    return { kind: 'print', exitCode: 0, stdout: `${packageInfo.name} ${packageInfo.version}\n`, stderr: '' };
  }
  return { kind: 'print', exitCode: 1, stdout: '', stderr: `Unknown arguments: ${args.join(' ')}\n\n${usage()}` };
}
