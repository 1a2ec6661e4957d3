/** Topic key of a tenant's channel namespace; the separator cannot occur in tenant ids. */
export function topicKey(tenantId: string, subTopic: string, isPrivate: boolean): string {
  return `${tenantId}|${isPrivate ? 'private' : 'public'}|${subTopic}`;
}

const PRESENCE_SUFFIX = '-presence';

/**
 * Topic key of the presence receivers of a channel namespace (presence issue). A separate namespace, so channels
 * with presence disabled never get presence_diff frames; `-presence` cannot occur in the namespace of topicKey.
 * These keys are node-local: every node derives its own diffs from its presence replica, so a cluster pub/sub must
 * deliver them locally only (see isPresenceTopicKey), or remote members would see each diff twice.
 */
export function presenceTopicKey(tenantId: string, subTopic: string, isPrivate: boolean): string {
  return `${tenantId}|${isPrivate ? 'private' : 'public'}${PRESENCE_SUFFIX}|${subTopic}`;
}

/** True for keys made by presenceTopicKey; allocation-free, as it runs on every delivery. */
export function isPresenceTopicKey(key: string): boolean {
  const end = key.indexOf('|', key.indexOf('|') + 1);
  return end !== -1 && key.startsWith(PRESENCE_SUFFIX, end - PRESENCE_SUFFIX.length);
}

/**
 * Topic key of one group of identical Postgres Changes subscribers (same topic, bindings and claims). Group ids are
 * per node for now, so these keys are published node-locally.
 */
export function changesTopicKey(tenantId: string, groupId: string): string {
  return `${tenantId}|pgc|${groupId}`;
}
