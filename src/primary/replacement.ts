import type { ResolvedConfig, VersionConfig } from '../config/types.js';
import { backoffDefaults, restartDelay, type BackoffPolicy } from './backoff.js';
import type { EventLog } from './events.js';
import type { Lifecycle } from './lifecycle.js';
import type { WorkerSlot } from './worker-slot.js';
import { processOf } from './worker-state.js';

/**
 * Rolling replacement: new workers start beside the old ones, and only once all of them are ready do they
 * take the old ones' place. Each replacement knows the workers it forked (they carry it as their owner), so two
 * replacements of one version at once (a memory recycle during a reload) never take each other's workers.
 */
export class Replacements {
  /** Pool members being replaced one by one, so none is replaced twice. */
  readonly #replacing = new Set<WorkerSlot>();
  /** Per version: memory recycles in a row, each of a worker that had not yet served backoff.healthyAfterMs. */
  readonly #recyclesInARow = new Map<string, number>();
  /** Workers whose recycle waits out its backoff, and were told so (once each). */
  readonly #toldToWait = new WeakSet<WorkerSlot>();

  constructor(
    private readonly lifecycle: Lifecycle,
    private readonly config: () => ResolvedConfig,
    private readonly events: EventLog,
    private readonly backoff: BackoffPolicy = backoffDefaults,
  ) {}

  isReplacing(slot: WorkerSlot): boolean {
    return this.#replacing.has(slot);
  }

  /**
   * Replaces every worker of a version, rolling, with workers of `target` (the version's config by default).
   * If one fails to become ready, the new ones are stopped and the old ones keep serving. Resolves, once the
   * new ones serve, to undefined, or to why it failed.
   */
  async replaceVersion(version: string, reason: string, target = this.config().versions.get(version)): Promise<string | undefined> {
    if (!target || !this.lifecycle.versions.includes(version)) return `unknown version "${version}"`;
    const before = this.lifecycle.pool(version).length;
    this.events.record({ type: 'config', version, message: `replacing ${before} workers with ${target.workers} new ones (${reason})` });
    const started = await this.#startReplacements(version, target.workers, target);
    if (typeof started === 'string') {
      this.events.record({ type: 'failed', version, message: `replacement aborted, old workers keep serving: ${started}` });
      return started;
    }
    if (!this.lifecycle.versions.includes(version)) {
      for (const slot of started) void this.lifecycle.drain(slot);  // The version was removed meanwhile.
      return undefined;
    }
    this.lifecycle.replacePool(version, started);
    this.events.record({ type: 'ready', version, message: `replaced: ${target.workers} new workers serving, draining the old ones` });
    return undefined;
  }

  /** Replaces one pool member, rolling: its replacement is ready before it drains. */
  async replaceWorker(slot: WorkerSlot, reason: string): Promise<string | undefined> {
    const target = this.config().versions.get(slot.version);
    if (!target || !this.lifecycle.pool(slot.version).includes(slot)) return `worker ${slot.id} is not serving`;
    if (this.#replacing.has(slot)) return `worker ${slot.id} is already being replaced`;
    this.#replacing.add(slot);
    try {
      this.events.record({ type: 'config', version: slot.version, workerId: slot.id, pid: slot.process?.pid, message: `replacing this worker (${reason})` });
      const started = await this.#startReplacements(slot.version, 1, target);
      if (typeof started === 'string') {
        this.events.record({ type: 'failed', version: slot.version, workerId: slot.id, message: `replacement aborted, this worker keeps serving: ${started}` });
        return started;
      }
      this.lifecycle.replaceMember(slot, started[0]!);  // Asked for one worker, it returns exactly one.
      return undefined;
    } finally {
      this.#replacing.delete(slot);
    }
  }

  /**
   * Replaces a pool member whose memory passed its soft limit, unless it is already being replaced; asked again at
   * every sample while it stays over. A version whose new workers pass the limit soon after they start (a leak in
   * the build) backs off as crashes do (backoff.ts): its nth recycle in a row waits until the worker has served
   * restartDelay(n), 0 then 100 ms doubling up to 30 s, so it is not replaced every few seconds for good; the hard
   * limit still kills it meanwhile.
   */
  recycle(slot: WorkerSlot, reason: string): void {
    if (this.#replacing.has(slot) || !this.lifecycle.pool(slot.version).includes(slot)) return;
    const servedMs = slot.state.kind === 'ready' ? Date.now() - slot.state.readyAt : Infinity;
    const inARow = servedMs < this.backoff.healthyAfterMs ? (this.#recyclesInARow.get(slot.version) ?? 0) + 1 : 1;
    const delayMs = restartDelay(inARow, this.backoff);
    if (servedMs < delayMs) {
      if (!this.#toldToWait.has(slot)) {
        this.#toldToWait.add(slot);
        this.events.record({
          type: 'restarting', version: slot.version, workerId: slot.id, pid: slot.process?.pid,
          message: `${reason}, recycle ${inARow} in a row within ${this.backoff.healthyAfterMs / 1000} s of a start: replacing it once it has served ${delayMs} ms`,
        });
      }
      return;
    }
    // Kept for the versions there are: one removed takes its count with it.
    for (const version of this.#recyclesInARow.keys()) if (!this.lifecycle.versions.includes(version)) this.#recyclesInARow.delete(version);
    this.#recyclesInARow.set(slot.version, inARow);
    void this.replaceWorker(slot, reason);
  }

  /** Forks `count` workers owned by a new replacement and waits for all to be ready; on the first failure stops them all. */
  async #startReplacements(version: string, count: number, target: VersionConfig): Promise<WorkerSlot[] | string> {
    const replacement = Symbol(`replacement of ${version}`);
    const fresh = Array.from({ length: count }, () => this.lifecycle.startReplacement(version, replacement, target));
    const outcome = await this.lifecycle.until(() => {
      const failed = fresh.find((slot) => slot.state.kind === 'stopped');
      if (failed) return `new worker ${failed.id} did not become ready (${failed.exitReason ?? 'exited'})`;
      return fresh.every((slot) => slot.state.kind === 'ready') ? 'ready' : undefined;
    });
    if (outcome === 'ready') return fresh;
    for (const slot of fresh) if (processOf(slot.state)) this.lifecycle.kill(slot);
    return outcome;
  }
}
