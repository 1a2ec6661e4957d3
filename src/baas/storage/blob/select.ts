/** The one place the blob backend is picked from the configuration (STORAGE_BACKEND). */
import path from 'node:path';
import type { Config } from '../../../config/index.js';
import type { BlobBackend } from './backend.js';
import { FileBlobBackend } from './file.js';
import { S3BlobBackend } from './s3.js';

export function createBlobBackend(config: Config): BlobBackend {
  if (config.storageBackend === 's3') return new S3BlobBackend(config.storageS3);
  return new FileBlobBackend(path.resolve(config.storageDir));
}
