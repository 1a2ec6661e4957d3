import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from './paths.js';

// What every bench's report shares: number formatting, markdown tables, the machine line and its RESULTS.md section.

/** A number with thousands separators and `d` decimals; `-` when not finite. */
export const f = (v: number, d = 0): string => (Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : '-');

/** A markdown table, the first column left-aligned and the figures right-aligned. */
export function table(head: string[], rows: string[][]): string {
  return [head, head.map((_, i) => (i === 0 ? '---' : '---:')), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** A ratio x / y as `1.23x`; `-` when either is missing. */
export function ratio(x: number, y: number): string {
  if (!Number.isFinite(x) || !Number.isFinite(y) || y <= 0) return '-';
  const r = x / y;
  return `${r >= 0.1 || r === 0 ? f(r, 2) : r.toPrecision(2)}x`;
}

/** A payload size: `100 B`, `1 KB`. */
export const size = (b: number): string => (b >= 1024 ? `${b / 1024} KB` : `${b} B`);

/** The first line of a bench's section: the command that made it, when, and on what machine. */
export function runLine(command: string): string {
  return `\`${command}\` — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${machine()}.`;
}

export function machine(): string {
  const cpus = os.cpus();
  return `${cpus.length} cores (nproc), ${cpus[0]?.model ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${os.type()} ${os.release()}`;
}

/**
 * Replaces the section that starts with `heading` (a `## ` line) in bench/RESULTS.md with `text`, or appends it;
 * the other benches' sections are left as they are.
 */
export function writeSection(heading: string, text: string): void {
  const file = path.join(repoRoot, 'bench', 'RESULTS.md');
  const current = existsSync(file) ? readFileSync(file, 'utf8') : '# Bench results\n';
  const section = text.replace(/\n*$/, '');
  const escaped = heading.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const start = current.search(new RegExp(`^${escaped}\\s*$`, 'm'));
  let next: string;
  if (start === -1) {
    next = `${current.replace(/\n*$/, '')}\n\n${section}`;
  } else {
    const after = current.slice(start + heading.length).search(/^## /m);
    const end = after === -1 ? current.length : start + heading.length + after;
    next = `${current.slice(0, start)}${section}${after === -1 ? '' : `\n\n${current.slice(end)}`}`;
  }
  writeFileSync(file, next.replace(/\n*$/, '\n'));
}
