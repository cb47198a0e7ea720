/** A line as a ring keeps it: `sequence` orders lines of different workers read in the same millisecond. */
export interface Sequenced<T> {
  sequence: number;
  bytes: number;
  item: T;
}

/**
 * The most recent entries, bounded by count and by bytes: adding past either bound forgets the oldest. An entry
 * larger than `maxBytes` alone is still kept (the newest one always is): callers cap entries well below it.
 */
export class Ring<T> {
  readonly #slots: Array<Sequenced<T> | undefined>;
  #first = 0;
  #count = 0;
  #bytes = 0;

  constructor(readonly maxEntries: number, readonly maxBytes: number) {
    if (!(Number.isInteger(maxEntries) && maxEntries >= 1)) throw new RangeError(`maxEntries must be a whole number of at least 1, not ${maxEntries}`);
    this.#slots = new Array<Sequenced<T> | undefined>(maxEntries);
  }

  get size(): number {
    return this.#count;
  }

  get bytes(): number {
    return this.#bytes;
  }

  push(entry: Sequenced<T>): void {
    if (this.#count === this.maxEntries) this.#dropOldest();
    this.#slots[(this.#first + this.#count) % this.maxEntries] = entry;
    this.#count++;
    this.#bytes += entry.bytes;
    while (this.#bytes > this.maxBytes && this.#count > 1) this.#dropOldest();
  }

  /** The last `count` entries (all when fewer), oldest first. */
  last(count: number): Array<Sequenced<T>> {
    const taken = Math.max(0, Math.min(count, this.#count));
    const entries: Array<Sequenced<T>> = [];
    for (let index = this.#count - taken; index < this.#count; index++) entries.push(this.#slots[(this.#first + index) % this.maxEntries]!);
    return entries;
  }

  #dropOldest(): void {
    const oldest = this.#slots[this.#first]!;
    this.#slots[this.#first] = undefined;
    this.#first = (this.#first + 1) % this.maxEntries;
    this.#count--;
    this.#bytes -= oldest.bytes;
  }
}
