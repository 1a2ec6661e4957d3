// Number and table formatting of the broadcast bench's log lines and report.

export const f0 = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '-');
export const f1 = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : '-');
export const f2 = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '-');
export const f3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : '-');
export const size = (b: number) => (b >= 1024 ? `${b / 1024} KB` : `${b} B`);

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(headers), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

export function check(value: number, target: number, higherIsBetter: boolean): string {
  if (!Number.isFinite(value)) return '-';
  return (higherIsBetter ? value >= target : value <= target) ? 'met' : 'MISSED';
}
