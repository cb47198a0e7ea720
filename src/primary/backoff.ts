/** Restart policy after a crash: exponential backoff, reset by healthy uptime. */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  /** A worker up this long since it became ready counts as healthy: its failure count starts over. */
  healthyAfterMs: number;
  /** Consecutive failures after which a worker (and a version with no ready worker) is in crashloop. */
  crashloopAfter: number;
}

export const backoffDefaults: BackoffPolicy = { initialMs: 100, maxMs: 30_000, healthyAfterMs: 30_000, crashloopAfter: 5 };

/** Delay before restart number `failures` (1 for the first failure): 100 ms, 200 ms, 400 ms … capped at 30 s. */
export function restartDelay(failures: number, policy: BackoffPolicy = backoffDefaults): number {
  return Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, Math.min(failures - 1, 30)));
}
