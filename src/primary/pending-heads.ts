import type { ServerConfig } from '../config/types.js';
import { retryAfterSeconds } from '../shared/answers.js';
import { PendingBook, pendingLimits, sourceOf, WaitDeadlines } from '../shared/pending-book.js';
import type { RequestHead } from '../routing/head.js';
import type { ClientConnection } from './client-connection.js';
import { parseHead } from './head.js';

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
  /** Each connection waiting, against headTimeoutMs: one timer for them all, not one per connection. */
  readonly #deadlines: WaitDeadlines<ClientConnection>;

  constructor(private readonly server: () => ServerConfig, private readonly counters: PendingCounters, private readonly handlers: HeadHandlers) {
    this.#book = new PendingBook(pendingLimits(server()));
    this.#deadlines = new WaitDeadlines(() => this.server().headTimeoutMs, (connection, timeoutMs) => {
      this.#stopWaiting(connection);
      this.handlers.turnAway(connection, 408, `no complete request head within ${timeoutMs} ms`);
    });
  }

  get size(): number {
    return this.#book.size;
  }

  /** Starts reading a new connection's head, or turns it away when its source has too many waiting. */
  admit(connection: ClientConnection): void {
    const server = this.server();
    this.#book.setLimits(pendingLimits(server));
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
    for (const connection of this.#deadlines.clear()) {
      connection.stopReading();
      this.#book.remove(connection);
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
    this.#deadlines.add(connection);
    connection.read(onData, () => this.#stopWaiting(connection));
  }

  /** Takes a connection off the books (a timed-out one is already off the deadlines). */
  #stopWaiting(connection: ClientConnection): void {
    this.#deadlines.delete(connection);
    if (!this.#book.has(connection)) return;
    connection.stopReading();
    this.#book.remove(connection);
  }
}
