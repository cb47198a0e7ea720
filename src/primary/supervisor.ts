import cluster, { type Worker } from 'node:cluster';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { ResolvedConfig, VersionConfig } from '../config/types.js';
import { onWorkerMessage, sendToWorker } from '../ipc/channel.js';
import type { ToPrimary, WorkerSettings, WorkerStats } from '../ipc/messages.js';
import { backoffDefaults, restartDelay, type BackoffPolicy } from './backoff.js';
import type { EventLog } from './events.js';

export type WorkerState = 'starting' | 'ready' | 'draining' | 'crashloop' | 'stopped';
export type VersionState = 'starting' | 'ready' | 'crashloop' | 'stopped';

const runtimePath = fileURLToPath(new URL('../worker/runtime.js', import.meta.url));

export function emptyStats(): WorkerStats {
  return {
    rss: 0, heapUsed: 0, heapTotal: 0, inFlight: 0, connections: 0, requests: 0,
    statusClasses: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 },
    shed: 0, forwarded: 0, forwardShed: 0, latencyBuckets: [], eventLoopDelayMs: 0,
  };
}

/** One place in a version's pool. Its process comes and goes (crash, restart); the slot and its id stay. */
export class WorkerSlot {
  state: WorkerState = 'stopped';
  worker: Worker | undefined;
  /** Restarts after a crash or a failed start. */
  restarts = 0;
  /** Failures since the slot was last healthy; drives the backoff and crashloop. */
  failures = 0;
  startedAt = 0;
  readyAt = 0;
  stats = emptyStats();
  /** Connections handed over since the last stats report, so the load estimate is never a second stale. */
  handoffsSinceReport = 0;
  forwardPath: string | undefined;
  timer: NodeJS.Timeout | undefined;
  healthyTimer: NodeJS.Timeout | undefined;

  constructor(readonly id: string, readonly version: string) {}

  get pid(): number | undefined {
    return this.worker?.process.pid;
  }

  /** Connections it holds plus those on their way: what "least loaded" compares. */
  get load(): number {
    return this.stats.connections + this.handoffsSinceReport;
  }
}

export type Pick = { slot: WorkerSlot } | { slot: undefined; why: 'saturated' | 'unavailable' };

export interface SupervisorOptions {
  /** Where the primary really listens: what the app sees as its port and address. */
  publicPort: number;
  publicHost: string;
  /** Private folder for the workers' forward sockets. */
  runDir: string;
  backoff?: Partial<BackoffPolicy>;
  /** A connection a worker handed back; the router finds it another worker. */
  onRefused: (socket: Socket, bytes: Buffer, assignCookie: string | undefined, from: WorkerSlot) => void;
}

/** Runs one pool of workers per version: fork, ready, restart with backoff, drain, stop. */
export class Supervisor {
  readonly #pools = new Map<string, WorkerSlot[]>();
  readonly #cursor = new Map<string, number>();
  readonly #crashlooping = new Set<string>();
  readonly #backoff: BackoffPolicy;
  readonly #exits = new Set<() => void>();
  #stopping = false;

  constructor(private config: ResolvedConfig, private readonly events: EventLog, private readonly options: SupervisorOptions) {
    this.#backoff = { ...backoffDefaults, ...options.backoff };
    cluster.setupPrimary({ exec: runtimePath, args: [] });
  }

  start(): void {
    for (const version of this.config.versions.values()) {
      const pool = Array.from({ length: version.workers }, (_, index) => new WorkerSlot(`${version.name}.${index + 1}`, version.name));
      this.#pools.set(version.name, pool);
      for (const slot of pool) this.#fork(slot);
    }
  }

  get slots(): WorkerSlot[] {
    return [...this.#pools.values()].flat();
  }

  versionConfig(name: string): VersionConfig | undefined {
    return this.config.versions.get(name);
  }

  /** True when the version has a ready worker. */
  serving(version: string): boolean {
    return this.#pools.get(version)?.some((slot) => slot.state === 'ready') ?? false;
  }

  versionState(version: string): VersionState {
    const pool = this.#pools.get(version) ?? [];
    if (pool.some((slot) => slot.state === 'ready')) return 'ready';
    if (pool.some((slot) => slot.state === 'crashloop')) return 'crashloop';
    if (pool.some((slot) => slot.state !== 'stopped' || slot.timer)) return 'starting';
    return 'stopped';
  }

  /** The least-loaded ready worker of a version that is under its in-flight limit; ties go round-robin. */
  pick(version: string, exclude?: WorkerSlot): Pick {
    const pool = this.#pools.get(version);
    const limit = this.config.versions.get(version)?.maxInFlight ?? Infinity;
    if (!pool) return { slot: undefined, why: 'unavailable' };
    const start = this.#cursor.get(version) ?? 0;
    this.#cursor.set(version, (start + 1) % pool.length);
    let best: WorkerSlot | undefined;
    let anyReady = false;
    for (let offset = 0; offset < pool.length; offset++) {
      const slot = pool[(start + offset) % pool.length]!;
      if (slot.state !== 'ready' || slot === exclude) continue;
      anyReady = true;
      if (slot.stats.inFlight >= limit) continue;
      if (!best || slot.load < best.load) best = slot;
    }
    return best ? { slot: best } : { slot: undefined, why: anyReady ? 'saturated' : 'unavailable' };
  }

  /** Hands a client socket and the bytes already read of it to a worker. `done` hears if it never left. */
  handOff(slot: WorkerSlot, socket: Socket, bytes: Buffer, assignCookie: string | undefined, done: (error: Error | null) => void): void {
    slot.handoffsSinceReport++;
    const message = assignCookie === undefined
      ? { kind: 'connection' as const, bytes: bytes.toString('base64') }
      : { kind: 'connection' as const, bytes: bytes.toString('base64'), assignCookie };
    sendToWorker(slot.worker!, message, socket, done);
  }

  /** What every worker needs to route the later requests on its connections. */
  settings(): WorkerSettings {
    const forwardPaths: Record<string, string[]> = {};
    for (const slot of this.slots) {
      if (slot.state === 'ready' && slot.forwardPath) (forwardPaths[slot.version] ??= []).push(slot.forwardPath);
    }
    return {
      routing: this.config.routing,
      versions: [...this.config.versions.keys()],
      serving: [...this.#pools.keys()].filter((version) => this.serving(version)),
      forwardPaths,
      versionHeader: this.config.server.versionHeader,
      forwardMaxPending: this.config.server.forwardMaxPending,
    };
  }

  /** Stops every worker gracefully: each finishes its in-flight requests, or is killed after the drain timeout. */
  async stop(): Promise<void> {
    this.#stopping = true;
    const exited = this.slots.map((slot) => this.#drain(slot));
    await Promise.all(exited);
  }

  /** Kills every worker now. */
  kill(): void {
    this.#stopping = true;
    for (const slot of this.slots) {
      clearTimeout(slot.timer);
      slot.worker?.process.kill('SIGKILL');
    }
  }

  #fork(slot: WorkerSlot): void {
    const version = this.config.versions.get(slot.version)!;
    slot.timer = undefined;
    const worker = cluster.fork({
      ...version.env,
      PORT: String(this.options.publicPort),
      GRAYCLUSTER_VERSION: version.name,
      GRAYCLUSTER_WORKER_ID: slot.id,
      GRAYCLUSTER_ENTRY: version.entry,
      GRAYCLUSTER_MAX_IN_FLIGHT: String(version.maxInFlight),
      GRAYCLUSTER_RUN_DIR: this.options.runDir,
      GRAYCLUSTER_PUBLIC_HOST: this.options.publicHost,
      GRAYCLUSTER_STATS_INTERVAL_MS: String(this.config.server.statsIntervalMs),
    });
    slot.worker = worker;
    slot.state = 'starting';
    slot.startedAt = Date.now();
    slot.stats = emptyStats();
    slot.handoffsSinceReport = 0;
    const where = { version: slot.version, workerId: slot.id, pid: worker.process.pid };
    this.events.record({ type: 'started', ...where, message: `started ${version.entry}` });

    slot.timer = setTimeout(() => {
      if (slot.worker !== worker || slot.state !== 'starting') return;
      this.events.record({ type: 'failed', ...where, message: `not ready within ${this.config.server.readyTimeoutMs} ms: killing it` });
      worker.process.kill('SIGKILL');
    }, this.config.server.readyTimeoutMs);

    worker.on('message', (message: unknown) => {
      if (message === 'ready') this.#markReady(slot, worker);  // The app's own signal, as in the seed's child.js.
    });
    worker.on('error', () => {});  // The channel broke; 'exit' follows and says what happened.
    worker.on('exit', (code, signal) => this.#onExit(slot, worker, code, signal));
    onWorkerMessage(worker, (message, socket) => this.#handlers[message.kind](slot, worker, message as never, socket));
  }

  readonly #handlers: { [K in ToPrimary['kind']]: (slot: WorkerSlot, worker: Worker, message: Extract<ToPrimary, { kind: K }>, socket?: Socket) => void } = {
    listening: (slot, worker, message) => {
      slot.forwardPath = message.forwardPath;
      this.#markReady(slot, worker);
    },
    stats: (slot, worker, message) => {
      if (slot.worker !== worker) return;
      slot.stats = message.stats;
      slot.handoffsSinceReport = 0;
    },
    refused: (slot, _worker, message, socket) => {
      if (socket) this.options.onRefused(socket, Buffer.from(message.bytes, 'base64'), message.assignCookie, slot);
    },
    fatal: (slot, worker, message) => {
      this.events.record({ type: 'error', version: slot.version, workerId: slot.id, pid: worker.process.pid, message: message.message });
    },
  };

  #markReady(slot: WorkerSlot, worker: Worker): void {
    if (slot.worker !== worker || slot.state !== 'starting') return;
    clearTimeout(slot.timer);
    slot.timer = undefined;
    slot.state = 'ready';
    slot.readyAt = Date.now();
    slot.healthyTimer = setTimeout(() => { slot.failures = 0; }, this.#backoff.healthyAfterMs);
    this.events.record({ type: 'ready', version: slot.version, workerId: slot.id, pid: worker.process.pid, message: `ready in ${slot.readyAt - slot.startedAt} ms` });
    if (this.#crashlooping.delete(slot.version)) {
      this.events.record({ type: 'recovered', version: slot.version, message: 'a worker is ready again: traffic returns to this version' });
    }
    this.#broadcastSettings();
  }

  #onExit(slot: WorkerSlot, worker: Worker, code: number | null, signal: string | null): void {
    if (slot.worker !== worker) return;
    clearTimeout(slot.timer);
    clearTimeout(slot.healthyTimer);
    slot.timer = undefined;
    slot.worker = undefined;
    slot.forwardPath = undefined;
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    const where = { version: slot.version, workerId: slot.id, pid: worker.process.pid };
    const wasReady = slot.state === 'ready';

    if (slot.state === 'draining' || this.#stopping) {
      slot.state = 'stopped';
      this.events.record({ type: 'stopped', ...where, message: `stopped (${how})` });
      this.#broadcastSettings();
      for (const notify of this.#exits) notify();
      return;
    }

    if (wasReady && Date.now() - slot.readyAt >= this.#backoff.healthyAfterMs) slot.failures = 0;
    slot.failures++;
    slot.restarts++;
    const delay = restartDelay(slot.failures, this.#backoff);
    slot.state = slot.failures >= this.#backoff.crashloopAfter ? 'crashloop' : 'stopped';
    this.events.record({ type: 'crashed', ...where, message: `${wasReady ? 'crashed' : 'failed to start'} (${how}); restarting in ${delay} ms` });
    slot.timer = setTimeout(() => this.#fork(slot), delay);

    if (slot.state === 'crashloop' && this.versionState(slot.version) === 'crashloop' && !this.#crashlooping.has(slot.version)) {
      this.#crashlooping.add(slot.version);
      const fallback = this.config.routing.default;
      const to = fallback !== slot.version && this.serving(fallback) ? `its traffic goes to "${fallback}"` : 'its traffic gets 503';
      this.events.record({ type: 'crashloop', version: slot.version, message: `keeps crashing: ${to} until a worker is ready again` });
    }
    this.#broadcastSettings();
  }

  #drain(slot: WorkerSlot): Promise<void> {
    clearTimeout(slot.timer);
    slot.timer = undefined;
    const worker = slot.worker;
    if (!worker) {
      slot.state = 'stopped';
      return Promise.resolve();
    }
    slot.state = 'draining';
    this.events.record({ type: 'draining', version: slot.version, workerId: slot.id, pid: worker.process.pid, message: 'draining: finishing in-flight requests' });
    sendToWorker(worker, { kind: 'drain' });
    const kill = setTimeout(() => {
      this.events.record({ type: 'stopped', version: slot.version, workerId: slot.id, pid: worker.process.pid, message: `still busy after ${this.config.server.drainTimeoutMs} ms: killing it` });
      worker.process.kill('SIGKILL');
    }, this.config.server.drainTimeoutMs);
    return new Promise((resolve) => {
      const check = () => {
        if (slot.worker === worker) return;
        clearTimeout(kill);
        this.#exits.delete(check);
        resolve();
      };
      this.#exits.add(check);
      this.#broadcastSettings();
    });
  }

  #broadcastSettings(): void {
    const settings = this.settings();
    for (const slot of this.slots) {
      if (slot.worker?.isConnected()) sendToWorker(slot.worker, { kind: 'settings', settings });
    }
  }
}
