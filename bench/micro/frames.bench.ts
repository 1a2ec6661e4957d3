import { bench, describe } from 'vitest';
import { ChangeFrames, encodeFor } from '../../src/channels/frames.js';
import { encodeClientFrame } from '../lib/raw-ws.js';
import type { BroadcastEnvelope, OutgoingChange } from '../../src/shared/messages.js';

// Encoding a fan-out message once per serializer: the work a broadcast costs before uWS copies it to the sockets.

const TOPIC = 'realtime:bench';
const payload = Buffer.from(`{"t":"0000000000000000","s":"0000000000","f":"m","p":"${'x'.repeat(53)}"}`);
const user: BroadcastEnvelope = { type: 'user', userEvent: 'b', encoding: 1, payload, metaJson: null };
const json: BroadcastEnvelope = { type: 'json', event: 'presence_diff', payloadJson: '{"joins":{"u1":{"metas":[{"phx_ref":"F1","user_id":1}]}},"leaves":{}}' };
const data = `{"schema":"public","table":"bench","commit_timestamp":"2026-12-06T03:00:00.123Z","type":"INSERT","columns":[],"record":{"id":1,"body":"${'x'.repeat(100)}"},"errors":null}`;

describe('fan-out frames', () => {
  bench('user broadcast, vsn 2.0.0 (binary)', () => {
    encodeFor('2.0.0', TOPIC, user);
  });

  bench('user broadcast, vsn 1.0.0 (JSON text)', () => {
    encodeFor('1.0.0', TOPIC, user);
  });

  bench('presence diff, vsn 2.0.0', () => {
    encodeFor('2.0.0', TOPIC, json);
  });

  bench('postgres_changes frame, first and second subscriber', () => {
    const frames = new ChangeFrames('2.0.0', TOPIC, false);
    const item: OutgoingChange = { type: 'INSERT', data, idsJson: '[123456]' };
    frames.frame(item);
    frames.frame(item);
  });

  bench('client frame of the benches (masked, 100 B)', () => {
    encodeClientFrame(2, payload);
  });
});
