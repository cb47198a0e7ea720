import { EventEmitter } from 'node:events';
import type { ResolvedConfig, VersionConfig } from '../config/types.js';
import type { WorkerSettings } from '../ipc/messages.js';
import { displayPath } from '../shared/display-path.js';
import { Deadline } from '../shared/stalls.js';
import { backoffDefaults, type BackoffPolicy } from './backoff.js';
import type { ClientConnection } from './client-connection.js';
import type { EventLog } from './events.js';
import { sendSettings, workerEnv, workerProcessHandlers, workerSettings, type Happening, type WorkerProcessHandlers } from './worker-contract.js';
import type { ForkWorker, WorkerProcess } from './worker-process.js';
import { WorkerSlot, setSlotState } from './worker-slot.js';
import {
  canTransition, clearStateTimers, poolOwner, processOf, type Owner, type VersionState, type WorkerState,
} from './worker-state.js';

export interface LifecycleOptions {
  /** Where the primary really listens: what the app sees as its address. */
  publicHost: string;
  /** Private folder for the workers' forward sockets. */
  runDir: string;
  backoff?: Partial<BackoffPolicy>;
  /** The version that leads among pooling peers' connections, for the workers' settings (shared-peers.ts). */
  sharedLeading?: () => string | null;
}

export interface LifecycleEvents {
  /** A process was just forked for the slot (before any of its output can be read). */
  forked: [slot: WorkerSlot, process: WorkerProcess];
  /** Every state change of every slot, after it happened. */
  transition: [slot: WorkerSlot, from: WorkerState, to: WorkerState];
  /** A connection a worker handed back (it is draining, or has no server yet). */
  refused: [slot: WorkerSlot, client: ClientConnection, bytes: Buffer, assignCookie: string | undefined, routeFirst: boolean];
  /** A worker saw a connection from this peer carry requests of two versions (primary/shared-peers.ts). */
  sharedPeer: [address: string];
  /** A worker saw a connection from this peer, placed for its sake, carry one other version's requests only. */
  unpooledPeer: [address: string];
}

/**
 * The pools of workers, one per version, and each worker's lifecycle: fork, ready, restart with backoff after a
 * crash, drain. Every state change goes through `transition`, which records the event and tells listeners.
 * How the primary answers a worker process's messages and exit is in worker-contract.ts.
 */
export class Lifecycle extends EventEmitter<LifecycleEvents> {
  readonly #pools = new Map<string, WorkerSlot[]>();
  /** Every slot with a process or a restart pending: pool members, replacements' new workers, draining ones. */
  readonly #live = new Set<WorkerSlot>();
  readonly #nextIndex = new Map<string, number>();
  /** Versions announced as crash-looping, so their recovery is announced once too. */
  readonly #crashlooping = new Set<string>();
  readonly #handlers: WorkerProcessHandlers;
  /** Processes sent SIGKILL and not yet seen to exit: nothing is left to drain in them. */
  readonly #killed = new WeakSet<WorkerProcess>();
  #closed = false;
  /** The port the primary listens on (known once it does): what the app sees as its port. */
  publicPort = 0;

  constructor(
    private readonly config: () => ResolvedConfig,
    private readonly events: EventLog,
    private readonly fork: ForkWorker,
    private readonly options: LifecycleOptions,
  ) {
    super();
    this.setMaxListeners(0);
    this.#handlers = workerProcessHandlers({
      events,
      backoff: { ...backoffDefaults, ...options.backoff },
      runDir: () => options.runDir,
      closed: () => this.#closed,
      transition: (slot, next, happening) => this.transition(slot, next, happening),
      restart: (slot) => this.#fork(slot, poolOwner),
      refused: (slot, client, bytes, assignCookie, routeFirst) => this.emit('refused', slot, client, bytes, assignCookie, routeFirst),
      sharedPeer: (address) => this.emit('sharedPeer', address),
      unpooledPeer: (address) => this.emit('unpooledPeer', address),
    });
  }

  /** Every live worker: pool members, replacements starting, workers draining. */
  get slots(): readonly WorkerSlot[] {
    return [...this.#live];
  }

  pool(version: string): readonly WorkerSlot[] {
    return this.#pools.get(version) ?? [];
  }

  get versions(): string[] {
    return [...this.#pools.keys()];
  }

  /** Finds a pool member by id. */
  worker(id: string): WorkerSlot | undefined {
    return [...this.#pools.values()].flat().find((slot) => slot.id === id);
  }

  /** The one place a slot changes state: checks the move, stops the old state's timers, records, notifies. */
  transition(slot: WorkerSlot, next: WorkerState, happening?: Happening): void {
    const from = slot.state;
    if (!canTransition(from.kind, next.kind)) throw new Error(`worker ${slot.id}: no transition ${from.kind} → ${next.kind}`);
    const versionBefore = this.versionState(slot.version);
    if (from !== next) clearStateTimers(from);
    setSlotState(slot, next);
    if (next.kind === 'stopped' && !this.#pools.get(slot.version)?.includes(slot)) this.#live.delete(slot);
    else this.#live.add(slot);
    if (happening) this.events.record({ ...happening, version: slot.version, workerId: slot.id, pid: processOf(next)?.pid ?? processOf(from)?.pid });
    this.#noteVersionChange(slot.version, versionBefore);
    this.emit('transition', slot, from, next);
    this.broadcastSettings();
  }

  #noteVersionChange(version: string, before: VersionState): void {
    const after = this.versionState(version);
    if (after === 'crashloop' && before !== 'crashloop' && !this.#crashlooping.has(version)) {
      this.#crashlooping.add(version);
      const fallback = this.config().routing.default;
      const to = fallback !== version && this.serving(fallback) ? `its traffic goes to "${fallback}"` : 'its traffic gets 503';
      this.events.record({ type: 'crashloop', version, message: `keeps crashing: ${to} until a worker is ready again` });
    } else if (after === 'ready' && this.#crashlooping.delete(version)) {
      this.events.record({ type: 'recovered', version, message: 'a worker is ready again: traffic returns to this version' });
    }
  }

  /** Resolves with the first value `check` gives, checked now and after every transition. */
  until<T>(check: () => T | undefined): Promise<T> {
    const now = check();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve) => {
      const listener = () => {
        const result = check();
        if (result === undefined) return;
        this.off('transition', listener);
        resolve(result);
      };
      this.on('transition', listener);
    });
  }

  /** Starts a version's pool; resolves once one of its workers is ready, or with false if none is in time. */
  addVersion(version: string): Promise<boolean> {
    const pool = Array.from({ length: this.#versionConfig(version).workers }, () => this.#newSlot(version));
    this.#pools.set(version, pool);
    for (const slot of pool) this.#fork(slot, poolOwner);
    let timer: Deadline | undefined;
    // Unref'd: a primary that stops while this version is still starting must not wait for it to exit.
    const deadline = new Promise<false>((resolve) => { timer = new Deadline(this.config().server.readyTimeoutMs, () => resolve(false)).unref(); });
    const settled = this.until(() => this.serving(version) || this.versionState(version) === 'crashloop' ? true : undefined);
    return Promise.race([settled.then(() => this.serving(version)), deadline]).finally(() => timer?.clear());
  }

  /** Takes a version out of routing's reach; its workers drain in the background. */
  removeVersion(version: string): void {
    const pool = this.#pools.get(version) ?? [];
    this.#pools.delete(version);
    this.broadcastSettings();
    for (const slot of pool) void this.drain(slot);
  }

  /** Grows or shrinks a pool; the workers that go drain in the background. */
  scale(version: string, workers: number): void {
    const pool = this.#pools.get(version);
    if (!pool) return;
    while (pool.length < workers) {
      const slot = this.#newSlot(version);
      pool.push(slot);
      this.#fork(slot, poolOwner);
    }
    const leaving = pool.splice(workers).reverse();
    if (leaving.length === 0) return;
    this.events.record({ type: 'config', version, message: `scaling down to ${workers} workers` });
    for (const slot of leaving) void this.drain(slot);
  }

  /** Forks a new worker outside any pool, owned by `replacement`; it is never restarted. */
  startReplacement(version: string, replacement: symbol, config: VersionConfig): WorkerSlot {
    const slot = this.#newSlot(version);
    this.#fork(slot, { kind: 'replacement', replacement }, config);
    return slot;
  }

  /** A replacement's ready workers become the version's whole pool; the workers they replace drain. */
  replacePool(version: string, fresh: readonly WorkerSlot[]): void {
    const pool = this.#pools.get(version);
    const leaving = pool ? pool.splice(0, pool.length, ...fresh) : [...fresh];
    if (pool) for (const slot of fresh) this.#adopt(slot);
    for (const slot of leaving) void this.drain(slot);
  }

  /** A replacement's ready worker takes `old`'s place in its pool, and `old` drains (or, if `old` left, it does). */
  replaceMember(old: WorkerSlot, fresh: WorkerSlot): void {
    const pool = this.#pools.get(old.version);
    const at = pool?.indexOf(old) ?? -1;
    if (!pool || at === -1) {
      void this.drain(fresh);
      return;
    }
    pool[at] = fresh;
    this.#adopt(fresh);
    void this.drain(old);
  }

  #adopt(slot: WorkerSlot): void {
    const state = slot.state;
    if (state.kind === 'ready' || state.kind === 'unresponsive') this.transition(slot, { ...state, owner: poolOwner });
  }

  /** True when the version has a worker that may take new connections. */
  serving(version: string): boolean {
    return this.#pools.get(version)?.some((slot) => slot.state.kind === 'ready') ?? false;
  }

  versionState(version: string): VersionState {
    const pool = this.#pools.get(version) ?? [];
    if (pool.some((slot) => slot.state.kind === 'ready' || slot.state.kind === 'unresponsive')) return 'ready';
    if (pool.some((slot) => slot.state.kind === 'crashloop')) return 'crashloop';
    if (pool.some((slot) => slot.state.kind !== 'stopped')) return 'starting';
    return 'stopped';
  }

  /** Ready (but silent) → unresponsive: it gets no new connections until its heartbeat is back. */
  markUnresponsive(slot: WorkerSlot, silentMs: number): void {
    if (slot.state.kind !== 'ready') return;
    this.transition(slot, { ...slot.state, kind: 'unresponsive', since: Date.now() - silentMs },
      { type: 'unresponsive', message: `no heartbeat for ${silentMs} ms: its event loop is blocked` });
  }

  /** Kills a worker's process now; its exit decides what follows (a pool member restarts). */
  kill(slot: WorkerSlot, happening?: Happening): void {
    const process = processOf(slot.state);
    if (!process) return;
    if (happening) this.events.record({ ...happening, version: slot.version, workerId: slot.id, pid: process.pid });
    this.#killed.add(process);
    process.kill('SIGKILL');
  }

  /** Takes a slot out of its pool (if it is in one) and drains it; resolves once it stopped. */
  drain(slot: WorkerSlot): Promise<void> {
    const pool = this.#pools.get(slot.version);
    if (pool?.includes(slot)) pool.splice(pool.indexOf(slot), 1);
    const state = slot.state;
    if (state.kind === 'stopped') return Promise.resolve();
    if (!('process' in state)) {
      this.transition(slot, { kind: 'stopped' });
      return Promise.resolve();
    }
    const process = state.process;
    if (state.kind !== 'draining') {
      const { drainTimeoutMs } = this.config().server;
      const killTimer = new Deadline(drainTimeoutMs, () => this.kill(slot, { type: 'stopped', message: `still busy after ${drainTimeoutMs} ms: killing it` }));
      const starting = state.kind === 'starting';
      const killed = this.#killed.has(process);
      const message = killed ? 'stopping: it is being killed already' : starting ? 'stopping before it was ready' : 'draining: finishing in-flight requests';
      this.transition(slot, { kind: 'draining', process, startedAt: state.startedAt, killTimer }, { type: 'draining', message });
      // A starting worker has nothing in flight, and its runtime may still be loading, with no one yet to hear a
      // message (it would be lost, and the worker killed only after drainTimeoutMs): a signal reaches it either
      // way, and the runtime, once loaded, drains on SIGTERM as on the message. A killed one only has to exit.
      if (starting && !killed) process.kill('SIGTERM');
      else if (!killed) process.send({ kind: 'drain' });
    }
    return this.until(() => (slot.state.kind === 'stopped' ? true : undefined)).then(() => {});
  }

  /** Drains every worker; no worker is started or restarted from now on. */
  async stop(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.slots.map((slot) => this.drain(slot)));
  }

  /** Kills every worker now. */
  killAll(): void {
    this.#closed = true;
    for (const slot of this.slots) {
      if (processOf(slot.state)) this.kill(slot);
      else if (slot.state.kind !== 'stopped') this.transition(slot, { kind: 'stopped' });
    }
  }

  /** What every worker needs to route the later requests on its connections. */
  settings(): WorkerSettings {
    return workerSettings(this.config(), this.#live, this.versions.filter((version) => this.serving(version)), this.options.sharedLeading?.() ?? null);
  }

  /** Sends the settings to every live worker: after every transition, and when routing changes. */
  broadcastSettings(): void {
    sendSettings(this.#live, this.settings());
  }

  #versionConfig(version: string): VersionConfig {
    const config = this.config().versions.get(version);
    if (!config) throw new Error(`unknown version "${version}"`);
    return config;
  }

  #newSlot(version: string): WorkerSlot {
    const index = (this.#nextIndex.get(version) ?? 0) + 1;
    this.#nextIndex.set(version, index);
    return new WorkerSlot(`${version}.${index}`, version);
  }

  #fork(slot: WorkerSlot, owner: Owner, version: VersionConfig = this.#versionConfig(slot.version)): void {
    if (this.#closed) return;
    const { server } = this.config();
    const process = this.fork(workerEnv(slot, version, server, { ...this.options, publicPort: this.publicPort }), { nodeArgs: version.nodeArgs, args: version.args, cwd: version.cwd });
    slot.resetProcessFigures();
    this.emit('forked', slot, process);
    const readyTimer = new Deadline(server.readyTimeoutMs, () => {
      this.kill(slot, { type: 'failed', message: `not ready within ${server.readyTimeoutMs} ms: killing it` });
    });
    this.transition(slot, { kind: 'starting', process, owner, startedAt: Date.now(), readyTimer },
      { type: 'started', message: `started ${displayPath(version.entry)}` });
    process.on('app-ready', () => this.#handlers.ready(slot, process));
    process.on('exit', (code, signal) => this.#handlers.exit(slot, process, code, signal));
    process.on('message', (message, handle) => {
      if (processOf(slot.state) === process) this.#handlers.messages[message.kind](slot, process, message as never, handle);
    });
  }
}
