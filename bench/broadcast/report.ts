import { compareTable } from '../lib/compare.js';
import { check, f0, f1, f2, f3, size, table } from './format.js';
import type { MemoryRow } from './memory.js';
import type { Options } from './options.js';
import type { CeilingRow, ClosedRow, IdleRow, Load, OpenRow } from './rows.js';

export interface Results {
  machine: string;
  options: Options;
  ceiling: CeilingRow[];
  /** Repetitions merged (the tables); `closedRuns` keeps every repetition of the paired systems (the before/after table). */
  closed: ClosedRow[];
  closedRuns: ClosedRow[];
  open: OpenRow[];
  idle: IdleRow[];
  sioClient: ClosedRow[];
  memory: MemoryRow[];
}

export const TARGETS = {
  deliveriesVsUws: 0.8,
  cpuPerDeliveryVsUws: 1.25,
  deliveriesVsSocketio: 8,
  p99VsUws: 1.5,
  idleBytesPerSocket: 4096,
};

const SYSTEM_ORDER = ['uws', 'performer', 'socketio'];
function bySystem(a: { n: number; payload: number; system: string }, b: { n: number; payload: number; system: string }): number {
  const order = (s: string) => (s.startsWith('performer@') ? 1.5 : SYSTEM_ORDER.indexOf(s));
  return a.n - b.n || a.payload - b.payload || order(a.system) - order(b.system);
}

/** The markdown report of a run: tables per row kind, then the ratios against the peers and the targets. */
export function report(r: Results): string {
  const out: string[] = [];
  if (r.ceiling.length) {
    out.push('### Generator ceiling (raw client vs a frame blaster, no server work)', '');
    out.push(
      table(
        ['connections', 'payload', 'deliveries/s', 'generator CPU %', 'blaster CPU %'],
        r.ceiling.map((c) => [f0(c.connections), size(c.payload), f0(c.deliveriesPerSec), c.genPcts.map(f0).join(' / '), f0(c.blasterPct)]),
      ),
      '',
    );
  }
  out.push(`### Closed loop (one sender, ${r.options.window} messages in flight, ${r.options.closedMs / 1000} s)`, '');
  out.push(
    table(
      ['system', 'N', 'payload', 'msg/s', 'deliveries/s', 'server CPU %', 'µs CPU/delivery', 'frames/read', 'gen+sender CPU %', 'other %', 'peak RSS MB', 'lost', 'saturated', 'reps: spread'],
      [...[...r.closed].sort(bySystem), ...r.sioClient].map((c) => [
        c.system,
        f0(c.n),
        size(c.payload),
        f0(c.msgsPerSec),
        f0(c.deliveriesPerSec),
        f0(c.serverPct),
        f3(c.cpuUsPerDelivery),
        f2(c.framesPerRead),
        c.genPcts.map(f0).join(' / '),
        f0(c.otherPct),
        f0(c.peakRssMb),
        f0(c.loss),
        c.saturated,
        `${c.reps ?? 1}${c.spread ? `: ${c.spread}` : ''}`,
      ]),
    ),
    '',
  );
  out.push(`### Open loop (same rate for every system, ${r.options.openMs / 1000} s; latency sampled at the receivers)`, '');
  out.push(
    table(
      ['system', 'N', 'payload', 'load', 'msg/s', 'deliveries/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'server CPU s', 'server CPU %', 'µs CPU/delivery', 'gen+sender CPU %', 'other %', 'peak RSS MB', 'lost', 'samples', 'reps: spread'],
      [...r.open].sort((a, b) => a.load.localeCompare(b.load) || bySystem(a, b)).map((o) => [
        o.system,
        f0(o.n),
        size(o.payload),
        o.load,
        f0(o.rate),
        f0(o.deliveriesPerSec),
        f2(o.p50Ms),
        f2(o.p99Ms),
        f2(o.p999Ms),
        f2(o.maxMs),
        f2(o.serverCpuS),
        f0(o.serverPct),
        f3(o.cpuUsPerDelivery),
        o.genPcts.map(f0).join(' / '),
        f0(o.otherPct),
        f0(o.peakRssMb),
        f0(o.loss),
        f0(o.samples),
        `${o.reps ?? 1}${o.spread ? `: ${o.spread}` : ''}`,
      ]),
    ),
    '',
  );
  if (r.memory.length) out.push(...memoryTables(r));
  if (r.idle.length) {
    out.push('### Memory per idle joined socket, no traffic (connect + join, 1.5 s, forced GCs; the target is judged after traffic, above)', '');
    if (r.options.idleSockets < 10_000) {
      out.push(`(${f0(r.options.idleSockets)} sockets: one-off heap growth dominates at this count; the target is defined at 10,000)`, '');
    }
    out.push(
      table(
        ['system', 'sockets', 'RSS before MB', 'RSS after MB', 'RSS bytes/socket', 'marginal RSS bytes/socket', 'JS heap used bytes/socket', 'JS heap committed bytes/socket'],
        r.idle.map((i) => [
          i.system,
          f0(i.sockets),
          f1(i.rssBeforeMb),
          f1(i.rssAfterMb),
          f0(i.bytesPerSocket),
          f0(i.marginalBytesPerSocket),
          f0(i.heapBytesPerSocket),
          f0(i.heapCommittedBytesPerSocket),
        ]),
      ),
      '',
    );
  }
  for (const i of r.idle) {
    if (!i.heapTop?.length) continue;
    out.push(`### ${i.system}: JS heap per idle joined socket, by object (heap snapshot diff at ${f0(i.sockets)} sockets)`, '');
    out.push(table(['object (type:name)', 'objects/socket', 'bytes/socket'], i.heapTop.map((e) => [e.key, f2(e.perSocket), f0(e.bytesPerSocket)])), '');
  }
  out.push(...ratios(r, 'uws'), ...ratios(r, 'socketio'), ...beforeAfter(r));
  return out.join('\n');
}

const mb = (bytes: number) => f1(bytes / 2 ** 20);
const physical = (p: MemoryRow['before'], name: string) => p.spaces.find((x) => x.name === name)?.physical ?? NaN;
const v8Committed = (p: MemoryRow['before']) => p.spaces.reduce((a, x) => a + x.physical, 0);

/** Memory per idle joined socket after a broadcast load phase: the figure, then where its bytes are. */
function memoryTables(r: Results): string[] {
  const rows = r.memory;
  const settle = rows[0].settleS;
  const per = (row: MemoryRow, bytes: number) => f0(bytes / row.sockets);
  return [
    `### Memory per idle joined socket after traffic (connect + join, broadcast load, ${settle} s idle; RSS as it is, no GC forced)`,
    '',
    rows[0].sockets < 10_000 ? `(${f0(rows[0].sockets)} sockets: one-off growth dominates at this count; the target is defined at 10,000)\n` : '',
    table(
      ['system', 'node flags', 'sockets', 'RSS before MB', 'joined MB', `after load + ${settle} s MB`, `RSS bytes/socket after load + ${settle} s`, `target <= ${TARGETS.idleBytesPerSocket}`, 'at 0 s / 5 s of idle', 'joined, before load', 'after a forced GC', 'load deliveries/s (payloads)'],
      rows.map((m) => [
        m.system,
        m.flags || '(none)',
        f0(m.sockets),
        f1(m.before.rssKb / 1024),
        f1(m.joined.rssKb / 1024),
        f1(m.settled.rssKb / 1024),
        f0(m.bytesPerSocket),
        m.system.startsWith('performer') ? check(m.bytesPerSocket, TARGETS.idleBytesPerSocket, false) : '',
        [0, 5].map((s) => (m.idleRssKb[s] === undefined ? '-' : f0(((m.idleRssKb[s] - m.before.rssKb) * 1024) / m.sockets))).join(' / '),
        f0(m.joinedBytesPerSocket),
        f0(m.gcBytesPerSocket),
        m.load.map((l) => `${f0(l.deliveriesPerSec)} (${size(l.payload)})`).join(', '),
      ]),
    ),
    '',
    `Where the bytes are, per socket (growth from before the first connection to after load + ${settle} s idle; "live" after the forced GC):`,
    '',
    table(
      ['system', 'V8 new space', 'V8 old space', 'V8 large objects + code', 'JS heap live (after GC)', 'malloc heap (brk)', 'other anonymous', 'file-backed', 'RSS idle after load, each second (MB)'],
      rows.map((m) => {
        const b = m.before;
        const s = m.settled;
        const newB = physical(s, 'new_space') - physical(b, 'new_space');
        const oldB = physical(s, 'old_space') - physical(b, 'old_space');
        const restV8 = v8Committed(s) - v8Committed(b) - newB - oldB;
        const anonNonV8 = (s.maps.anonKb - b.maps.anonKb) * 1024 - (v8Committed(s) - v8Committed(b));
        return [
          m.system,
          per(m, newB),
          per(m, oldB),
          per(m, restV8),
          per(m, m.gc.heapUsed - b.heapUsed),
          per(m, (s.maps.brkKb - b.maps.brkKb) * 1024),
          per(m, anonNonV8),
          per(m, (s.maps.fileKb - b.maps.fileKb) * 1024),
          m.idleRssKb.map((kb) => f1(kb / 1024)).join(' '),
        ];
      }),
    ),
    '',
    `V8 spaces at the figure (physical MB): ${rows.map((m) => `${m.system}: new ${mb(physical(m.settled, 'new_space'))}, old ${mb(physical(m.settled, 'old_space'))} (${mb(m.gc.heapUsed)} MB of heap live after the GC)`).join('; ')}.`,
    '',
    `Per system over its repetitions (each a fresh server): ${memoryRanges(rows)}.`,
    '',
    `Target (<= ${TARGETS.idleBytesPerSocket} B per idle joined socket after traffic, every repetition): ${[...new Set(rows.map((m) => m.system))]
      .filter((x) => x.startsWith('performer'))
      .map((x) => `${x} ${check(Math.max(...rows.filter((m) => m.system === x).map((m) => m.bytesPerSocket)), TARGETS.idleBytesPerSocket, false)}`)
      .join(', ')}.`,
    '',
  ];
}

function memoryRanges(rows: MemoryRow[]): string {
  const systems = [...new Set(rows.map((m) => m.system))];
  return systems
    .map((system) => {
      const v = rows.filter((m) => m.system === system).map((m) => m.bytesPerSocket);
      return `${system} ${f0(Math.min(...v))}-${f0(Math.max(...v))} B (${v.length})`;
    })
    .join('; ');
}

/**
 * This tree's Performer against the one built at `--compare` (same run, rows alternated): per configuration each
 * build's median and range over the repetitions, and the change of the medians.
 */
function beforeAfter(r: Results): string[] {
  const before = `performer@${r.options.compare}`;
  if (!r.options.compare) return [];
  const o = { system: (x: { system: string }) => x.system, after: 'performer', before };
  return [
    `### Before / after: performer vs ${before} (same run, rows alternated; median (min-max, repetitions))`,
    '',
    compareTable(r.closedRuns, {
      ...o,
      config: (x) => `closed loop N=${f0(x.n)} ${size(x.payload)}`,
      measures: [
        { name: 'deliveries/s', of: (x) => x.deliveriesPerSec, digits: 0 },
        { name: 'µs CPU/delivery', of: (x) => x.cpuUsPerDelivery, digits: 3 },
        { name: 'outside load, % of a core', of: (x) => x.otherPct, digits: 0, context: true },
      ],
    }),
    '',
    compareTable(
      [
        ...r.idle.map((x) => ({ system: x.system, kind: 'no traffic', rss: x.bytesPerSocket, heap: x.heapBytesPerSocket })),
        ...r.memory.map((x) => ({ system: x.system, kind: `after traffic + ${x.settleS} s idle`, rss: x.bytesPerSocket, heap: (x.gc.heapUsed - x.before.heapUsed) / x.sockets })),
      ],
      {
        ...o,
        config: (x) => `idle joined socket, ${x.kind}`,
        measures: [
          { name: 'RSS bytes/socket', of: (x) => x.rss, digits: 0 },
          { name: 'JS heap live bytes/socket (after GC)', of: (x) => x.heap, digits: 0 },
        ],
      },
    ),
    '',
  ];
}

function ratios(r: Results, other: 'uws' | 'socketio'): string[] {
  const find = <T extends { system: string; n: number; payload: number }>(rows: T[], system: string, n: number, payload: number, pick: (x: T) => boolean = () => true) =>
    rows.find((x) => x.system === system && x.n === n && x.payload === payload && pick(x));
  const rows: string[][] = [];
  const cell = (v: number, target: number | null, higherIsBetter = false) => (target === null ? f2(v) : `${f2(v)} (${check(v, target, higherIsBetter)})`);
  for (const n of r.options.ns) {
    for (const payload of r.options.payloads) {
      const pc = find(r.closed, 'performer', n, payload);
      const oc = find(r.closed, other, n, payload);
      if (!pc || !oc) continue;
      const open = (load: Load) => {
        const po = find(r.open, 'performer', n, payload, (x) => x.load === load);
        const oo = find(r.open, other, n, payload, (x) => x.load === load);
        return po && oo ? { cpu: po.cpuUsPerDelivery / oo.cpuUsPerDelivery, p99: po.p99Ms / oo.p99Ms } : { cpu: NaN, p99: NaN };
      };
      const common = open('common');
      const dRatio = pc.deliveriesPerSec / oc.deliveriesPerSec;
      const cpuClosed = pc.cpuUsPerDelivery / oc.cpuUsPerDelivery;
      if (other === 'uws') {
        const high = open('high');
        rows.push([
          f0(n),
          size(payload),
          cell(dRatio, TARGETS.deliveriesVsUws, true),
          cell(cpuClosed, TARGETS.cpuPerDeliveryVsUws),
          cell(high.cpu, TARGETS.cpuPerDeliveryVsUws),
          cell(high.p99, TARGETS.p99VsUws),
          cell(common.cpu, TARGETS.cpuPerDeliveryVsUws),
          cell(common.p99, TARGETS.p99VsUws),
        ]);
      } else {
        rows.push([f0(n), size(payload), cell(dRatio, TARGETS.deliveriesVsSocketio, true), cell(cpuClosed, null), cell(common.cpu, null), cell(common.p99, null)]);
      }
    }
  }
  if (rows.length === 0) return [];
  const pair = (rows: { system: string; bytesPerSocket: number }[]) => [rows.find((i) => i.system === 'performer'), rows.find((i) => i.system === other)];
  const afterTraffic = pair(r.memory).every(Boolean);
  const [pm, om] = afterTraffic ? pair(r.memory) : pair(r.idle);
  const what = afterTraffic ? 'memory per idle joined socket after traffic' : 'memory per idle joined socket (no traffic)';
  const mem = pm && om ? `${what}: Performer ${f0(pm.bytesPerSocket)} B vs ${f0(om.bytesPerSocket)} B = ${f2(pm.bytesPerSocket / om.bytesPerSocket)}x` : '';
  if (other === 'uws') {
    return [
      '### Performer / bare uWS (ratios; target in brackets)',
      '',
      table(
        [
          'N',
          'payload',
          `deliveries/s (>= ${TARGETS.deliveriesVsUws})`,
          `CPU/delivery closed loop (<= ${TARGETS.cpuPerDeliveryVsUws})`,
          `CPU/delivery high load (<= ${TARGETS.cpuPerDeliveryVsUws})`,
          `p99 high load (<= ${TARGETS.p99VsUws})`,
          'CPU/delivery common load',
          'p99 common load',
        ],
        rows,
      ),
      '',
      mem,
      '',
    ];
  }
  return [
    '### Performer / socket.io (ratios)',
    '',
    table(['N', 'payload', `deliveries/s (>= ${TARGETS.deliveriesVsSocketio})`, 'CPU/delivery closed loop', 'CPU/delivery common load', 'p99 common load'], rows),
    '',
    mem,
    '',
  ];
}
