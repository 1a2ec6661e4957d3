/**
 * Deployed functions in the control database (control migrations 4 and 5), so every node of a cluster serves the
 * same code: a row per function with its current version and sealed secrets, a row per deployed version (never
 * changed: caches key compiled code by its id). Values always travel as parameters.
 */
import type { ControlPlane } from '../../tenants/store.js';

export type FunctionKind = 'wasm' | 'js';

/** What the router needs to invoke a function: its current version, without the code. */
export interface FunctionHead {
  tenant: string;
  name: string;
  version: number;
  /** Global id of the version: the key of every cache of its code. */
  versionId: string;
  kind: FunctionKind;
  verifyJwt: boolean;
  timeoutMs: number | null;
  memoryMb: number | null;
}

export interface DeployInput {
  tenant: string;
  name: string;
  kind: FunctionKind;
  sourceType: string;
  code: Buffer;
  sha256: string;
  verifyJwt: boolean;
  timeoutMs: number | null;
  memoryMb: number | null;
}

export interface FunctionListing {
  name: string;
  version: number;
  kind: FunctionKind;
  verify_jwt: boolean;
  source_type: string;
  sha256: string;
  created_at: string;
  updated_at: string;
}

export interface VersionListing {
  version: number;
  kind: FunctionKind;
  source_type: string;
  sha256: string;
  verify_jwt: boolean;
  current: boolean;
  created_at: string;
}

const HEAD_SELECT = `SELECT f.tenant_external_id AS tenant, f.name, v.version, v.id::text AS version_id, v.kind, v.verify_jwt,
  v.timeout_ms, v.memory_mb
  FROM _performer.functions f
  JOIN _performer.function_versions v ON v.tenant_external_id = f.tenant_external_id AND v.name = f.name AND v.version = f.current_version`;

interface HeadRow {
  tenant: string;
  name: string;
  version: number;
  version_id: string;
  kind: FunctionKind;
  verify_jwt: boolean;
  timeout_ms: number | null;
  memory_mb: number | null;
}

export class FunctionStore {
  constructor(private readonly control: ControlPlane) {}

  get pool(): ControlPlane['pool'] {
    return this.control.pool;
  }

  /** A new version, made current in the same transaction; an existing function keeps its secrets and triggers. */
  async deploy(input: DeployInput): Promise<{ version: number; created: boolean }> {
    const client = await this.control.pool.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{ current_version: number; inserted: boolean }>(
        `INSERT INTO _performer.functions AS f (tenant_external_id, name, current_version, verify_jwt)
         VALUES ($1, $2, 1, $3)
         ON CONFLICT (tenant_external_id, name) DO UPDATE SET
           current_version = (SELECT coalesce(max(version), 0) + 1 FROM _performer.function_versions v
                              WHERE v.tenant_external_id = f.tenant_external_id AND v.name = f.name),
           verify_jwt = EXCLUDED.verify_jwt, updated_at = now() AT TIME ZONE 'UTC'
         RETURNING current_version, (xmax = 0) AS inserted`,
        [input.tenant, input.name, input.verifyJwt],
      );
      const version = rows[0].current_version;
      await client.query(
        `INSERT INTO _performer.function_versions (tenant_external_id, name, version, kind, source_type, code, sha256, verify_jwt, timeout_ms, memory_mb)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [input.tenant, input.name, version, input.kind, input.sourceType, input.code, input.sha256, input.verifyJwt, input.timeoutMs, input.memoryMb],
      );
      await client.query('COMMIT');
      return { version, created: rows[0].inserted };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async head(tenant: string, name: string): Promise<FunctionHead | null> {
    const { rows } = await this.control.pool.query<HeadRow>(`${HEAD_SELECT} WHERE f.tenant_external_id = $1 AND f.name = $2`, [tenant, name]);
    return rows[0] ? toHead(rows[0]) : null;
  }

  /** A version's code (immutable, so callers cache it by version id). */
  async code(versionId: string): Promise<Buffer | null> {
    const { rows } = await this.control.pool.query<{ code: Buffer }>('SELECT code FROM _performer.function_versions WHERE id = $1', [versionId]);
    return rows[0]?.code ?? null;
  }

  async list(tenant: string): Promise<FunctionListing[]> {
    const { rows } = await this.control.pool.query<FunctionListing>(
      `SELECT f.name, v.version, v.kind, v.verify_jwt, v.source_type, v.sha256,
         to_char(f.inserted_at, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at,
         to_char(f.updated_at, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS updated_at
       FROM _performer.functions f
       JOIN _performer.function_versions v ON v.tenant_external_id = f.tenant_external_id AND v.name = f.name AND v.version = f.current_version
       WHERE f.tenant_external_id = $1 ORDER BY f.name`,
      [tenant],
    );
    return rows;
  }

  async versions(tenant: string, name: string): Promise<VersionListing[]> {
    const { rows } = await this.control.pool.query<VersionListing>(
      `SELECT v.version, v.kind, v.source_type, v.sha256, v.verify_jwt, (v.version = f.current_version) AS current,
         to_char(v.inserted_at, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at
       FROM _performer.function_versions v
       JOIN _performer.functions f ON f.tenant_external_id = v.tenant_external_id AND f.name = v.name
       WHERE v.tenant_external_id = $1 AND v.name = $2 ORDER BY v.version`,
      [tenant, name],
    );
    return rows;
  }

  /** Removes a function with its versions, secrets, triggers and deliveries; false when there was none. */
  async remove(tenant: string, name: string): Promise<boolean> {
    const { rowCount } = await this.control.pool.query('DELETE FROM _performer.functions WHERE tenant_external_id = $1 AND name = $2', [tenant, name]);
    return (rowCount ?? 0) > 0;
  }

  /** Replaces the function's secrets (sealed); false when the function does not exist. */
  async setSecrets(tenant: string, name: string, secrets: Record<string, string>): Promise<boolean> {
    const sealed = this.control.box.encrypt(JSON.stringify(secrets));
    const { rowCount } = await this.control.pool.query(
      `UPDATE _performer.functions SET secrets = $3, updated_at = now() AT TIME ZONE 'UTC' WHERE tenant_external_id = $1 AND name = $2`,
      [tenant, name, sealed],
    );
    return (rowCount ?? 0) > 0;
  }

  /** The function's secrets in plain text (never logged), or null when the function does not exist. */
  async secrets(tenant: string, name: string): Promise<Record<string, string> | null> {
    const { rows } = await this.control.pool.query<{ secrets: string | null }>(
      'SELECT secrets FROM _performer.functions WHERE tenant_external_id = $1 AND name = $2',
      [tenant, name],
    );
    if (!rows[0]) return null;
    return rows[0].secrets === null ? {} : (JSON.parse(this.control.box.decrypt(rows[0].secrets)) as Record<string, string>);
  }
}

function toHead(row: HeadRow): FunctionHead {
  return {
    tenant: row.tenant,
    name: row.name,
    version: row.version,
    versionId: row.version_id,
    kind: row.kind,
    verifyJwt: row.verify_jwt,
    timeoutMs: row.timeout_ms,
    memoryMb: row.memory_mb,
  };
}
