/**
 * The route table of `/storage/v1` (spec baas-api.md §4.1, §4.3), matched on the raw path after the prefix, in
 * upstream's precedence (fixed words like `list`, `sign`, `info` before a bucket id). Pure: the module reads the
 * body each match asks for, identifies the caller when it needs one, and calls the handler.
 */
import type { StorageCall } from '../service.js';
import { createBucket, deleteBucket, emptyBucket, getBucket, listBuckets, updateBucket } from './buckets.js';
import { copyObject, listObjects, moveObject, removeObject, removeObjects, signMany, signOne, signUpload } from './manage.js';
import { renderAuthenticated, renderPublic, renderSigned } from './render.js';
import { infoAuthenticated, infoPublic, readAuthenticated, readPublic, readSigned } from './read.js';
import { uploadObject, uploadSigned } from './upload.js';

export type BodyKind = 'none' | 'json' | 'stream';

export interface RouteMatch {
  handler: (call: StorageCall) => Promise<void>;
  body: BodyKind;
  /** Needs a verified caller; false for routes authorized by their URL (public bucket, signed token). */
  caller: boolean;
  /** Raw (percent-encoded) bucket id and object key. */
  bucket: string;
  key: string;
}

type Handler = RouteMatch['handler'];
interface Route {
  methods: string[];
  pattern: RegExp;
  handler: Handler;
  body: BodyKind;
  caller: boolean;
}

const R = (methods: string, pattern: RegExp, handler: Handler, body: BodyKind = 'none', caller = true): Route => ({ methods: methods.split(' '), pattern, handler, body, caller });
// Groups: 1 = bucket, 2 = key (the rest of the path, slashes included).
const BUCKET = '([^/]+)';
const KEY = '(.+)';

const ROUTES: readonly Route[] = [
  R('GET', /^\/bucket\/?$/, listBuckets),
  R('POST', /^\/bucket\/?$/, createBucket, 'json'),
  R('POST', new RegExp(`^/bucket/${BUCKET}/empty/?$`), emptyBucket, 'json'),
  R('GET', new RegExp(`^/bucket/${BUCKET}/?$`), getBucket),
  R('PUT', new RegExp(`^/bucket/${BUCKET}/?$`), updateBucket, 'json'),
  R('DELETE', new RegExp(`^/bucket/${BUCKET}/?$`), deleteBucket, 'json'),
  R('POST', /^\/object\/move\/?$/, moveObject, 'json'),
  R('POST', /^\/object\/copy\/?$/, copyObject, 'json'),
  R('POST', new RegExp(`^/object/list/${BUCKET}/?$`), listObjects, 'json'),
  R('POST', new RegExp(`^/object/upload/sign/${BUCKET}/${KEY}$`), signUpload, 'json'),
  R('PUT', new RegExp(`^/object/upload/sign/${BUCKET}/${KEY}$`), uploadSigned, 'stream', false),
  R('POST', new RegExp(`^/object/sign/${BUCKET}/?$`), signMany, 'json'),
  R('POST', new RegExp(`^/object/sign/${BUCKET}/${KEY}$`), signOne, 'json'),
  R('GET HEAD', new RegExp(`^/object/sign/${BUCKET}/${KEY}$`), readSigned, 'none', false),
  R('GET HEAD', new RegExp(`^/object/info/public/${BUCKET}/${KEY}$`), infoPublic, 'none', false),
  R('GET HEAD', new RegExp(`^/object/info/authenticated/${BUCKET}/${KEY}$`), infoAuthenticated),
  R('GET HEAD', new RegExp(`^/object/info/${BUCKET}/${KEY}$`), infoAuthenticated),
  R('GET HEAD', new RegExp(`^/object/public/${BUCKET}/${KEY}$`), readPublic, 'none', false),
  R('GET HEAD', new RegExp(`^/object/authenticated/${BUCKET}/${KEY}$`), readAuthenticated),
  R('GET', new RegExp(`^/render/image/authenticated/${BUCKET}/${KEY}$`), renderAuthenticated),
  R('GET', new RegExp(`^/render/image/public/${BUCKET}/${KEY}$`), renderPublic, 'none', false),
  R('GET', new RegExp(`^/render/image/sign/${BUCKET}/${KEY}$`), renderSigned, 'none', false),
  R('DELETE', new RegExp(`^/object/${BUCKET}/?$`), removeObjects, 'json'),
  R('POST PUT', new RegExp(`^/object/${BUCKET}/${KEY}$`), uploadObject, 'stream'),
  R('GET HEAD', new RegExp(`^/object/${BUCKET}/${KEY}$`), readAuthenticated),
  R('DELETE', new RegExp(`^/object/${BUCKET}/${KEY}$`), removeObject, 'json'),
];

export function matchRoute(method: string, path: string): RouteMatch | null {
  for (const route of ROUTES) {
    if (!route.methods.includes(method)) continue;
    const m = route.pattern.exec(path);
    if (m) return { handler: route.handler, body: route.body, caller: route.caller, bucket: m[1] ?? '', key: m[2] ?? '' };
  }
  return null;
}
