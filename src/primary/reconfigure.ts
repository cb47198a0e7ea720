import { checkVersionPorts, ConfigError, heldPorts, loadConfig, type ConfigOverrides, type PortSection } from '../config/load.js';
import { describe, hiddenPortChanges, plan } from '../config/plan.js';
import { checkEntries } from '../config/update.js';
import { ConfigWatcher } from '../config/watch.js';
import type { ConfigFile, ResolvedConfig, VersionConfig } from '../config/types.js';
import type { EventLog } from './events.js';
import type { Supervisor } from './supervisor.js';

/** Applied configs kept for rollback. */
const historyLimit = 20;

/**
 * Keeps the running supervisor in step with its config file: each change is read and validated through the
 * same schema as at start, diffed against what runs, and applied step by step. A bad file is never applied
 * (and never touched): the last good config keeps serving and `configError` says what is wrong.
 *
 * It owns the applied config: `current` is the one truth the router, the handoff and the supervisor read, and
 * it advances step by step in plan order (a new version is in it before routing may name it; routing switches
 * in one step; a replaced version's new settings only once its new workers serve).
 */
export class Reconfigurer {
  #current: ResolvedConfig;
  #configError: string | null = null;
  /** The file on disk was refused whole (invalid): what runs is the last good config. */
  #rejected = false;
  /** Versions whose new workers did not start at the last apply, with why: what runs of each is its build before. */
  #failedReplacements = new Map<string, string>();
  #appliedAt = Date.now();
  readonly #history: ConfigFile[] = [];
  readonly #watcher: ConfigWatcher;
  #running: Promise<void> | undefined;
  #again = false;
  /** The ports this supervisor listens on, as bound: they stay until it restarts, whatever the file says. */
  #held: Array<[key: string, port: number | null]> = [];

  constructor(
    current: ResolvedConfig,
    private readonly overrides: ConfigOverrides,
    private readonly supervisor: Supervisor,
    private readonly events: EventLog,
  ) {
    this.#current = current;
    this.#watcher = new ConfigWatcher(current.file, () => void this.reload());
  }

  get current(): ResolvedConfig {
    return this.#current;
  }

  get configError(): string | null {
    return this.#configError;
  }

  /** True while the file on disk is refused whole; a version's failed replacement leaves it false. */
  get configRejected(): boolean {
    return this.#rejected;
  }

  /** Why the version's replacement failed at the last apply (its previous workers serve it), or undefined. */
  failedReplacement(version: string): string | undefined {
    return this.#failedReplacements.get(version);
  }

  /** When the config now running was applied (ms since the epoch): at start, then after each file it applied. */
  get appliedAt(): number {
    return this.#appliedAt;
  }

  /** The config applied before the current one, for rollback. */
  get previous(): ConfigFile | undefined {
    return this.#history.at(-1);
  }

  watch(): void {
    this.#watcher.start();
  }

  /**
   * Tells the ports the supervisor has bound (`server.port` and the others, 0 resolved), which a new file's version
   * ports must stay off: a changed `server.port` only takes effect at a restart, so its old port stays open.
   */
  holdPorts(bound: Record<PortSection, number | null>): void {
    this.#held = heldPorts(bound);
  }

  close(): void {
    this.#watcher.close();
  }

  /** Reads the file and applies it. Calls made while one runs join it, and it reads the file again after. */
  reload(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      try {
        do {
          this.#again = false;
          await this.#applyFile();
        } while (this.#again);
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }

  async #applyFile(): Promise<void> {
    this.#watcher.markSeen();
    let next: ResolvedConfig;
    try {
      next = loadConfig(this.#current.file, this.overrides);
      checkEntries(next);
      checkVersionPorts(next.versions.values(), this.#held, (key, message) => {
        throw new ConfigError(`${next.file}: ${key} ${message}`);
      });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      if (this.#configError !== error.message) {
        this.events.record({ type: 'config', message: `rejected, the last good config keeps serving: ${error.message}` });
      }
      this.#configError = error.message;
      this.#rejected = true;
      return;
    }
    this.#rejected = false;
    await this.#apply(next);
  }

  async #apply(next: ResolvedConfig): Promise<void> {
    const before = this.#current;
    for (const message of hiddenPortChanges(before.raw, next.raw, this.overrides)) this.events.record({ type: 'config', message });
    const steps = plan(before, next);
    if (steps.length === 0) {
      this.#current = next;
      this.#configError = null;
      this.#failedReplacements.clear();
      this.#appliedAt = Date.now();
      return;
    }
    this.events.record({ type: 'config', message: `applying: ${steps.map((step) => describe(step, before, next)).join('; ')}` });
    const failures: string[] = [];
    const failed = new Map<string, string>();
    /** What runs of each version: the old settings of a version whose replacement failed. */
    const running = new Map(next.versions);
    const withVersion = (name: string, version: VersionConfig | undefined) => {
      const versions = new Map(this.#current.versions);
      if (version) versions.set(name, version);
      else versions.delete(name);
      this.#current = { ...this.#current, versions };
    };
    /** A change to a running version's settings that needs no restart. */
    const changeVersion = (name: string, change: Partial<VersionConfig>) => {
      const version = this.#current.versions.get(name);
      if (!version) throw new Error(`the plan changes version "${name}", which is not running`);
      const changed = { ...version, ...change };
      withVersion(name, changed);
      running.set(name, changed);
    };
    for (const step of steps) {
      switch (step.kind) {
        case 'start-version':
          withVersion(step.version, next.versions.get(step.version));
          if (!(await this.supervisor.addVersion(step.version))) {
            this.events.record({ type: 'failed', version: step.version, message: `no worker ready yet: its traffic goes to "${next.routing.default}" until one is` });
          }
          break;
        case 'switch-routing':
          this.#current = { ...this.#current, routing: next.routing, server: next.server, raw: next.raw };
          this.supervisor.publishRouting();
          break;
        case 'replace': {
          const failure = await this.supervisor.replaceVersion(step.version, step.reason, next.versions.get(step.version));
          if (failure) {
            // What runs is the old version: remember that, so fixing the file tries the replacement again.
            const old = before.versions.get(step.version);
            if (old) running.set(step.version, old);
            failures.push(`versions.${step.version}: ${failure}`);
            failed.set(step.version, failure);
          }
          withVersion(step.version, running.get(step.version));
          break;
        }
        case 'scale':
          changeVersion(step.version, { workers: step.to });
          this.supervisor.scale(step.version, step.to);
          break;
        case 'remove-version':
          this.supervisor.removeVersion(step.version);
          withVersion(step.version, undefined);
          break;
        case 'set-limit':
          changeVersion(step.version, { [step.key]: step.to });
          break;
        case 'set-log-file':
          changeVersion(step.version, { logFile: step.to });
          break;
        case 'needs-restart':
          this.events.record({ type: 'config', message: describe(step, before, next) });
          break;
      }
    }
    this.#history.push(before.raw);
    if (this.#history.length > historyLimit) this.#history.shift();
    this.#current = { ...next, versions: running };
    this.#configError = failures.length > 0 ? failures.join('; ') : null;
    this.#failedReplacements = failed;
    this.#appliedAt = Date.now();
    this.events.record({ type: 'config', message: failures.length > 0 ? `applied, except: ${this.#configError}` : 'applied' });
  }
}
