import type { LifecycleEvent } from './events.js';
import type { RouterCounters } from './router.js';
import type { Supervisor } from './supervisor.js';
import type { PublicWorkerState as WorkerState, VersionState } from './worker-state.js';
import type { ConfigFile } from '../config/types.js';
import type { RolloutReport } from '../rollout/report.js';

export interface WorkerStatus {
  id: string;
  pid: number | null;
  version: string;
  state: WorkerState;
  rss: number;
  /** Percent of one core over the last statsIntervalMs, sampled by the primary from /proc; null until known. */
  cpuPercent: number | null;
  /** CPU time (user + system) of the worker's current process, in seconds; null until known. */
  cpuSeconds: number | null;
  heapUsed: number;
  inFlight: number;
  connections: number;
  requests: number;
  restarts: number;
  uptimeMs: number;
  shed: number;
  forwarded: number;
  forwardShed: number;
  /** Connections on the version's own port closed or refused while waiting for their first head. */
  pendingTurnedAway: number;
  eventLoopDelayMs: number;
  /** Missed its heartbeat: its event loop is blocked. */
  unresponsive: boolean;
  statusClasses: Record<string, number>;
  /** Cumulative latency histogram: counts per bound of `latencyBoundsMs`, +Inf last. */
  latencyBuckets: number[];
  latencySumMs: number;
  /** Lines of its output that missed the primary's stdout or its log file because they could not keep up. */
  logLinesDropped: number;
}

export interface VersionStatus {
  state: VersionState;
  configured: number;
  ready: number;
  entry: string;
  weight: number | null;
  /** The version's own port (`versions.<name>.port`), or null. */
  port: number | null;
  /** Of its ready workers, how many listen on `port` (0 without one). */
  portListening: number;
  /** Why a ready worker of it cannot listen on `port` (another program holds it: "EADDRINUSE"), or null. */
  portError: string | null;
}

/** What GET /api/status and `graycluster status` report. */
export interface Status {
  pid: number;
  uptimeMs: number;
  server: { host: string; port: number };
  versions: Record<string, VersionStatus>;
  workers: WorkerStatus[];
  routing: ConfigFile['routing'];
  /** The progressive rollout in the config file, with its last verdict; null when the file has none. */
  rollout: RolloutReport | null;
  router: RouterCounters & { pending: number };
  configError: string | null;
  /** When the config now running was applied (ms since the epoch): at start, then after each change of the file. */
  configAppliedAt: number;
  events: LifecycleEvent[];
}

export interface StatusSources {
  supervisor: Supervisor;
  routing: () => ConfigFile['routing'];
  rollout: () => RolloutReport | null;
  router: () => RouterCounters & { pending: number };
  server: { host: string; port: number };
  configError: () => string | null;
  configAppliedAt: () => number;
  events: () => LifecycleEvent[];
  startedAt: number;
}

/** Every live worker's figures now: the `workers` of the status, and what the rollout controller judges. */
export function workerStatuses(supervisor: Supervisor, now = Date.now()): WorkerStatus[] {
  const dropped = supervisor.logs.dropped();
  return supervisor.workers.map((worker) => ({
    id: worker.id,
    pid: worker.pid ?? null,
    version: worker.version,
    state: worker.state,
    rss: worker.rss,
    cpuPercent: worker.cpuPercent === null ? null : Math.round(worker.cpuPercent * 10) / 10,
    cpuSeconds: worker.cpuSeconds,
    heapUsed: worker.stats.heapUsed,
    inFlight: worker.stats.inFlight,
    connections: worker.stats.connections,
    requests: worker.stats.requests,
    restarts: worker.restarts,
    uptimeMs: worker.startedAt === undefined ? 0 : now - worker.startedAt,
    shed: worker.stats.shed,
    forwarded: worker.stats.forwarded,
    forwardShed: worker.stats.forwardShed,
    pendingTurnedAway: worker.stats.pendingTurnedAway,
    eventLoopDelayMs: worker.stats.eventLoopDelayMs,
    unresponsive: worker.unresponsive,
    statusClasses: worker.stats.statusClasses,
    latencyBuckets: worker.stats.latencyBuckets,
    latencySumMs: worker.stats.latencySumMs,
    logLinesDropped: dropped[worker.id] ?? 0,
  }));
}

export function snapshot(sources: StatusSources): Status {
  const now = Date.now();
  const routing = sources.routing();
  const workers = workerStatuses(sources.supervisor, now);
  const ports = new Map(sources.supervisor.workers.map((view) => [view.id, view.versionPort]));
  const versions: Record<string, VersionStatus> = {};
  for (const worker of workers) {
    const config = sources.supervisor.versionConfig(worker.version);
    const version = versions[worker.version] ??= {
      state: sources.supervisor.versionState(worker.version),
      configured: config?.workers ?? 0,
      ready: 0,
      entry: config?.entry ?? '',
      weight: routing.weights?.[worker.version] ?? null,
      port: config?.port ?? null,
      portListening: 0,
      portError: null,
    };
    if (worker.state !== 'ready') continue;
    version.ready++;
    const port = ports.get(worker.id);
    if (port?.listening) version.portListening++;
    else if (port?.error) version.portError = port.error;
  }
  return {
    pid: process.pid,
    uptimeMs: now - sources.startedAt,
    server: sources.server,
    versions,
    workers,
    routing,
    rollout: sources.rollout(),
    router: sources.router(),
    configError: sources.configError(),
    configAppliedAt: sources.configAppliedAt(),
    events: sources.events(),
  };
}
