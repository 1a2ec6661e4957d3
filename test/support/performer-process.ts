import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { TEST_SECRET, waitForEvent } from './server.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');

/**
 * Performer as a process of its own (`node --import tsx src/main.ts`), for tests that SIGKILL it or that must keep
 * running while its event loop is stuck. Resolves once it printed its URL; rejects with its output if it exits.
 */
export async function startPerformerProcess(opts: { port: number; databaseUrl: string; dataDir: string; env?: Record<string, string> }): Promise<ChildProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: repoRoot,
    env: {
      ...process.env,
      PORT: String(opts.port),
      HOST: '127.0.0.1',
      DATABASE_URL: opts.databaseUrl,
      JWT_SECRET: TEST_SECRET,
      DB_ENC_KEY: 'process-test-encryption-key-0123',
      PERFORMER_DATA_DIR: opts.dataDir,
      LOG_LEVEL: 'warn',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  await waitForEvent<void>((cb) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('API URL')) cb();
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    proc.on('exit', () => cb());
  }, 60_000, 'Performer to start');
  if (proc.exitCode !== null) throw new Error(`Performer exited:\n${out}`);
  return proc;
}
