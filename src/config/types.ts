/** One routing rule as written in the config file. */
export interface RuleOptions {
  query?: string;
  header?: string;
  cookie?: string;
  equals?: string;
  to?: string;
}

/** The config file as the user writes it: everything but `versions` and `routing.default` is optional. */
export interface ConfigFile {
  server?: Partial<ServerConfig>;
  dashboard?: Partial<DashboardConfig>;
  health?: Partial<HealthConfig>;
  diagnostics?: Partial<DiagnosticsConfig>;
  logs?: Partial<LogsConfig>;
  versions: Record<string, {
    entry: string; workers?: number; env?: Record<string, string>; maxInFlight?: number; maxMemoryMB?: number; maxMemoryHardMB?: number; port?: number;
    nodeArgs?: string[]; args?: string[]; cwd?: string;
    logFile?: string | { path: string; maxBytes?: number; keep?: number };
  }>;
  routing: {
    default: string;
    rules?: RuleOptions[];
    weights?: Record<string, number>;
    sticky?: { key?: string; cookie?: string };
    versionCookie?: string;
  };
  rollout?: RolloutOptions;
}

/** A progressive rollout as written in the file; `status` is written by graycluster as the rollout moves. */
export interface RolloutOptions {
  version: string;
  baseline?: string;
  steps?: number[];
  stepMs?: number;
  checkIntervalMs?: number;
  minRequests?: number;
  progressDeadlineMs?: number | null;
  keepCanaryOnRollback?: boolean;
  gates?: { [Gate in keyof RolloutGates]?: Partial<NonNullable<RolloutGates[Gate]>> | boolean };
  status?: { state: RolloutState; step: number; stepStartedAt: number; reason?: string };
}

export type RolloutState = 'running' | 'paused' | 'promoted' | 'rolled_back' | 'aborted';

/** Each gate's thresholds; null: the gate is switched off. See src/rollout/gates.ts for what each judges. */
export interface RolloutGates {
  errors: { significance: number; maxRate: number } | null;
  latency: { significance: number; maxP99Ratio: number; maxProbabilitySlower: number } | null;
  restarts: { max: number } | null;
  memory: { maxMB: number | null; maxGrowthMBPerMinute: number } | null;
  eventLoop: { maxDelayMs: number } | null;
}

/** A validated rollout with every default filled in (src/config/rollout.ts). */
export interface RolloutConfig {
  version: string;
  baseline: string;
  /** The canary's weight at each step, strictly increasing, 1–100. */
  steps: number[];
  stepMs: number;
  checkIntervalMs: number;
  minRequests: number;
  /** A step whose gates still wait for samples this long after its window began pauses; null: waits forever. */
  progressDeadlineMs: number | null;
  keepCanaryOnRollback: boolean;
  gates: RolloutGates;
  /** `stepStartedAt` null: declared in the file by hand and not begun yet. */
  status: { state: RolloutState; step: number; stepStartedAt: number | null; reason: string };
}

export interface ServerConfig {
  host: string;
  port: number;
  versionHeader: string | false;
  maxHeadBytes: number;
  headTimeoutMs: number;
  maxPendingConnections: number;
  maxPendingPerSource: number;
  drainTimeoutMs: number;
  readyTimeoutMs: number;
  forwardMaxPending: number;
  /** Per worker: idle relay connections kept to each worker of another version; more are closed once answered. */
  relayMaxIdlePerTarget: number;
  /** A relay connection idle this long is closed (checked every half of it). */
  relayIdleTimeoutMs: number;
  statsIntervalMs: number;
  heartbeatTimeoutMs: number;
  unresponsiveRestartMs: number;
  /**
   * Addresses or CIDR ranges of the proxies in front of graycluster, whose forwarding headers (X-Forwarded-For,
   * Forwarded, X-Real-IP, X-Forwarded-Host/Proto/Port) reach the app; from any other peer they are removed.
   */
  trustProxy: false | string[];
  /**
   * A worker that has not taken a connection it was sent within this time gets no new connections until it
   * does, and those queued for it go elsewhere.
   */
  handoffTimeoutMs: number;
  /** Per worker: connections that may wait behind those sent and not yet taken (ipc/handle-window.ts); past that, another worker. */
  maxQueuedHandoffs: number;
  /**
   * The primary runs one compacting garbage collection once new connections stop for a moment after a burst, to
   * give the memory the burst used back (a pause of tens of ms for the next new connection, at most every 5 s).
   */
  compactAfterBursts: boolean;
}

export interface DashboardConfig {
  host: string;
  port: number;
  /** Null until the supervisor generates one at start. */
  token: string | null;
  /** Serve GET /metrics without the token (for a Prometheus on a trusted network). */
  metricsPublic: boolean;
  /** How often the WebSocket feed sends an update to each page. */
  feedIntervalMs: number;
  /** WebSocket clients at once; more are answered 503 before the handshake. */
  maxClients: number;
  /** A client with more than this many bytes still unsent is skipped until it catches up. */
  maxBufferedBytes: number;
  /** How often each client is pinged; one that has not answered the previous ping is cut off. */
  pingIntervalMs: number;
  /** How far back the memory and in-flight charts go (sampled once a second). */
  historyMs: number;
  /** Readers following workers' output at once (`GET /api/logs?follow=1`); more are answered 503. */
  maxLogFollowers: number;
  /** A log follower with more than this many bytes still unsent misses lines (and is told how many). */
  maxLogBufferedBytes: number;
}

/** The probe listener for kubelets and load balancers: GET /livez and /readyz, no token, nothing else. */
export interface HealthConfig {
  /** Null: no probe listener. */
  port: number | null;
  /** All interfaces by default: a kubelet probes the pod's IP, never its loopback. */
  host: string;
  /** Probe connections at once; more are closed unanswered. */
  maxConnections: number;
  /** A probe connection must send its request within this time, and is closed after one answer. */
  timeoutMs: number;
  /** /livez answers 503 when the primary's event loop was stuck this long in the last few seconds. */
  maxEventLoopDelayMs: number;
}

/** Heap snapshots and inspectors taken of a live worker (`graycluster heap-snapshot`, `graycluster inspect`). */
export interface DiagnosticsConfig {
  /** Where heap snapshots are written; relative paths resolve against the config file's folder. */
  folder: string;
  /** How long the primary waits for a worker to write a snapshot or open its inspector. */
  timeoutMs: number;
}

/** How the primary captures, prints and keeps its workers' stdout and stderr (src/primary/logs/). */
export interface LogsConfig {
  /** How lines are printed on the primary's stdout: `v2.1 | message`, or one JSON object per line. */
  format: LogFormat;
  /** A worker's line longer than this (in bytes) is cut into pieces of this size. */
  maxLineBytes: number;
  /** Per worker: the recent lines kept for `graycluster logs` and the API, at most this many... */
  ringLines: number;
  /** ...and at most this many bytes of messages. */
  ringBytes: number;
  /** Workers gone for good (replaced, scaled down, removed) whose recent lines are still kept; the oldest go first. */
  keepExitedWorkers: number;
  /** Lines waiting to be written to the primary's stdout, in bytes; past it, workers' lines are dropped and counted. */
  maxStdoutBacklogBytes: number;
  /** Per log file: bytes waiting to be written; past it, lines are dropped and counted. */
  maxFileBacklogBytes: number;
  /** Dropped lines are announced at most once per this interval, per worker. */
  dropNoticeIntervalMs: number;
}

export type LogFormat = 'text' | 'json';

/** A version's own log file, rotated by size: `app.log`, then `app.log.1` (newest) … `app.log.<keep>`. */
export interface LogFileConfig {
  /** Absolute. */
  path: string;
  /** The size no file exceeds: a line that would take it past this rotates first. */
  maxBytes: number;
  /** Rotated files kept beside the current one; 0 keeps none. */
  keep: number;
}

export interface VersionConfig {
  name: string;
  /** Absolute path of the app's main file. */
  entry: string;
  workers: number;
  env: Record<string, string>;
  maxInFlight: number;
  /** Replace a worker whose rss passes this many MB; null: no limit. */
  maxMemoryMB: number | null;
  /** Kill a worker at once whose rss passes this many MB; null: twice maxMemoryMB (or no limit without it). */
  maxMemoryHardMB: number | null;
  /** Node's own flags for the worker (after the supervisor's own, which it inherits). */
  nodeArgs: string[];
  /** The app's arguments: its `process.argv` is `node <entry> ...args`. */
  args: string[];
  /** Absolute path of the app's working folder; null: the supervisor's. */
  cwd: string | null;
  /** Where this version's workers' lines are written too, beside the primary's stdout; null: nowhere else. */
  logFile: LogFileConfig | null;
  /**
   * A port of this version's own (on server.host), on which its workers accept connections themselves, so a proxy
   * that keeps a pool per version reaches them without the primary; null: none.
   */
  port: number | null;
}

/** A rule in evaluation form: where to look, and what a match routes to. */
export type Rule =
  | { source: 'query' | 'header' | 'cookie'; name: string; equals?: undefined; to?: undefined }
  | { source: 'query' | 'header' | 'cookie'; name: string; equals: string; to: string };

export type StickyKey = { source: 'ip' } | { source: 'cookie' | 'header'; name: string };

export interface RoutingConfig {
  default: string;
  rules: Rule[];
  /** In the order the versions appear in the file; zero weights left out. Empty: no weighted routing. */
  weights: Array<[version: string, weight: number]>;
  sticky: { key: StickyKey; cookie: string | null };
  /** A cookie naming the version of each answer, for a proxy that keeps a pool per version (`routing.versionCookie`). */
  versionCookie: string | null;
}

/** A validated config with every default filled in: what the rest of graycluster works with. */
export interface ResolvedConfig {
  /** Absolute path of the file it was read from. */
  file: string;
  /** The file's contents as written. */
  raw: ConfigFile;
  server: ServerConfig;
  dashboard: DashboardConfig;
  health: HealthConfig;
  /** `folder` is absolute here. */
  diagnostics: DiagnosticsConfig;
  logs: LogsConfig;
  versions: Map<string, VersionConfig>;
  routing: RoutingConfig;
  rollout: RolloutConfig | null;
}

export const serverDefaults: ServerConfig = {
  host: '0.0.0.0',
  port: 8000,
  versionHeader: 'x-graycluster-version',
  maxHeadBytes: 16 * 1024,
  headTimeoutMs: 10_000,
  maxPendingConnections: 1024,
  maxPendingPerSource: 128,
  drainTimeoutMs: 10_000,
  readyTimeoutMs: 15_000,
  forwardMaxPending: 256,
  // Sized for the upstream pools in front (nginx `keepalive 32`, wrk -c 64): fewer makes bursts open and close
  // connections.
  relayMaxIdlePerTarget: 64,
  // Well under the 1 s after which a draining worker closes idle connections and Node's default 5 s keep-alive
  // timeout, so the target never closes one just as a request is written to it.
  relayIdleTimeoutMs: 500,
  statsIntervalMs: 500,
  heartbeatTimeoutMs: 3000,
  unresponsiveRestartMs: 30_000,
  trustProxy: false,
  handoffTimeoutMs: 1000,
  maxQueuedHandoffs: 1024,
  compactAfterBursts: true,
};

export const dashboardDefaults: DashboardConfig = {
  host: '127.0.0.1',
  port: 9000,
  token: null,
  metricsPublic: false,
  feedIntervalMs: 500,
  maxClients: 32,
  maxBufferedBytes: 1024 * 1024,
  pingIntervalMs: 10_000,
  historyMs: 5 * 60_000,
  maxLogFollowers: 16,
  maxLogBufferedBytes: 1024 * 1024,
};

export const healthDefaults: HealthConfig = {
  port: null,
  host: '0.0.0.0',
  maxConnections: 16,
  timeoutMs: 2000,
  maxEventLoopDelayMs: 2000,
};

export const diagnosticsDefaults: DiagnosticsConfig = {
  folder: 'heapsnapshots',
  timeoutMs: 60_000,
};

export const logsDefaults: LogsConfig = {
  format: 'text',
  maxLineBytes: 16 * 1024,
  ringLines: 1000,
  ringBytes: 1024 * 1024,
  keepExitedWorkers: 16,
  maxStdoutBacklogBytes: 1024 * 1024,
  maxFileBacklogBytes: 1024 * 1024,
  dropNoticeIntervalMs: 5000,
};

export const logFileDefaults = { maxBytes: 10 * 1024 * 1024, keep: 5 };

export const versionDefaults = { workers: 1, maxInFlight: 1024 };
