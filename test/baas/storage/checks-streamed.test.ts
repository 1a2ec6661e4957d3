/**
 * The §9.2 checks with every upload on the streaming path (checks before the body is read, a rolled-back RLS probe,
 * the row in its own transaction): the other files' small bodies take the one-transaction path instead.
 */
import { storageBehaviour } from './behaviour.suite.js';
import { storageChecks } from './checks.suite.js';

storageChecks('file', { STORAGE_SMALL_UPLOAD_BYTES: '0' });
storageBehaviour('file', { STORAGE_SMALL_UPLOAD_BYTES: '0' });
