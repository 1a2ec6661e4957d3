import { sql as rolesAndSchemas } from './001-roles-and-schemas.js';
import { sql as authFunctions } from './002-auth-functions.js';
import { sql as messages } from './003-messages.js';
import { sql as broadcastFunctions } from './004-broadcast-functions.js';
import { sql as publications } from './005-publications.js';
import { sql as subscription } from './006-subscription.js';
import { sql as changesSubscribers } from './007-changes-subscribers.js';
import { sql as apiRoleGrants } from './008-api-role-grants.js';
import { sql as changesSubscribersTenant } from './009-changes-subscribers-tenant.js';
import { sql as changesVisibleKeys } from './010-changes-visible-keys.js';
import { sql as restSchemaReload } from './011-rest-schema-reload.js';
import { sql as authUsers } from './012-auth-users.js';
import { sql as authSessions } from './013-auth-sessions.js';
import { sql as authMfaTokens } from './014-auth-mfa-tokens.js';
import { sql as storageSchema } from './016-storage-schema.js';
import { sql as storageFunctions } from './017-storage-functions.js';
import { sql as streamFences } from './020-stream-fences.js';
import { sql as restAuthenticator } from './021-rest-authenticator.js';
import { sql as changesVisibleKeysLean } from './022-changes-visible-keys-lean.js';
import { sql as changesSubscribersStart } from './023-changes-subscribers-start.js';
import { sql as storageObjectVersions } from './024-storage-object-versions.js';

export interface TenantMigration {
  /** Recorded in realtime.schema_migrations; small integers never collide with upstream's timestamp versions. */
  version: number;
  name: string;
  sql: string;
}

/** Ordered; append only. An applied migration must never change, add a new one instead. */
export const tenantMigrations: readonly TenantMigration[] = [
  { version: 1, name: 'roles_and_schemas', sql: rolesAndSchemas },
  { version: 2, name: 'auth_functions', sql: authFunctions },
  { version: 3, name: 'messages', sql: messages },
  { version: 4, name: 'broadcast_functions', sql: broadcastFunctions },
  { version: 5, name: 'publications', sql: publications },
  { version: 6, name: 'subscription', sql: subscription },
  { version: 7, name: 'changes_subscribers', sql: changesSubscribers },
  { version: 8, name: 'api_role_grants', sql: apiRoleGrants },
  { version: 9, name: 'changes_subscribers_tenant', sql: changesSubscribersTenant },
  { version: 10, name: 'changes_visible_keys', sql: changesVisibleKeys },
  { version: 11, name: 'rest_schema_reload', sql: restSchemaReload },
  { version: 12, name: 'auth_users', sql: authUsers },
  { version: 13, name: 'auth_sessions', sql: authSessions },
  { version: 14, name: 'auth_mfa_tokens', sql: authMfaTokens },
  { version: 16, name: 'storage_schema', sql: storageSchema },
  { version: 17, name: 'storage_functions', sql: storageFunctions },
  { version: 20, name: 'stream_fences', sql: streamFences },
  { version: 21, name: 'rest_authenticator', sql: restAuthenticator },
  { version: 22, name: 'changes_visible_keys_lean', sql: changesVisibleKeysLean },
  { version: 23, name: 'changes_subscribers_start', sql: changesSubscribersStart },
  { version: 24, name: 'storage_object_versions', sql: storageObjectVersions },
];
