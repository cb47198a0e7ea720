/**
 * A set of strings whose members leave `ttlMs` after they were last added, holding at most `capacity`: adding one
 * more to a full set first drops the member added longest ago. Expired members are dropped as they are met.
 */
export class ExpiringSet {
  /** Member → when it was last added; in the order they were last added, oldest first. */
  readonly #addedAt = new Map<string, number>();

  constructor(readonly capacity: number, readonly ttlMs: number) {}

  /** Members held now, counting any expired member not yet dropped. */
  get size(): number {
    return this.#addedAt.size;
  }

  has(member: string, now = Date.now()): boolean {
    const addedAt = this.#addedAt.get(member);
    if (addedAt === undefined) return false;
    if (now - addedAt < this.ttlMs) return true;
    this.#addedAt.delete(member);
    return false;
  }

  delete(member: string): void {
    this.#addedAt.delete(member);
  }

  /** Adds `member`, or renews it. */
  add(member: string, now = Date.now()): void {
    this.#addedAt.delete(member);
    if (this.#addedAt.size >= this.capacity) this.#dropOldest(now);
    this.#addedAt.set(member, now);
  }

  /** Drops every expired member, or else the oldest one. */
  #dropOldest(now: number): void {
    for (const [member, addedAt] of this.#addedAt) {
      if (now - addedAt < this.ttlMs) break;
      this.#addedAt.delete(member);
    }
    if (this.#addedAt.size >= this.capacity) {
      const [oldest] = this.#addedAt.keys();
      if (oldest !== undefined) this.#addedAt.delete(oldest);
    }
  }
}
