import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The import rules of .dependency-cruiser.cjs, run exactly as `npm run lint` runs them (its arguments are read from
 * package.json) over small source trees: a tree that keeps the rules passes, and each kind of break fails with its
 * rule's name. The last tests hold the real baseline of known violations to what the code still has.
 */

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');
const BASELINE = '.dependency-cruiser-known-violations.json';

/** An npm script's arguments after `depcruise`, with the config file made absolute so another directory can use it. */
async function scriptArgs(script: string): Promise<string[]> {
  const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const [command, ...args] = pkg.scripts[script].split(/\s+/);
  expect(command).toBe('depcruise');
  return args.map((arg, i) => (args[i - 1] === '--config' ? path.join(ROOT, arg) : arg));
}

interface LintRun {
  code: number;
  output: string;
}

async function depcruise(cwd: string, args: string[]): Promise<LintRun> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [CLI, ...args], { cwd });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** One file per room, each importing only down the floors: the shape the rules allow. */
const CLEAN: Record<string, string> = {
  'src/config/index.ts': `export const config = { port: 4000 };`,
  'src/observability/logger.ts': `export const log = (m: string) => m;`,
  'src/auth/jwt.ts': `import { config } from '../config/index.js';\nexport const verify = () => config.port;`,
  'src/db/pool.ts': `import pg from 'pg';\nimport { readFile } from 'node:fs/promises';\nexport const open = () => [pg, readFile];`,
  'src/http/uws.ts': `export const uws = {};`,
  'src/cluster/pubsub.ts': `import { log } from '../observability/logger.js';\nexport const publish = (m: string) => log(m);`,
  'src/presence/crdt.ts': `export const merge = (a: number, b: number) => Math.max(a, b);`,
  'src/presence/tenant-presence.ts': `import { publish } from '../cluster/pubsub.js';\nimport { merge } from './crdt.js';\nexport const track = () => publish(String(merge(1, 2)));`,
  'src/replication/pgoutput/decode.ts': `import { Buffer } from 'node:buffer';\nexport const decode = (b: Buffer) => b.length;`,
  'src/replication/changes/filter.ts': `import { decode } from '../pgoutput/decode.js';\nexport const matches = (b: Buffer) => decode(b) > 0;`,
  'src/replication/stream.ts': `import pg from 'pg';\nimport { matches } from './changes/filter.js';\nexport const stream = () => [pg, matches];`,
  'src/tenants/tenant.ts': `import { track } from '../presence/tenant-presence.js';\nimport { stream } from '../replication/stream.js';\nimport { verify } from '../auth/jwt.js';\nexport const start = () => [track, stream, verify];`,
  'src/channels/protocol/v2.ts': `export const encode = (s: string) => s;`,
  'src/channels/socket.ts': `import { uws } from '../http/uws.js';\nimport { start } from '../tenants/tenant.js';\nimport { encode } from './protocol/v2.js';\nexport const socket = () => [uws, start, encode];`,
  'src/http/app.ts': `import { socket } from '../channels/socket.js';\nimport { uws } from './uws.js';\nexport const app = () => [socket, uws];`,
  'src/baas/rest/index.ts': `import { app } from '../../http/app.js';\nexport const rest = { mount: app };`,
  'src/server.ts': `import { app } from './http/app.js';\nimport { rest } from './baas/rest/index.js';\nexport const server = () => [app, rest];`,
};

const roots: string[] = [];
afterAll(async () => {
  await Promise.all(roots.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A throw-away project: CLEAN with `changes` applied (null deletes a file), the repository's node_modules linked in. */
async function project(changes: Record<string, string | null> = {}, baseline = '[]'): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'performer-lint-'));
  roots.push(dir);
  const files = { ...CLEAN, ...changes };
  for (const [file, text] of Object.entries(files)) {
    if (text === null) continue;
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), text);
  }
  const pkg = { name: 'lint-fixture', type: 'module', dependencies: { pg: '*' }, devDependencies: { vitest: '*' } };
  await writeFile(path.join(dir, 'package.json'), JSON.stringify(pkg));
  await writeFile(path.join(dir, BASELINE), baseline);
  await symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

async function lint(changes: Record<string, string | null> = {}): Promise<LintRun> {
  return depcruise(await project(changes), await scriptArgs('lint'));
}

describe('npm run lint', () => {
  it.concurrent('passes a tree whose rooms import only down the floors', async () => {
    const run = await lint();
    expect(run.output).toContain('no dependency violations found');
    expect(run.code).toBe(0);
  });

  it.concurrent('fails on a new import cycle', async () => {
    const run = await lint({
      'src/channels/channel.ts': `import { socket } from './socket.js';\nexport const channel = () => socket;`,
      'src/channels/socket.ts': `import { channel } from './channel.js';\nexport const socket = () => channel;`,
    });
    expect(run.code).not.toBe(0);
    expect(run.output).toMatch(/error no-circular: src\/channels\/(socket|channel)\.ts/);
  });

  it.concurrent('fails when a lower room imports an upper one', async () => {
    const run = await lint({
      'src/cluster/pubsub.ts': `import { socket } from '../channels/socket.js';\nexport const publish = () => socket;`,
    });
    expect(run.code).not.toBe(0);
    expect(run.output).toContain('error floor-cluster: src/cluster/pubsub.ts → src/channels/socket.ts');
  });

  it.concurrent('counts a type-only import as an import', async () => {
    const run = await lint({
      'src/replication/stream.ts': `import type { app } from '../http/app.js';\nexport type Stream = typeof app;`,
    });
    expect(run.code).not.toBe(0);
    expect(run.output).toContain('error floor-engines: src/replication/stream.ts → src/http/app.ts');
  });

  it.concurrent('fails when pure code imports I/O or impure code', async () => {
    const run = await lint({
      'src/channels/protocol/v2.ts': `import net from 'node:net';\nexport const encode = (s: string) => [s, net];`,
      'src/replication/pgoutput/decode.ts': `import pg from 'pg';\nexport const decode = (b: Buffer) => [b, pg];`,
      'src/presence/crdt.ts': `import { log } from '../observability/logger.js';\nexport const merge = (a: number) => log(String(a));`,
    });
    expect(run.code).not.toBe(0);
    expect(run.output).toContain('error pure-no-io: src/channels/protocol/v2.ts → net');
    expect(run.output).toMatch(/error pure-no-io: src\/replication\/pgoutput\/decode\.ts → \S*node_modules\/pg\//);
    expect(run.output).toContain('error pure-imports-pure: src/presence/crdt.ts → src/observability/logger.ts');
  });

  it.concurrent('keeps uWebSockets.js in the transport rooms', async () => {
    const run = await lint({
      'src/cluster/pubsub.ts': `import type { uws } from '../http/uws.js';\nexport type Exclude = typeof uws;`,
    });
    expect(run.code).not.toBe(0);
    expect(run.output).toContain('error uws-in-transport: src/cluster/pubsub.ts → src/http/uws.ts');
  });

  it.concurrent('fails on a folder that is on no floor, so new rooms get placed', async () => {
    const run = await lint({
      'src/messages/envelope.ts': `export type Envelope = string;`,
      'src/cluster/pubsub.ts': `import type { Envelope } from '../messages/envelope.js';\nexport const publish = (m: Envelope) => m;`,
    });
    expect(run.code).not.toBe(0);
    expect(run.output).toContain('error room-unknown-target: src/cluster/pubsub.ts → src/messages/envelope.ts');
  });

  it.concurrent('fails on packages a production install lacks or package.json does not list', async () => {
    const run = await lint({
      'src/db/pool.ts': `import { expect } from 'vitest';\nimport WebSocket from 'ws';\nexport const open = () => [expect, WebSocket];`,
    });
    expect(run.code).not.toBe(0);
    expect(run.output).toMatch(/error not-to-dev-dep: src\/db\/pool\.ts → \S*node_modules\/vitest\//);
    expect(run.output).toMatch(/error no-non-package-json: src\/db\/pool\.ts → \S*node_modules\/ws\//);
  });
});

describe('the baseline of known violations', () => {
  it.concurrent('ignores a recorded violation and fails on a new one', async () => {
    const upward = { 'src/cluster/pubsub.ts': `import { encode } from '../channels/protocol/v2.js';\nexport const publish = () => encode;` };
    const dir = await project(upward);
    const written = await depcruise(dir, await scriptArgs('lint:baseline'));
    expect(written.code).toBe(0);
    const baseline = await readFile(path.join(dir, BASELINE), 'utf8');
    expect(baseline).toContain('src/cluster/pubsub.ts');

    const known = await depcruise(await project(upward, baseline), await scriptArgs('lint'));
    expect(known.output).toContain('1 known violations ignored');
    expect(known.code).toBe(0);

    const another = { ...upward, 'src/presence/crdt.ts': `import { encode } from '../channels/protocol/v2.js';\nexport const merge = () => encode;` };
    const added = await depcruise(await project(another, baseline), await scriptArgs('lint'));
    expect(added.code).not.toBe(0);
    expect(added.output).toContain('error floor-engines: src/presence/crdt.ts → src/channels/protocol/v2.ts');
    expect(added.output).not.toContain('error floor-cluster');
  });

  it('holds only violations the code still has: fixing one shrinks it (npm run lint:baseline)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'performer-baseline-'));
    roots.push(dir);
    const args = (await scriptArgs('lint:baseline')).map((arg, i, all) => (all[i - 1] === '--output-to' ? path.join(dir, BASELINE) : arg));
    const run = await depcruise(ROOT, args);
    expect(run.code).toBe(0);
    const key = (v: { from: string; to: string; rule: { name: string } }) => `${v.rule.name}: ${v.from} -> ${v.to}`;
    const current = (JSON.parse(await readFile(path.join(dir, BASELINE), 'utf8')) as Parameters<typeof key>[0][]).map(key).sort();
    const recorded = (JSON.parse(await readFile(path.join(ROOT, BASELINE), 'utf8')) as Parameters<typeof key>[0][]).map(key).sort();
    const gone = recorded.filter((v) => !current.includes(v));
    expect(gone, 'violations fixed but still in the baseline: run npm run lint:baseline').toEqual([]);
  });
});
