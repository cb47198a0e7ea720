/**
 * How many connections may be on their way to one worker before it acknowledges the first, and why that is safe.
 *
 * Node's channel sends one handle at a time: every later message waits in the sender until the child's
 * NODE_HANDLE_ACK. Under a new connection per request that round trip, not CPU, set the primary's pace (each worker
 * took one connection per turn of both event loops). The handoff lifts the gate (shared/node-internals.ts,
 * `releaseHandleGate`) after each connection sent within this window, which keeps what the gate protected:
 *
 * The child's channel reads at most 64 KiB at a time, and a read stops right after the message that carries a
 * descriptor (Linux never joins two of them in one read). The child gives the read's descriptor to the next
 * handle message it parses, and a later read's descriptor replaces one not yet given. So a handle message must
 * never be split across reads when another handle message follows it. It is not, as long as everything written
 * after the last message the worker has answered (an ACK or NACK says it read that far) fits well inside one
 * read: `maxBytes` (16 KiB, far below the 64 KiB, leaving room for Node's own small messages, which are not
 * counted). A message that does not fit waits for answers; one sent while nothing is unanswered always goes, as
 * under Node's gate, which then stays closed behind it (nothing may follow it before its answer). So does the
 * gate behind a handle Node's cluster module sends. `maxHandles` bounds what a worker that stops reading can hold
 * (see the README's handoff).
 */
export const handleWindowLimits = { maxHandles: 16, maxBytes: 16 * 1024 };

/**
 * One worker's channel as the primary writes it: bytes written, and where each unanswered handle message ends,
 * graycluster's and those Node's cluster module sends (the shared socket of a port a worker listens on through the
 * cluster: a version's own, or an app's second listener): the worker answers all of them, in the order they were sent.
 */
export class HandleWindow {
  #written = 0;
  /** Everything up to here the worker has read: the end of the last handle message it answered. */
  #confirmed = 0;
  /** Each handle message not answered yet, oldest first: where it ends, and whether it is ours. */
  readonly #unanswered: Array<{ end: number; ours: boolean }> = [];

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

  /**
   * Whether another handle message may follow at once what is written: everything since the last answer fits in
   * the window. When not (a large message went alone), Node's gate stays closed until it is answered.
   */
  mayFollow(): boolean {
    return this.#written - this.#confirmed <= this.limits.maxBytes;
  }

  /** A message of `bytes` was sent on the channel (graycluster's unless `ours` is false). */
  wrote(bytes: number, carriesHandle: boolean, ours = true): void {
    this.#written += bytes;
    if (carriesHandle) this.#unanswered.push({ end: this.#written, ours });
  }

  /**
   * The oldest unanswered handle message was answered (ACK or NACK: answers come in the order sent). Returns
   * whether that message was ours.
   */
  answered(): boolean {
    const oldest = this.#unanswered.shift();
    if (oldest === undefined) return false;
    this.#confirmed = oldest.end;
    return oldest.ours;
  }
}
