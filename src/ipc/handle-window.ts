/**
 * How many connections may be on their way to one worker before it acknowledges the first, and why that is safe.
 *
 * Node's channel sends one handle at a time: every later message waits in the sender until the child's
 * NODE_HANDLE_ACK. Under a new connection per request that round trip, not CPU, set the primary's pace (each worker
 * took one connection per turn of both event loops). The handoff lifts the gate (shared/node-internals.ts,
 * `releaseHandleGate`) within this window, which keeps what the gate protected:
 *
 * The child's channel reads at most 64 KiB at a time, and a read stops right after the message that carries a
 * descriptor (Linux never joins two of them in one read). The child gives the read's descriptor to the next
 * handle message it parses, and a later read's descriptor replaces one not yet given. So a handle message must
 * never be split across reads when another handle message follows it. It is not, as long as everything written
 * after the last message the worker has answered (an ACK or NACK says it read that far) fits well inside one
 * read: `maxBytes` (16 KiB, far below the 64 KiB, leaving room for Node's own small messages, which are not
 * counted). A message that does not fit waits for answers; one sent while nothing is unanswered always goes, as
 * under Node's gate. `maxHandles` bounds what a worker that stops reading can hold (see the README's handoff).
 */
export const handleWindowLimits = { maxHandles: 16, maxBytes: 16 * 1024 };

/** One worker's channel as the primary writes it: bytes written, and where each unanswered handle message ends. */
export class HandleWindow {
  #written = 0;
  /** Everything up to here the worker has read: the end of the last handle message it answered. */
  #confirmed = 0;
  /** End position of each handle message not answered yet, oldest first (at most maxHandles, or one alone). */
  readonly #unanswered: number[] = [];

  constructor(private readonly limits = handleWindowLimits) {}

  /** Handle messages written and not answered yet. */
  get unanswered(): number {
    return this.#unanswered.length;
  }

  /** Whether a message of `bytes` that carries a handle may be written now, beside those unanswered. */
  admits(bytes: number): boolean {
    const count = this.#unanswered.length;
    return count === 0 || (count < this.limits.maxHandles && this.#written + bytes - this.#confirmed <= this.limits.maxBytes);
  }

  /** A message of `bytes` was written to the channel. */
  wrote(bytes: number, carriesHandle: boolean): void {
    this.#written += bytes;
    if (carriesHandle) this.#unanswered.push(this.#written);
  }

  /** The oldest unanswered handle message was answered (ACK or NACK: answers come in the order sent). */
  answered(): void {
    const end = this.#unanswered.shift();
    if (end !== undefined) this.#confirmed = end;
  }
}
