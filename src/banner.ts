/**
 * The start banner: what a person needs to connect, printed once the server listens. main.ts decides the lines;
 * this file only lays them out, so adding a line is one entry in main's list.
 */

/** One `label: value` row; an empty label continues the row above (indented, no colon). */
export type BannerLine = readonly [label: string, value: string];

export function formatBanner(title: string, lines: readonly BannerLine[], notes: readonly string[] = []): string {
  const width = Math.max(0, ...lines.map(([label]) => label.length));
  const rows = lines.map(([label, value]) => (label === '' ? `${' '.repeat(width + 2)}${value}` : `${label.padStart(width)}: ${value}`));
  return ['', title, ...rows, ...(notes.length > 0 ? ['', ...notes] : []), '', ''].join('\n');
}

/** DATABASE_URL as shown to a person: the password the operator supplied is not echoed. */
export function maskedDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '****';
    return parsed.toString();
  } catch {
    return '(DATABASE_URL, not a parseable URL)';
  }
}
