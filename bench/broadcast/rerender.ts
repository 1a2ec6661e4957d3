import { readFileSync } from 'node:fs';
import { report, type Results } from './report.js';

/** Prints the report of a run written with --out (e.g. after a change to the report): `node --import tsx bench/broadcast/rerender.ts results.json`. */
const file = process.argv[2];
if (!file) throw new Error('usage: rerender.ts <results.json>');
console.log(report(JSON.parse(readFileSync(file, 'utf8')) as Results));
