#!/usr/bin/env node
/** The `performer` executable (package.json `bin`): `performer functions deploy <name> <file>`, `performer auth mails`. */
import { parseAuthCli, runMails } from './auth-cli.js';
import { parseCli, runDeploy } from './functions-cli.js';

const args = process.argv.slice(2);
const write = { out: (s: string) => process.stdout.write(s), err: (s: string) => process.stderr.write(s) };

function finish(run: Promise<number>): void {
  run.then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

const command = args[0] === 'auth' ? parseAuthCli(args.slice(1), process.env) : parseCli(args, process.env);
if (command.kind === 'print') {
  process.stdout.write(command.stdout);
  process.stderr.write(command.stderr);
  process.exitCode = command.exitCode;
} else if (command.kind === 'mails') {
  finish(runMails(command.mails, process.env, write.out, write.err));
} else {
  finish(runDeploy(command.deploy, process.env, write.out, write.err));
}
