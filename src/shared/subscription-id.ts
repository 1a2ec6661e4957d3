/**
 * A deterministic non-negative 27-bit id for a postgres_changes params object: identical params give identical
 * ids (clients compare them with ===), and key order does not matter.
 */
export function postgresChangesId(params: Record<string, unknown>): number {
  const text = canonicalJson(params);
  // FNV-1a over UTF-16 code units is enough: the id only needs to be stable, not secret.
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) & 0x7ffffff;
}

function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.keys(value as Record<string, unknown>)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
  return `{${entries.join(',')}}`;
}
