import type { ServerConfig } from '../config/types.js';
import { HeadWait } from '../shared/pending-book.js';
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
 * and keeps how many wait, from whom, within `maxPendingConnections` and `maxPendingPerSource` (HeadWait).
 */
export class PendingHeads {
  readonly #waiting: HeadWait<ClientConnection>;

  constructor(private readonly server: () => ServerConfig, private readonly counters: PendingCounters, private readonly handlers: HeadHandlers) {
    this.#waiting = new HeadWait(server, ({ item, why, status, reason, headers }) => {
      item.stopReading();
      if (why === 'shed') this.counters.pendingShed++;
      if (why === 'source') this.counters.pendingSourceRefused++;
      this.handlers.turnAway(item, status, reason, headers);
    });
  }

  get size(): number {
    return this.#waiting.size;
  }

  /** Starts reading a new connection's head, or turns it away when its source has too many waiting. */
  admit(connection: ClientConnection): void {
    if (this.#waiting.admit(connection, () => connection.remoteAddress)) this.#read(connection, this.server());
  }

  /** Closes every connection still waiting. */
  close(): void {
    for (const connection of this.#waiting.clear()) {
      connection.stopReading();
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
    connection.read(onData, () => this.#stopWaiting(connection));
  }

  #stopWaiting(connection: ClientConnection): void {
    if (this.#waiting.done(connection)) connection.stopReading();
  }
}
