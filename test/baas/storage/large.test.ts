/**
 * A 200 MB upload and download through a Performer process whose memory stays flat: the bytes stream from the
 * socket to the disk and back, never held whole. The process's resident set is sampled from /proc all along; its
 * peak may grow by far less than the object's size.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { signHs256 } from '../../../src/auth/jwt.js';
import { findFreePort } from '../../../src/db/embedded-postgres.js';
import { killHard, startPerformerProcess } from '../../support/performer-process.js';
import { createTestDatabase, type TestDatabase } from '../../support/postgres.js';
import { TEST_SECRET } from '../../support/server.js';

const SIZE = 200 * 1024 * 1024;
const CHUNK = 1024 * 1024;
/** Generous against a 200 MB object: buffers in flight, GC slack, the first TLS-free request's allocations. */
const MAX_GROWTH_BYTES = 80 * 1024 * 1024;

let child: ChildProcess | null = null;
let db: TestDatabase | null = null;
let dataDir = '';
afterAll(async () => {
  if (child) await killHard(child);
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

async function rss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

/** Samples the process's RSS every few ms while `work` runs; the peak. */
async function peakRss(pid: number, work: () => Promise<void>): Promise<number> {
  let peak = await rss(pid);
  let running = true;
  const sampler = (async () => {
    while (running) {
      peak = Math.max(peak, await rss(pid).catch(() => 0));
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  try {
    await work();
  } finally {
    running = false;
    await sampler;
  }
  return peak;
}

function pattern(i: number): Buffer {
  return Buffer.alloc(CHUNK, i % 256);
}

describe('a 200 MB object', () => {
  it('uploads and downloads with the server memory flat', async () => {
    db = await createTestDatabase('storagebig');
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'performer-storage-big-'));
    await chmod(dataDir, 0o755);
    const port = await findFreePort();
    child = await startPerformerProcess(port, db.url, dataDir, { STORAGE_FILE_SIZE_LIMIT: String(SIZE + 1) });
    const pid = child.pid!;
    const base = `http://127.0.0.1:${port}/storage/v1`;
    const key = await signHs256({ role: 'service_role', exp: Math.floor(Date.now() / 1000) + 3600 }, TEST_SECRET);
    const headers = { apikey: key, authorization: `Bearer ${key}` };
    const created = await fetch(`${base}/bucket`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: '{"name":"big"}' });
    expect(created.status).toBe(200);
    // Warm up the paths once, then take the baseline.
    await fetch(`${base}/object/big/warm`, { method: 'POST', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(CHUNK) });
    await (await fetch(`${base}/object/big/warm`, { headers })).arrayBuffer();
    const baseline = await rss(pid);

    const sent = createHash('md5');
    const uploadPeak = await peakRss(pid, async () => {
      let i = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (i * CHUNK >= SIZE) return controller.close();
          const chunk = pattern(i++);
          sent.update(chunk);
          controller.enqueue(chunk);
        },
      });
      const res = await fetch(`${base}/object/big/blob.bin`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(SIZE) },
        body,
        duplex: 'half',
      } as RequestInit);
      expect(res.status).toBe(200);
      await res.text();
    });

    const received = createHash('md5');
    let length = 0;
    const downloadPeak = await peakRss(pid, async () => {
      const res = await fetch(`${base}/object/big/blob.bin`, { headers });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-length')).toBe(String(SIZE));
      // Read slowly at first, so the server must hold back rather than buffer the file.
      const reader = res.body!.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received.update(value);
        length += value.length;
        if (length < 20 * CHUNK) await new Promise((r) => setTimeout(r, 2));
      }
    });
    expect(length).toBe(SIZE);
    expect(received.digest('hex')).toBe(sent.digest('hex'));
    console.log(`storage 200 MB: RSS baseline ${mb(baseline)} MB, upload peak ${mb(uploadPeak)} MB, download peak ${mb(downloadPeak)} MB`);
    expect(uploadPeak - baseline).toBeLessThan(MAX_GROWTH_BYTES);
    expect(downloadPeak - baseline).toBeLessThan(MAX_GROWTH_BYTES);
  }, 180_000);
});

function mb(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}
