import { execFile } from 'node:child_process';
import { chmod, lstat, readdir, readlink, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lookupOsUser } from '../../src/db/os-user.js';
import { privateCheckout, type PrivateCheckout } from '../support/private-checkout.js';

const execFileAsync = promisify(execFile);

interface RunResult {
  clusterDir: string;
  home: string;
  notices: string[];
  rows: unknown[];
  log: string[];
}

/**
 * Starts the embedded Postgres from the private copy of the checkout (so its binaries are under the 0700 directory
 * too), runs the statements (returning the last one's rows), stops it. In a child process: the module, pg and the binaries all come from the copy.
 */
async function runFromCheckout(c: PrivateCheckout, dataDir: string, statements: string[]): Promise<RunResult> {
  const script = `
    const { startEmbeddedPostgres } = await import(${JSON.stringify(path.join(c.checkout, 'src/db/embedded-postgres.ts'))});
    const { default: pg } = await import('pg');
    const log = [];
    const server = await startEmbeddedPostgres({
      dataDir: ${JSON.stringify(dataDir)}, systemDir: ${JSON.stringify(c.systemDir)}, ephemeral: true, logger: (line) => log.push(line),
    });
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    let rows = [];
    for (const statement of ${JSON.stringify(statements)}) rows = (await client.query(statement)).rows;
    await client.end();
    await server.stop();
    process.stdout.write(JSON.stringify({ clusterDir: server.clusterDir, home: server.home, notices: server.notices, rows, log }));
  `;
  const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: c.checkout,
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(stdout) as RunResult;
}

describe('embedded Postgres as root from a directory the postgres OS user cannot enter (needs root, as CI runs)', () => {
  let c: PrivateCheckout;
  beforeAll(async () => {
    c = await privateCheckout();
  });
  afterAll(async () => {
    await c?.remove();
  });

  it('runs from a copy of the binaries, keeps the cluster in the system directory, and keeps the data across starts', async () => {
    expect(process.getuid?.(), 'this test must run as root (CI does): Postgres then runs as the OS user postgres').toBe(0);
    const postgresUser = await lookupOsUser('postgres');
    const dataDir = path.join(c.checkout, '.performer', 'postgres');
    const systemDir = await realpath(c.systemDir);

    const first = await runFromCheckout(c, dataDir, ['CREATE TABLE kept (v text)', `INSERT INTO kept VALUES ('first start') RETURNING v`]);
    expect(first.rows).toEqual([{ v: 'first start' }]);
    expect(first.home).toMatch(new RegExp(`^${systemDir}/clusters/[0-9a-f]{16}$`));
    expect(first.clusterDir).toBe(path.join(first.home, 'cluster'));
    const link = path.join(dataDir, 'cluster');
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    expect(await readlink(link)).toBe(first.clusterDir);
    const cluster = await stat(first.clusterDir);
    expect({ uid: cluster.uid, mode: cluster.mode & 0o777 }).toEqual({ uid: postgresUser?.uid, mode: 0o700 });
    expect(first.notices).toEqual([
      `the cluster is kept in ${first.clusterDir}, because the OS user postgres (Postgres does not run as root) cannot enter ${c.privateDir} (mode 700); ${link} links to it`,
      expect.stringMatching(new RegExp(`^Postgres runs from ${systemDir}/postgres/[^/]+, because the OS user postgres \\(Postgres does not run as root\\) cannot enter ${c.privateDir} \\(mode 700\\)$`)),
    ]);
    expect(first.log.filter((line) => line.includes('copied the Postgres binaries'))).toHaveLength(1);
    // The copy: root's, readable and runnable by everyone, writable by root only.
    const [copy] = await readdir(path.join(systemDir, 'postgres'));
    const binary = await stat(path.join(systemDir, 'postgres', copy, 'bin', 'postgres'));
    expect({ uid: binary.uid, mode: binary.mode & 0o777 }).toEqual({ uid: 0, mode: 0o755 });
    // Nothing was opened up on the way to the checkout.
    const privateDir = await stat(c.privateDir);
    expect({ uid: privateDir.uid, mode: privateDir.mode & 0o777 }).toEqual({ uid: 0, mode: 0o700 });

    const second = await runFromCheckout(c, dataDir, ['SELECT v FROM kept']);
    expect(second.rows).toEqual([{ v: 'first start' }]);
    expect(second.clusterDir).toBe(first.clusterDir);
    expect(second.log.filter((line) => line.includes('copied the Postgres binaries'))).toEqual([]);
    expect(await readdir(path.join(systemDir, 'postgres'))).toEqual([copy]);
  }, 120_000);

  it('refuses a copy of the binaries that someone other than root could have changed', async () => {
    expect(process.getuid?.(), 'this test must run as root (CI does)').toBe(0);
    const [copy] = await readdir(path.join(c.systemDir, 'postgres'));
    const binary = path.join(c.systemDir, 'postgres', copy, 'bin', 'postgres');
    await chmod(binary, 0o775);
    try {
      await expect(runFromCheckout(c, path.join(c.checkout, '.performer', 'postgres'), ['SELECT 1'])).rejects.toThrow(
        `${binary} may be written by users other than root; remove`,
      );
    } finally {
      await chmod(binary, 0o755);
    }
  }, 60_000);
});
