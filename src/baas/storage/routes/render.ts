/**
 * Image transforms (spec baas-api.md §4.1; upstream's /render/image routes, which supabase-js `download(path,
 * {transform})`, `getPublicUrl(path, {transform})` and `createSignedUrl(path, n, {transform})` request):
 * `/render/image/authenticated/B/P` as the caller, `/render/image/public/B/P` for public buckets, and
 * `/render/image/sign/B/P?token=` with the transformations the token carries. `sharp` renders; results are kept in
 * a bounded in-memory LRU keyed by the object's version and the options, so a repeat is served without decoding.
 * Sources are capped in bytes and pixels before decoding.
 */
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { errors, StorageError } from '../errors.js';
import { mustBeValidKey } from '../names.js';
import type { StorageCall } from '../service.js';
import { transformFromQuery, transformFromString, type TransformOptions } from '../transform.js';
import { findObject, type Access } from './read.js';

/** Bigger sources are refused rather than decoded (upstream's imgproxy has a similar cap). */
const MAX_SOURCE_BYTES = 25 * 1024 * 1024;
const MAX_INPUT_PIXELS = 50_000_000;
const CACHE_BYTES = 64 * 1024 * 1024;
const MAX_CACHED_BYTES = 4 * 1024 * 1024;

interface Rendered {
  body: Buffer;
  contentType: string;
  etag: string;
}

/** Least recently used first; total size bounded. */
class RenderCache {
  private readonly entries = new Map<string, Rendered>();
  private bytes = 0;

  get(key: string): Rendered | undefined {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
    }
    return hit;
  }

  set(key: string, value: Rendered): void {
    if (value.body.length > MAX_CACHED_BYTES || this.entries.has(key)) return;
    this.entries.set(key, value);
    this.bytes += value.body.length;
    for (const [oldKey, old] of this.entries) {
      if (this.bytes <= CACHE_BYTES) break;
      this.entries.delete(oldKey);
      this.bytes -= old.body.length;
    }
  }
}

const cache = new RenderCache();
/** How many renders ran (cache misses): lets a test see the cache work without timing anything. */
export const renderStats = { renders: 0 };

export const renderAuthenticated = (call: StorageCall) => render(call, 'caller');
export const renderPublic = (call: StorageCall) => render(call, 'public');
export const renderSigned = (call: StorageCall) => render(call, 'signed');

async function render(call: StorageCall, access: Access): Promise<void> {
  mustBeValidKey(call.key);
  const found = await findObject(call, access);
  const options = access === 'signed' ? transformFromString(found.token?.transformations ?? '') : transformFromQuery(call.info.query);
  const row = found.row;
  const meta = row.metadata ?? {};
  if (!row.version) throw errors.noSuchKey();
  if (typeof meta.size === 'number' && meta.size > MAX_SOURCE_BYTES) throw errors.invalidRequest('Image is too large to transform');
  const cacheKey = `${call.tenant.settings.externalId}|${row.version}|${JSON.stringify(options)}`;
  let rendered = cache.get(cacheKey);
  if (!rendered) {
    const source = await call.backend.read(call.tenant.settings.externalId, row.version);
    rendered = await transformImage(source, options, typeof meta.mimetype === 'string' ? meta.mimetype : '', cacheKey);
    renderStats.renders++;
    cache.set(cacheKey, rendered);
  }
  const reply = call.reply;
  reply.header('cache-control', typeof meta.cacheControl === 'string' ? meta.cacheControl : 'no-cache');
  reply.header('etag', rendered.etag);
  if (call.info.headers['if-none-match'] === rendered.etag) return reply.send(304);
  reply.send(200, rendered.body, rendered.contentType);
}

async function transformImage(source: NodeJS.ReadableStream, options: TransformOptions, mimeType: string, cacheKey: string): Promise<Rendered> {
  const image = sharp({ limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' }).rotate();
  source.pipe(image);
  source.on('error', (err) => image.destroy(err));
  if (options.width || options.height) {
    const fit = options.resize === 'contain' ? 'inside' : options.resize === 'fill' ? 'fill' : 'cover';
    image.resize({ width: options.width, height: options.height, fit, withoutEnlargement: false });
  }
  const format = outputFormat(options.format, mimeType);
  const quality = options.quality ?? 80;
  if (format === 'webp') image.webp({ quality });
  else if (format === 'avif') image.avif({ quality });
  else if (format === 'png') image.png();
  else if (format === 'gif') image.gif();
  else image.jpeg({ quality, mozjpeg: true });
  let body: Buffer;
  try {
    body = await image.toBuffer();
  } catch (err) {
    throw new StorageError(422, 'InvalidImage', 'InvalidImage', err instanceof Error && /unsupported image format/i.test(err.message) ? 'Unsupported image format' : 'Image could not be processed');
  }
  return { body, contentType: `image/${format}`, etag: `"${createHash('md5').update(cacheKey).digest('hex')}"` };
}

/** `origin` (or none) keeps the source's format where sharp can write it; other sources become JPEG. */
function outputFormat(format: TransformOptions['format'], mimeType: string): 'webp' | 'avif' | 'png' | 'jpeg' | 'gif' {
  if (format && format !== 'origin') return format;
  const source = mimeType.split(';')[0].trim().toLowerCase();
  if (source === 'image/png') return 'png';
  if (source === 'image/webp') return 'webp';
  if (source === 'image/avif') return 'avif';
  if (source === 'image/gif') return 'gif';
  return 'jpeg';
}
