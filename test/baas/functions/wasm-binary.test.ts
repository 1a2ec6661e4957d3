import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { capMemory, encodeU32, importMemory } from '../../../src/baas/functions/runtime/wasm-binary.js';
import { wat } from './support.js';

/** The limits of the first memory a module defines, as WebAssembly reports them once compiled. */
async function maximumOf(bytes: Uint8Array): Promise<number | null> {
  const instance = new WebAssembly.Instance(await WebAssembly.compile(bytes), {});
  const memory = instance.exports.memory as WebAssembly.Memory;
  let pages = memory.buffer.byteLength / 65536;
  while (memory.grow(0) >= 0 && pages < 70000) {
    try {
      memory.grow(1);
      pages++;
    } catch {
      return pages;
    }
  }
  return null;
}

describe('capMemory', () => {
  it('writes a maximum into a memory without one, lowers a higher one, keeps a lower one (golden)', async () => {
    const none = await wat('(module (memory (export "memory") 1) (func (export "_start")))');
    const capped = capMemory(none, 3);
    expect(capped.ok && capped.definesMemory).toBe(true);
    if (!capped.ok) return;
    expect(await maximumOf(capped.bytes)).toBe(3);
    const high = capMemory(await wat('(module (memory (export "memory") 1 100))'), 2);
    expect(high.ok && (await maximumOf(high.bytes))).toBe(2);
    const low = capMemory(await wat('(module (memory (export "memory") 1 2))'), 50);
    expect(low.ok && (await maximumOf(low.bytes))).toBe(2);
  });

  it('refuses a memory whose initial size is over the cap, and leaves a module without memory alone', async () => {
    expect(capMemory(await wat('(module (memory (export "memory") 10))'), 4)).toMatchObject({ ok: false, reason: 'initial_over_cap' });
    const noMemory = await wat('(module (func (export "_start")))');
    expect(capMemory(noMemory, 4)).toEqual({ ok: true, bytes: noMemory, definesMemory: false });
    expect(capMemory(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 5, 0xff]), 4)).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('keeps every other section byte for byte, and the module valid, for any initial size and cap', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1, max: 300 }), fc.option(fc.integer({ min: 0, max: 400 })), async (min, cap, max) => {
        const module = await wat(`(module (memory (export "memory") ${min}${max === null ? '' : ` ${Math.max(min, max)}`}) (data (i32.const 0) "abc") (func (export "_start")))`);
        const result = capMemory(module, cap);
        if (min > cap) {
          expect(result.ok).toBe(false);
        } else {
          expect(result.ok).toBe(true);
          const bytes = result.ok ? result.bytes : new Uint8Array();
          expect(WebAssembly.validate(bytes)).toBe(true);
          expect(Buffer.from(bytes).includes(Buffer.from('abc'))).toBe(true);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('encodes LEB128 as the spec does', () => {
    expect(encodeU32(0)).toEqual([0]);
    expect(encodeU32(127)).toEqual([127]);
    expect(encodeU32(128)).toEqual([0x80, 1]);
    expect(encodeU32(65536)).toEqual([0x80, 0x80, 4]);
  });
});

describe('importMemory', () => {
  it('turns the defined memory into an import of the same limits, keeping data, exports and other imports', async () => {
    const module = await wat(`(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 2 5)
      (data (i32.const 16) "hello")
      (func (export "_start")))`);
    const imported = importMemory(module);
    expect(imported).toMatchObject({ initial: 2, maximum: 5 });
    if (!imported) return;
    const compiled = await WebAssembly.compile(imported.bytes);
    expect(WebAssembly.Module.imports(compiled).map((i) => `${i.module}.${i.name}:${i.kind}`)).toEqual(['wasi_snapshot_preview1.proc_exit:function', 'performer.memory:memory']);
    const memory = new WebAssembly.Memory({ initial: 2, maximum: 5 });
    const instance = new WebAssembly.Instance(compiled, { wasi_snapshot_preview1: { proc_exit: () => undefined }, performer: { memory } });
    expect(instance.exports.memory).toBe(memory);
    expect(Buffer.from(memory.buffer, 16, 5).toString()).toBe('hello');
  });

  it('adds an import section to a module without one, and leaves modules it cannot handle alone', async () => {
    const plain = importMemory((capMemory(await wat('(module (memory (export "memory") 1) (func (export "_start")))'), 4) as { bytes: Uint8Array }).bytes);
    expect(plain).toMatchObject({ initial: 1, maximum: 4 });
    expect(WebAssembly.validate((plain as { bytes: Uint8Array }).bytes)).toBe(true);
    expect(importMemory(await wat('(module (memory 1))'))).toBeNull(); // no maximum: not capped yet
    expect(importMemory(await wat('(module (func))'))).toBeNull();
    expect(importMemory(await wat('(module (import "env" "m" (memory 1 2)))'))).toBeNull();
  });
});
