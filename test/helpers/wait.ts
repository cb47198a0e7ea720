// Waiting for a condition, for tests and the bench alike: never a fixed sleep where a condition can be named.
// Every helper's time limit runs on src/shared/stalls.ts's clock, as the supervisor's deadlines do: a machine held
// up under a test (a paused VM) gives the awaited side its whole time again once it runs, instead of failing the
// waits that were under way.
import { ranSince, runningNow } from '../../src/shared/stalls.js';

export interface WaitOptions {
  /** How long before it gives up (default 15 s). */
  timeoutMs?: number;
  /** How often the condition is checked (default 50 ms). */
  intervalMs?: number;
  /** What is awaited, in words, for the error when it does not come. */
  what?: string;
  /** Extra text for that error: the last state seen, say, or what a process printed. */
  describe?: () => string;
}

/**
 * Checks `condition` until it returns a truthy value, and resolves with that value; rejects once `timeoutMs`
 * has passed (the condition is checked one last time at the deadline). An error thrown by the condition
 * rejects at once.
 */
export async function waitFor<T>(condition: () => T | Promise<T>, { timeoutMs = 15_000, intervalMs = 50, what = 'the condition', describe }: WaitOptions = {}): Promise<NonNullable<T>> {
  const start = runningNow();
  for (;;) {
    const result = await condition();
    if (result) return result;
    const left = timeoutMs - ranSince(start);
    if (left <= 0) throw new Error(`${what}: not within ${timeoutMs} ms${describe ? `\n${describe()}` : ''}`);
    await sleep(Math.min(intervalMs, left));
  }
}

/** Holds this process's event loop up for `ms`, as a long GC pause or a stopped process would (for stall tests). */
export function holdUp(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

/** For pacing and measurement windows only; to wait for something, use waitFor. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
