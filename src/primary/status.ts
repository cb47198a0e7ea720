import type { LifecycleEvent } from './events.js';
import type { RouterCounters } from './router.js';
import type { Supervisor, VersionState, WorkerState } from './supervisor.js';
import type { ConfigFile } from '../config/types.js';

export interface WorkerStatus {
  id: string;
  pid: number | null;
  version: string;
  state: WorkerState;
  rss: number;
  heapUsed: number;
  inFlight: number;
  connections: number;
  requests: number;
  restarts: number;
  uptimeMs: number;
  shed: number;
  forwarded: number;
  forwardShed: number;
  eventLoopDelayMs: number;
  /** Missed its heartbeat: its event loop is blocked. */
  unresponsive: boolean;
  statusClasses: Record<string, number>;
  /** Cumulative latency histogram: counts per bound of `latencyBoundsMs`, +Inf last. */
  latencyBuckets: number[];
  latencySumMs: number;
}

export interface VersionStatus {
  state: VersionState;
  configured: number;
  ready: number;
  entry: string;
  weight: number | null;
}

/** What GET /api/status and `graycluster status` report. */
export interface Status {
  pid: number;
  uptimeMs: number;
  server: { host: string; port: number };
  versions: Record<string, VersionStatus>;
  workers: WorkerStatus[];
  routing: ConfigFile['routing'];
  router: RouterCounters & { pending: number };
  configError: string | null;
  events: LifecycleEvent[];
}

export interface StatusSources {
  supervisor: Supervisor;
  routing: () => ConfigFile['routing'];
  router: () => RouterCounters & { pending: number };
  server: { host: string; port: number };
  configError: () => string | null;
  events: () => LifecycleEvent[];
  startedAt: number;
}

export function snapshot(sources: StatusSources): Status {
  const now = Date.now();
  const routing = sources.routing();
  const workers: WorkerStatus[] = sources.supervisor.slots.map((slot) => ({
    id: slot.id,
    pid: slot.pid ?? null,
    version: slot.version,
    state: slot.state,
    rss: slot.rss,
    heapUsed: slot.stats.heapUsed,
    inFlight: slot.stats.inFlight,
    connections: slot.stats.connections,
    requests: slot.stats.requests,
    restarts: slot.restarts,
    uptimeMs: slot.worker ? now - slot.startedAt : 0,
    shed: slot.stats.shed,
    forwarded: slot.stats.forwarded,
    forwardShed: slot.stats.forwardShed,
    eventLoopDelayMs: slot.stats.eventLoopDelayMs,
    unresponsive: slot.unresponsive,
    statusClasses: slot.stats.statusClasses,
    latencyBuckets: slot.stats.latencyBuckets,
    latencySumMs: slot.stats.latencySumMs,
  }));
  const versions: Record<string, VersionStatus> = {};
  for (const worker of workers) {
    const config = sources.supervisor.versionConfig(worker.version);
    versions[worker.version] ??= {
      state: sources.supervisor.versionState(worker.version),
      configured: config?.workers ?? 0,
      ready: 0,
      entry: config?.entry ?? '',
      weight: routing.weights?.[worker.version] ?? null,
    };
    if (worker.state === 'ready') versions[worker.version]!.ready++;
  }
  return {
    pid: process.pid,
    uptimeMs: now - sources.startedAt,
    server: sources.server,
    versions,
    workers,
    routing,
    router: sources.router(),
    configError: sources.configError(),
    events: sources.events(),
  };
}
