/**
 * Password hashes as GoTrue stores them: bcrypt, cost 10 (`$2a$`/`$2b$` hashes verify alike). @node-rs/bcrypt hashes
 * and verifies on the libuv thread pool, so a sign-in never blocks the event loop for the ~50 ms bcrypt takes.
 */
import { hash, verify } from '@node-rs/bcrypt';

export const BCRYPT_COST = 10;

export function hashPassword(password: string): Promise<string> {
  return hash(password, BCRYPT_COST);
}

/** False for a wrong password and for a stored value that is not a bcrypt hash (never throws). */
export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  if (!stored || !/^\$2[abxy]?\$\d{2}\$/.test(stored)) return false;
  try {
    return await verify(password, stored);
  } catch {
    return false;
  }
}

/**
 * Spends one bcrypt verification when there is no user to check against, so an unknown e-mail takes as long as a
 * wrong password and sign-in timing does not reveal which addresses have accounts.
 */
const DUMMY_HASH = '$2b$10$qdcLWaSnsfMkE8CcqaO3uO/S8Tm1fwByQ8PIiGYq/720AxuXEUTqy';
export async function spendVerification(password: string): Promise<void> {
  await verifyPassword(password, DUMMY_HASH);
}
