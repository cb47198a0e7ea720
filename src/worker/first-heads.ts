import type { Socket } from 'node:net';
import { answerText, retryAfterSeconds } from '../shared/answers.js';
import { PendingBook, pendingLimits, sourceOf, WaitDeadlines } from '../shared/pending-book.js';

/** The settings of `server` that bound connections waiting for their first head. */
export interface FirstHeadLimits {
  headTimeoutMs: number;
  maxPendingConnections: number;
  maxPendingPerSource: number;
}

/**
 * Connections a worker accepted on its version's own port that wait for their first request's head, held to the
 * limits the primary holds its own port's to (shared/pending-book.ts): `headTimeoutMs` to send it (then 408),
 * `maxPendingConnections` waiting at once (the oldest of the address holding the most closed with 408 to make
 * room) and, under pressure, `maxPendingPerSource` from one address (more get 503). Node's parser reads the head;
 * this only keeps the books, from the connection's arrival to its first request (or its close).
 */
export class FirstHeads {
  readonly #book: PendingBook<Socket>;
  readonly #deadlines: WaitDeadlines<Socket>;

  /** `turnedAway` counts each connection closed by these limits. */
  constructor(private readonly limits: () => FirstHeadLimits, private readonly turnedAway: () => void) {
    this.#book = new PendingBook(pendingLimits(limits()));
    this.#deadlines = new WaitDeadlines(() => this.limits().headTimeoutMs, (socket, timeoutMs) => {
      this.#book.remove(socket);
      this.#turnAway(socket, 408, `no complete request head within ${timeoutMs} ms`);
    });
  }

  get size(): number {
    return this.#book.size;
  }

  /** Books a new connection, closing others to make room; false when it is itself turned away. */
  admit(socket: Socket): boolean {
    const limits = this.limits();
    this.#book.setLimits(pendingLimits(limits));
    const admission = this.#book.admit(socket, () => sourceOf(socket.remoteAddress));
    if (!admission.admit) {
      this.#turnAway(socket, 503, `more than ${limits.maxPendingPerSource} connections from one address waiting`, { 'retry-after': String(retryAfterSeconds) });
      return false;
    }
    for (const victim of admission.shed) {
      this.#deadlines.delete(victim);
      this.#turnAway(victim, 408, `closed to make room: ${limits.maxPendingConnections} connections were waiting for their head`);
    }
    this.#deadlines.add(socket);
    return true;
  }

  /** The connection's first head came, or it closed: it waits no longer. */
  done(socket: Socket): void {
    if (!this.#book.has(socket)) return;
    this.#book.remove(socket);
    this.#deadlines.delete(socket);
  }

  #turnAway(socket: Socket, status: number, reason: string, headers?: Record<string, string>): void {
    this.turnedAway();
    socket.on('error', () => socket.destroy());
    socket.end(answerText(status, reason, headers), () => socket.destroy());
  }
}
