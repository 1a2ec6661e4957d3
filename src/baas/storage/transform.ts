/**
 * Image transformation options (upstream src/storage/renderer/image.ts and its schema): `width`, `height` (clamped to
 * 1..2500), `resize` (cover | contain | fill), `quality` (20..100), `format` (origin | avif | webp, plus png/jpeg).
 * Read from a render URL's query, or from a signed token's `transformations` claim (`height:100,width:100,…`). Pure.
 */
import { errors } from './errors.js';

export interface TransformOptions {
  width?: number;
  height?: number;
  resize?: 'cover' | 'contain' | 'fill';
  quality?: number;
  format?: 'origin' | 'avif' | 'webp' | 'png' | 'jpeg';
}

const MIN_SIZE = 1;
const MAX_SIZE = 2500;
const RESIZES = new Set(['cover', 'contain', 'fill']);
const FORMATS = new Set(['origin', 'avif', 'webp', 'png', 'jpeg']);

export function transformFromQuery(query: URLSearchParams): TransformOptions {
  return transformFrom((name) => query.get(name) ?? undefined);
}

export function transformFromString(text: string): TransformOptions {
  const values = new Map<string, string>();
  for (const part of text.split(',')) {
    const [name, value] = part.split(':');
    if (name && value) values.set(name, value);
  }
  return transformFrom((name) => values.get(name));
}

/** The claim a signed render URL carries, in upstream's order. */
export function transformToString(options: TransformOptions): string {
  const parts: string[] = [];
  if (options.height) parts.push(`height:${options.height}`);
  if (options.width) parts.push(`width:${options.width}`);
  if (options.width || options.height) parts.push(`resize:${options.resize ?? 'cover'}`);
  if (options.quality) parts.push(`quality:${options.quality}`);
  if (options.format && options.format !== 'origin') parts.push(`format:${options.format}`);
  return parts.join(',');
}

/** A sign request's `transform` object, validated as upstream's schema does. */
export function transformFromBody(value: unknown): TransformOptions | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) throw errors.invalidRequest('body/transform must be object');
  const body = value as Record<string, unknown>;
  return transformFrom((name) => (body[name] === undefined ? undefined : String(body[name])));
}

function transformFrom(get: (name: string) => string | undefined): TransformOptions {
  const out: TransformOptions = {};
  const width = integer(get('width'), 'width');
  const height = integer(get('height'), 'height');
  if (width) out.width = clamp(width, MIN_SIZE, MAX_SIZE);
  if (height) out.height = clamp(height, MIN_SIZE, MAX_SIZE);
  const resize = get('resize');
  if (resize !== undefined) {
    if (!RESIZES.has(resize)) throw errors.invalidRequest('querystring/resize must be equal to one of the allowed values');
    out.resize = resize as TransformOptions['resize'];
  }
  const quality = integer(get('quality'), 'quality');
  if (quality !== undefined) {
    if (quality < 20 || quality > 100) throw errors.invalidRequest('querystring/quality must be >= 20 and <= 100');
    out.quality = quality;
  }
  const format = get('format');
  if (format !== undefined) {
    if (!FORMATS.has(format)) throw errors.invalidRequest('querystring/format must be equal to one of the allowed values');
    out.format = format as TransformOptions['format'];
  }
  return out;
}

function integer(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^\d{1,9}$/.test(value)) throw errors.invalidRequest(`querystring/${name} must be integer`);
  return Number(value);
}

function clamp(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, n));
}
