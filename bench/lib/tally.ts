import { PHASE_MEASURE, readDigits } from './stamp.js';
import { percentile } from './stats.js';

/**
 * What the subscribers of one run share: delivery counters and a latency sample (send stamp, transaction, receipt).
 * One delivery in `sampleEvery` is sampled (a global counter, so samples spread over subscribers and messages).
 */
export class Tally {
  delivered = 0;
  /** Payload bytes of the deliveries, when the receiver counts them (what each pipeline sends per message). */
  bytes = 0;
  /** Deliveries found to be warm-up traffic. */
  warm = 0;
  firstUs = 0;
  lastUs = 0;
  sampleEvery = 1;
  nSamples = 0;
  unparsed = 0;
  unexpectedCloses = 0;
  readonly sendUs: Float64Array;
  readonly recvUs: Float64Array;
  readonly txn: Float64Array;
  private tick = 0;

  constructor(readonly capacity: number) {
    this.sendUs = new Float64Array(capacity);
    this.recvUs = new Float64Array(capacity);
    this.txn = new Float64Array(capacity);
  }

  reset(sampleEvery: number): void {
    this.delivered = 0;
    this.bytes = 0;
    this.warm = 0;
    this.firstUs = 0;
    this.lastUs = 0;
    this.sampleEvery = Math.max(1, Math.floor(sampleEvery));
    this.tick = 0;
    this.nSamples = 0;
    this.unparsed = 0;
  }

  /** One delivery at `now`: counted; true when it is one to sample. */
  hit(now: number): boolean {
    this.delivered++;
    if (this.firstUs === 0) this.firstUs = now;
    this.lastUs = now;
    if (++this.tick < this.sampleEvery) return false;
    this.tick = 0;
    return true;
  }

  /** The stamp at `s` as a latency sample; false (counted as warm) when it is warm-up traffic. */
  sample(buf: Uint8Array, s: number, now: number): boolean {
    if (buf[s] !== PHASE_MEASURE) {
      this.warm++;
      return false;
    }
    const i = this.nSamples;
    if (i < this.capacity) {
      this.sendUs[i] = readDigits(buf, s + 1, 16);
      this.txn[i] = readDigits(buf, s + 17, 10);
      this.recvUs[i] = now;
      this.nSamples = i + 1;
    }
    return true;
  }

  /** A delivery whose stamp (at `s`) is read every time: warm-up traffic is counted apart, never as delivered. */
  stamped(buf: Uint8Array, s: number, now: number): void {
    if (buf[s] !== PHASE_MEASURE) this.warm++;
    else if (this.hit(now)) this.sample(buf, s, now);
  }

  /**
   * Latency of the sampled deliveries in ms: receipt - send stamp, and receipt - the sending transaction's commit
   * acknowledgement (`acks[txn]`, monotonic µs; 0 = none).
   */
  latency(acks: Float64Array): Latency {
    const n = this.nSamples;
    const send = new Float64Array(n);
    const fromAck: number[] = [];
    for (let i = 0; i < n; i++) {
      send[i] = (this.recvUs[i]! - this.sendUs[i]!) / 1000;
      const t = this.txn[i]!;
      const ack = t < acks.length ? acks[t]! : 0;
      if (ack > 0) fromAck.push((this.recvUs[i]! - ack) / 1000);
    }
    send.sort();
    const ack = Float64Array.from(fromAck).sort();
    return { samples: n, p50: percentile(send, 50), p99: percentile(send, 99), p999: percentile(send, 99.9), max: n ? send[n - 1]! : NaN, c50: percentile(ack, 50), c99: percentile(ack, 99) };
  }
}

export interface Latency {
  samples: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  /** From the producer's commit acknowledgement. */
  c50: number;
  c99: number;
}
