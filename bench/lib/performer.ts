import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type * as Jwt from '../../src/auth/jwt.js';
import type * as Config from '../../src/config/index.js';
import type * as Server from '../../src/server.js';
import type { Args } from './args.js';
import { Child } from './child.js';
import { repoRoot } from './paths.js';

/**
 * Benches run Performer as `npm start` does: its tsc build in dist/, not src/ through tsx (whose keepNames transform
 * wraps every closure created on a hot path in Object.defineProperty), with the node flags of the start script.
 * BENCH_PERFORMER_FROM_SRC=1 runs src/ instead. `--compare=<rev>` adds Performer as it was at another git revision,
 * built into a directory of its own, as a second system measured in the same run ("performer@<rev>").
 */

const fromSrc = process.env.BENCH_PERFORMER_FROM_SRC === '1';

/** One Performer to measure: this tree, or the build of another revision. */
export interface PerformerBuild {
  /** `performer`, or `performer@<rev>`. */
  label: string;
  /** Its dist/ directory; null for this tree (dist/, or src/ with BENCH_PERFORMER_FROM_SRC=1). */
  dist: string | null;
  /** Node flags of its `npm start`. */
  flags: string[];
}

/** Runs `cmd` in `cwd`, output passed through; throws when it fails. */
function run(cmd: string, args: string[], cwd: string): void {
  const r = spawnSync(cmd, args, { cwd, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (in ${cwd})`);
}

/** The node flags between `node` and the script in a package.json's start script (as `npm start` runs it). */
export function startFlags(packageJsonText = readFileSync(path.join(repoRoot, 'package.json'), 'utf8')): string[] {
  const start = (JSON.parse(packageJsonText) as { scripts?: { start?: string } }).scripts?.start ?? '';
  const words = start.split(/\s+/).filter(Boolean);
  const node = words.indexOf('node');
  const flags: string[] = [];
  for (const w of node === -1 ? [] : words.slice(node + 1)) {
    if (!w.startsWith('-')) break;
    flags.push(w);
  }
  return flags;
}

/**
 * This tree's Performer, built (unless it runs from src/). BENCH_NODE_FLAGS replaces its start flags (e.g. "" to
 * measure what a flag costs).
 */
export function buildPerformer(): PerformerBuild {
  if (!fromSrc) run('npm', ['run', '--silent', 'build'], repoRoot);
  const override = process.env.BENCH_NODE_FLAGS;
  return { label: 'performer', dist: null, flags: override !== undefined ? override.split(/\s+/).filter(Boolean) : startFlags() };
}

/**
 * Performer at git revision `rev`: a `git worktree add` of it is built (`npm run build`, with this tree's
 * node_modules when the lock files agree, else `npm ci`), and its dist/, package.json and node_modules are kept in
 * os.tmpdir()/performer-bench-at-<commit> for the next run; the worktree is removed.
 */
export function buildPerformerAt(rev: string): PerformerBuild {
  const git = spawnSync('git', ['rev-parse', '--verify', `${rev}^{commit}`], { cwd: repoRoot, encoding: 'utf8' });
  if (git.status !== 0) throw new Error(`--compare: ${rev} is not a commit here`);
  const commit = git.stdout.trim();
  const label = `performer@${rev}`;
  const dir = path.join(os.tmpdir(), `performer-bench-at-${commit.slice(0, 12)}`);
  const flags = () => startFlags(readFileSync(path.join(dir, 'package.json'), 'utf8'));
  // A kept build whose node_modules link points into a checkout since removed (another worktree's) is built again
  // (existsSync follows the link, so a dangling one reads as absent).
  if (existsSync(path.join(dir, 'dist', 'server.js')) && existsSync(path.join(dir, 'node_modules'))) {
    return { label, dist: path.join(dir, 'dist'), flags: flags() };
  }
  const tree = mkdtempSync(path.join(os.tmpdir(), 'performer-bench-tree-'));
  rmSync(tree, { recursive: true });
  run('git', ['worktree', 'add', '--detach', tree, commit], repoRoot);
  try {
    const lock = (root: string) => readFileSync(path.join(root, 'package-lock.json'), 'utf8');
    const sameDeps = lock(tree) === lock(repoRoot);
    if (sameDeps) symlinkSync(path.join(repoRoot, 'node_modules'), path.join(tree, 'node_modules'));
    else run('npm', ['ci', '--no-audit', '--no-fund'], tree);
    run('npm', ['run', '--silent', 'build'], tree);
    rmSync(dir, { recursive: true, force: true });
    cpSync(path.join(tree, 'dist'), path.join(dir, 'dist'), { recursive: true });
    cpSync(path.join(tree, 'package.json'), path.join(dir, 'package.json'));
    if (sameDeps) symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
    else renameSync(path.join(tree, 'node_modules'), path.join(dir, 'node_modules'));
  } finally {
    spawnSync('git', ['worktree', 'remove', '--force', tree], { cwd: repoRoot, stdio: 'inherit' });
  }
  return { label, dist: path.join(dir, 'dist'), flags: flags() };
}

/** This tree's Performer, and with `--compare=<rev>` (or `--before=<rev>`) the one of that revision too. */
export function performerBuilds(args: Args): PerformerBuild[] {
  const rev = args.option('compare') ?? args.option('before');
  const builds = [buildPerformer()];
  if (rev) builds.push(buildPerformerAt(rev));
  for (const b of builds) console.log(`${b.label}: ${b.dist ?? (fromSrc ? 'src/' : 'dist/')}${b.flags.length ? `, node flags ${b.flags.join(' ')}` : ''}`);
  return builds;
}

/** The modules a bench server needs, from dist/ (or src/, or BENCH_PERFORMER_DIST: the build of another revision). */
export async function loadPerformer(): Promise<{ loadConfig: typeof Config.loadConfig; startServer: typeof Server.startServer; signHs256: typeof Jwt.signHs256 }> {
  const base = process.env.BENCH_PERFORMER_DIST ?? path.join(repoRoot, fromSrc ? 'src' : 'dist');
  const { loadConfig } = (await import(`${base}/config/index.js`)) as typeof Config;
  const { startServer } = (await import(`${base}/server.js`)) as typeof Server;
  const { signHs256 } = (await import(`${base}/auth/jwt.js`)) as typeof Jwt;
  return { loadConfig, startServer, signHs256 };
}

export interface PerformerStart {
  databaseUrl: string;
  /** Its data directory's name under os.tmpdir() (one per build, so two builds never share it). */
  dataName: string;
  /** Configuration entries added to the bench defaults (performer-server.ts). */
  env?: Record<string, string>;
  /** Ready once the default tenant's replication stream is up (benches on the database's streams). */
  waitReplication?: boolean;
  /** More node flags (profilers, --expose-gc is always on). */
  execArgv?: string[];
}

/**
 * Performer in a child process of its own (so its CPU and memory are read apart from the load generator), from
 * `build`, run as plain JavaScript (see Child's `plain`). Ready with `{ port, token, startMs, replicationMs }`; serves
 * the commands of ./serve.ts.
 */
export function startPerformer(build: PerformerBuild, o: PerformerStart): Child {
  return new Child(build.label, 'bench/lib/performer-server.ts', {
    // Plain JavaScript, as `npm start` runs (src/ through tsx with BENCH_PERFORMER_FROM_SRC=1).
    plain: !fromSrc,
    execArgv: ['--expose-gc', ...build.flags, ...(o.execArgv ?? [])],
    env: {
      BENCH_DATABASE_URL: o.databaseUrl,
      BENCH_DATA_NAME: build.dist ? `${o.dataName}-${build.label.replace(/[^a-z0-9]+/gi, '-')}` : o.dataName,
      BENCH_SERVER_ENV: JSON.stringify(o.env ?? {}),
      BENCH_WAIT_REPLICATION: o.waitReplication ? '1' : '',
      ...(build.dist ? { BENCH_PERFORMER_DIST: build.dist } : {}),
    },
  });
}
