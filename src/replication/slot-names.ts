import { createHash } from 'node:crypto';

/**
 * Names of Performer's replication slots. A slot name lives in its cluster, so what tells two databases of a cluster
 * apart is the database's oid: unlike the address in the URL (a port that changes at every start of the embedded
 * Postgres, `localhost` against `127.0.0.1`) it stays the same for as long as the database exists, renamed or not.
 */

/** Every persistent Postgres Changes slot of this naming scheme starts with it. */
export const CHANGES_SLOT_PREFIX = 'performer_cdc_';
/** The earlier scheme: `performer_changes_<tenant, lossy>_<hash of host:port/path>`, one more slot per new port. */
export const LEGACY_CHANGES_SLOT_PREFIX = 'performer_changes_';

/** Postgres' limit on identifiers (NAMEDATALEN - 1). */
const MAX_SLOT_NAME = 63;
/** Hex digits of the tenant hash in names too long to spell the tenant out (64 bits). */
const HASH_HEX = 16;

/**
 * The persistent slot of a tenant's Postgres Changes on one database: `performer_cdc_<database oid>_<tenant>`, the
 * tenant escaped injectively (see escapeTenantId), so `a-b` and `a_b` get different slots. A tenant id too long to
 * spell out within 63 characters keeps a readable head and ends in `_z<hash of the whole id>` instead; `_z` never
 * occurs in an escaped id, so the two forms cannot meet.
 */
export function changesSlotName(tenantId: string, databaseOid: string): string {
  if (!/^[0-9]{1,10}$/.test(databaseOid)) throw new Error(`invalid database oid ${JSON.stringify(databaseOid)}`);
  const head = `${CHANGES_SLOT_PREFIX}${databaseOid}_`;
  const escaped = escapeTenantId(tenantId);
  if (head.length + escaped.length <= MAX_SLOT_NAME) return head + escaped;
  const hash = createHash('sha256').update(tenantId, 'utf8').digest('hex').slice(0, HASH_HEX);
  return head + cutAtToken(escaped, MAX_SLOT_NAME - head.length - HASH_HEX - 2) + '_z' + hash;
}

/**
 * An injective spelling of any string in the characters slot names allow ([a-z0-9_]): lower-case letters and digits
 * stand for themselves; any other UTF-16 code unit is `_` + two hex digits below 0x100 (`-` → `_2d`, `_` → `_5f`,
 * `A` → `_41`), `__` + four hex digits above. Every `_` starts an escape of known length, so the spelling reads back
 * one way only.
 */
export function escapeTenantId(id: string): string {
  let out = '';
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if ((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39)) out += id[i];
    else if (c < 0x100) out += '_' + c.toString(16).padStart(2, '0');
    else out += '__' + c.toString(16).padStart(4, '0');
  }
  return out;
}

/** The longest head of an escaped id within max characters that does not split an escape. */
function cutAtToken(escaped: string, max: number): string {
  let end = 0;
  while (end < escaped.length) {
    const next = escaped[end] !== '_' ? end + 1 : escaped[end + 1] === '_' ? end + 6 : end + 3;
    if (next > max) break;
    end = next;
  }
  return escaped.slice(0, end);
}

/**
 * Whether a slot is one the earlier naming scheme made for this tenant: `performer_changes_`, the tenant as that
 * scheme spelled it (lower case, other characters as `_`, at most 30), `_` and ten hex digits. That spelling was
 * lossy (`a-b` and `a_b` shared it), so callers also require the slot to be in the tenant's database.
 */
export function isLegacyChangesSlot(slotName: string, tenantId: string): boolean {
  const head = `${LEGACY_CHANGES_SLOT_PREFIX}${tenantId.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 30)}_`;
  if (slotName.length !== head.length + 10 || !slotName.startsWith(head)) return false;
  for (let i = head.length; i < slotName.length; i++) {
    const c = slotName.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/**
 * The tag that keeps a tenant's temporary database-broadcast slot apart from other tenants' on a shared cluster:
 * 10 hex digits of the tenant id and the database oid. Temporary slots die with their connection, so the tag only has
 * to be unique among running streams; two nodes of one tenant share it, and the second defers to the first.
 */
export function broadcastSlotTag(tenantId: string, databaseOid: string): string {
  return createHash('sha256').update(`${databaseOid}\u0000${tenantId}`, 'utf8').digest('hex').slice(0, 10);
}
