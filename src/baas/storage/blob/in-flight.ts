/**
 * The writes of this process whose row has not committed yet, per backend: the sweeper must never take their bytes
 * for a crash's leftovers, however long the transaction waits. (Other processes' writes are protected by age: the
 * sweeper only takes what was last written long before any upload could still commit.)
 */
export class InFlight {
  private readonly keys = new Set<string>();

  add(tenant: string, key: string): void {
    this.keys.add(`${tenant}/${key}`);
  }

  delete(tenant: string, key: string): void {
    this.keys.delete(`${tenant}/${key}`);
  }

  has(tenant: string, key: string): boolean {
    return this.keys.has(`${tenant}/${key}`);
  }
}
