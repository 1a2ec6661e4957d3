import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { TEST_SECRET, waitForEvent } from './server.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');

/** Performer as its own process (src/main.ts), so a test can SIGKILL it and start it again on the same port. */
export async function startPerformerProcess(port: number, databaseUrl: string, dataDir: string, env: Record<string, string> = {}): Promise<ChildProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: repoRoot,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl,
      JWT_SECRET: TEST_SECRET,
      DB_ENC_KEY: 'restart-test-encryption-key-0123',
      PERFORMER_DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      CHANGES_GRACE_MS: '30000',
      TENANT_MAX_EVENTS_PER_SECOND: '1000000',
      TENANT_MAX_BYTES_PER_SECOND: '1000000000',
      ...env,
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

/** SIGKILL, and wait until the process is gone. */
export async function killHard(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGKILL');
  await exited;
}
