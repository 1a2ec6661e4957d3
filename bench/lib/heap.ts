import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';

export interface HeapEntry {
  key: string;
  count: number;
  bytes: number;
}

/**
 * Self size of the JS heap grouped by node type and constructor/name, and for values (strings, arrays, plain
 * objects, closures, numbers) also by what holds them (`<- Owner.property`, cons-string trees credited to their
 * root's holder). A heap snapshot, summarised in-process so only the summary crosses IPC.
 */
export function heapSummary(top = 200): HeapEntry[] {
  const file = v8.writeHeapSnapshot(path.join(os.tmpdir(), `bench-heap-${process.pid}-${Date.now()}.heapsnapshot`));
  try {
    const snap = JSON.parse(readFileSync(file, 'utf8')) as {
      snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
      nodes: number[];
      edges: number[];
      strings: string[];
    };
    const meta = snap.snapshot.meta;
    const stride = meta.node_fields.length;
    const types = meta.node_types[0];
    const iType = meta.node_fields.indexOf('type');
    const iName = meta.node_fields.indexOf('name');
    const iSize = meta.node_fields.indexOf('self_size');
    const iEdges = meta.node_fields.indexOf('edge_count');
    const eStride = meta.edge_fields.length;
    const eType = meta.edge_fields.indexOf('type');
    const eName = meta.edge_fields.indexOf('name_or_index');
    const eTo = meta.edge_fields.indexOf('to_node');
    const edgeTypes = meta.edge_types[0];
    const nodeCount = snap.nodes.length / stride;
    // First strong retainer of every node: owner node ordinal and edge label.
    const owner = new Int32Array(nodeCount).fill(-1);
    const label = new Array<string>(nodeCount);
    let e = 0;
    for (let n = 0; n < nodeCount; n++) {
      const count = snap.nodes[n * stride + iEdges];
      for (let k = 0; k < count; k++, e += eStride) {
        const et = edgeTypes[snap.edges[e + eType]];
        if (et === 'weak' || et === 'shortcut') continue;
        const to = snap.edges[e + eTo] / stride;
        if (owner[to] !== -1) continue;
        owner[to] = n;
        const nm = snap.edges[e + eName];
        label[to] = et === 'element' || et === 'hidden' ? `[${nm}]` : snap.strings[nm];
      }
    }
    const typeOf = (n: number) => types[snap.nodes[n * stride + iType]];
    const nameOf = (n: number) => {
      const t = typeOf(n);
      if (t === 'string' || t === 'concatenated string' || t === 'sliced string' || t === 'number') return '';
      const name = snap.strings[snap.nodes[n * stride + iName]];
      return name.length > 50 ? `${name.slice(0, 47)}...` : name;
    };
    const isValue = (t: string, name: string) =>
      t === 'string' || t === 'concatenated string' || t === 'sliced string' || t === 'array' || t === 'closure' || t === 'number' || (t === 'object' && (name === 'Object' || name === 'Array'));
    const agg = new Map<string, HeapEntry>();
    for (let n = 0; n < nodeCount; n++) {
      const type = typeOf(n);
      const name = nameOf(n);
      let key = `${type}:${name}`;
      if (isValue(type, name)) {
        // Walk up through value holders (cons-string parts, arrays, plain objects) to the first named owner.
        let cur = n;
        let via = '';
        for (let hops = 0; hops < 256 && owner[cur] !== -1; hops++) {
          const o = owner[cur];
          // Collapse cons-string chains (a += b … builds first.first.first…) to one step.
          if (!(typeOf(cur) === 'concatenated string' && typeOf(o) === 'concatenated string')) via = `${label[cur]}${via ? `.${via}` : ''}`;
          cur = o;
          if (!isValue(typeOf(o), nameOf(o))) break;
        }
        if (cur !== n) key += ` <- ${typeOf(cur)}:${nameOf(cur)}.${via}`;
      }
      const entry = agg.get(key) ?? { key, count: 0, bytes: 0 };
      entry.count++;
      entry.bytes += snap.nodes[n * stride + iSize];
      agg.set(key, entry);
    }
    return [...agg.values()].sort((a, b) => b.bytes - a.bytes).slice(0, top);
  } finally {
    rmSync(file, { force: true });
  }
}
interface SamplingHeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingHeapNode[];
}

export interface SamplingHeapProfile {
  head: SamplingHeapNode;
}

export interface AllocationSite {
  /** `function (file:line)` of the allocating frame, with its caller's for context. */
  site: string;
  bytes: number;
}

/** Bytes allocated in all, and by function (self, with its caller), largest first, from a sampling heap profile. */
export function allocationSites(profile: SamplingHeapProfile, top: number): { totalBytes: number; sites: AllocationSite[] } {
  let totalBytes = 0;
  const bySite = new Map<string, number>();
  const name = (n: SamplingHeapNode) => {
    const f = n.callFrame;
    const file = f.url.replace(/^.*\/(node_modules\/)/, '$1').replace(/^.*\/(dist|src)\//, '$1/');
    return `${f.functionName || '(anonymous)'}${file ? ` (${file}:${f.lineNumber + 1})` : ''}`;
  };
  const walk = (n: SamplingHeapNode, parent: string) => {
    totalBytes += n.selfSize;
    if (n.selfSize > 0) {
      const key = `${name(n)} <- ${parent}`;
      bySite.set(key, (bySite.get(key) ?? 0) + n.selfSize);
    }
    for (const c of n.children) walk(c, name(n));
  };
  walk(profile.head, '');
  const sites = [...bySite.entries()].map(([site, bytes]) => ({ site, bytes })).sort((a, b) => b.bytes - a.bytes).slice(0, top);
  return { totalBytes, sites };
}
