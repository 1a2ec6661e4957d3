/**
 * The memory cap of a WebAssembly module, written into the module itself (pure): every memory the module defines
 * gets a maximum of at most `maxPages` 64 KiB pages, so `memory.grow` past the cap fails inside the guest (an
 * allocator then traps) instead of the process growing. V8 does not count WebAssembly memory against a worker's
 * heap limits, so this is the cap that holds. Only the memory section is re-encoded; every other byte is kept.
 */

export const WASM_PAGE_BYTES = 65536;

export type CapResult =
  | { ok: true; bytes: Uint8Array; definesMemory: boolean }
  /** A memory whose initial size is already over the cap, or one the cap cannot be written into. */
  | { ok: false; reason: 'initial_over_cap' | 'unsupported' | 'malformed'; message: string };

class Reader {
  constructor(
    readonly bytes: Uint8Array,
    public at: number,
  ) {}

  byte(): number {
    if (this.at >= this.bytes.length) throw new RangeError('unexpected end of module');
    return this.bytes[this.at++];
  }

  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) break;
      shift += 7;
      if (shift > 35) throw new RangeError('LEB128 too long');
    }
    if (result > 0xffffffff) throw new RangeError('LEB128 out of range');
    return result;
  }
}

export function encodeU32(value: number): number[] {
  const out: number[] = [];
  let v = value;
  do {
    let b = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
}

export function capMemory(module: Uint8Array, maxPages: number): CapResult {
  try {
    return capOrThrow(module, maxPages);
  } catch (err) {
    return { ok: false, reason: 'malformed', message: err instanceof Error ? err.message : String(err) };
  }
}

function capOrThrow(module: Uint8Array, maxPages: number): CapResult {
  if (module.length < 8) throw new RangeError('shorter than a module header');
  const r = new Reader(module, 8);
  while (r.at < module.length) {
    const sectionStart = r.at;
    const id = r.byte();
    const size = r.u32();
    const payloadStart = r.at;
    const payloadEnd = payloadStart + size;
    if (payloadEnd > module.length) throw new RangeError('section runs past the end of the module');
    if (id !== 5) {
      r.at = payloadEnd;
      continue;
    }
    const payload: number[] = [];
    const count = r.u32();
    payload.push(...encodeU32(count));
    for (let i = 0; i < count; i++) {
      const flags = r.byte();
      if (flags > 3) return { ok: false, reason: 'unsupported', message: 'memory64 and custom page sizes are not supported' };
      const min = r.u32();
      const max = flags & 1 ? r.u32() : null;
      if (min > maxPages) {
        return { ok: false, reason: 'initial_over_cap', message: `initial memory of ${min} pages is over the cap of ${maxPages}` };
      }
      payload.push(flags | 1, ...encodeU32(min), ...encodeU32(max === null ? maxPages : Math.min(max, maxPages)));
    }
    if (r.at !== payloadEnd) throw new RangeError('memory section size mismatch');
    const section = [5, ...encodeU32(payload.length), ...payload];
    const out = new Uint8Array(sectionStart + section.length + (module.length - payloadEnd));
    out.set(module.subarray(0, sectionStart), 0);
    out.set(section, sectionStart);
    out.set(module.subarray(payloadEnd), sectionStart + section.length);
    return { ok: true, bytes: out, definesMemory: count > 0 };
  }
  return { ok: true, bytes: module, definesMemory: false };
}
