import type { RoutingConfig } from '../config/types.js';

/** HTTP status classes, in order: what the workers count and `/metrics` labels. */
export const statusClasses = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
export type StatusClass = (typeof statusClasses)[number];

/** Per-worker counters, as reported by the worker runtime. */
export interface WorkerStats {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  /** Requests the app is running now. */
  inFlight: number;
  /** Open client connections. */
  connections: number;
  /** Requests answered since the worker started, by status class. */
  requests: number;
  statusClasses: Record<StatusClass, number>;
  /** Requests answered 503 because the worker was at maxInFlight. */
  shed: number;
  /** Requests on a shared keep-alive connection that belonged to another version and were forwarded to it. */
  forwarded: number;
  /** Forwards refused with 503 because forwardMaxPending were already under way. */
  forwardShed: number;
  /** Connections on the version's own port closed (408) or refused (503) while waiting for their first head. */
  pendingTurnedAway: number;
  /** Latency histogram of answered requests: counts per upper bound in `latencyBoundsMs` (+Inf last). */
  latencyBuckets: number[];
  /** Sum of the latencies counted in `latencyBuckets`, in ms. */
  latencySumMs: number;
  /** Event-loop delay, p99 over the last interval, in ms. */
  eventLoopDelayMs: number;
}

/** Upper bounds of the latency histogram, in ms; the last bucket is +Inf. */
export const latencyBoundsMs: readonly [number, ...number[]] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/** What a worker needs to route the later requests of a shared connection, and how to answer. */
export interface WorkerSettings {
  routing: RoutingConfig;
  /** Every configured version. */
  versions: string[];
  /** Versions that have a ready worker now. */
  serving: string[];
  /** Private forward sockets of the ready workers, per version. */
  forwardPaths: Record<string, string[]>;
  versionHeader: string | false;
  forwardMaxPending: number;
  /** Idle relay connections kept per target worker (`server.relayMaxIdlePerTarget`). */
  relayMaxIdlePerTarget: number;
  /** A relay connection idle this long is closed (`server.relayIdleTimeoutMs`). */
  relayIdleTimeoutMs: number;
  /** Limits on connections to the version's own port waiting for their first head (shared/pending-book.ts HeadWait). */
  headTimeoutMs: number;
  maxPendingConnections: number;
  maxPendingPerSource: number;
  /** Peers whose forwarding headers reach the app (`server.trustProxy`). */
  trustProxy: false | string[];
  /**
   * The version that leads among the connections of peers that pool them (primary/shared-peers.ts), or null: a
   * worker of another version closes such a connection after its next answer, for it to be placed again.
   */
  sharedLeading: string | null;
}

/** Primary → worker. */
export type ToWorker =
  /**
   * A client connection; `bytes` is everything the primary read of it (the head, perhaps more), base64. With
   * `routeFirst`, it was placed here for the version its peer's requests mostly need (primary/shared-peers.ts),
   * not by its first request: the worker routes that one as it routes later ones.
   */
  | { kind: 'connection'; bytes: string; assignCookie?: string; routeFirst?: true }
  | { kind: 'settings'; settings: WorkerSettings }
  /** Stop taking connections, finish in-flight requests, close idle connections, then exit. */
  | { kind: 'drain' }
  /** An operator's diagnostic request; answered by a `diagnosed` with the same `requestId`. */
  | { kind: 'diagnose'; requestId: number; request: DiagnoseRequest };

/** What an operator may ask of a live worker. */
export type DiagnoseRequest =
  /** Write a heap snapshot to this file (absolute path chosen by the primary). */
  | { action: 'heap-snapshot'; file: string }
  /** Open the inspector on a free loopback port (or report the one open). */
  | { action: 'inspect-open' }
  | { action: 'inspect-close' };

/** A worker's answer to a `diagnose`: the file written or the inspector's ws:// URL, or why it failed. */
export type DiagnoseAnswer =
  | { ok: true; file?: string; inspectorUrl?: string }
  | { ok: false; error: string };

/** Worker → primary. */
export type ToPrimary =
  /** The app called listen: the worker can take connections. */
  | { kind: 'listening'; forwardPath: string }
  | { kind: 'stats'; stats: WorkerStats }
  /** Sent at once when the worker reaches its in-flight limit or drops below it, so the primary never sheds
   * on a stale count. */
  | { kind: 'load'; inFlight: number }
  /** A connection the worker cannot take (it is draining, or has no server yet), handed back with its bytes. */
  | { kind: 'refused'; bytes: string; assignCookie?: string; routeFirst?: true }
  /** A connection from `address` carried requests of two versions: that peer pools its connections. */
  | { kind: 'shared-peer'; address: string }
  /**
   * A connection from `address`, placed for its peer's sake, carried requests of one other version only, as one
   * user's connection does: that peer's connections are not all pooled.
   */
  | { kind: 'unpooled-peer'; address: string }
  /** Whether the worker listens on its version's own port now; `error`: why not (tried again every 5 s). */
  | { kind: 'version-port'; listening: boolean; error?: string }
  /** The app failed to load; the worker exits next. */
  | { kind: 'fatal'; message: string }
  | { kind: 'diagnosed'; requestId: number; answer: DiagnoseAnswer };

/** A message as it travels: marked with the internal command (see shared/node-internals.ts). */
export type Envelope<T> = T & { cmd: 'NODE_GRAYCLUSTER' };
