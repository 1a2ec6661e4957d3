/** What a person who clones the repository reads first: the licence and the README's references. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** README.md and the docs it leads to. */
const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/**
 * Files a Markdown text points at: link targets that are not URLs or anchors, and code spans that name a
 * relative file (`./x`, `../x`, or a path ending in .md such as `bench/RESULTS.md`).
 */
function referencedFiles(markdown: string): string[] {
  const links = [...markdown.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]);
  const spans = [...markdown.matchAll(/`([^`\s]+)`/g)].map((m) => m[1]).filter((s) => /^\.\.?\//.test(s) || /^[^/].*\/.*\.md$/.test(s));
  return [...links, ...spans]
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target) && !target.startsWith('#'))
    .map((target) => target.replace(/#.*$/, ''));
}

describe('LICENSE', () => {
  it('is the Apache License 2.0 that package.json names', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { license: string };
    expect(pkg.license).toBe('Apache-2.0');
    const text = readFileSync(join(ROOT, 'LICENSE'), 'utf8');
    expect(text.trim().split('\n').slice(0, 2).map((l) => l.trim())).toEqual(['Apache License', 'Version 2.0, January 2004']);
    expect(text).toContain('TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION');
    expect(text).toContain('9. Accepting Warranty or Additional Liability.');
    expect(text).toContain('END OF TERMS AND CONDITIONS');
  });
});

describe('documentation references', () => {
  it('finds the references it checks (the extractor works)', () => {
    expect(referencedFiles('see [a](docs/x.md), `../up/y.md`, `./z`, `b/R.md`, `R.md`, [web](https://e.org/a.md), [top](#top), `/api/ping`')).toEqual([
      'docs/x.md',
      '../up/y.md',
      './z',
      'b/R.md',
    ]);
  });

  it.each(DOCS)('%s points only at files inside the repository that exist', (doc) => {
    const base = dirname(join(ROOT, doc));
    const targets = referencedFiles(readFileSync(join(ROOT, doc), 'utf8'));
    for (const target of targets) {
      const file = resolve(base, target);
      const inside = relative(ROOT, file);
      expect(inside.startsWith('..') || resolve(ROOT, inside) !== file, `${doc}: ${target} is outside the repository`).toBe(false);
      expect(existsSync(file), `${doc}: ${target} does not exist`).toBe(true);
    }
  });
});
