/**
 * Who waits for the head of a first request, within `maxPendingConnections` and `maxPendingPerSource`, and for how
 * long: the policy the primary applies to the connections it reads (primary/pending-heads.ts) and a worker to the
 * connections it accepts on its version's own port (worker/worker-runtime.ts). No sockets here.
 */
import { retryAfterSeconds } from './answers.js';
import { ranSince, runningNow } from './stalls.js';

/**
 * The address a connection counts against for `maxPendingPerSource`: an IPv4 address as it is (also when it
 * arrives IPv4-mapped), an IPv6 address by its /64, the block one subscriber usually holds whole.
 */
export function sourceOf(address: string | undefined): string {
  const bare = (address ?? '').replace(/%.*$/, '');  // A zone id (fe80::1%eth0) is not part of the address.
  const [, mappedIpv4] = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare) ?? [];
  if (mappedIpv4 !== undefined) return mappedIpv4;
  if (!bare.includes(':')) return bare;
  const [head = '', tail] = bare.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups.slice(0, 4).map((group) => group.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

export interface PendingLimits {
  /** Connections waiting for their head, from all sources together. */
  maxPending: number;
  /** Connections waiting for their head from one source, once half of `maxPending` are waiting. */
  maxPerSource: number;
}

/** The limits as `server` names them (`maxPendingConnections`, `maxPendingPerSource`). */
function pendingLimits(server: { maxPendingConnections: number; maxPendingPerSource: number }): PendingLimits {
  return { maxPending: server.maxPendingConnections, maxPerSource: server.maxPendingPerSource };
}

/** What to do with a new connection: take it (closing `shed` first to make room), or turn it away. */
export type Admission<T> = { admit: true; shed: T[] } | { admit: false; why: 'source-limit' };

/**
 * Who waits for their head, by source, in arrival order: the pure core of the overload policy, no sockets.
 * Under pressure (half of `maxPending` waiting) a source at its own limit is refused; below that, none is, so a
 * burst of connections from one load balancer or NAT is not turned away. A full book sheds the oldest entry of
 * the source holding the most
 * (ties: the one waiting longest), so one source can never keep others out, and a newcomer is never the
 * one refused for the crowd's sake. (nginx and Envoy's overload managers likewise close idle connections
 * under pressure rather than refusing new ones.)
 *
 * An entry's source is asked for (`source()`, a system call for a socket's peer address) only once the book is
 * under pressure, since only then is it needed: below that, no connection pays for it.
 */
export class PendingBook<T> {
  readonly #bySource = new Map<string, Map<T, number>>();
  /** Each entry's source, and that source's map in #bySource that holds it; undefined until sources are needed. */
  readonly #entries = new Map<T, { source: string; ofSource: Map<T, number> } | undefined>();
  /** Entries not yet under a source, with how to get it and their arrival; oldest first. */
  readonly #unsourced = new Map<T, { source: () => string; arrival: number }>();
  #arrivals = 0;

  constructor(private limits: PendingLimits) {}

  get size(): number {
    return this.#entries.size;
  }

  has(item: T): boolean {
    return this.#entries.has(item);
  }

  countOf(source: string): number {
    this.#sourceAll();
    return this.#bySource.get(source)?.size ?? 0;
  }

  setLimits(limits: PendingLimits): void {
    this.limits = limits;
  }

  admit(item: T, source: () => string): Admission<T> {
    const arrival = this.#arrivals++;
    if (this.#entries.size < this.limits.maxPending / 2) {
      this.#entries.set(item, undefined);
      this.#unsourced.set(item, { source, arrival });
      return { admit: true, shed: [] };
    }
    const itsSource = source();
    if (this.countOf(itsSource) >= this.limits.maxPerSource) return { admit: false, why: 'source-limit' };
    const shed: T[] = [];
    while (this.#entries.size >= this.limits.maxPending) {
      const victim = this.#victim();
      if (victim === undefined) break;
      this.remove(victim);
      shed.push(victim);
    }
    this.#enter(item, itsSource, arrival);
    return { admit: true, shed };
  }

  remove(item: T): void {
    const entry = this.#entries.get(item);
    if (!this.#entries.delete(item)) return;
    this.#unsourced.delete(item);
    if (entry === undefined) return;
    entry.ofSource.delete(item);
    if (entry.ofSource.size === 0) this.#bySource.delete(entry.source);
  }

  #enter(item: T, source: string, arrival: number): void {
    let ofSource = this.#bySource.get(source);
    if (!ofSource) this.#bySource.set(source, ofSource = new Map());
    ofSource.set(item, arrival);
    this.#entries.set(item, { source, ofSource });
  }

  /** Puts every entry under its source (oldest first, so each source's map stays in arrival order). */
  #sourceAll(): void {
    if (this.#unsourced.size === 0) return;
    const unsourced = [...this.#unsourced];
    this.#unsourced.clear();
    for (const [item, { source, arrival }] of unsourced) this.#enter(item, source(), arrival);
  }

  /** The oldest entry of the source holding the most. */
  #victim(): T | undefined {
    let best: { item: T; count: number; arrival: number } | undefined;
    for (const ofSource of this.#bySource.values()) {
      const [oldest] = ofSource;  // A Map iterates in insertion order: oldest first.
      if (oldest === undefined) continue;
      const [item, arrival] = oldest;
      if (!best || ofSource.size > best.count || (ofSource.size === best.count && arrival < best.arrival)) {
        best = { item, count: ofSource.size, arrival };
      }
    }
    return best?.item;
  }
}

/**
 * Items waiting, each since it came, with one timer for them all instead of one per item: it fires when the
 * oldest will have waited `timeoutMs()`, hands every item that has to `expire`, and is set again for the next
 * oldest. Time the process stalled does not count (shared/stalls.ts).
 */
class WaitDeadlines<T> {
  /** Each item, with when it came (runningNow()); oldest first. */
  readonly #since = new Map<T, number>();
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly timeoutMs: () => number, private readonly expire: (item: T, timeoutMs: number) => void) {}

  add(item: T): void {
    this.#since.set(item, runningNow());
    this.#watch(this.timeoutMs());
  }

  /** Stops the item's clock. */
  delete(item: T): void {
    this.#since.delete(item);
  }

  /** Every item still waiting, oldest first; the timer stops. */
  clear(): T[] {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const items = [...this.#since.keys()];
    this.#since.clear();
    return items;
  }

  #watch(timeoutMs: number): void {
    const oldest = this.#since.values().next();
    if (this.#timer !== undefined || oldest.done) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const now = this.timeoutMs();
      for (const [item, since] of this.#since) {
        if (ranSince(since) < now) break;
        this.#since.delete(item);
        this.expire(item, now);
      }
      this.#watch(now);
    }, Math.max(0, timeoutMs - ranSince(oldest.value)));
    this.#timer.unref();
  }
}

/** The settings of `server` that bound connections waiting for their first head. */
export interface HeadWaitLimits {
  headTimeoutMs: number;
  maxPendingConnections: number;
  maxPendingPerSource: number;
}

/** A connection closed by the limits: why (timed out, shed to make room, its source over its limit) and its answer. */
export interface TurnedAway<T> {
  item: T;
  why: 'timeout' | 'shed' | 'source';
  status: 408 | 503;
  reason: string;
  headers?: Record<string, string>;
}

/**
 * Connections waiting for their first head, from arrival until the head came or the connection closed, within
 * the limits: `headTimeoutMs` to send it (then 408), `maxPendingConnections` at once (the oldest of the source
 * holding the most closed with 408 to make room) and, under pressure, `maxPendingPerSource` from one source (503).
 * The one policy of the primary's port (primary/pending-heads.ts) and of a version's own port (a worker).
 * `turnAway` answers and closes each connection these limits end; it is off the books already.
 */
export class HeadWait<T> {
  readonly #book: PendingBook<T>;
  readonly #deadlines: WaitDeadlines<T>;

  constructor(private readonly limits: () => HeadWaitLimits, private readonly turnAway: (turned: TurnedAway<T>) => void) {
    this.#book = new PendingBook(pendingLimits(limits()));
    this.#deadlines = new WaitDeadlines(() => this.limits().headTimeoutMs, (item, timeoutMs) => {
      this.#book.remove(item);
      this.turnAway({ item, why: 'timeout', status: 408, reason: `no complete request head within ${timeoutMs} ms` });
    });
  }

  get size(): number {
    return this.#book.size;
  }

  /** Books a new connection, closing others to make room; false when it is itself turned away. */
  admit(item: T, address: () => string | undefined): boolean {
    const limits = this.limits();
    this.#book.setLimits(pendingLimits(limits));
    const admission = this.#book.admit(item, () => sourceOf(address()));
    if (!admission.admit) {
      this.turnAway({ item, why: 'source', status: 503, reason: `more than ${limits.maxPendingPerSource} connections from one address waiting`, headers: { 'retry-after': String(retryAfterSeconds) } });
      return false;
    }
    for (const victim of admission.shed) {
      this.#deadlines.delete(victim);
      this.turnAway({ item: victim, why: 'shed', status: 408, reason: `closed to make room: ${limits.maxPendingConnections} connections were waiting for their head` });
    }
    this.#deadlines.add(item);
    return true;
  }

  /** The connection's head came, or it closed: it waits no longer. False when it was not waiting. */
  done(item: T): boolean {
    if (!this.#book.has(item)) return false;
    this.#book.remove(item);
    this.#deadlines.delete(item);
    return true;
  }

  /** Takes every connection off the books; returns them, oldest first. */
  clear(): T[] {
    const items = this.#deadlines.clear();
    for (const item of items) this.#book.remove(item);
    return items;
  }
}
