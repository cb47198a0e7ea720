import { latencyBoundsMs } from '../ipc/messages.js';
import { histogramQuantile } from '../rollout/statistics.js';
import type { Status } from '../primary/status.js';

/** One worker at one moment: enough for rates, percentiles and the charts. */
export interface WorkerSample {
  version: string;
  pid: number | null;
  /** When this worker's process started: counters count from here. */
  startedAt: number;
  rss: number;
  heapUsed: number;
  inFlight: number;
  requests: number;
  cpuPercent: number | null;
  /** Cumulative counts per bucket of `latencyBoundsMs` (+Inf last). */
  latencyBuckets: readonly number[];
}

/** Every worker at one moment. */
export interface Sample {
  time: number;
  workers: Record<string, WorkerSample>;
}

/** What a chart needs of a sample: no counters. */
export interface ChartPoint {
  time: number;
  workers: Record<string, { rss: number; heapUsed: number; inFlight: number; cpuPercent: number | null }>;
}

export interface WorkerRates {
  requestsPerSecond: number;
  /** Latency percentiles of the requests answered in the window, in ms; null when none were. */
  p50Ms: number | null;
  p99Ms: number | null;
}

export interface VersionRates {
  requestsPerSecond: number;
  /** This version's part of all requests answered in the window (0..1); null when none were. */
  share: number | null;
}

/** Rates over the last `windowMs`, from the difference of two samples of the cumulative counters. */
export interface Rates {
  windowMs: number;
  workers: Record<string, WorkerRates>;
  versions: Record<string, VersionRates>;
}

/** Takes what the history keeps from a status snapshot. */
export function sampleOf(status: Status, time: number): Sample {
  const workers: Record<string, WorkerSample> = {};
  for (const worker of status.workers) {
    workers[worker.id] = {
      version: worker.version,
      pid: worker.pid,
      startedAt: time - worker.uptimeMs,
      rss: worker.rss,
      heapUsed: worker.heapUsed,
      inFlight: worker.inFlight,
      requests: worker.requests,
      cpuPercent: worker.cpuPercent,
      latencyBuckets: worker.latencyBuckets,
    };
  }
  return { time, workers };
}

/**
 * The q-quantile (0..1) of a latency histogram, interpolated linearly inside its bucket as Prometheus'
 * histogram_quantile does; null for an empty histogram. A quantile in the +Inf bucket is reported as the highest
 * finite bound: "at least this".
 */
export function quantile(q: number, counts: readonly number[], bounds: readonly number[] = latencyBoundsMs): number | null {
  return histogramQuantile(q, counts, bounds);
}

/** Counts since `before`; a counter that went down was reset (a new process), so it counts from zero. */
function increase(now: readonly number[], before: readonly number[] | undefined): number[] {
  return now.map((value, index) => {
    const earlier = before?.[index] ?? 0;
    return value >= earlier ? value - earlier : value;
  });
}

/**
 * Requests/s, latency percentiles and each version's share of traffic over the last `windowMs`, comparing
 * `current` with the newest sample at least `windowMs` old (or the oldest one there is). A worker restarted since
 * then is compared with its first sample under the new pid, or with zero from its start.
 */
export function ratesOf(samples: readonly Sample[], current: Sample, windowMs: number): Rates {
  const start = Math.max(samples.findLastIndex((sample) => sample.time <= current.time - windowMs), 0);
  const workers: Record<string, WorkerRates> = {};
  const versions: Record<string, VersionRates> = {};
  let total = 0;
  for (const [id, now] of Object.entries(current.workers)) {
    // Without an earlier sample of this process (just started, or the history is new), count from its start.
    let before: WorkerSample | undefined;
    let since = now.startedAt;
    for (const sample of samples.slice(start)) {
      if (sample.time >= current.time) break;
      const candidate = sample.workers[id];
      if (candidate?.pid === now.pid) {
        before = candidate;
        since = sample.time;
        break;
      }
    }
    const seconds = Math.max(current.time - since, 1000) / 1000;
    const [requests = 0] = increase([now.requests], before && [before.requests]);
    const latency = increase(now.latencyBuckets, before?.latencyBuckets);
    workers[id] = { requestsPerSecond: requests / seconds, p50Ms: quantile(0.5, latency), p99Ms: quantile(0.99, latency) };
    const version = (versions[now.version] ??= { requestsPerSecond: 0, share: null });
    version.requestsPerSecond += requests / seconds;
    total += requests / seconds;
  }
  for (const version of Object.values(versions)) version.share = total > 0 ? version.requestsPerSecond / total : null;
  return { windowMs, workers, versions };
}

/** A bounded ring of samples, at most one per `sampleIntervalMs`, reaching back `historyMs`. */
export class History {
  readonly #samples: Sample[] = [];
  readonly capacity: number;

  constructor(readonly historyMs: number, readonly sampleIntervalMs = 1000) {
    this.capacity = Math.ceil(historyMs / sampleIntervalMs) + 1;
  }

  /** Keeps `sample` unless the last one kept is less than a sample interval older; true when kept. */
  add(sample: Sample): boolean {
    const last = this.#samples.at(-1);
    // Timers drift a little: keep a sample that comes a few ms early.
    if (last && sample.time - last.time < this.sampleIntervalMs * 0.9) return false;
    this.#samples.push(sample);
    const firstRecent = this.#samples.findIndex((kept) => kept.time >= sample.time - this.historyMs);  // `sample` at the latest
    this.#samples.splice(0, Math.max(this.#samples.length - this.capacity, firstRecent));
    return true;
  }

  get samples(): readonly Sample[] {
    return this.#samples;
  }

  rates(current: Sample, windowMs = 10_000): Rates {
    return ratesOf(this.#samples, current, windowMs);
  }

  /** The samples as chart points, oldest first. */
  chart(): ChartPoint[] {
    return this.#samples.map(chartPoint);
  }
}

/** The sample's live, measured workers: one between processes (or not yet measured) leaves a gap in its line. */
export function chartPoint(sample: Sample): ChartPoint {
  const workers: ChartPoint['workers'] = {};
  for (const [id, worker] of Object.entries(sample.workers)) {
    if (worker.pid === null || worker.rss === 0) continue;
    workers[id] = { rss: worker.rss, heapUsed: worker.heapUsed, inFlight: worker.inFlight, cpuPercent: worker.cpuPercent };
  }
  return { time: sample.time, workers };
}
