/**
 * Builds the example functions: echo-wasi/echo.wat into echo-wasi/echo.wasm with wabt. hello-ts/index.ts needs no
 * build step (`performer functions deploy` compiles TypeScript on the way). `npm test` builds and runs both.
 */
import { writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import wabt from 'wabt';

export const EXAMPLES_DIR = new URL('./', import.meta.url);

export async function buildExamples(): Promise<string[]> {
  const toolkit = await wabt();
  const source = new URL('./echo-wasi/echo.wat', EXAMPLES_DIR);
  const parsed = toolkit.parseWat('echo.wat', readFileSync(source, 'utf8'));
  try {
    const target = new URL('./echo-wasi/echo.wasm', EXAMPLES_DIR);
    await writeFile(target, parsed.toBinary({}).buffer);
    return [target.pathname];
  } finally {
    parsed.destroy();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const file of await buildExamples()) process.stdout.write(`built ${file}\n`);
}
