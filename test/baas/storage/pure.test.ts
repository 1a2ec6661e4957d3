/** The pure rules of the storage module: keys, bucket names, MIME matching, size limits, ranges, transforms, tokens. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodePath, isValidBucketName, isValidKey, mimeTypeAllowed, parseFileSizeLimit } from '../../../src/baas/storage/names.js';
import { parseRange } from '../../../src/baas/storage/routes/read.js';
import { signToken, verifyToken } from '../../../src/baas/storage/tokens.js';
import { transformFromQuery, transformFromString, transformToString } from '../../../src/baas/storage/transform.js';

describe('names', () => {
  it('accepts the keys upstream accepts and refuses the rest', () => {
    for (const key of ['a.txt', 'folder/sub/file (1).png', "it's ok!", 'a=b&c;d:e+f,g?h@i$j*k']) expect(isValidKey(key)).toBe(true);
    for (const key of ['', 'a/../b', '..', './x', 'é.txt', 'a\nb', 'a{b}', 'x'.repeat(1025)]) expect(isValidKey(key)).toBe(false);
    expect(isValidBucketName('avatars')).toBe(true);
    for (const name of ['', 'a/b', 'x'.repeat(101), 'a%b']) expect(isValidBucketName(name)).toBe(false);
  });

  it('never lets a key that leaves its folder through', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('a', 'b', '.', '..', ''), { minLength: 1, maxLength: 6 }), (segments) => {
        const key = segments.join('/');
        if (isValidKey(key)) expect(segments.some((s) => s === '.' || s === '..')).toBe(false);
      }),
    );
  });

  it('matches MIME types with wildcards and without parameters', () => {
    expect(mimeTypeAllowed('text/plain;charset=UTF-8', ['text/plain'])).toBe(true);
    expect(mimeTypeAllowed('image/png', ['image/*'])).toBe(true);
    expect(mimeTypeAllowed('image/gif', ['text/plain', 'image/png'])).toBe(false);
    expect(mimeTypeAllowed('anything/else', null)).toBe(true);
    expect(mimeTypeAllowed('IMAGE/PNG', ['image/png'])).toBe(true);
  });

  it('reads size limits as numbers or as upstream strings', () => {
    expect(parseFileSizeLimit(1024)).toBe(1024);
    expect(parseFileSizeLimit('20MB')).toBe(20_000_000);
    expect(parseFileSizeLimit('30KB')).toBe(30_000);
    expect(parseFileSizeLimit('3B')).toBe(3);
    expect(parseFileSizeLimit(null)).toBeNull();
    for (const bad of [-1, 1.5, '20 parsecs', {}]) expect(() => parseFileSizeLimit(bad)).toThrow();
  });

  it('decodes percent-encoded paths segment by segment', () => {
    expect(decodePath('a%20b/c%2Fd')).toBe('a b/c/d');
    expect(decodePath('%E0%A4%A')).toBeNull();
  });
});

describe('parseRange', () => {
  it('golden cases', () => {
    expect(parseRange(undefined, 10)).toBeNull();
    expect(parseRange('bytes=0-4', 10)).toEqual({ start: 0, end: 4 });
    expect(parseRange('bytes=5-', 10)).toEqual({ start: 5, end: 9 });
    expect(parseRange('bytes=-3', 10)).toEqual({ start: 7, end: 9 });
    expect(parseRange('bytes=-30', 10)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=8-100', 10)).toEqual({ start: 8, end: 9 });
    expect(parseRange('bytes=10-', 10)).toBe('unsatisfiable');
    expect(parseRange('bytes=-0', 10)).toBe('unsatisfiable');
    expect(parseRange('bytes=5-2', 10)).toBeNull();
    expect(parseRange('bytes=0-1,3-4', 10)).toBeNull();
    expect(parseRange('items=0-1', 10)).toBeNull();
  });

  it('a satisfiable range always lies within the object', () => {
    fc.assert(
      fc.property(fc.nat(1000), fc.option(fc.nat(2000)), fc.option(fc.nat(2000)), (size, a, b) => {
        const header = `bytes=${a ?? ''}-${b ?? ''}`;
        const r = parseRange(header, size);
        if (r !== null && r !== 'unsatisfiable') {
          expect(r.start).toBeGreaterThanOrEqual(0);
          expect(r.end).toBeLessThan(size);
          expect(r.start).toBeLessThanOrEqual(r.end);
        }
      }),
    );
  });
});

describe('transforms', () => {
  it('reads the query, clamps sizes and refuses bad values', () => {
    expect(transformFromQuery(new URLSearchParams('width=100&height=9999&resize=contain&quality=80&format=origin'))).toEqual({ width: 100, height: 2500, resize: 'contain', quality: 80, format: 'origin' });
    for (const bad of ['width=abc', 'quality=5', 'resize=stretch', 'format=bmp']) expect(() => transformFromQuery(new URLSearchParams(bad))).toThrow();
  });

  it('round-trips through the token claim', () => {
    const options = { width: 40, height: 30, resize: 'fill' as const, quality: 70, format: 'webp' as const };
    expect(transformToString(options)).toBe('height:30,width:40,resize:fill,quality:70,format:webp');
    expect(transformFromString(transformToString(options))).toEqual(options);
  });
});

describe('signed URL tokens', () => {
  const secret = 'a-secret-with-at-least-32-characters-for-tests';
  it('verify the url, the scope and the signature in upstream order', async () => {
    const token = await signToken(secret, { url: 'b/p', scope: 'download' }, 60);
    await expect(verifyToken(secret, token, 'b/p', 'download')).resolves.toMatchObject({ url: 'b/p' });
    await expect(verifyToken(secret, token, 'b/q', 'download')).rejects.toMatchObject({ code: 'InvalidSignature' });
    await expect(verifyToken(secret, token, 'b/p', 'upload')).rejects.toMatchObject({ code: 'InvalidSignature', message: 'Token is not scoped for upload' });
    await expect(verifyToken(`${secret}x`, token, 'b/p', 'download')).rejects.toMatchObject({ code: 'InvalidJWT', message: 'invalid signature' });
    const legacyUpload = await signToken(secret, { url: 'b/p', upsert: false }, 60);
    await expect(verifyToken(secret, legacyUpload, 'b/p', 'download')).rejects.toMatchObject({ code: 'InvalidSignature' });
    await expect(verifyToken(secret, legacyUpload, 'b/p', 'upload')).resolves.toMatchObject({ upsert: false });
  });
});
