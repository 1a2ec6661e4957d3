import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository's root: where the benches run their children and build Performer. A child bundled into bench/.tmp/
 * (see Child's `plain`) is told it in BENCH_REPO_ROOT, its own location being elsewhere.
 */
export const repoRoot = process.env.BENCH_REPO_ROOT ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
