import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import os from 'node:os';
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

/**
 * The node flags `npm start` runs Performer with (between `node` and the script in package.json's start script; the
 * Dockerfile's CMD passes the same, test/deploy checks it). A bench server must run with them to measure what a
 * user runs.
 */
export function startFlags(packageJsonText?: string): string[] {
  // BENCH_NODE_FLAGS replaces them (e.g. "" to measure what a flag costs); only for the current tree's Performer.
  if (packageJsonText === undefined && process.env.BENCH_NODE_FLAGS !== undefined) return process.env.BENCH_NODE_FLAGS.split(/\s+/).filter(Boolean);
  const start = (JSON.parse(packageJsonText ?? readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { scripts?: { start?: string } }).scripts?.start ?? '';
  const words = start.split(/\s+/).filter(Boolean);
  const node = words.indexOf('node');
  if (node === -1) return [];
  const flags: string[] = [];
  for (const w of words.slice(node + 1)) {
    if (!w.startsWith('-')) break;
    flags.push(w);
  }
  return flags;
}

/**
 * Builds Performer as it was at git `ref` (its src/, package.json and tsconfig files, this tree's node_modules) into
 * a temporary directory, for a bench to run the code before a change beside the code after it in the same run.
 * Returns the directory (set BENCH_PERFORMER_DIST to its dist/ for loadPerformer) and that version's start flags.
 */
export function buildPerformerAt(ref: string): { dir: string; dist: string; flags: string[] } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'performer-at-'));
  const files = ['src', 'package.json', 'tsconfig.json', 'tsconfig.build.json'];
  const archive = spawnSync('git', ['archive', '--format=tar', ref, ...files], { cwd: repoRoot, maxBuffer: 256 * 1024 * 1024 });
  if (archive.status !== 0) throw new Error(`git archive ${ref} failed: ${archive.stderr.toString()}`);
  const untar = spawnSync('tar', ['-x', '-C', dir], { input: archive.stdout });
  if (untar.status !== 0) throw new Error(`tar failed: ${untar.stderr.toString()}`);
  symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
  const build = spawnSync(path.join(repoRoot, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.build.json'], { cwd: dir, stdio: 'inherit' });
  if (build.status !== 0) throw new Error(`building ${ref} failed`);
  return { dir, dist: path.join(dir, 'dist'), flags: startFlags(readFileSync(path.join(dir, 'package.json'), 'utf8')) };
}

/** The modules a bench server needs, from dist/ (or src/, or BENCH_PERFORMER_DIST: a build of another version). */
export async function loadPerformer(): Promise<{ loadConfig: typeof Config.loadConfig; startServer: typeof Server.startServer; signHs256: typeof Jwt.signHs256 }> {
  const base = process.env.BENCH_PERFORMER_DIST ?? (fromSrc ? '../../src' : '../../dist');
  const { loadConfig } = (await import(`${base}/config/index.js`)) as typeof Config;
  const { startServer } = (await import(`${base}/server.js`)) as typeof Server;
  const { signHs256 } = (await import(`${base}/auth/jwt.js`)) as typeof Jwt;
  return { loadConfig, startServer, signHs256 };
}
