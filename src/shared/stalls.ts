import { performance } from 'node:perf_hooks';

// This process's stalls: spans in which its event loop was held up long enough to run a tick of its watch over
// `stallMs` late (a long GC pause, a CPU taken by other processes, a stopped process, a paused VM). Every deadline on
// which this process blames another side (a worker that does not report, take a connection, start or finish in time;
// a client that sends no head; a dashboard that does not answer a ping) counts only the time since the last stall
// ended. Over a stall the other side's answer may have come and not been read yet (timers run before the poll phase
// that reads it), or the other side may have been held up too (a paused VM holds every process): either way the time
// this process did not run is not the other side's fault. Without this, a primary held up for unresponsiveRestartMs
// killed every healthy worker when it ran again.

/** How often the watch ticks while deadlines run. */
const tickMs = 100;
/** A tick this much later than due means the event loop was held up: a stall. */
export const stallMs = 250;

let lastTick = 0;
let stallEndedAt = Number.NEGATIVE_INFINITY;
let ticker: NodeJS.Timeout | undefined;

/**
 * The monotonic clock, performance.now() (so a plain performance.now() reading is a `since` for ranSince too), noting
 * a stall if the event loop was held up since the last look.
 */
export function runningNow(): number {
  const now = performance.now();
  if (ticker === undefined) {
    ticker = setInterval(runningNow, tickMs).unref();
  } else if (now - lastTick > tickMs + stallMs) {
    stallEndedAt = now;
  }
  lastTick = now;
  return now;
}

/** Milliseconds this process has run since `since` (a runningNow() reading), leaving out its stalls. */
export function ranSince(since: number, now = runningNow()): number {
  return now - Math.max(since, stallEndedAt);
}

/**
 * Calls `expire` once this process has run for `ms` since it was set: a stall in between gives the other side its
 * whole time again, from the stall's end.
 */
export class Deadline {
  readonly #setAt = runningNow();
  #timer: NodeJS.Timeout | undefined;
  #refed = true;

  constructor(private readonly ms: number, private readonly expire: () => void) {
    this.#timer = setTimeout(() => this.#check(), ms);
  }

  #check(): void {
    const left = this.ms - ranSince(this.#setAt);
    if (left <= 0) {
      this.#timer = undefined;
      this.expire();
      return;
    }
    this.#timer = setTimeout(() => this.#check(), left);
    if (!this.#refed) this.#timer.unref();
  }

  /** Lets the process exit while only this deadline is pending. */
  unref(): this {
    this.#refed = false;
    this.#timer?.unref();
    return this;
  }

  clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
