import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';

describe('storage configuration', () => {
  it('defaults: the file backend under the data dir, a 50 MB upload limit', () => {
    const c = loadConfig({ PERFORMER_DATA_DIR: '/var/lib/p' });
    expect(c.storageBackend).toBe('file');
    expect(c.storageDir).toBe('/var/lib/p/storage');
    expect(c.storageFileSizeLimit).toBe(50 * 1024 * 1024);
    expect(c.storageSmallUploadBytes).toBe(256 * 1024);
    expect(c.storageS3).toEqual({ endpoint: null, bucket: 'performer-storage', region: 'us-east-1', forcePathStyle: true });
  });

  it('reads the S3 backend settings', () => {
    const c = loadConfig({ STORAGE_BACKEND: 'S3', STORAGE_S3_ENDPOINT: 'http://minio:9000', STORAGE_S3_BUCKET: 'b', STORAGE_S3_REGION: 'eu-west-1', STORAGE_DIR: '/data/s', STORAGE_FILE_SIZE_LIMIT: '1000', STORAGE_SMALL_UPLOAD_BYTES: '0' });
    expect(c.storageBackend).toBe('s3');
    expect(c.storageS3).toMatchObject({ endpoint: 'http://minio:9000', bucket: 'b', region: 'eu-west-1' });
    expect(c.storageDir).toBe('/data/s');
    expect(c.storageFileSizeLimit).toBe(1000);
    expect(c.storageSmallUploadBytes).toBe(0);
  });

  it.each([
    ['STORAGE_BACKEND', 'ftp'],
    ['STORAGE_S3_ENDPOINT', 'ftp://x'],
    ['STORAGE_FILE_SIZE_LIMIT', '0'],
    ['STORAGE_FILE_SIZE_LIMIT', '10MB'],
    ['STORAGE_SMALL_UPLOAD_BYTES', '-1'],
    ['STORAGE_SMALL_UPLOAD_BYTES', String(32 * 1024 * 1024)],
  ])('refuses %s=%s', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
  });
});
