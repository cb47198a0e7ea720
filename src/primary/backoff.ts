/** Restart policy after a crash: the first restart at once, then exponential backoff, reset by healthy uptime. */
export interface BackoffPolicy {
  /** Delay before the second restart in a row; each later one doubles it. */
  initialMs: number;
  maxMs: number;
  /** A worker up this long since it became ready counts as healthy: its failure count starts over. */
  healthyAfterMs: number;
  /** Consecutive failures after which a worker (and a version with no ready worker) is in crashloop. */
  crashloopAfter: number;
}

export const backoffDefaults: BackoffPolicy = { initialMs: 100, maxMs: 30_000, healthyAfterMs: 30_000, crashloopAfter: 5 };

/** Delay before restart number `failures` (1 for the first failure): 0, then 100 ms, 200 ms … capped at 30 s. */
export function restartDelay(failures: number, policy: BackoffPolicy = backoffDefaults): number {
  if (failures <= 1) return 0;
  return Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(failures - 2, 30));
}
