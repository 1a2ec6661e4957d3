/** An upload that dies half-way leaves no row, no blob and no temp file, raw or multipart, and the server goes on. */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStorageWorld, type StorageBackendKind, type StorageWorld } from './support.js';

/** The suite, run against each blob backend by its own test file. */
export function storageAborts(backend: StorageBackendKind): void {
  let w: StorageWorld;
  beforeAll(async () => {
    w = await startStorageWorld({ STORAGE_FILE_SIZE_LIMIT: String(64 * 1024 * 1024) }, '', backend);
    await w.svc.storage.createBucket('up');
  }, 60_000);
  afterAll(async () => w?.stop());

  /** Sends the head and `sent` bytes of a body announced as `announced`, waits until the server wrote some, then drops. */
  async function dropMidUpload(path: string, contentType: string, prefix: Buffer, announced: number, sent: number): Promise<void> {
    const socket = connect(w.t.port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.write(
      `POST /storage/v1${path} HTTP/1.1\r\nhost: 127.0.0.1\r\napikey: ${w.t.serviceKey}\r\nauthorization: Bearer ${w.t.serviceKey}\r\n` +
        `content-type: ${contentType}\r\ncontent-length: ${announced}\r\n\r\n`,
    );
    socket.write(prefix);
    const chunk = Buffer.alloc(64 * 1024, 7);
    for (let n = 0; n < sent; n += chunk.length) socket.write(chunk);
    // Wait until part of the body reached the backend (a temp file, or a first multipart part).
    await until(() => w.uploadsInFlight(), 'bytes at the backend');
    socket.destroy();
  }

  async function until(check: () => Promise<boolean>, what: string): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`gave up waiting for ${what}`);
  }

  async function nothingLeft(name: string): Promise<void> {
    await until(async () => (await w.files()).length === 0, 'the temp file to go');
    const { rows } = await w.admin.query('select 1 from storage.objects where name = $1', [name]);
    expect(rows).toEqual([]);
  }

  describe('an upload cut off half-way', () => {
    it('raw: nothing is left', async () => {
      await dropMidUpload('/object/up/raw.bin', 'application/octet-stream', Buffer.alloc(0), 32 * 1024 * 1024, 8 * 1024 * 1024);
      await nothingLeft('raw.bin');
    });

    it('multipart: nothing is left', async () => {
      const boundary = 'XyZ';
      const head = Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="cacheControl"\r\n\r\n3600\r\n--${boundary}\r\ncontent-disposition: form-data; name=""; filename="f.bin"\r\ncontent-type: application/octet-stream\r\n\r\n`);
      await dropMidUpload('/object/up/multi.bin', `multipart/form-data; boundary=${boundary}`, head, 32 * 1024 * 1024, 8 * 1024 * 1024);
      await nothingLeft('multi.bin');
    });

    it('a drop right after the headers, while the upload is still being checked, breaks nothing', async () => {
      for (let i = 0; i < 5; i++) {
        const socket = connect(w.t.port, '127.0.0.1');
        await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
        socket.write(
          `POST /storage/v1/object/up/early-${i}.bin HTTP/1.1\r\nhost: 127.0.0.1\r\napikey: ${w.t.serviceKey}\r\nauthorization: Bearer ${w.t.serviceKey}\r\n` +
            `content-type: application/octet-stream\r\ncontent-length: 1000000\r\n\r\nabc`,
        );
        socket.destroy();
      }
      await until(async () => (await w.files()).length === 0, 'no temp file');
    });

    it('the server takes the next upload as usual', async () => {
      expect((await w.svc.storage.from('up').upload('after.txt', 'fine', { contentType: 'text/plain' })).error).toBeNull();
      expect(await (await w.svc.storage.from('up').download('after.txt')).data!.text()).toBe('fine');
    });

    it('a body past the size limit is cut at the limit and leaves nothing', async () => {
      // Chunked, so no Content-Length announces it: the meter stops it.
      const big = new ReadableStream({
        start(controller) {
          const chunk = new Uint8Array(1024 * 1024);
          for (let i = 0; i < 80; i++) controller.enqueue(chunk);
          controller.close();
        },
      });
      const res = await w.raw('/object/up/huge.bin', { method: 'POST', headers: { apikey: w.t.serviceKey, authorization: `Bearer ${w.t.serviceKey}`, 'content-type': 'application/octet-stream' }, body: big, duplex: 'half' } as RequestInit).catch(() => null);
      if (res) expect(((await res.json()) as Record<string, unknown>).statusCode).toBe('413');
      const blobs = (await w.files()).filter((f) => !f.includes('/.tmp/'));
      await until(async () => (await w.files()).filter((f) => f.includes('/.tmp/')).length === 0, 'the temp file to go');
      expect((await w.files()).length).toBe(blobs.length);
      const { rows } = await w.admin.query(`select 1 from storage.objects where name = 'huge.bin'`);
      expect(rows).toEqual([]);
    });
  });
}
