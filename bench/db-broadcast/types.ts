import type { Vsn } from './subscriber.js';
import type { ProfileSummary } from '../lib/cpuprofile.js';
import type { Latency } from '../lib/tally.js';

// The figures bench/db-broadcast measures, shared by the runner (run.ts) and the report (report.ts).

export interface Usage {
  windowS: number;
  serverPct: number;
  pgPct: number;
  walsenderPct: number;
  producerBackendsPct: number;
  pgOtherPct: number;
  genPct: number;
  machinePct: number;
  otherPct: number;
  serverRssMb: number;
  saturated: string;
}

export type Mode = 'single' | 'batch';

export interface Row extends Usage, Latency {
  kind: 'closed' | 'open';
  mode: Mode;
  vsn: Vsn;
  n: number;
  conns: number;
  perTxn: number;
  /** Open loop: the target rate. */
  rate: number;
  committedPerSec: number;
  deliveredMsgsPerSec: number;
  deliveriesPerSec: number;
  expected: number;
  delivered: number;
  lost: number;
  /** From the producers' stop to the last measured delivery. */
  drainMs: number;
  /** Open loop: most messages due but not yet handed to a connection. */
  maxBacklog: number;
  sustained: boolean;
  unexpectedCloses: number;
  /** 2 when the row was repeated because of outside load (the quieter attempt is kept). */
  attempts?: number;
  walBytesPerMsg: number;
  /** Committed messages the walsender had not sent yet: most and mean over the samples. */
  unsentMaxMsgs: number;
  unsentMeanMsgs: number;
  /** Sent by the walsender but not yet reported read by Performer (write_lsn; reported when Performer answers a keepalive). */
  unreadMeanMsgs: number;
}

export interface Results {
  rows: Row[];
  skipped: string[];
  pgVersion: string;
  profiles: { summary: ProfileSummary; row: Row; cpuMs: number }[];
}
