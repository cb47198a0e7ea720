import { latencyBoundsMs } from '../ipc/messages.js';

/**
 * What the primary knows of one worker at one moment. Its counters are cumulative since the worker started;
 * the `workers` entries of /api/status (primary/status.ts WorkerStatus) fit as they are.
 */
export interface WorkerSample {
  /** The worker's slot; a restarted worker keeps its slot and starts its counters again. */
  id: string;
  version: string;
  pid?: number | null;
  restarts: number;
  /** Bytes. */
  rss: number;
  eventLoopDelayMs: number;
  requests: number;
  statusClasses: Readonly<Record<string, number>>;
  /** Counts per bound of `latencyBoundsMs`, +Inf last; may be empty before the worker's first report. */
  latencyBuckets: readonly number[];
}

/** Every worker at one moment. */
export interface Snapshot {
  /** ms since the epoch. */
  at: number;
  workers: readonly WorkerSample[];
}

/** One version's numbers over a window. */
export interface VersionWindow {
  requests: number;
  errors: number;
  /** Same layout as `WorkerStats.latencyBuckets`: one count per bound of `latencyBoundsMs`, then +Inf. */
  latencyBuckets: number[];
  restarts: number;
  /** Workers of the version at the window's end. */
  workers: number;
  /** Largest rss of a worker at the window's end, bytes; 0 with no worker. */
  maxRssBytes: number;
  /** Mean rss growth over the window of the workers that ran through all of it; null when none did. */
  rssGrowthBytes: number | null;
  /** Largest event-loop delay (each worker's p99 over its last interval) at the window's end. */
  maxEventLoopDelayMs: number;
}

/** Canary and baseline over the same span of time. */
export interface Window {
  fromMs: number;
  toMs: number;
  canary: VersionWindow;
  baseline: VersionWindow;
}

/**
 * The difference of two snapshots, summed over each version's workers. A worker whose counters went back
 * (it restarted in its slot, or the slot holds a new process) counts what it has now: what its predecessor
 * answered after `start` is lost, which undercounts but never invents requests. A worker gone by `end`
 * counts nothing; one that appeared counts everything it has.
 */
export function measureWindow(start: Snapshot, end: Snapshot, canary: string, baseline: string): Window {
  const before = new Map(start.workers.map((worker) => [worker.id, worker]));
  const versionWindow = (version: string): VersionWindow => {
    const window: VersionWindow = {
      requests: 0, errors: 0, latencyBuckets: new Array<number>(latencyBoundsMs.length + 1).fill(0), restarts: 0,
      workers: 0, maxRssBytes: 0, rssGrowthBytes: null, maxEventLoopDelayMs: 0,
    };
    let growth = 0;
    let grown = 0;
    for (const worker of end.workers) {
      if (worker.version !== version) continue;
      const previous = before.get(worker.id);
      const same = previous !== undefined && previous.version === version ? previous : undefined;
      const fresh = same === undefined || wentBack(same, worker);
      window.workers++;
      window.restarts += same === undefined ? worker.restarts : Math.max(0, worker.restarts - same.restarts);
      window.requests += worker.requests - (fresh ? 0 : same.requests);
      window.errors += (worker.statusClasses['5xx'] ?? 0) - (fresh ? 0 : same.statusClasses['5xx'] ?? 0);
      worker.latencyBuckets.forEach((count, bucket) => {
        const into = Math.min(bucket, latencyBoundsMs.length);
        window.latencyBuckets[into] = (window.latencyBuckets[into] ?? 0) + count - (fresh ? 0 : same.latencyBuckets[bucket] ?? 0);
      });
      window.maxRssBytes = Math.max(window.maxRssBytes, worker.rss);
      window.maxEventLoopDelayMs = Math.max(window.maxEventLoopDelayMs, worker.eventLoopDelayMs);
      if (!fresh && same.rss > 0 && worker.rss > 0) {
        growth += worker.rss - same.rss;
        grown++;
      }
    }
    window.rssGrowthBytes = grown === 0 ? null : growth / grown;
    return window;
  };
  return { fromMs: start.at, toMs: end.at, canary: versionWindow(canary), baseline: versionWindow(baseline) };
}

/** True when the slot's counters started again between the two samples. */
function wentBack(previous: WorkerSample, current: WorkerSample): boolean {
  if (previous.pid != null && current.pid != null && previous.pid !== current.pid) return true;
  if (current.restarts !== previous.restarts || current.requests < previous.requests) return true;
  if (Object.entries(previous.statusClasses).some(([name, count]) => (current.statusClasses[name] ?? 0) < count)) return true;
  return previous.latencyBuckets.some((count, bucket) => (current.latencyBuckets[bucket] ?? 0) < count);
}
