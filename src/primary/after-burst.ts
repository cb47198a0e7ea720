/** When the router counts as quiet after a burst, and how often the collection may run at most. */
export interface AfterBurstPolicy {
  /** New connections since the last collection that make a burst worth collecting after. */
  minConnections: number;
  /** A check runs this often while connections come; one that finds none new since the last counts as quiet. */
  quietMs: number;
  /** Least time between two collections, however the bursts come. */
  minIntervalMs: number;
}

/**
 * Each new connection leaves objects (its head, the handoff message, timers) that lived long enough, waiting for a
 * head or a worker's acknowledgement, to be promoted out of the small young generation; once dead they stay in
 * old space until V8's next full collection, which after a burst may not come for many seconds. About 1 kB each,
 * so a few thousand connections through a load balancer that churns its upstream pool hold several MB that the
 * primary no longer needs.
 */
export const afterBurstDefaults: AfterBurstPolicy = { minConnections: 500, quietMs: 250, minIntervalMs: 5000 };

/**
 * Runs `collect` once the router goes quiet after a burst: at least `minConnections` new connections, then a whole
 * `quietMs` without one. Never while connections keep coming, and at most once per `minIntervalMs`. Costs a
 * counter per connection; the check's timer runs only between a connection and the next quiet.
 */
export class AfterBurst {
  #connections = 0;
  #connectionsAtLastCheck = 0;
  #lastCollectedAt = -Infinity;
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly collect: () => void, private readonly policy: AfterBurstPolicy = afterBurstDefaults) {}

  /** A new connection came. */
  connection(): void {
    this.#connections++;
    this.#timer ??= setInterval(() => this.#check(), this.policy.quietMs).unref();
  }

  /** Stops checking (the router closed). */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #check(): void {
    if (this.#connections !== this.#connectionsAtLastCheck) {
      this.#connectionsAtLastCheck = this.#connections;
      return;
    }
    if (this.#connections >= this.policy.minConnections) {
      if (performance.now() - this.#lastCollectedAt < this.policy.minIntervalMs) return;  // Checked again next time.
      this.#lastCollectedAt = performance.now();
      this.#connections = this.#connectionsAtLastCheck = 0;
      this.collect();
    }
    this.close();
  }
}
