import type { ProfileSummary } from '../lib/cpuprofile.js';
import type { Latency } from '../lib/tally.js';
import type { PgLabel, PgSnap } from './pgprocs.js';

// The figures bench/changes measures, shared by the runner (run.ts) and the report (report.ts).

export type Shape = 'batch' | 'single';

/** CPU counters at one moment: bench processes, the machine, Postgres by process. */
export interface Snap {
  atUs: number;
  performer: number;
  peer: number;
  /** Kernel seconds of the fan-out process (Performer or the forwarder), part of `performer` / `peer`. */
  fanoutKernel: number;
  gen: number;
  machine: number;
  pg: PgSnap;
}


export interface Usage {
  windowS: number;
  performerPct: number;
  peerPct: number;
  /** Kernel share of the fan-out process's CPU (Performer's or the forwarder's), in % of a core. */
  fanoutKernelPct: number;
  pgPct: number;
  pgBy: Record<PgLabel, number>;
  genPct: number;
  machinePct: number;
  otherPct: number;
  saturated: string;
}

export type Kind = 'live' | 'catchup' | 'paced';

/** How Performer checked RLS: every viewer of a batch in one call, or one transaction per viewer (before issue 14). */
/** batch: one call for all viewers, batches pipelined (Performer now); serial: the same, one batch at a time; per-viewer: before issue 14. */
export type RlsCheck = 'batch' | 'serial' | 'per-viewer';

/** What the LISTEN/NOTIFY forwarder sends per change: the row's JSON, or Performer's own frame. */
export type NotifyPayload = 'bare' | 'envelope';

export interface Row {
  target: 'performer' | 'notify';
  /** The Performer build (`performer`, `performer@<rev>`), or `notify`. */
  system: string;
  kind: Kind;
  n: number;
  rls: boolean;
  shape: Shape;
  rows: number;
  txns: number;
  capped: boolean;
  drained: boolean;
  expected: number;
  delivered: number;
  /** Committed rows / (last receipt - first commit, or - resume for catch-up). */
  changesPerSec: number;
  deliveriesPerSec: number;
  committedPerSec: number;
  spanMs: number;
  lat: Latency;
  usage: Usage;
  /** LISTEN/NOTIFY only: rows / (last notification at the listener - first commit). */
  listenerPerSec?: number;
  recv?: RecvRow;
  /** Catch-up: share of the backlog's WAL the walsender had already sent before Performer resumed. */
  preSentPct?: number;
  /** Catch-up: changes/s of every repetition (the row shows the fastest). */
  catchupRuns?: number[];
  foreignOwner: number;
  unparsed: number;
  rate?: number;
  /** Rows in the table before the row (the RLS check's cost grows with it, see the probe). */
  tableRows?: number;
  /** --scale: the RLS check of the Performer process. */
  rlsCheck?: RlsCheck;
  /** Which repetition of the sequence (--scale --repeat, --compare --reps), from 1. */
  repetition?: number;
  /** Mean payload bytes of a delivered frame. */
  frameBytes?: number;
  notifyPayload?: NotifyPayload;
  /**
   * Performer's Postgres Changes visibility calls during the row (from its /metrics): how many (one per batch and
   * table, "not yet visible" retries included) and their mean wall time, pool checkout included.
   */
  checks?: { calls: number; meanMs: number };
}

export interface RecvResult {
  /** Spawn to exit. */
  wallMs: number;
  /** First to last byte of its output: the decode + transfer window, without connection set-up and exit. */
  dataMs: number;
  /** Bytes it wrote (pgoutput messages, one newline after each). */
  outBytes: number;
  pgCpuS: number;
  walsenderCpuS: number;
  clientCpuS: number;
  walBytes: number;
  ok: boolean;
}

export type RecvRow = RecvResult & { changesPerSec: number; netChangesPerSec: number; walls: number[]; otherPct: number };

/** pg_recvlogical streaming live while the producers commit (the like-for-like reference of the live rows). */
export interface RecvLive {
  shape: Shape;
  rows: number;
  txns: number;
  committedPerSec: number;
  /** Rows / (last output byte - first commit acknowledgement). */
  changesPerSec: number;
  spanMs: number;
  recvPct: number;
  usage: Usage;
  /** Its output had every change: as many bytes as the same rows from a second slot, read afterwards. */
  complete: boolean;
  outBytes: number;
  checkBytes: number;
}

export interface Probe {
  bigRows: number;
  bigMs: number;
  smallRows: number;
  smallMs: number;
  /** The same rolled-back transaction as the user, with a primary-key lookup (`id = ANY($1)`) instead. */
  pkLookupMs: number;
  /** pg_stat_user_tables on the big table over the 7 checks: rows read by sequential scans, per check. */
  seqRowsPerCheck: number;
  idxScansPerCheck: number;
}

export interface Syscalls {
  label: string;
  row: Row;
  calls: Record<string, number>;
}

export interface Results {
  rows: Row[];
  skipped: string[];
  pgVersion: string;
  profiles: { label: string; summary: ProfileSummary; row: Row; cpuMs: number }[];
  probe?: Probe;
  syscalls: Syscalls[];
  recvLive: RecvLive[];
  recvVersion: string;
  /** pg_recvlogical's spawn to exit with nothing to decode. */
  recvStartupMs: number;
}
