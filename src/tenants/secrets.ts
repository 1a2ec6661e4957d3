import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const PREFIX = 'g1:';

/**
 * AES-256-GCM for tenant secrets at rest. The stored form is `g1:` + base64(iv | tag | ciphertext), so a value
 * tampered with in the database fails to decrypt instead of yielding garbage. Any key string is accepted; it is
 * stretched to 32 bytes with SHA-256 (a 32-byte random key loses nothing to that).
 */
export class SecretBox {
  private readonly key: Buffer;

  constructor(keyMaterial: string) {
    if (keyMaterial.length < 16) throw new Error('the encryption key must have at least 16 characters');
    this.key = createHash('sha256').update(keyMaterial).digest();
  }

  encrypt(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
  }

  decrypt(stored: string): string {
    if (!stored.startsWith(PREFIX)) throw new Error('not an encrypted value');
    const raw = Buffer.from(stored.slice(PREFIX.length), 'base64');
    if (raw.length < 28) throw new Error('encrypted value is truncated');
    const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  }
}
