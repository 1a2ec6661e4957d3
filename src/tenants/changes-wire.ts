/**
 * Messages between a tenant's owner (which runs its Postgres Changes engine) and the nodes where its subscribers
 * are connected, as JSON on the cluster bus. Each node listens on its own channel; owners announce themselves on a
 * shared one. Every message names its sender (`from`): a subscriber node takes events of a tenant only from the
 * node it knows as that tenant's owner, so a replaced owner's late messages are ignored.
 */
import type { Binding } from '../replication/changes/index.js';
import type { OutgoingChange } from '../shared/messages.js';

/** One event as it crosses the bus: the fan-out's frame cache stays behind, the commit position goes as text. */
export type WireChange = Pick<OutgoingChange, 'type' | 'data' | 'idsJson'> & { lsn?: string };

export type ToOwner =
  | {
      t: 'sub';
      from: string;
      tenant: string;
      id: number;
      instance: string;
      topic: string;
      legacy: boolean;
      bindings: Binding[];
      claims: Record<string, unknown>;
      /** The commit position of the last event it got (decimal), when it moves from another owner. */
      after: string | null;
    }
  | { t: 'unsub'; from: string; tenant: string; instance: string; keep: boolean }
  | { t: 'claims'; from: string; tenant: string; instance: string; claims: Record<string, unknown> };

export type ToSubscriberNode =
  /**
   * The answer to `sub`: ok, or `problem` (upstream's text, final) or `retry` (not the owner, database away...). When
   * ok, `start` (decimal) is the first commit position the subscription is owed: everything before it is not its own,
   * so a move to another owner before any event arrived continues from there, not from what that owner holds.
   */
  | { t: 'reply'; from: string; tenant: string; id: number; problem: string | null; retry: string | null; start: string | null }
  /** Events owed to one subscriber before it joins its group. */
  | { t: 'items'; from: string; tenant: string; instance: string; items: WireChange[] }
  /** A subscriber starts (stops) receiving a group's events: `key` is the group's topic key. */
  | { t: 'enter' | 'exit'; from: string; tenant: string; instance: string; key: string }
  /** A group's events, for the members on the receiving node. */
  | { t: 'group'; from: string; tenant: string; key: string; topic: string; legacy: boolean; items: WireChange[] }
  | { t: 'notify'; from: string; tenant: string; instance: string; status: 'ok' | 'error'; message: string };

/** Sent on the shared channel by a node that runs a tenant's streams (on taking it and at every renewal). */
export interface OwnerAnnouncement {
  t: 'owner';
  from: string;
  tenant: string;
  /** Its fencing number: a node that owns a tenant again after losing it is a new owner. */
  fence: number;
  /** Whether its stream of realtime.messages is up (what `broadcast.replication_ready` waits for on every node). */
  up: boolean;
}

export type ChangesWire = ToOwner | ToSubscriberNode | OwnerAnnouncement;

export function wireChanges(items: readonly OutgoingChange[]): WireChange[] {
  return items.map((i) => (i.commitLsn === undefined ? { type: i.type, data: i.data, idsJson: i.idsJson } : { type: i.type, data: i.data, idsJson: i.idsJson, lsn: i.commitLsn.toString() }));
}

/** Events as the receiving node hands them on. */
export function unwireChanges(items: readonly WireChange[]): OutgoingChange[] {
  return items.map((i) => (i.lsn === undefined ? { type: i.type, data: i.data, idsJson: i.idsJson } : { type: i.type, data: i.data, idsJson: i.idsJson, commitLsn: BigInt(i.lsn) }));
}

const isLsnText = (x: unknown): boolean => typeof x === 'string' && /^\d{1,20}$/.test(x);

const isText = (x: unknown): x is string => typeof x === 'string';
const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isChanges = (x: unknown): x is WireChange[] =>
  Array.isArray(x) && x.every((i) => isObject(i) && isText(i.type) && isText(i.data) && (i.idsJson === null || isText(i.idsJson)) && (i.lsn === undefined || isLsnText(i.lsn)));

/** Parses a bus message; null for anything that is not one of ours (dropped by the caller). */
export function parseChangesWire(payload: string): ChangesWire | null {
  let m: unknown;
  try {
    m = JSON.parse(payload);
  } catch {
    return null;
  }
  if (!isObject(m) || !isText(m.from) || !isText(m.tenant)) return null;
  switch (m.t) {
    case 'owner':
      return typeof m.up === 'boolean' && Number.isSafeInteger(m.fence) ? (m as unknown as OwnerAnnouncement) : null;
    case 'sub':
      return Number.isSafeInteger(m.id) && isText(m.instance) && isText(m.topic) && typeof m.legacy === 'boolean' && Array.isArray(m.bindings) && isObject(m.claims) && (m.after === null || isLsnText(m.after))
        ? (m as unknown as ToOwner)
        : null;
    case 'unsub':
      return isText(m.instance) && typeof m.keep === 'boolean' ? (m as unknown as ToOwner) : null;
    case 'claims':
      return isText(m.instance) && isObject(m.claims) ? (m as unknown as ToOwner) : null;
    case 'reply':
      return Number.isSafeInteger(m.id) && (m.problem === null || isText(m.problem)) && (m.retry === null || isText(m.retry)) && (m.start === null || isLsnText(m.start))
        ? (m as unknown as ToSubscriberNode)
        : null;
    case 'items':
      return isText(m.instance) && isChanges(m.items) ? (m as unknown as ToSubscriberNode) : null;
    case 'enter':
    case 'exit':
      return isText(m.instance) && isText(m.key) ? (m as unknown as ToSubscriberNode) : null;
    case 'group':
      return isText(m.key) && isText(m.topic) && typeof m.legacy === 'boolean' && isChanges(m.items) ? (m as unknown as ToSubscriberNode) : null;
    case 'notify':
      return isText(m.instance) && (m.status === 'ok' || m.status === 'error') && isText(m.message) ? (m as unknown as ToSubscriberNode) : null;
    default:
      return null;
  }
}
