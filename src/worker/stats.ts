import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import v8 from 'node:v8';
import { latencyBoundsMs, statusClasses, type WorkerStats } from '../ipc/messages.js';
import { ownMemoryUsage } from '../shared/procfs.js';

/** The event-loop delay histogram samples every this many ms; what it records includes this interval. */
const loopDelayResolutionMs = 20;

/** The status class of an HTTP status: 1xx to 5xx (anything out of range is clamped). */
export function statusClassOf(status: number): keyof WorkerStats['statusClasses'] {
  return `${Math.min(5, Math.max(1, Math.floor(status / 100)))}xx` as keyof WorkerStats['statusClasses'];
}

/** The latency histogram bucket of a latency: the first bound it fits under, or the +Inf bucket last. */
export function latencyBucketOf(latencyMs: number): number {
  let bucket = 0;
  for (const bound of latencyBoundsMs) {
    if (latencyMs <= bound) break;
    bucket++;
  }
  return bucket;
}

/** A worker's request counters and latency histogram, as reported to the primary. */
export class RequestStats {
  readonly counters = { requests: 0, shed: 0, forwarded: 0, forwardShed: 0, pendingTurnedAway: 0 };
  /** Counts per status class, 1xx first: indexed, so counting a request builds no string. */
  readonly #statusClasses = statusClasses.map(() => 0);
  readonly #latencyBuckets = new Array<number>(latencyBoundsMs.length + 1).fill(0);
  #latencySumMs = 0;
  #loopDelay: IntervalHistogram | undefined;
  /** The last RSS read, reported again while it cannot be read (no file descriptor left: see ownMemoryUsage). */
  #rss = 0;

  /** Starts sampling the event-loop delay (a worker process does; a unit test need not). */
  watchEventLoop(): void {
    this.#loopDelay ??= monitorEventLoopDelay({ resolution: loopDelayResolutionMs });
    this.#loopDelay.enable();
  }

  /** Counts one answered request. */
  record(status: number, latencyMs: number): void {
    this.counters.requests++;
    // Both indexes are in range by construction: clamped to 0..4, and latencyBucketOf returns 0..bounds.length.
    this.#statusClasses[Math.min(4, Math.max(0, Math.floor(status / 100) - 1))]!++;
    this.#latencyBuckets[latencyBucketOf(latencyMs)]!++;
    this.#latencySumMs += latencyMs;
  }

  /** Everything counted so far, with the process's memory and the event-loop delay since the last snapshot. */
  snapshot(load: { inFlight: number; connections: number }): WorkerStats {
    const memory = this.#memory();
    const loopDelay = this.#loopDelay;
    const delay = loopDelay && loopDelay.count > 0 ? Math.max(0, loopDelay.percentile(99) / 1e6 - loopDelayResolutionMs) : 0;
    loopDelay?.reset();
    return {
      rss: memory.rss, heapUsed: memory.heapUsed, heapTotal: memory.heapTotal,
      ...load, ...this.counters,
      statusClasses: Object.fromEntries(statusClasses.map((name, index) => [name, this.#statusClasses[index] ?? 0])) as WorkerStats['statusClasses'],
      latencyBuckets: [...this.#latencyBuckets], latencySumMs: this.#latencySumMs,
      eventLoopDelayMs: Math.round(delay * 10) / 10,
    };
  }

  #memory(): { rss: number; heapUsed: number; heapTotal: number } {
    const usage = ownMemoryUsage();
    if (usage) {
      this.#rss = usage.rss;
      return usage;
    }
    const heap = v8.getHeapStatistics();
    return { rss: this.#rss, heapUsed: heap.used_heap_size, heapTotal: heap.total_heap_size };
  }
}
