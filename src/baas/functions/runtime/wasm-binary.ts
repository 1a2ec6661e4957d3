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

/** Where a module whose memory was turned into an import finds it. */
export const MEMORY_IMPORT = { module: 'performer', name: 'memory' } as const;

export interface ImportedMemory {
  bytes: Uint8Array;
  initial: number;
  maximum: number;
}

/**
 * Turns the one memory a module defines (capped already, so it has a maximum) into an import of the same limits,
 * index and exports, so the host can hand each instance a memory it keeps: creating a WebAssembly memory costs far
 * more than instantiating a compiled module (V8 reserves its guard regions every time), and a zeroed memory of the
 * initial size is as fresh as a new one. Null when the module imports anything memory-like or has no single memory.
 */
export function importMemory(module: Uint8Array): ImportedMemory | null {
  try {
    return importMemoryOrThrow(module);
  } catch {
    return null;
  }
}

function importMemoryOrThrow(module: Uint8Array): ImportedMemory | null {
  const sections: { id: number; start: number; payloadStart: number; end: number }[] = [];
  const r = new Reader(module, 8);
  while (r.at < module.length) {
    const start = r.at;
    const id = r.byte();
    const size = r.u32();
    sections.push({ id, start, payloadStart: r.at, end: r.at + size });
    r.at += size;
  }
  const memory = sections.filter((s) => s.id === 5);
  if (memory.length !== 1) return null;
  const m = new Reader(module, memory[0].payloadStart);
  if (m.u32() !== 1) return null;
  const flags = m.byte();
  if (flags !== 1) return null;
  const initial = m.u32();
  const maximum = m.u32();
  const entry = [
    ...encodeU32(MEMORY_IMPORT.module.length), ...Buffer.from(MEMORY_IMPORT.module),
    ...encodeU32(MEMORY_IMPORT.name.length), ...Buffer.from(MEMORY_IMPORT.name),
    0x02, 0x01, ...encodeU32(initial), ...encodeU32(maximum),
  ];
  const importSection = sections.find((s) => s.id === 2);
  let importPayload: number[];
  if (importSection) {
    const ir = new Reader(module, importSection.payloadStart);
    const count = ir.u32();
    const entriesStart = ir.at;
    // An imported memory already would make two: leave such a module as it is.
    for (let i = 0; i < count; i++) {
      for (let name = 0; name < 2; name++) {
        const length = ir.u32();
        ir.at += length;
      }
      const kind = ir.byte();
      if (kind === 0x02) return null;
      if (kind === 0x00) ir.u32();
      else if (kind === 0x01) {
        ir.byte();
        const f = ir.byte();
        ir.u32();
        if (f & 1) ir.u32();
      } else if (kind === 0x03) {
        ir.byte();
        ir.byte();
      } else if (kind === 0x04) {
        ir.byte();
        ir.u32();
      } else return null;
    }
    importPayload = [...encodeU32(count + 1), ...module.subarray(entriesStart, importSection.end), ...entry];
  } else {
    importPayload = [1, ...entry];
  }
  const importBytes = [2, ...encodeU32(importPayload.length), ...importPayload];
  const parts: Uint8Array[] = [module.subarray(0, 8)];
  let placed = false;
  for (const s of sections) {
    if (!placed && s.id !== 0 && s.id !== 1 && s.id !== 2) {
      parts.push(Uint8Array.from(importBytes));
      placed = true;
    }
    if (s.id === 2 || s.id === 5) continue;
    parts.push(module.subarray(s.start, s.end));
  }
  if (!placed) parts.push(Uint8Array.from(importBytes));
  return { bytes: Buffer.concat(parts), initial, maximum };
}
