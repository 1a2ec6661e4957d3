/**
 * Deployed code made ready to run, once per version on this node: a WebAssembly module with the memory cap written
 * into it and compiled (off the event loop, by V8's background compiler), or a script's text. Versions never change,
 * so an entry is valid until evicted; the least recently used go first past `capacity`.
 */
import { capMemory, importMemory, WASM_PAGE_BYTES } from './wasm-binary.js';

export type ReadyCode =
  /** `memory`: the module imports its memory (see importMemory), of these limits in pages. */
  | { kind: 'wasm'; module: WebAssembly.Module; memory: { initial: number; maximum: number } | null }
  | { kind: 'js'; source: string }
  /** The version cannot start: boot for a module that does not compile, limit for one over the memory cap. */
  | { kind: 'failed'; outcome: 'boot' | 'limit'; message: string };

export class CodeCache {
  private readonly entries = new Map<string, Promise<ReadyCode>>();
  /** The entries already prepared, so a warm invocation takes its code without waiting on a promise. */
  private readonly settled = new Map<string, ReadyCode>();

  constructor(private readonly capacity: number) {}

  /** The prepared code of a version when it is ready (and still cached), else undefined. */
  ready(versionId: string): ReadyCode | undefined {
    const code = this.settled.get(versionId);
    const entry = this.entries.get(versionId);
    if (code && entry) {
      // Most recently used now.
      this.entries.delete(versionId);
      this.entries.set(versionId, entry);
    }
    return code;
  }

  get(versionId: string, kind: 'wasm' | 'js', memoryBytes: number, load: () => Promise<Buffer | null>): Promise<ReadyCode> {
    const cached = this.entries.get(versionId);
    if (cached) {
      this.entries.delete(versionId);
      this.entries.set(versionId, cached);
      return cached;
    }
    const ready = load().then((code) => prepare(code, kind, memoryBytes));
    this.entries.set(versionId, ready);
    ready.then(
      (code) => {
        if (this.entries.get(versionId) === ready) this.settled.set(versionId, code);
      },
      // A failed load (the database) is not remembered: the next invocation tries again.
      () => this.entries.delete(versionId),
    );
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
      this.settled.delete(oldest);
    }
    return ready;
  }
}

async function prepare(code: Buffer | null, kind: 'wasm' | 'js', memoryBytes: number): Promise<ReadyCode> {
  if (code === null) return { kind: 'failed', outcome: 'boot', message: 'the version was removed' };
  if (kind === 'js') return { kind: 'js', source: code.toString('utf8') };
  const capped = capMemory(code, Math.max(1, Math.floor(memoryBytes / WASM_PAGE_BYTES)));
  if (!capped.ok) return { kind: 'failed', outcome: capped.reason === 'initial_over_cap' ? 'limit' : 'boot', message: capped.message };
  try {
    const imported = importMemory(capped.bytes);
    if (imported) return { kind: 'wasm', module: await WebAssembly.compile(imported.bytes), memory: { initial: imported.initial, maximum: imported.maximum } };
    return { kind: 'wasm', module: await WebAssembly.compile(capped.bytes), memory: null };
  } catch (err) {
    return { kind: 'failed', outcome: 'boot', message: `compile failed: ${err instanceof Error ? err.message : String(err)}` };
  }
}
