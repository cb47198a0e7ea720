import type { LogsConfig, ResolvedConfig, VersionConfig } from '../config/types.js';
import { backoffDefaults, type BackoffPolicy } from './backoff.js';
import { Diagnostics } from './diagnostics.js';
import type { EventLog } from './events.js';
import { Handoff } from './handoff.js';
import { HealthMonitor } from './health.js';
import { Lifecycle } from './lifecycle.js';
import { SharedPeers } from './shared-peers.js';
import { LogCapture, type Terminal } from './logs/capture.js';
import type { WorkerLogs } from './logs/types.js';
import { Replacements } from './replacement.js';
import type { ForkWorker } from './worker-process.js';
import type { VersionState, WorkerView } from './worker-state.js';

export type { VersionState, WorkerView } from './worker-state.js';

export interface SupervisorOptions {
  /** Private folder for the workers' forward sockets. */
  runDir: string;
  /** Where the primary really listens: what the app sees as its address. */
  publicHost: string;
  backoff?: Partial<BackoffPolicy>;
  /** How workers' output is captured; fixed for the primary's life (a change of `logs` needs a restart). */
  logs: LogsConfig;
  /** Where workers' lines are printed (the primary's stdout). */
  terminal: Terminal;
  /** Prints one of graycluster's own lines (drop notices). */
  log: (line: string) => void;
}

/**
 * The primary's workers, assembled: the pools and each worker's lifecycle (lifecycle.ts), rolling
 * replacement (replacement.ts), health sampling (health.ts) and the handoff of connections (handoff.ts).
 * This is what the wiring, the reconfiguration, the controls and the status read.
 */
export class Supervisor {
  readonly #lifecycle: Lifecycle;
  readonly #replacements: Replacements;
  readonly #health: HealthMonitor;
  readonly handoff: Handoff;
  /** Peers that pool their connections, as the workers report them: the router places their connections. */
  readonly sharedPeers = new SharedPeers(() => this.#lifecycle.broadcastSettings());
  /** Heap snapshots and inspectors of live workers, asked for by the operator. */
  readonly diagnostics: Diagnostics;
  /** Every worker's recent output, live followers and dropped-line counts (GET /api/logs, `graycluster logs`). */
  readonly logs: WorkerLogs;
  readonly #capture: LogCapture;

  constructor(private readonly config: () => ResolvedConfig, events: EventLog, fork: ForkWorker, options: SupervisorOptions) {
    this.#lifecycle = new Lifecycle(config, events, fork, { ...options, sharedLeading: () => this.sharedPeers.leading ?? null });
    this.#replacements = new Replacements(this.#lifecycle, config, events, { ...backoffDefaults, ...options.backoff });
    this.#health = new HealthMonitor(this.#lifecycle, config, (slot, reason) => this.#replacements.recycle(slot, reason));
    this.handoff = new Handoff(this.#lifecycle, config, events);
    this.diagnostics = new Diagnostics((id) => this.#lifecycle.worker(id), () => config().diagnostics);
    this.#capture = new LogCapture({
      logs: options.logs,
      logFileOf: (version) => config().versions.get(version)?.logFile ?? null,
      terminal: options.terminal,
      say: options.log,
    });
    this.logs = this.#capture.store;
    this.#lifecycle.on('forked', (slot, process) => this.#capture.attach(slot.id, slot.version, process));
    this.#lifecycle.on('sharedPeer', (address) => this.sharedPeers.note(address));
    this.#lifecycle.on('unpooledPeer', (address) => this.sharedPeers.forget(address));
  }

  /**
   * Starts every configured version; `publicPort` is what the apps see as their port. Resolves once
   * routing.default has a ready worker (true), or is crash-looping or past readyTimeoutMs (false).
   */
  start(publicPort: number): Promise<boolean> {
    this.#lifecycle.publicPort = publicPort;
    const config = this.config();
    const started = new Map([...config.versions.keys()].map((version) => [version, this.#lifecycle.addVersion(version)]));
    this.#health.start();
    return started.get(config.routing.default) ?? Promise.resolve(false);
  }

  /** Every live worker, as status and the dashboard see it. */
  get workers(): WorkerView[] {
    return this.#lifecycle.slots.map((slot) => slot.view());
  }

  versionConfig(name: string): VersionConfig | undefined {
    return this.config().versions.get(name);
  }

  versionState(version: string): VersionState {
    return this.#lifecycle.versionState(version);
  }

  serving(version: string): boolean {
    return this.#lifecycle.serving(version);
  }

  /** Starts a version's pool; resolves once one of its workers is ready, or with false if none is in time. */
  addVersion(version: string): Promise<boolean> {
    return this.#lifecycle.addVersion(version);
  }

  /** Takes a version out of routing's reach; its workers drain in the background. */
  removeVersion(version: string): void {
    this.#lifecycle.removeVersion(version);
  }

  /** Grows or shrinks a pool; the workers that go drain in the background. */
  scale(version: string, workers: number): void {
    this.#lifecycle.scale(version, workers);
  }

  /** Sends the current routing and serving versions to every worker. */
  publishRouting(): void {
    this.#lifecycle.broadcastSettings();
  }

  /** Replaces every worker of a version, rolling, with workers of `target` (default: its current config). */
  replaceVersion(version: string, reason: string, target?: VersionConfig): Promise<string | undefined> {
    return this.#replacements.replaceVersion(version, reason, target);
  }

  /** Replaces one serving worker by id, rolling; undefined when no pool has that worker. */
  replaceWorker(id: string, reason: string): Promise<string | undefined> | undefined {
    const slot = this.#lifecycle.worker(id);
    return slot && this.#replacements.replaceWorker(slot, reason);
  }

  /** Stops every worker gracefully: each finishes its in-flight requests, or is killed after the drain timeout. */
  async stop(): Promise<void> {
    this.#health.stop();
    await this.#lifecycle.stop();
    await this.#capture.close();
  }

  /** Kills every worker now. */
  kill(): void {
    this.#health.stop();
    this.#lifecycle.killAll();
  }
}
