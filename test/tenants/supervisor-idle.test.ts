import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { TenantSupervisor, type RunningChild } from '../../src/tenants/supervisor.js';
import type { TenantRuntime } from '../../src/tenants/tenant.js';
import { until } from '../support/channels.js';

const log = createLogger('silent');
const supervisors: TenantSupervisor[] = [];
afterEach(async () => {
  for (const s of supervisors.splice(0)) await s.stop();
});

/** The parts of a runtime the supervisor touches: its sockets, its log, its fault hook and its stop. */
function runtime() {
  const state = { sockets: new Set<unknown>(), log, onFault: null as unknown, stopped: false };
  return Object.assign(state, { stop: async () => void (state.stopped = true) });
}

function supervise(rt: ReturnType<typeof runtime>, childStarts: Promise<RunningChild>) {
  const stopped: string[] = [];
  const sup = new TenantSupervisor(rt as unknown as TenantRuntime, { backoffMinMs: 50, backoffMaxMs: 100, idleStopMs: 100, idleCheckMs: 20 }, () => stopped.push('stopped'));
  sup.supervise({ name: 'slow', start: () => childStarts });
  supervisors.push(sup);
  return { sup, stopped };
}

const running: RunningChild = { exited: new Promise(() => undefined), stop: async () => undefined };

describe('tenant supervisor: idle stop', () => {
  it('does not stop a tenant whose start takes longer than the idle period, and counts idle time from when it is up', async () => {
    const rt = runtime();
    let finishStart!: (c: RunningChild) => void;
    const { sup, stopped } = supervise(rt, new Promise((resolve) => (finishStart = resolve)));
    // Five idle periods while starting, with no socket yet (its connection is still being let in).
    await new Promise((r) => setTimeout(r, 500));
    expect([sup.state, stopped]).toEqual(['starting', []]);
    finishStart(running);
    await until(() => sup.state === 'ready', 2000, 'the tenant to be up');
    // Up with no sockets: stopped once an idle period has passed.
    await until(() => stopped.length === 1, 2000, 'the idle stop');
    expect(rt.stopped).toBe(true);
  });

  it('keeps a tenant with a socket, and stops it an idle period after the last one left', async () => {
    const rt = runtime();
    const { sup, stopped } = supervise(rt, Promise.resolve(running));
    rt.sockets.add('a socket');
    await until(() => sup.state === 'ready', 2000, 'the tenant to be up');
    await new Promise((r) => setTimeout(r, 400));
    expect(stopped).toEqual([]);
    rt.sockets.clear();
    await until(() => stopped.length === 1, 2000, 'the idle stop');
  });
});
