import os from 'node:os';
import { profileText } from '../lib/cpuprofile.js';
import { f, runLine, table, writeSection } from '../lib/report.js';
import type { Results, Row } from './types.js';

/** What the report needs from the run (set by run.ts at start). */
export interface ReportContext {
  quick: boolean;
  loadAtStart: number;
  opts: { payloadBytes: number; closedMs: number; openMs: number; openConns: number; warmupMs: number };
}

let ctx: ReportContext | null = null;

export function configureReport(context: ReportContext): void {
  ctx = context;
}

function context(): ReportContext {
  if (!ctx) throw new Error('configureReport() was not called');
  return ctx;
}

export function logRow(r: Row): void {
  const what = `${r.kind === 'closed' ? 'closed' : `open ${f(r.rate)} msgs/s`} ${r.perTxn} msg/txn x${r.conns} conns`;
  console.log(
    `  N=${r.n} vsn ${r.vsn} ${what}: committed ${f(r.committedPerSec)} msgs/s, delivered ${f(r.deliveredMsgsPerSec)} msgs/s (${f(r.deliveriesPerSec)} deliveries/s), ` +
      `lost ${f(r.lost)}, drain ${f(r.drainMs)} ms; send->recv p50 ${f(r.p50, 2)} p99 ${f(r.p99, 2)} max ${f(r.max, 1)} ms, commit->recv p50 ${f(r.c50, 2)} p99 ${f(r.c99, 2)} ms ` +
      `(${f(r.samples)} samples); CPU % Performer ${f(r.serverPct)}, Postgres ${f(r.pgPct)} (walsender ${f(r.walsenderPct)}, producer backends ${f(r.producerBackendsPct)}), ` +
      `loadgen ${f(r.genPct)}, machine ${f(r.machinePct)}, other ${f(r.otherPct)}; saturated: ${r.saturated}` +
      `; walsender unsent max ${f(r.unsentMaxMsgs)} / mean ${f(r.unsentMeanMsgs)} msgs, sent but unread by Performer mean ${f(r.unreadMeanMsgs)} msgs (${f(r.walBytesPerMsg)} B WAL/msg)` +
      (r.kind === 'open' ? `; max backlog ${r.maxBacklog}${r.sustained ? '' : ' NOT SUSTAINED'}` : '') +
      (r.unexpectedCloses ? `; ${r.unexpectedCloses} unexpected closes` : ''),
  );
}




/** The section of bench/RESULTS.md from a run's results. */
export function section(r: Results): string {
  const closed = r.rows.filter((x) => x.kind === 'closed');
  const open = r.rows.filter((x) => x.kind === 'open');
  const lines: string[] = [];
  lines.push('## Broadcast from the database', '');
  lines.push(
    runLine(`npm run bench:db-broadcast${context().quick ? ' -- --quick' : ''}`),
    `Embedded PostgreSQL ${r.pgVersion} (wal_level=logical, fsync=off, synchronous_commit on), Performer in a child process, producers (node-postgres,`,
    `prepared statements) and subscribers (raw WebSocket clients of \`realtime:bench\`, public) in the parent; loopback only; all three share the ${os.cpus().length} cores.`,
    `1-minute load average at the start: ${f(context().loadAtStart, 1)} (other people's work on the same machine; "other %" below is CPU used outside the bench during each row).`,
    '',
    `Path measured: \`SELECT realtime.send($1::jsonb, 'e', 'bench', false)\` -> INSERT into realtime.messages -> commit -> walsender (pgoutput) -> Performer's`,
    `replication stream -> fan-out -> subscriber. Payload ${context().opts.payloadBytes} B of JSON as sent (jsonb adds the message id). Latency: receipt minus the send stamp taken just`,
    `before the call (includes the INSERT and the commit; open loop: the *scheduled* send time, so queueing in the load generator counts), and receipt minus`,
    `the producer's commit acknowledgement ("from ack"; negative when the broadcast beats the backend's reply). Same process, same monotonic clock.`,
    '',
  );
  lines.push(`**Upstream, for context only:** Supabase publishes 10,000 msgs/s with p50 46 ms (p95 132 ms, p99 159 ms) for broadcast from the database`);
  lines.push('(realtime.broadcast_changes on every insert, 80,000 users, k6 against a 2-6 node Realtime cluster on AWS; supabase.com/docs/guides/realtime/benchmarks).');
  lines.push('That is their published number on different hardware and a different workload shape, not a comparison run here.', '');
  lines.push(...summary(r), '');
  lines.push(`**Closed loop** — producers call as fast as they can for ${context().opts.closedMs / 1000} s after ${context().opts.warmupMs / 1000} s warm-up; delivered msgs/s = deliveries / N over the span of measured receipts.`, '');
  const cpuCells = (x: Row) => [
    f(x.serverPct),
    `${f(x.pgPct)} (${f(x.walsenderPct)} / ${f(x.producerBackendsPct)})`,
    f(x.genPct),
    `${f(x.machinePct)} (${f(x.otherPct)})${x.attempts === 2 ? ' †' : ''}`,
  ];
  lines.push(
    table(
      ['N subs', 'vsn', 'transactions', 'committed msgs/s', 'delivered msgs/s', 'deliveries/s', 'lost', 'p50 / p99 ms (queueing at saturation)', 'p50 / p99 from ack', 'Performer µs CPU/msg', 'Performer CPU %', 'Postgres CPU % (walsender / producer backends)', 'load gen CPU %', 'machine % (other)', 'walsender unsent msgs max / mean', 'unread by Performer (mean)', 'saturated'],
      closed.map((x) => [
        f(x.n),
        x.vsn,
        x.mode === 'single' ? `1 msg/txn, ${x.conns} conns` : `${x.perTxn} msgs/txn, ${x.conns} conns`,
        f(x.committedPerSec),
        f(x.deliveredMsgsPerSec),
        f(x.deliveriesPerSec),
        f(x.lost),
        `${f(x.p50, 1)} / ${f(x.p99, 1)}`,
        `${f(x.c50, 1)} / ${f(x.c99, 1)}`,
        f((x.serverPct * 1e4) / Math.max(1, x.deliveredMsgsPerSec)),
        ...cpuCells(x),
        `${f(x.unsentMaxMsgs)} / ${f(x.unsentMeanMsgs)}`,
        f(x.unreadMeanMsgs),
        x.saturated,
      ]),
    ),
    '',
  );
  lines.push(
    `**Open loop** — a fixed rate for ${context().opts.openMs / 1000} s after ${context().opts.warmupMs / 1000} s warm-up (${context().opts.openConns} producer connections, 1 ms scheduling tick); one message per`,
    'transaction while the closed loop left headroom for it (rate <= 0.7 x its committed msgs/s), else transactions of 10 or 100 messages (all stamped with the',
    "transaction's scheduled time). Sustained = at least 97 % of the rate committed and delivered to every subscriber, nothing lost, and the",
    'backlog drained within 250 ms of the producers stopping.',
    '',
  );
  lines.push(
    table(
      ['N subs', 'vsn', 'target msgs/s', 'msgs/txn', 'committed msgs/s', 'delivered msgs/s', 'deliveries/s', 'lost', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'p50 / p99 from ack', 'Performer µs CPU/msg', 'Performer CPU %', 'Postgres CPU % (walsender / producer backends)', 'load gen CPU %', 'machine % (other)', 'walsender unsent msgs max / mean', 'unread by Performer (mean)', 'producers behind (max msgs)', 'sustained'],
      open.map((x) => [
        f(x.n),
        x.vsn,
        f(x.rate),
        f(x.perTxn),
        f(x.committedPerSec),
        f(x.deliveredMsgsPerSec),
        f(x.deliveriesPerSec),
        f(x.lost),
        f(x.p50, 2),
        f(x.p99, 2),
        f(x.p999, 2),
        f(x.max, 1),
        `${f(x.c50, 2)} / ${f(x.c99, 2)}`,
        f((x.serverPct * 1e4) / Math.max(1, x.deliveredMsgsPerSec)),
        ...cpuCells(x),
        `${f(x.unsentMaxMsgs)} / ${f(x.unsentMeanMsgs)}`,
        f(x.unreadMeanMsgs),
        f(x.maxBacklog),
        x.sustained ? 'yes' : `no (${x.deliveredMsgsPerSec < 0.97 * x.rate ? `${f((100 * x.deliveredMsgsPerSec) / x.rate)} % delivered` : `drain ${f(x.drainMs)} ms`})`,
      ]),
    ),
    '',
  );
  if (r.rows.some((x) => x.attempts === 2)) lines.push('† repeated once because of outside load; the attempt with less outside load is shown.', '');
  if (r.skipped.length) lines.push(`Not run: ${r.skipped.join('; ')}.`, '');
  for (const p of r.profiles) {
    const s = p.summary;
    const pct = (ms: number) => `${f((100 * ms) / Math.max(1, s.busyMs), 1)} %`;
    lines.push(
      `**Profile, N=${p.row.n}, ${p.row.perTxn} msg/txn** — V8 sampling profiler on the Performer child during a closed-loop row (${f(p.row.deliveredMsgsPerSec)} msgs/s delivered with the profiler on).`,
      ...profileText(s, { origins: 6, self: 6, performer: 8 }),
    );
    const keepalive = s.frames.find((x) => x.name === 'onKeepalive' && x.origin === 'performer src');
    if (keepalive && keepalive.totalMs / Math.max(1, s.busyMs) >= 0.1) {
      lines.push(
        `Hot spot: \`ReplicationStream.onKeepalive\` -> \`sendStatus\` (src/replication/stream.ts) takes ${pct(keepalive.totalMs)} of Performer's JS time here: the walsender`,
        'sends a keepalive each time it has caught up with a commit the client has not confirmed yet, and Performer answers every one with a standby',
        'status update (a socket write), so with one message per transaction there is a status round trip per message, on both sides.',
      );
    }
    lines.push('');
  }
  lines.push(
    'Caveats: one machine for everything, so the producers\' backends, the walsender, Performer and the clients compete for the same cores, and',
    'other people\'s jobs add noise ("other %"); Postgres CPU is read from /proc for the postmaster\'s children (walsender = the logical decoding process',
    'feeding Performer, producer backends = the realtime.send sessions, the rest = Performer\'s own pool, background workers, reaped children). fsync=off',
    'makes commits cheaper than on durable storage. Latency percentiles come from a sample of one delivery in N. "walsender unsent" samples',
    "pg_current_wal_lsn() - sent_lsn of Performer's replication connection every 200 ms, in messages (WAL bytes written per message in the row):",
    'large means Postgres (decoding, or a walsender blocked because Performer stopped reading) holds the backlog; small while latency grows means it',
    'sits after the walsender. "unread by Performer" = sent_lsn - write_lsn, the position Performer reports when it answers a keepalive (an upper',
    'bound: stale between reports): large means the backlog is in the socket into Performer; small too means it is in the fan-out or the clients.',
    '"saturated" names a process at >= 85 % of a core, or all cores at >= 185 %. Rows near the ceiling (N=100 at 5,000 msgs/s and up) come out',
    'sustained in one run and not in the next depending on outside load: read them with their "other %".',
  );
  return lines.join('\n');
}

/** Headline figures, read off the rows (vsn 2.0.0). */
function summary(r: Results): string[] {
  const v2 = r.rows.filter((x) => x.vsn === '2.0.0');
  const out: string[] = ['**Summary**'];
  const ns = [...new Set(v2.map((x) => x.n))].sort((a, b) => a - b);
  for (const n of ns) {
    const closed = v2.filter((x) => x.kind === 'closed' && x.n === n);
    const one = closed.find((x) => x.mode === 'single');
    const batch = closed.find((x) => x.mode === 'batch');
    const part = (x: Row | undefined, what: string) => (x ? `${f(x.deliveredMsgsPerSec)} msgs/s with ${what} (${f(x.deliveriesPerSec)} deliveries/s)` : '');
    out.push(`- N=${n}, closed loop: ${[part(one, '1 msg/txn'), part(batch, `${batch?.perTxn} msgs/txn`)].filter(Boolean).join('; ')}.`);
    const open = v2.filter((x) => x.kind === 'open' && x.n === n).sort((a, b) => a.rate - b.rate);
    if (open.length) {
      out.push(
        `- N=${n}, open loop, send -> receipt p50 / p99: ${open
          .map((x) => `${f(x.rate)} msgs/s${x.perTxn > 1 ? ` (${x.perTxn}/txn)` : ''} ${f(x.p50, 1)} / ${f(x.p99, 1)} ms${x.sustained ? '' : ' (not sustained)'}${x.otherPct > 30 ? ` (outside load ${f(x.otherPct)} %)` : ''}`)
          .join('; ')}.`,
      );
    }
  }
  const ceiling = v2.find((x) => x.kind === 'closed' && x.mode === 'single' && x.n === ns[0]);
  if (ceiling) {
    const total = ceiling.serverPct + ceiling.pgPct + ceiling.genPct;
    out.push(
      `- CPU at the 1 msg/txn ceiling (N=${ceiling.n}): Postgres ${f(ceiling.pgPct)} % (producer backends ${f(ceiling.producerBackendsPct)}, walsender ${f(ceiling.walsenderPct)}), ` +
        `Performer ${f(ceiling.serverPct)} %, load generator ${f(ceiling.genPct)} % of a core: Postgres takes ${f((100 * ceiling.pgPct) / Math.max(1, total))} % of the bench's CPU; ` +
        `Performer spends ${f((ceiling.serverPct * 1e4) / Math.max(1, ceiling.deliveredMsgsPerSec))} µs of CPU per message there (one transaction each).`,
    );
  }
  return out;
}


const HEADING = '## Broadcast from the database';

/** Replaces this bench's section of RESULTS.md (others' sections are left as they are), or appends it. */
export function writeResults(text: string): void {
  writeSection(HEADING, text);
}
