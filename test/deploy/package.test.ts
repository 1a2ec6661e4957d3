/**
 * What `npm ci --omit=dev` (the image's production install) brings: only what the server imports at run time.
 * Build and test tools belong in devDependencies; a library the code does not use yet waits until it does.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

interface PackageJson {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  scripts: Record<string, string>;
}
interface PackageLock {
  packages: Record<string, { version?: string; dev?: boolean; optional?: boolean; devOptional?: boolean }>;
}

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson;
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as PackageLock;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = join(dir, name);
    if (statSync(file).isDirectory()) return sourceFiles(file);
    return file.endsWith('.ts') ? [file] : [];
  });
}

const serverSource = sourceFiles(join(ROOT, 'src')).map((f) => readFileSync(f, 'utf8')).join('\n');

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Names of the packages a production install puts in node_modules, per the lockfile. */
function productionPackages(): string[] {
  return Object.entries(lock.packages)
    .filter(([path, entry]) => path !== '' && !entry.dev && !entry.devOptional)
    .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length));
}

describe('package.json dependencies', () => {
  it('are each imported by the server code (src/)', () => {
    expect(Object.keys(pkg.dependencies).length).toBeGreaterThan(0);
    for (const name of Object.keys(pkg.dependencies)) {
      // 'name', 'name/sub/path' or a template literal starting with `name/`, in an import, import() or require.
      const specifier = new RegExp(`['"\`]${escapeRegExp(name)}(/[^'"\`]*)?['"\`]`);
      expect(specifier.test(serverSource), `${name} is a dependency but src/ never imports it`).toBe(true);
    }
  });

  it('leave the TypeScript compiler and the test tools to devDependencies', () => {
    for (const tool of ['typescript', 'tsx', 'vitest', 'ajv', 'yaml']) {
      expect(pkg.dependencies, tool).not.toHaveProperty(tool);
    }
    for (const name of Object.keys(pkg.dependencies)) expect(name, 'type packages are build-time only').not.toMatch(/^@types\//);
    // `npm start` builds first (prestart), which `npm install` makes possible by installing devDependencies.
    expect(pkg.scripts.prestart).toBe('npm run build');
    expect(pkg.scripts.build).toMatch(/^tsc /);
    expect(pkg.devDependencies).toHaveProperty('typescript');
  });

  it('keep the compiler and unused client libraries out of the production install the image ships', () => {
    const production = productionPackages();
    for (const name of Object.keys(pkg.dependencies)) expect(production, name).toContain(name);
    const unwanted = production.filter((name) => name === 'typescript' || name.startsWith('@typescript/') || name === 'tsx');
    expect(unwanted).toEqual([]);
  });
});
