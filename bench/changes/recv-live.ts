import { spawn, type ChildProcess } from 'node:child_process';
import { procCpuSeconds } from '../lib/cpu.js';
import { nowUs } from '../lib/time.js';

/**
 * pg_recvlogical streaming live (no --endpos): the reference consumer for Performer's live rows. It writes every
 * pgoutput message to its stdout, which is only counted here, so the time of its last byte is when the last
 * committed change reached a consumer that does nothing with it.
 */
export interface LiveRecv {
  readonly pid: number;
  /** Bytes of output so far, and when the first and the last of them arrived (nowUs clock). */
  readonly outBytes: number;
  readonly firstUs: number;
  readonly lastUs: number;
  /** CPU seconds pg_recvlogical has used so far. */
  cpuSeconds(): number;
  /** Waits until no output came for `quietMs` (or `capMs` passed); true when it went quiet. */
  settle(quietMs: number, capMs: number): Promise<boolean>;
  /** Ends it (SIGINT: it exits cleanly) and returns its exit code. */
  stop(): Promise<number | null>;
}

export function startLiveRecv(bin: string, databaseUrl: string, slot: string, publication: string): LiveRecv {
  const u = new URL(databaseUrl);
  const args = [
    '-d', `host=127.0.0.1 port=${u.port} dbname=postgres user=${decodeURIComponent(u.username)}`,
    '-S', slot, '--start', '--no-loop', '-f', '-',
    '--option=proto_version=1', `--option=publication_names=${publication}`,
  ];
  const child: ChildProcess = spawn(bin, args, { env: { ...process.env, PGPASSWORD: decodeURIComponent(u.password) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const state = { outBytes: 0, firstUs: 0, lastUs: 0, cpu: 0 };
  child.stdout!.on('data', (d: Buffer) => {
    state.lastUs = nowUs();
    if (state.firstUs === 0) state.firstUs = state.lastUs;
    state.outBytes += d.length;
  });
  const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const cpuSeconds = () => {
    const c = procCpuSeconds(child.pid ?? -1);
    if (Number.isFinite(c)) state.cpu = c;
    return state.cpu;
  };
  return {
    pid: child.pid ?? -1,
    get outBytes() {
      return state.outBytes;
    },
    get firstUs() {
      return state.firstUs;
    },
    get lastUs() {
      return state.lastUs;
    },
    cpuSeconds,
    async settle(quietMs, capMs) {
      const deadline = Date.now() + capMs;
      for (let i = 0; i < 100_000 && Date.now() < deadline; i++) {
        cpuSeconds();
        if (child.exitCode !== null) throw new Error(`pg_recvlogical exited early (${child.exitCode}): ${stderr.trim()}`);
        if (state.lastUs > 0 && nowUs() - state.lastUs >= quietMs * 1000) return true;
        await new Promise((r) => setTimeout(r, 5));
      }
      return false;
    },
    async stop() {
      cpuSeconds();
      if (child.exitCode === null) child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      const code = await closed;
      clearTimeout(timer);
      return code;
    },
  };
}
