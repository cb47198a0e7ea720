import { updateConfigFile } from '../config/update.js';
import type { RolloutConfig } from '../config/types.js';
import { manualRoutingChange, resolveRollout } from '../config/rollout.js';
import type { ControllerMemory, TickResult } from '../rollout/controller.js';
import { pauseRollout, RolloutError, type RolloutEdit } from '../rollout/edits.js';
import { rolloutReport, type RolloutReport } from '../rollout/report.js';
import type { WorkerSample } from '../rollout/window.js';
import type { EventLog } from './events.js';
import type { Reconfigurer } from './reconfigure.js';

/** How often the file is looked at while it holds no running rollout: `canary start` is noticed this fast. */
const idleCheckMs = 1000;

/**
 * The progressive-delivery controller (replacement.ts is the rolling replacement of workers).
 * Every `rollout.checkIntervalMs` it ticks the pure controller (rollout/controller.ts) with the rollout of the
 * applied config file and the workers' counters; the edit a tick asks for is written through updateConfigFile,
 * the CLI's locked and validated path, then applied at once by the reconfigurer, and recorded as an event.
 * The file is the only state that matters: a restart of graycluster resumes at the file's step, with a fresh
 * window of evidence. Transitions made by others (the CLI, the dashboard, an editor) are noticed and recorded.
 */
export class CanaryController {
  #memory: ControllerMemory | null = null;
  #last: TickResult | null = null;
  /** statusKey of the rollout #last judged. */
  #lastFor = '';
  /** The rollout as last seen or written here, to tell a transition made elsewhere; undefined before the first tick. */
  #seen: RolloutConfig | null | undefined;
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  #closed = false;
  #lastError = '';

  constructor(
    private readonly reconfigurer: Reconfigurer,
    private readonly workers: () => WorkerSample[],
    private readonly events: EventLog,
  ) {}

  start(): void {
    this.#schedule(0);
  }

  /** Stops ticking and waits for a tick under way, so nothing writes the file after this resolves. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#ticking;
  }

  /** The `rollout` of /api/status: the file's rollout with the last tick's verdict and figures. */
  report(now = Date.now()): RolloutReport | null {
    const rollout = this.reconfigurer.current.rollout;
    // A tick judged the rollout as it was then; once the file moved on (resumed, advanced), its verdict is stale.
    const current = this.#last !== null && this.#lastFor === statusKey(rollout);
    return rolloutReport(rollout, current ? this.#last : null, now);
  }

  #schedule(delayMs: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#ticking = this.#tick().finally(() => {
        this.#ticking = undefined;
        const rollout = this.reconfigurer.current.rollout;
        this.#schedule(rollout?.status.state === 'running' ? rollout.checkIntervalMs : idleCheckMs);
      });
    }, delayMs);
  }

  async #tick(): Promise<void> {
    const config = this.reconfigurer.current;
    this.#noticeTransition(config.rollout);
    if (!config.rollout) {
      this.#memory = null;
      this.#last = null;
      return;
    }
    const { version, baseline, status } = config.rollout;
    if (status.state === 'running') {
      // The workers serving a version whose new build did not start are its build before: judging (and promoting)
      // them would say nothing of the build the file names.
      const stale = [version, baseline].find((name) => this.reconfigurer.failedReplacement(name) !== undefined);
      if (stale !== undefined) {
        const reason = `${stale}'s new workers did not start (${this.reconfigurer.failedReplacement(stale)}), so what serves it is its build before; fix it, then resume`;
        await this.#write(config.file, pauseRollout(Date.now(), reason, status.step), 'pause', version, `rollout of ${version} paused at ${where(config.rollout)}: ${reason}`);
        return;
      }
    }
    // The controller and its statistics load with the first rollout: most supervisors never run one.
    const { tick } = await import('../rollout/controller.js');
    const result = tick({ rollout: config.rollout, routing: config.raw.routing, snapshot: { at: Date.now(), workers: this.workers() }, memory: this.#memory });
    this.#memory = result.memory;
    this.#last = result;
    this.#lastFor = statusKey(config.rollout);
    if (result.edit) await this.#write(config.file, guarded(result.edit, result), result.action, version, result.event);
  }

  /** Writes a rollout edit through the CLI's locked path, records it, and applies the file at once. */
  async #write(file: string, edit: RolloutEdit, action: string, version: string, event: string | null): Promise<void> {
    try {
      const { after } = await updateConfigFile(file, edit);
      this.#lastError = '';
      this.#seen = after.rollout;
      if (event) this.events.record({ type: 'rollout', version, message: event });
      // Applied now rather than when the watcher notices, so the next tick judges the file as written.
      await this.reconfigurer.reload();
    } catch (error) {
      if (error instanceof RolloutError && error.code === 'conflict') return;  // The file moved first; the next tick reads it.
      const message = `rollout: could not write "${action}" to the config file: ${(error as Error).message}`;
      // Said once, not at every tick while the file stays unwritable.
      if (message !== this.#lastError) this.events.record({ type: 'error', version, message });
      this.#lastError = message;
      return;
    }
  }

  /** Records a transition someone else wrote (pause, resume, abort, a new start), or the rollout found at start. */
  #noticeTransition(rollout: RolloutConfig | null): void {
    const before = this.#seen;
    this.#seen = rollout;
    if (before === undefined) {
      if (rollout && rollout.status.stepStartedAt !== null && (rollout.status.state === 'running' || rollout.status.state === 'paused')) {
        const message = rollout.status.state === 'running' ? `resumes at ${where(rollout)}, as the config file says`
          : `is paused at ${where(rollout)}, as the config file says: ${rollout.status.reason}`;
        this.events.record({ type: 'rollout', version: rollout.version, message: `rollout of ${rollout.version} ${message}` });
      }
      return;
    }
    if (!rollout) {
      if (before) this.events.record({ type: 'rollout', version: before.version, message: `rollout of ${before.version} removed from the config file` });
      return;
    }
    const same = before !== null && before.version === rollout.version && before.status.state === rollout.status.state
      && before.status.step === rollout.status.step && before.status.stepStartedAt === rollout.status.stepStartedAt;
    if (same || rollout.status.stepStartedAt === null) return;
    const fresh = before === null || before.version !== rollout.version || (before.status.state !== 'running' && before.status.state !== 'paused');
    const what = fresh && rollout.status.state === 'running' ? `started at ${where(rollout)}, baseline ${rollout.baseline}`
      : before?.status.state === 'paused' && rollout.status.state === 'running' ? `resumed at ${where(rollout)}: ${rollout.status.reason}`
        : `${rollout.status.state.replace('_', ' ')} at ${where(rollout)}: ${rollout.status.reason}`;
    this.events.record({ type: 'rollout', version: rollout.version, message: `rollout of ${rollout.version} ${what}` });
  }
}

function statusKey(rollout: RolloutConfig | null): string {
  return rollout ? `${rollout.version} ${rollout.status.state} ${rollout.status.step} ${rollout.status.stepStartedAt}` : '';
}

function where(rollout: RolloutConfig): string {
  return `step ${rollout.status.step + 1} of ${rollout.steps.length} (${rollout.steps[rollout.status.step]} %)`;
}

/**
 * The tick's edit, made safe against a change by hand that the watcher has not applied yet: an advance or a
 * promotion checks, under the file's lock, that routing is still the step's (else the next tick pauses).
 * A rollback is never held back: it only sends traffic to the baseline.
 */
function guarded(edit: RolloutEdit, result: TickResult): RolloutEdit {
  if (result.action !== 'advance' && result.action !== 'promote') return edit;
  return (config) => {
    const rollout = resolveRollout(config, (key, message) => {
      throw new RolloutError(`${key} ${message}`, 'conflict');
    });
    if (rollout && manualRoutingChange(config.routing, rollout)) throw new RolloutError('routing was changed by hand since the tick', 'conflict');
    edit(config);
  };
}
