import { expect } from 'vitest';

/** One line of Prometheus text exposition. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition into samples (comments skipped); an unparseable line fails the test. */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!m) throw new Error(`unparseable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

export interface Scrape {
  text: string;
  samples: Sample[];
  contentType: string | null;
}

/** GET /metrics of a server (base URL), expecting 200. */
export async function scrape(url: string, headers: Record<string, string> = {}): Promise<Scrape> {
  const res = await fetch(`${url}/metrics`, { headers });
  expect(res.status).toBe(200);
  const text = await res.text();
  return { text, samples: parseMetrics(text), contentType: res.headers.get('content-type') };
}

/** The value of one series (labels must match exactly the ones given); undefined when the series is absent. */
export function value(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  const found = samples.find(
    (s) => s.name === name && Object.keys(labels).length === Object.keys(s.labels).length && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  return found?.value;
}

/** Count, sum and +Inf bucket of one histogram series (0 when absent). */
export interface HistogramValue {
  count: number;
  sum: number;
  inf: number;
}

export function histogram(samples: Sample[], name: string, labels: Record<string, string>): HistogramValue {
  return {
    count: value(samples, `${name}_count`, labels) ?? 0,
    sum: value(samples, `${name}_sum`, labels) ?? 0,
    inf: value(samples, `${name}_bucket`, { ...labels, le: '+Inf' }) ?? 0,
  };
}

/** Polls the server's metrics until `pred` holds for the scrape; returns that scrape, or fails with `what`. */
export async function scrapeUntil(url: string, pred: (samples: Sample[]) => boolean, what: string, ms = 12_000): Promise<Sample[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const { samples } = await scrape(url);
    if (pred(samples)) return samples;
    if (Date.now() > deadline) throw new Error(`metrics never showed: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
