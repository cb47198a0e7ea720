// Waiting for a condition, for tests and the bench alike: never a fixed sleep where a condition can be named.

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
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await condition();
    if (result) return result;
    if (Date.now() >= deadline) throw new Error(`${what}: not within ${timeoutMs} ms${describe ? `\n${describe()}` : ''}`);
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

/** For pacing and measurement windows only; to wait for something, use waitFor. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
