import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildSync } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The child (young-burst.ts) runs as plain JavaScript under plain node, as `node dist/main.js` runs: tsx's loader
 * thread keeps the main isolate allocating, and V8 shrinks its young generation only at a low allocation rate.
 */
let dir = '';
let child = '';

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'heap-trim-'));
  child = path.join(dir, 'young-burst.mjs');
  buildSync({ entryPoints: [path.join(import.meta.dirname, 'young-burst.ts')], outfile: child, bundle: true, platform: 'node', format: 'esm', logLevel: 'warning' });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(mode: string): { grown: number; young: number; gcs?: number; seconds?: number } {
  const r = spawnSync(process.execPath, [child, mode], { encoding: 'utf8', timeout: 90_000 });
  if (r.status !== 0) throw new Error(`child ${mode} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1) as string);
}

describe('heap trim', () => {
  it('gives back the young generation a burst grew, once the process is idle (no --expose-gc needed)', () => {
    const r = run('trim');
    // The burst grew it well past V8's initial 2 x 1 MiB ...
    expect(r.grown).toBeGreaterThanOrEqual(16 * 2 ** 20);
    // ... and V8 keeps it for minutes at a heartbeat's allocation rate; after the trim it is back to its start.
    expect(r.young).toBeLessThan(r.grown / 4);
  });

  it('runs no GC while the event loop is busy', () => {
    const r = run('busy');
    expect(r.grown).toBeGreaterThanOrEqual(16 * 2 ** 20);
    expect(r.gcs).toBe(0);
  });
});
