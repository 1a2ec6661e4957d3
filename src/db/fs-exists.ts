import { stat } from 'node:fs/promises';

/** Whether a path exists (any kind of file); errors other than absence count as absent too, as callers then create it. */
export async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
