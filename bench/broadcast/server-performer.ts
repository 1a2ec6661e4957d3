// The broadcast bench's Performer: the shared bench server (until this bench moves to ../lib's startPerformer).
process.env.BENCH_DATA_NAME ??= 'performer-bench-data';
await import('../lib/performer-server.js');
