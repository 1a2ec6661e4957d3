import { readFileSync } from 'node:fs';

/** Name, version and description from package.json, which sits one level above both src/ and dist/. */
export interface PackageInfo {
  name: string;
  version: string;
  description: string;
}

function readPackageInfo(): PackageInfo {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as Partial<PackageInfo>;
  return { name: pkg.name ?? 'performer', version: pkg.version ?? '0.0.0', description: pkg.description ?? '' };
}

export const packageInfo: PackageInfo = readPackageInfo();
