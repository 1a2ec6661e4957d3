/**
 * The stamps the benches put in what they send, read back by the receivers in place (no JSON parsing): fixed-width
 * decimal digits. A stamp text is `<phase char><16-digit send time, monotonic µs><10-digit transaction number>`; the
 * phase tells warm-up traffic from measured traffic.
 */
export const PHASE_WARM = 0x77; // 'w'
export const PHASE_MEASURE = 0x6d; // 'm'
export const STAMP_LEN = 27;

export function stampText(phase: number, sendUs: number, txn: number): string {
  return `${String.fromCharCode(phase)}${String(Math.floor(sendUs)).padStart(16, '0')}${String(txn).padStart(10, '0')}`;
}

export function writeDigits(buf: Uint8Array, off: number, width: number, value: number): void {
  let v = Math.floor(value);
  for (let i = width - 1; i >= 0; i--) {
    buf[off + i] = 48 + (v % 10);
    v = Math.floor(v / 10);
  }
}

export function readDigits(buf: Uint8Array, off: number, width: number): number {
  let v = 0;
  for (let i = 0; i < width; i++) v = v * 10 + (buf[off + i]! - 48);
  return v;
}
