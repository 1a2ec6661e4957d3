import net from 'node:net';
import os from 'node:os';
import { Args } from '../lib/args.js';
import { Child } from '../lib/child.js';
import { runBench } from '../lib/main.js';
import { f, machine, table } from '../lib/report.js';
import { sleep } from '../lib/time.js';

/**
 * How a batch of Postgres Changes frames is best written to the N members of a group with uWebSockets.js: one
 * `app.publish` per frame (what the LISTEN/NOTIFY forwarder does per notification, and what Performer did for every
 * batch) or one cork per socket with a `ws.send` per frame, for batches of 1 to 300 frames per loop turn. Measures
 * the server's CPU time per delivered frame (user and kernel) until every byte reached the N raw TCP clients (this
 * process, which only counts bytes). Strategies alternate within each repetition; the median is reported.
 *
 *   node --import tsx bench/changes/fanout-batch.ts [--n=100] [--bytes=545] [--batches=1,10,30,33,100,300] [--reps=5]
 *        [--strategies=publish,cork,cork-16k,cork-text] (see fanout-batch-server.ts; ratios are to the first)
 *
 * Used for the pacing of src/channels/changes-fanout.ts (TURN_MAX_FRAMES and the cork buffer bound).
 */
const args = new Args();
const n = args.number('n', 100);
const bytes = args.number('bytes', 545);
const batches = args.numbers('batches', [1, 10, 30, 33, 100, 300]);
const reps = args.number('reps', 5);
const strategies = args.list('strategies') ?? ['publish', 'cork', 'cork-16k', 'cork-text'];

let server: Child | null = null;
const clients: net.Socket[] = [];

async function main(): Promise<void> {
  server = new Child('fanout-batch-server', 'bench/changes/fanout-batch-server.ts', { plain: true });
  const port = Number((await server.ready).port);
  let received = 0;
  let target = Infinity;
  let reached: (() => void) | null = null;
  for (let i = 0; i < n; i++) {
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
      let upgraded = false;
      socket.on('error', reject);
      socket.on('connect', () =>
        socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'),
      );
      socket.on('data', (data: Buffer) => {
        let chunk = data;
        if (!upgraded) {
          upgraded = true;
          chunk = chunk.subarray(chunk.indexOf('\r\n\r\n') + 4);
          resolve();
        }
        received += chunk.length;
        if (received >= target && reached) {
          const done = reached;
          reached = null;
          done();
        }
      });
      clients.push(socket);
    });
  }
  await sleep(300);
  // A server frame of 126..65535 bytes has a 4-byte header.
  const frameBytes = bytes + (bytes < 126 ? 2 : 4);
  const results = new Map<string, { us: number; sys: number }[]>();
  console.log(`fan-out of a batch: ${machine()}; N=${n}, ${bytes} B frames; load average ${f(os.loadavg()[0]!, 1)}`);
  for (let rep = 0; rep < reps; rep++) {
    for (const batch of batches) {
      for (const strategy of rep % 2 === 0 ? strategies : [...strategies].reverse()) {
        const total = Math.max(batch * 20, batch >= 10 ? 20_000 : 5000);
        received = 0;
        target = n * total * frameBytes;
        const done = new Promise<void>((resolve) => (reached = resolve));
        await server.call('run', { strategy, total, batch, bytes });
        await done;
        const cpu = await server.call('cpu');
        const per = (Number(cpu.userUs) + Number(cpu.systemUs)) / (n * total);
        const list = results.get(`${batch}|${strategy}`) ?? [];
        list.push({ us: per, sys: Number(cpu.systemUs) / (n * total) });
        results.set(`${batch}|${strategy}`, list);
        await sleep(100);
      }
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const rows = batches.map((batch) => {
    const pm = med(results.get(`${batch}|${strategies[0]}`)!.map((x) => x.us));
    return [
      String(batch),
      ...strategies.map((strategy) => {
        const r = results.get(`${batch}|${strategy}`)!;
        const m = med(r.map((x) => x.us));
        return `${f(m, 3)} (kernel ${f(med(r.map((x) => x.sys)), 3)})${strategy === strategies[0] ? '' : `, ${f(m / pm, 2)}x`}`;
      }),
    ];
  });
  console.log(`\nserver µs CPU per delivered frame, median of ${reps}; ratios to ${strategies[0]}; load average at the end ${f(os.loadavg()[0]!, 1)}\n`);
  console.log(table(['frames per batch', ...strategies], rows));
}

async function cleanup(): Promise<void> {
  for (const c of clients) c.destroy();
  await server?.stop().catch(() => undefined);
}

runBench('fanout-batch', main, { hardLimitMs: 600_000, cleanup });
