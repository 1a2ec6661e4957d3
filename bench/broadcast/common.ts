import { writeDigits } from '../lib/stamp.js';

/**
 * What the processes of the broadcast bench share: the room and topic, which server a run talks to, and the
 * fixed-layout payload the receivers parse without allocating.
 */

export const ROOM = 'bench';
/** Channel topic on the wire; also the uWS pub/sub topic of the bare peer, so frames are byte-for-byte the same size. */
export const TOPIC = `realtime:${ROOM}`;
export const EVENT = 'b';

/**
 * Which server a run talks to: this tree's Performer, Performer built at another revision (`--compare=<rev>`), the
 * bare uWS peer or socket.io; `ceiling` is the frame blaster that measures the load generator alone.
 */
export type System = 'performer' | `performer@${string}` | 'uws' | 'socketio';
export type Target = System | 'ceiling';
/** The subscriber protocol a raw connection speaks after the upgrade. */
export type Proto = 'phoenix' | 'simple' | 'sio';

export function protoOf(target: Target): Proto {
  return target.startsWith('performer') ? 'phoenix' : target === 'socketio' ? 'sio' : 'simple';
}

export function pathOf(target: Target, token: string): string {
  if (target.startsWith('performer')) return `/socket/websocket?apikey=${token}&vsn=2.0.0`;
  if (target === 'socketio') return `/socket.io/?EIO=4&transport=websocket&room=${ROOM}`;
  return '/ws';
}

/*
 * Payload (JSON, identical for every system):
 *   {"t":"TTTTTTTTTTTTTTTT","s":"SSSSSSSSSS","f":"P","p":"xxxx…"}
 * t = send time in µs (monotonic), s = sequence number, f = phase (../lib/stamp.ts: w warm-up, m measured), p = padding to the size.
 * Strings, not numbers, so socket.io's parse/re-stringify keeps the fixed layout.
 */
export const TS_OFF = 6;
export const SEQ_OFF = 29;
export const PHASE_OFF = 46;
/** Bytes of the payload a receiver must see to read t, s and f. */
export const PAYLOAD_PREFIX_LEN = 47;
export function payloadTemplate(size: number): Buffer {
  const head = '{"t":"0000000000000000","s":"0000000000","f":"w","p":"';
  const tail = '"}';
  const pad = Math.max(0, size - head.length - tail.length);
  const buf = Buffer.from(head + 'x'.repeat(pad) + tail, 'latin1');
  if (buf[TS_OFF - 1] !== 0x22 || buf[SEQ_OFF - 1] !== 0x22 || buf[PHASE_OFF - 1] !== 0x22) throw new Error('payload layout');
  return buf;
}

/** Stamps t, s and f into a payload that starts at `off` of `buf`. */
export function stamp(buf: Uint8Array, off: number, tsUs: number, seq: number, phase: number): void {
  writeDigits(buf, off + TS_OFF, 16, tsUs);
  writeDigits(buf, off + SEQ_OFF, 10, seq);
  buf[off + PHASE_OFF] = phase;
}
