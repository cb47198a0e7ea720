import type { ServerConfig } from '../config/types.js';
import { retryAfterSeconds } from '../shared/answers.js';
import { ranSince, runningNow } from '../shared/stalls.js';
import type { RequestHead } from '../routing/head.js';
import type { ClientConnection } from './client-connection.js';
import { parseHead } from './head.js';

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

/** Counters of the overload policy, shown with the router's in /api/status and /metrics. */
export interface PendingCounters {
  /** Connections waiting for their head closed (408) to make room for a new one at maxPendingConnections. */
  pendingShed: number;
  /** Connections refused (503) because their source already had maxPendingPerSource waiting. */
  pendingSourceRefused: number;
}

export interface HeadHandlers {
  /** The head is complete: route it. `bytes` is everything read, to hand over untouched. */
  onHead(connection: ClientConnection, bytes: Buffer, head: Omit<RequestHead, 'remoteAddress'>): void;
  /** Answer with `status` and close (status 0: close without an answer, it is not HTTP). */
  turnAway(connection: ClientConnection, status: number, reason: string, headers?: Record<string, string>): void;
}

const empty: Buffer = Buffer.alloc(0);

/**
 * Owns the connections waiting for the head of their first request: reads it (bounded in size and time),
 * and keeps how many wait, from whom, within `maxPendingConnections` and `maxPendingPerSource`.
 */
export class PendingHeads {
  readonly #book: PendingBook<ClientConnection>;
  /** Each connection waiting, with when it came (runningNow()); oldest first. */
  readonly #since = new Map<ClientConnection, number>();
  /**
   * The one timer for headTimeoutMs, not one per connection: it fires when the oldest connection waiting will have
   * waited that long, turns away every one that has (shared/stalls.ts: time this process stalled does not count),
   * and is set again for the next oldest.
   */
  #timeoutCheck: NodeJS.Timeout | undefined;

  constructor(private readonly server: () => ServerConfig, private readonly counters: PendingCounters, private readonly handlers: HeadHandlers) {
    this.#book = new PendingBook(limitsOf(server()));
  }

  get size(): number {
    return this.#book.size;
  }

  /** Starts reading a new connection's head, or turns it away when its source has too many waiting. */
  admit(connection: ClientConnection): void {
    const server = this.server();
    this.#book.setLimits(limitsOf(server));
    const admission = this.#book.admit(connection, () => sourceOf(connection.remoteAddress));
    if (!admission.admit) {
      this.counters.pendingSourceRefused++;
      this.handlers.turnAway(connection, 503, `more than ${server.maxPendingPerSource} connections from one address waiting`, { 'retry-after': String(retryAfterSeconds) });
      return;
    }
    for (const victim of admission.shed) {
      this.#stopWaiting(victim);
      this.counters.pendingShed++;
      this.handlers.turnAway(victim, 408, `closed to make room: ${server.maxPendingConnections} connections were waiting for their head`);
    }
    this.#read(connection, server);
  }

  /** Closes every connection still waiting. */
  close(): void {
    clearTimeout(this.#timeoutCheck);
    this.#timeoutCheck = undefined;
    for (const connection of [...this.#since.keys()]) {
      this.#stopWaiting(connection);
      connection.close();
    }
  }

  #read(connection: ClientConnection, server: ServerConfig): void {
    let bytes: Buffer = empty;
    let scanned = 0;
    const onData = (chunk: Buffer) => {
      bytes = bytes.length === 0 ? chunk : Buffer.concat([bytes, chunk]);
      const result = parseHead(bytes, server.maxHeadBytes, scanned);
      scanned = result.scanned;
      if (!result.done) return;
      this.#stopWaiting(connection);
      if ('failure' in result) this.handlers.turnAway(connection, result.failure.status, result.failure.reason);
      else this.handlers.onHead(connection, bytes, result.head);  // Nothing more is read here: the rest is the worker's.
    };
    this.#since.set(connection, runningNow());
    this.#watchTimeouts(server.headTimeoutMs);
    connection.read(onData, () => this.#stopWaiting(connection));
  }

  #watchTimeouts(headTimeoutMs: number): void {
    const oldest = this.#since.values().next();
    if (this.#timeoutCheck !== undefined || oldest.done) return;
    this.#timeoutCheck = setTimeout(() => {
      this.#timeoutCheck = undefined;
      const timeoutMs = this.server().headTimeoutMs;
      for (const [connection, since] of this.#since) {
        if (ranSince(since) < timeoutMs) break;
        this.#stopWaiting(connection);
        this.handlers.turnAway(connection, 408, `no complete request head within ${timeoutMs} ms`);
      }
      this.#watchTimeouts(timeoutMs);
    }, Math.max(0, headTimeoutMs - ranSince(oldest.value)));
  }

  #stopWaiting(connection: ClientConnection): void {
    if (!this.#since.delete(connection)) return;
    connection.stopReading();
    this.#book.remove(connection);
  }
}

function limitsOf(server: ServerConfig): PendingLimits {
  return { maxPending: server.maxPendingConnections, maxPerSource: server.maxPendingPerSource };
}
