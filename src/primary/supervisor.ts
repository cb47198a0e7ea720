import cluster, { type Worker } from 'node:cluster';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { ResolvedConfig, VersionConfig } from '../config/types.js';
import { onWorkerMessage, sendToWorker } from '../ipc/channel.js';
import type { ToPrimary, WorkerSettings, WorkerStats } from '../ipc/messages.js';
import { encodeWorkerEnv } from '../ipc/worker-env.js';
import { closeUnacknowledgedHandle } from '../shared/node-internals.js';
import { backoffDefaults, restartDelay, type BackoffPolicy } from './backoff.js';
import type { EventLog } from './events.js';
import { displayPath } from '../shared/display-path.js';
import { residentBytes } from '../shared/procfs.js';

export type WorkerState = 'starting' | 'ready' | 'draining' | 'crashloop' | 'stopped';
export type VersionState = 'starting' | 'ready' | 'crashloop' | 'stopped';

const runtimePath = fileURLToPath(new URL('../worker/runtime.js', import.meta.url));

export function emptyStats(): WorkerStats {
  return {
    rss: 0, heapUsed: 0, heapTotal: 0, inFlight: 0, connections: 0, requests: 0,
    statusClasses: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 },
    shed: 0, forwarded: 0, forwardShed: 0, latencyBuckets: [], latencySumMs: 0, eventLoopDelayMs: 0,
  };
}

/**
 * One place in a version's pool. Its process comes and goes (crash, restart); the slot and its id stay.
 * A `candidate` is a replacement being started (it gets no traffic and is not restarted if it fails);
 * a `retiring` slot has left its pool and is draining.
 */
export class WorkerSlot {
  state: WorkerState = 'stopped';
  role: 'pool' | 'candidate' | 'retiring' = 'pool';
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
  /** Connections sent to its process that have not left this one yet. */
  readonly handoffs = new Set<(error: Error | null) => void>();
  forwardPath: string | undefined;
  /** How its last process ended, e.g. "exit code 1". */
  exitReason: string | undefined;
  /** When it last reported (its heartbeat). */
  lastReportAt = 0;
  /** Resident memory as the primary reads it from /proc: known even when the worker's event loop is stuck. */
  sampledRss: number | undefined;
  /** Missed its heartbeat: its event loop is blocked. */
  unresponsive = false;
  timer: NodeJS.Timeout | undefined;
  healthyTimer: NodeJS.Timeout | undefined;

  constructor(readonly id: string, readonly version: string) {}

  get pid(): number | undefined {
    return this.worker?.process.pid;
  }

  get rss(): number {
    return this.sampledRss ?? this.stats.rss;
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
  /** Replacements being started, and slots draining after leaving their pool: workers outside any pool. */
  readonly #outside = new Set<WorkerSlot>();
  readonly #nextIndex = new Map<string, number>();
  /** Slots being replaced because of their memory, so one is not replaced twice. */
  readonly #recycling = new Set<WorkerSlot>();
  #stopping = false;
  #sampler: NodeJS.Timeout | undefined;

  constructor(private config: ResolvedConfig, private readonly events: EventLog, private readonly options: SupervisorOptions) {
    this.#backoff = { ...backoffDefaults, ...options.backoff };
    cluster.setupPrimary({ exec: runtimePath, args: [] });
  }

  start(): void {
    for (const version of this.config.versions.keys()) void this.addVersion(version);
    this.#sampler = setInterval(() => this.#sample(), this.config.server.statsIntervalMs);
    this.#sampler.unref();
  }

  /** Reads every worker's rss from /proc and checks its heartbeat; kills one silent for too long. */
  #sample(): void {
    const now = Date.now();
    const { heartbeatTimeoutMs, unresponsiveRestartMs } = this.config.server;
    for (const slot of this.slots) {
      const pid = slot.pid;
      if (!pid) continue;
      slot.sampledRss = residentBytes(pid);
      if (slot.state !== 'ready' && slot.state !== 'draining') continue;
      const silentMs = now - slot.lastReportAt;
      const where = { version: slot.version, workerId: slot.id, pid };
      if (silentMs > heartbeatTimeoutMs && !slot.unresponsive) {
        slot.unresponsive = true;
        this.events.record({ type: 'unresponsive', ...where, message: `no heartbeat for ${silentMs} ms: its event loop is blocked` });
      }
      if (silentMs > unresponsiveRestartMs) {
        this.events.record({ type: 'unresponsive', ...where, message: `no heartbeat for ${silentMs} ms: killing it` });
        slot.worker?.process.kill('SIGKILL');
      }
    }
    this.#checkMemoryAll();
  }

  #checkMemoryAll(): void {
    for (const slot of this.slots) this.#checkMemory(slot);
  }

  /** Every worker: the pools', then replacements starting and workers draining. */
  get slots(): WorkerSlot[] {
    return [...[...this.#pools.values()].flat(), ...this.#outside];
  }

  /** Takes a new config for everything started from now on; routing reaches the workers at publishRouting(). */
  setConfig(config: ResolvedConfig): void {
    this.config = config;
  }

  /** Sends the current routing and serving versions to every worker. */
  publishRouting(): void {
    this.#broadcastSettings();
  }

  #newSlot(version: string, role: WorkerSlot['role']): WorkerSlot {
    const index = (this.#nextIndex.get(version) ?? 0) + 1;
    this.#nextIndex.set(version, index);
    const slot = new WorkerSlot(`${version}.${index}`, version);
    slot.role = role;
    return slot;
  }

  /** Starts a version's pool; resolves once one of its workers is ready, or with false if none is in time. */
  addVersion(version: string): Promise<boolean> {
    const config = this.config.versions.get(version)!;
    const pool = Array.from({ length: config.workers }, () => this.#newSlot(version, 'pool'));
    this.#pools.set(version, pool);
    for (const slot of pool) this.#fork(slot);
    return this.#whenServing(version);
  }

  #whenServing(version: string): Promise<boolean> {
    const deadline = Date.now() + this.config.server.readyTimeoutMs;
    return new Promise((resolve) => {
      const check = () => {
        if (this.serving(version) || Date.now() > deadline || this.versionState(version) === 'crashloop') {
          clearInterval(timer);
          resolve(this.serving(version));
        }
      };
      const timer = setInterval(check, 20);
      check();
    });
  }

  /** Takes a version out of routing's reach; its workers drain in the background. */
  removeVersion(version: string): void {
    const pool = this.#pools.get(version) ?? [];
    this.#pools.delete(version);
    this.#broadcastSettings();
    for (const slot of pool) void this.#retire(slot);
  }

  /** Grows or shrinks a pool; the workers that go drain in the background. */
  scale(version: string, workers: number): void {
    const pool = this.#pools.get(version);
    if (!pool) return;
    while (pool.length < workers) {
      const slot = this.#newSlot(version, 'pool');
      pool.push(slot);
      this.#fork(slot);
    }
    // Drop workers still starting before ready ones, and never the last ready one while others start.
    const leaving = pool.splice(workers).reverse();
    if (leaving.length === 0) return;
    this.events.record({ type: 'config', version, message: `scaling down to ${workers} workers` });
    this.#broadcastSettings();
    for (const slot of leaving) void this.#retire(slot);
  }

  /**
   * Replaces every worker of a version, rolling: new workers start beside the old ones; once all are ready
   * they take the traffic and the old ones drain. If one fails to become ready, the new ones are stopped and
   * the old ones keep serving. Resolves, once the new ones serve, to undefined, or to why it failed.
   */
  async replaceVersion(version: string, reason: string): Promise<string | undefined> {
    const old = this.#pools.get(version);
    if (!old) return `unknown version "${version}"`;
    const count = this.config.versions.get(version)!.workers;
    this.events.record({ type: 'config', version, message: `replacing ${old.length} workers with ${count} new ones (${reason})` });
    const failure = await this.#startCandidates(version, count);
    if (failure) {
      this.events.record({ type: 'failed', version, message: `replacement aborted, old workers keep serving: ${failure}` });
      return failure;
    }
    if (this.#pools.get(version) !== old) return undefined;  // The version was removed meanwhile.
    this.#pools.set(version, this.#candidates(version));
    this.#broadcastSettings();
    this.events.record({ type: 'ready', version, message: `replaced: ${count} new workers serving, draining the old ones` });
    for (const slot of old) void this.#retire(slot);
    return undefined;
  }

  /** Replaces one worker, rolling: its replacement is ready before it drains. */
  async replaceWorker(slot: WorkerSlot, reason: string): Promise<string | undefined> {
    const pool = this.#pools.get(slot.version);
    if (!pool?.includes(slot)) return `worker ${slot.id} is not serving`;
    this.events.record({ type: 'config', version: slot.version, workerId: slot.id, pid: slot.pid, message: `replacing this worker (${reason})` });
    const failure = await this.#startCandidates(slot.version, 1);
    if (failure) {
      this.events.record({ type: 'failed', version: slot.version, workerId: slot.id, message: `replacement aborted, this worker keeps serving: ${failure}` });
      return failure;
    }
    const [replacement] = this.#candidates(slot.version);
    const index = pool.indexOf(slot);
    if (index === -1) {
      void this.#retire(replacement!);
      return undefined;
    }
    pool[index] = replacement!;
    this.#broadcastSettings();
    void this.#retire(slot);
    return undefined;
  }

  /** Candidates that became ready, taken out of the waiting set and made pool members. */
  #candidates(version: string): WorkerSlot[] {
    const ready = [...this.#outside].filter((slot) => slot.role === 'candidate' && slot.version === version && slot.state === 'ready');
    for (const slot of ready) {
      this.#outside.delete(slot);
      slot.role = 'pool';
    }
    return ready;
  }

  /** Forks `count` replacements and waits for all to be ready; on the first failure stops them all. */
  #startCandidates(version: string, count: number): Promise<string | undefined> {
    const fresh = Array.from({ length: count }, () => this.#newSlot(version, 'candidate'));
    for (const slot of fresh) {
      this.#outside.add(slot);
      this.#fork(slot);
    }
    return new Promise((resolve) => {
      const check = () => {
        const failed = fresh.find((slot) => slot.state === 'stopped');
        if (failed) {
          this.#exits.delete(check);
          clearInterval(timer);
          for (const slot of fresh) {
            this.#outside.delete(slot);
            slot.worker?.process.kill('SIGKILL');
          }
          resolve(`new worker ${failed.id} did not become ready (${failed.exitReason ?? 'exited'})`);
        } else if (fresh.every((slot) => slot.state === 'ready')) {
          this.#exits.delete(check);
          clearInterval(timer);
          resolve(undefined);
        }
      };
      this.#exits.add(check);
      const timer = setInterval(check, 20);
    });
  }

  /** Takes a slot out of service and drains it. */
  #retire(slot: WorkerSlot): Promise<void> {
    this.#recycling.delete(slot);
    slot.role = 'retiring';
    this.#outside.add(slot);
    return this.#drain(slot).then(() => {
      this.#outside.delete(slot);
    });
  }

  /** Finds a worker by id, in its pool. */
  worker(id: string): WorkerSlot | undefined {
    return [...this.#pools.values()].flat().find((slot) => slot.id === id);
  }

  /** Replaces a worker whose rss passed its version's maxMemoryMB. */
  #checkMemory(slot: WorkerSlot): void {
    const limit = this.config.versions.get(slot.version)?.maxMemoryMB;
    if (!limit || slot.role !== 'pool' || slot.state !== 'ready' || this.#recycling.has(slot) || slot.rss <= limit * 1024 * 1024) return;
    this.#recycling.add(slot);
    const rss = Math.round(slot.rss / 1024 / 1024);
    void this.replaceWorker(slot, `memory ${rss} MB over maxMemoryMB ${limit}`).then((failure) => {
      if (failure) this.#recycling.delete(slot);
    });
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
      // A worker whose channel closed is dead even if its 'exit' has not been handled yet.
      if (slot.state !== 'ready' || slot === exclude || !slot.worker?.isConnected()) continue;
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
    // Node queues a socket behind the one a worker has not yet acknowledged, and if the worker dies, forgets
    // the queue without calling back: keep track until the socket has left, so it can go elsewhere.
    slot.handoffs.add(done);
    sendToWorker(slot.worker!, message, socket, (error) => {
      if (slot.handoffs.delete(done)) done(error);
    });
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
    clearInterval(this.#sampler);
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
    const worker = cluster.fork(encodeWorkerEnv({
      version: version.name,
      workerId: slot.id,
      entry: version.entry,
      maxInFlight: version.maxInFlight,
      runDir: this.options.runDir,
      port: this.options.publicPort,
      host: this.options.publicHost,
      statsIntervalMs: this.config.server.statsIntervalMs,
    }, version.env));
    slot.worker = worker;
    slot.state = 'starting';
    slot.startedAt = Date.now();
    slot.stats = emptyStats();
    slot.handoffsSinceReport = 0;
    slot.sampledRss = undefined;
    slot.unresponsive = false;
    const where = { version: slot.version, workerId: slot.id, pid: worker.process.pid };
    this.events.record({ type: 'started', ...where, message: `started ${displayPath(version.entry)}` });

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
      slot.lastReportAt = Date.now();
      if (slot.unresponsive) {
        slot.unresponsive = false;
        this.events.record({ type: 'recovered', version: slot.version, workerId: slot.id, pid: worker.process.pid, message: 'heartbeat is back' });
      }
    },
    load: (slot, worker, message) => {
      if (slot.worker === worker) slot.stats.inFlight = message.inFlight;
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
    slot.lastReportAt = slot.readyAt;
    slot.sampledRss = residentBytes(worker.process.pid!);
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
    // The socket that was on its way when the worker died: Node holds it until an acknowledgement that will
    // never come. Closing it tells its client at once. Sockets queued behind it are still whole: the router
    // gives them to another worker.
    closeUnacknowledgedHandle(worker.process);
    const unsent = [...slot.handoffs];
    slot.handoffs.clear();
    for (const done of unsent) done(new Error('the worker exited before taking the connection'));
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    const where = { version: slot.version, workerId: slot.id, pid: worker.process.pid };
    const wasReady = slot.state === 'ready';
    slot.exitReason = how;

    if (slot.state === 'draining' || slot.role !== 'pool' || this.#stopping) {
      const expected = slot.state === 'draining' || this.#stopping;
      slot.state = 'stopped';
      this.events.record({ type: expected ? 'stopped' : 'crashed', ...where, message: expected ? `stopped (${how})` : `${wasReady ? 'crashed' : 'failed to start'} (${how})` });
      this.#broadcastSettings();
      for (const notify of [...this.#exits]) notify();
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
