/**
 * Child process of heap-trim.test.ts (bundled, run by plain node without --expose-gc): grows V8's young generation the way a
 * burst of joins does (many small objects that survive), then idles with a trickle of allocation (heartbeats), and
 * reports the young generation's size over time as JSON lines.
 *   mode `trim`: with the process's heap trim started; `busy`: a HeapTrim watching a busy event loop, counting GCs.
 */
import { DEFAULT_HEAP_TRIM, HeapTrim, startHeapTrim, youngGenerationBytes } from '../../src/observability/heap-trim.js';

const mode = process.argv[2];
const keep: unknown[] = [];
for (let i = 0; i < 400_000; i++) keep.push({ id: i, name: `socket-${i}`, topics: [i] });
const grown = youngGenerationBytes();
const report = (extra: object) => process.stdout.write(`${JSON.stringify({ grown, young: youngGenerationBytes(), kept: keep.length, ...extra })}\n`);

let sink: unknown = null;
const trickle = setInterval(() => {
  sink = Array.from({ length: 20 }, (_, i) => ({ i }));
}, 10);

if (mode === 'trim') {
  const stop = startHeapTrim();
  const started = Date.now();
  const poll = setInterval(() => {
    const young = youngGenerationBytes();
    if (young < grown / 4 || Date.now() - started > 45_000) {
      report({ seconds: (Date.now() - started) / 1000 });
      clearInterval(poll);
      clearInterval(trickle);
      stop();
    }
  }, 250);
} else if (mode === 'busy') {
  let gcs = 0;
  const trim = new HeapTrim(() => gcs++, { ...DEFAULT_HEAP_TRIM, checkMs: 200 });
  const until = Date.now() + 8000;
  const spin = () => {
    const end = Date.now() + 150;
    while (Date.now() < end) sink = { at: Date.now() };
    if (Date.now() < until) setImmediate(spin);
    else {
      trim.stop();
      clearInterval(trickle);
      report({ gcs, sink: sink !== null });
    }
  };
  spin();
}
