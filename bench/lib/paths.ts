import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root: where the benches run their children and build Performer. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
