import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as Jwt from '../../src/auth/jwt.js';
import type * as Config from '../../src/config/index.js';
import type * as Server from '../../src/server.js';

/**
 * Benches run Performer as `npm start` does: its tsc build in dist/, not src/ through tsx (whose keepNames
 * transform wraps every closure created on a hot path in Object.defineProperty). BENCH_PERFORMER_FROM_SRC=1 runs
 * src/ instead. Each run.ts calls buildPerformer() once before starting a server process.
 */
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const fromSrc = process.env.BENCH_PERFORMER_FROM_SRC === '1';

export function buildPerformer(): void {
  if (fromSrc) return;
  const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: repoRoot, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('npm run build failed');
}

/** The modules a bench server needs, from dist/ (or src/). */
export async function loadPerformer(): Promise<{ loadConfig: typeof Config.loadConfig; startServer: typeof Server.startServer; signHs256: typeof Jwt.signHs256 }> {
  const base = fromSrc ? '../../src' : '../../dist';
  const { loadConfig } = (await import(`${base}/config/index.js`)) as typeof Config;
  const { startServer } = (await import(`${base}/server.js`)) as typeof Server;
  const { signHs256 } = (await import(`${base}/auth/jwt.js`)) as typeof Jwt;
  return { loadConfig, startServer, signHs256 };
}
