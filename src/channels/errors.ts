import { MAX_PAYLOAD_DEPTH } from './protocol/nesting.js';

/**
 * The longest sub-topic (after `realtime:`), in UTF-8 bytes: the whole topic must fit the one-byte length of a kind-4
 * frame, the cap the REST broadcast applies too.
 */
export const MAX_SUB_TOPIC_BYTES = 255 - 'realtime:'.length;

/**
 * Join error reasons exactly as upstream words them (`<Code>: <message>`), built in one place.
 */
export const JoinError = {
  topicNameRequired: 'TopicNameRequired: You must provide a topic name',
  restarting: 'RealtimeRestarting: Realtime is restarting, please standby',
  tenantNotFound: 'TenantNotFound: Tenant with the given ID does not exist',
  privateOnly: 'PrivateOnly: This project only allows private channels',
  tooManyUsers: 'ConnectionRateLimitReached: Too many connected users',
  tooManyJoins: 'ClientJoinRateLimitReached: Too many joins per second',
  tooManyChannels: 'ChannelRateLimitReached: Too many channels',
  realtimeDisabled: 'RealtimeDisabledForTenant: Realtime disabled for this tenant',
  initializing: 'InitializingProjectConnection: Realtime is initializing the project connection',
  unableToConnect: 'UnableToConnectToProject: Realtime was unable to connect to the project database',
  unauthorized: (subTopic: string) => `Unauthorized: You do not have permissions to read from this Channel topic: ${subTopic}`,
  replayPublic: 'UnableToReplayMessages: Replay is not allowed for public channels',
  replayParams: 'UnableToReplayMessages: Replay params are not valid',
  replayFailed: 'UnableToReplayMessages: Realtime was unable to replay messages',
  unknown: 'Unknown Error on Channel',
  // Not upstream (which takes any topic and any nesting, bounded only by its 5 MB frame): Performer's own bounds,
  // worded in upstream's `<Code>: <message>` form.
  topicNameTooLong: `TopicNameTooLong: The topic name must not exceed ${MAX_SUB_TOPIC_BYTES} bytes`,
  payloadTooDeep: `PayloadTooDeep: The payload must not nest more than ${MAX_PAYLOAD_DEPTH} levels deep`,
} as const;

/** The code part of a reason, for the error metric and log lines. */
export function reasonCode(reason: string): string {
  const i = reason.indexOf(':');
  return i > 0 && /^[A-Za-z]+$/.test(reason.slice(0, i)) ? reason.slice(0, i) : 'UnknownErrorOnChannel';
}

/** `system` message texts for channel shutdowns. */
export const ShutdownMessage = {
  tooManyMessages: 'Too many messages per second',
  serverDisconnect: 'Server requested disconnect',
} as const;
