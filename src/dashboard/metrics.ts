import { latencyBoundsMs, statusClasses } from '../ipc/messages.js';
import { publicWorkerStates, versionStates } from '../primary/worker-state.js';
import type { Status, VersionStatus } from '../primary/status.js';
import { rolloutStates } from '../config/rollout.js';
import type { FeedCounters } from './feed.js';
import type { LogFollowCounters } from './logs.js';
import type { WorkerView } from './messages.js';

/** The content type of the Prometheus text exposition format. */
export const metricsContentType = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Record<string, string>;
interface Point {
  labels?: Labels;
  value: number;
  /** `_bucket`, `_count`: the parts of a histogram. */
  suffix?: string;
}


function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labelText(labels: Labels | undefined): string {
  if (!labels || Object.keys(labels).length === 0) return '';
  return `{${Object.entries(labels).map(([name, value]) => `${name}="${escapeLabel(value)}"`).join(',')}}`;
}

function valueText(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

export interface MetricsSources {
  status: Status;
  feed: FeedCounters & { clients: number };
  /** The primary's own memory. */
  primary?: NodeJS.MemoryUsage;
  /** Readers of GET /api/logs?follow=1. */
  logFollowers?: LogFollowCounters & { followers: number };
}

/**
 * Everything the status shows, as Prometheus text: per worker (labels `worker` and `version`, so
 * `sum by (version)` gives a version's figure) and per version, plus the router's and the feed's counters.
 */
export function renderMetrics({ status, feed, primary, logFollowers }: MetricsSources): string {
  const lines: string[] = [];
  const family = (name: string, type: 'gauge' | 'counter' | 'histogram', help: string, points: Point[]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const point of points) lines.push(`${name}${point.suffix ?? ''}${labelText(point.labels)} ${valueText(point.value)}`);
  };
  const workers = status.workers as WorkerView[];
  const labelsOf = (worker: WorkerView) => ({ worker: worker.id, version: worker.version });
  const perWorker = (value: (worker: WorkerView) => number): Point[] => workers.map((worker) => ({ labels: labelsOf(worker), value: value(worker) }));
  const versions = Object.entries(status.versions);
  const perVersion = (value: (name: string, version: VersionStatus) => number): Point[] => versions.map(([name, version]) => ({ labels: { version: name }, value: value(name, version) }));
  const sumOf = (name: string, value: (worker: WorkerView) => number) =>
    workers.filter((worker) => worker.version === name).reduce((sum, worker) => sum + value(worker), 0);

  family('graycluster_uptime_seconds', 'gauge', 'Seconds since the primary started.', [{ value: status.uptimeMs / 1000 }]);
  if (primary) {
    family('graycluster_primary_rss_bytes', 'gauge', 'Resident memory of the primary process.', [{ value: primary.rss }]);
    family('graycluster_primary_heap_used_bytes', 'gauge', 'V8 heap in use in the primary.', [{ value: primary.heapUsed }]);
    family('graycluster_primary_array_buffers_bytes', 'gauge', 'Buffers held by the primary, such as data queued for slow sockets.', [{ value: primary.arrayBuffers }]);
  }
  family('graycluster_config_error', 'gauge', '1 when the config file on disk is not wholly applied: rejected, or a version\'s new workers did not start.', [{ value: status.configError ? 1 : 0 }]);
  family('graycluster_config_applied_timestamp_seconds', 'gauge', 'When the running config was applied (at start, then at each change of the file it applied), in seconds since the epoch.',
    [{ value: status.configAppliedAt / 1000 }]);

  const rollout = status.rollout;
  const rolloutLabels: Labels = rollout ? { version: rollout.version, baseline: rollout.baseline } : {};
  family('graycluster_rollout_state', 'gauge', 'The progressive rollout\'s state: 1 for the current one; no samples without a rollout.',
    rollout ? rolloutStates.map((state) => ({ labels: { ...rolloutLabels, state }, value: rollout.state === state ? 1 : 0 })) : []);
  family('graycluster_rollout_step', 'gauge', 'The rollout\'s current step, 0-based.', rollout ? [{ labels: rolloutLabels, value: rollout.step }] : []);
  family('graycluster_rollout_steps', 'gauge', 'How many steps the rollout has.', rollout ? [{ labels: rolloutLabels, value: rollout.steps.length }] : []);
  family('graycluster_rollout_weight', 'gauge', 'The canary\'s weight now: its step\'s, 100 once promoted, 0 once rolled back or aborted.',
    rollout ? [{ labels: rolloutLabels, value: rollout.weight }] : []);

  family('graycluster_version_workers_configured', 'gauge', 'Workers the config asks for, per version.', perVersion((_, version) => version.configured));
  family('graycluster_version_workers_ready', 'gauge', 'Workers ready to take connections, per version.', perVersion((_, version) => version.ready));
  family('graycluster_version_weight', 'gauge', 'Configured routing weight, per weighted version.',
    versions.flatMap(([name, version]) => (version.weight === null ? [] : [{ labels: { version: name }, value: version.weight }])));
  family('graycluster_version_state', 'gauge', 'The version\'s state: 1 for the current one.',
    versions.flatMap(([name, version]) => versionStates.map((state) => ({ labels: { version: name, state }, value: version.state === state ? 1 : 0 }))));
  family('graycluster_version_rss_bytes', 'gauge', 'Resident memory of all the version\'s workers.', perVersion((name) => sumOf(name, (worker) => worker.rss)));
  family('graycluster_version_in_flight_requests', 'gauge', 'Requests the version\'s workers are running now.', perVersion((name) => sumOf(name, (worker) => worker.inFlight)));

  family('graycluster_worker_state', 'gauge', 'The worker\'s state: 1 for the current one.',
    workers.flatMap((worker) => publicWorkerStates.map((state) => ({ labels: { ...labelsOf(worker), state }, value: worker.state === state ? 1 : 0 }))));
  if (workers.some((worker) => worker.unresponsive !== undefined)) {
    family('graycluster_worker_unresponsive', 'gauge', '1 when the worker missed its heartbeat.', perWorker((worker) => (worker.unresponsive ? 1 : 0)));
  }
  family('graycluster_worker_uptime_seconds', 'gauge', 'Seconds since the worker\'s current process started.', perWorker((worker) => worker.uptimeMs / 1000));
  family('graycluster_worker_rss_bytes', 'gauge', 'Resident memory of the worker process.', perWorker((worker) => worker.rss));
  // Workers not measured yet (or without /proc) have no sample rather than a made-up zero.
  family('graycluster_worker_cpu_seconds_total', 'counter', 'CPU time (user + system) used by the worker\'s current process, read by the primary from /proc.',
    workers.flatMap((worker) => (worker.cpuSeconds === null ? [] : [{ labels: labelsOf(worker), value: worker.cpuSeconds }])));
  family('graycluster_worker_cpu_percent', 'gauge', 'Percent of one core the worker used over the primary\'s last stats interval.',
    workers.flatMap((worker) => (worker.cpuPercent === null ? [] : [{ labels: labelsOf(worker), value: worker.cpuPercent }])));
  family('graycluster_worker_heap_used_bytes', 'gauge', 'V8 heap in use in the worker.', perWorker((worker) => worker.heapUsed));
  family('graycluster_worker_in_flight_requests', 'gauge', 'Requests the worker\'s app is running now.', perWorker((worker) => worker.inFlight));
  family('graycluster_worker_connections', 'gauge', 'Client connections the worker holds.', perWorker((worker) => worker.connections));
  family('graycluster_worker_event_loop_delay_seconds', 'gauge', 'Event-loop delay of the worker, p99 over its last stats interval.', perWorker((worker) => worker.eventLoopDelayMs / 1000));
  family('graycluster_worker_requests_total', 'counter', 'Requests answered by the worker\'s current process, by status class.',
    workers.flatMap((worker) => statusClasses.map((statusClass) => ({ labels: { ...labelsOf(worker), class: statusClass }, value: worker.statusClasses[statusClass] ?? 0 }))));
  family('graycluster_worker_restarts_total', 'counter', 'Times the worker was restarted after a crash or a failed start.', perWorker((worker) => worker.restarts));
  family('graycluster_worker_shed_total', 'counter', 'Requests answered 503 because the worker was at maxInFlight.', perWorker((worker) => worker.shed));
  family('graycluster_worker_forwarded_total', 'counter', 'Requests on a shared keep-alive connection that belonged to another version and were forwarded to it.', perWorker((worker) => worker.forwarded));
  family('graycluster_worker_log_lines_dropped_total', 'counter', 'Lines of the worker\'s output that missed the primary\'s stdout or the version\'s log file because they could not keep up.',
    perWorker((worker) => worker.logLinesDropped));
  family('graycluster_worker_pending_turned_away_total', 'counter', 'Connections on the version\'s own port closed (408) or refused (503) while waiting for their first head.', perWorker((worker) => worker.pendingTurnedAway));
  family('graycluster_worker_forward_shed_total', 'counter', 'Forwards refused with 503 because forwardMaxPending were under way.', perWorker((worker) => worker.forwardShed));

  const histogram: Point[] = [];
  for (const worker of workers) {
    const buckets = worker.latencyBuckets;
    if (buckets.length === 0) continue;
    let cumulative = 0;
    latencyBoundsMs.forEach((bound, index) => {
      cumulative += buckets[index] ?? 0;
      histogram.push({ suffix: '_bucket', labels: { ...labelsOf(worker), le: String(bound / 1000) }, value: cumulative });
    });
    cumulative += buckets[latencyBoundsMs.length] ?? 0;
    histogram.push({ suffix: '_bucket', labels: { ...labelsOf(worker), le: '+Inf' }, value: cumulative });
    histogram.push({ suffix: '_sum', labels: labelsOf(worker), value: worker.latencySumMs / 1000 });
    histogram.push({ suffix: '_count', labels: labelsOf(worker), value: cumulative });
  }
  family('graycluster_worker_request_duration_seconds', 'histogram', 'Time from a request\'s head to its response\'s end, in the worker.', histogram);

  family('graycluster_router_handed_off_total', 'counter', 'Connections handed to a worker.', [{ value: status.router.handedOff }]);
  family('graycluster_router_fallbacks_total', 'counter', 'Connections sent to routing.default because their version had no ready worker.', [{ value: status.router.fallbacks }]);
  family('graycluster_router_shared_peers', 'gauge', 'Peers known to pool their connections (a load balancer): their new connections go to the version that leads.', [{ value: status.router.sharedPeers }]);
  family('graycluster_router_shared_placements_total', 'counter', 'Connections from pooling peers placed with the version that leads, not their first request\'s.', [{ value: status.router.sharedPlacements }]);
  family('graycluster_router_refused_total', 'counter', 'Connections the primary answered itself, by status (0: closed without an answer).',
    Object.entries(status.router.refused).map(([code, count]) => ({ labels: { status: code }, value: count })));
  family('graycluster_router_pending_connections', 'gauge', 'Connections waiting for their head or for a handoff.', [{ value: status.router.pending }]);
  family('graycluster_router_pending_shed_total', 'counter', 'Connections waiting for their head closed (408) to make room at maxPendingConnections.', [{ value: status.router.pendingShed }]);
  family('graycluster_router_pending_source_refused_total', 'counter', 'Connections refused (503) because their address had maxPendingPerSource waiting.', [{ value: status.router.pendingSourceRefused }]);

  family('graycluster_dashboard_clients', 'gauge', 'Dashboard pages connected to the live feed.', [{ value: feed.clients }]);
  family('graycluster_dashboard_frames_skipped_total', 'counter', 'Feed frames not sent to a client that had more than maxBufferedBytes unsent.', [{ value: feed.framesSkipped }]);
  family('graycluster_dashboard_clients_terminated_total', 'counter', 'Feed clients cut off for not answering a ping.', [{ value: feed.clientsTerminated }]);
  family('graycluster_dashboard_clients_refused_total', 'counter', 'Feed connections refused because maxClients were connected.', [{ value: feed.clientsRefused }]);
  if (logFollowers) {
    family('graycluster_dashboard_log_followers', 'gauge', 'Readers following the workers\' output (GET /api/logs?follow=1).', [{ value: logFollowers.followers }]);
    family('graycluster_dashboard_log_followers_refused_total', 'counter', 'Log follow requests refused (503) because maxLogFollowers were following.', [{ value: logFollowers.followersRefused }]);
    family('graycluster_dashboard_log_lines_missed_total', 'counter', 'Lines not sent to a log follower that had more than maxLogBufferedBytes unsent.', [{ value: logFollowers.linesMissed }]);
  }
  return `${lines.join('\n')}\n`;
}
