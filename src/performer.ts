#!/usr/bin/env node
/** The `performer` executable (package.json `bin`): `performer functions deploy <name> <file>`. */
import { parseCli, runDeploy } from './functions-cli.js';

const command = parseCli(process.argv.slice(2), process.env);
if (command.kind === 'print') {
  process.stdout.write(command.stdout);
  process.stderr.write(command.stderr);
  process.exitCode = command.exitCode;
} else {
  runDeploy(command.deploy, process.env, (s) => process.stdout.write(s), (s) => process.stderr.write(s)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
