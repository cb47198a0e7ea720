/**
 * graycluster's programmatic API: what `import { start } from 'graycluster'` gives. The CLI's `start` command is
 * built on it. The process that calls `start` becomes the primary of node:cluster: it forks the workers.
 */
import cluster from 'node:cluster';
import { ConfigError, type ConfigOverrides } from './config/load.js';
import { promote, setWeights, type Edit } from './config/edits.js';
import { startPrimary } from './start.js';
import type { ControlResult } from './control/types.js';
import { defaultLogLines, isLogLineCount, logLinesRule } from './dashboard/logs.js';
import type { LogLine } from './primary/logs/types.js';
import type { Status } from './primary/status.js';

export { ConfigError } from './config/load.js';
export type { ConfigFile } from './config/types.js';
export type { Edit } from './config/edits.js';
export type { Status, VersionStatus, WorkerStatus } from './primary/status.js';
export type { LogLine, LogStream } from './primary/logs/types.js';

/** What to start; everything but `config` is optional. */
export interface StartOptions {
  /** The config file (JSON), as `graycluster start --config`. It is watched: edits apply while running. */
  config: string;
  /** The public port, overriding `server.port`; 0 picks a free one (read it back from `port`). */
  port?: number;
  /** The dashboard and API port, overriding `dashboard.port`; 0 picks a free one. */
  dashboardPort?: number;
  /** The health probes' port (/livez, /readyz), overriding `health.port` and so turning them on; 0 picks a free one. */
  healthPort?: number;
  /** The dashboard and API token (at least 16 characters), overriding `dashboard.token`. */
  token?: string;
  /**
   * Where graycluster's own lines go (lifecycle events, "serving …"), formatted as `logFormat` says (in "json",
   * one JSON object per line). Default: standard output. Workers' lines always go to standard output.
   */
  log?: (line: string) => void;
  /** How lines are printed, overriding `logs.format`: "text" (`v2.1 | message`) or "json" (one object per line). */
  logFormat?: 'text' | 'json';
  /**
   * Aborting it while `start` waits for `routing.default`'s first ready worker ends that wait: `start` resolves
   * at once, without the "serving" line, for the caller to `stop` (a SIGTERM during start-up, say).
   */
  signal?: AbortSignal;
}

/** A running graycluster. */
export interface Graycluster {
  /** The public port it serves on. */
  readonly port: number;
  /** The port of its dashboard and status API. */
  readonly dashboardPort: number;
  /** The port of its health probes (/livez, /readyz); null when they are off (no `health.port`, no `healthPort`). */
  readonly healthPort: number | null;
  /** The dashboard and API token (generated when neither the config nor `token` gave one). */
  readonly token: string;
  /** How lines are printed: `logFormat`, else the config's `logs.format`. */
  readonly logFormat: 'text' | 'json';
  /**
   * Resolves once `routing.default` has a ready worker (already when `start` resolved, unless that version was
   * crash-looping or slower than `server.readyTimeoutMs`); rejects if `stop` or `kill` comes first.
   */
  readonly ready: Promise<void>;
  /** Versions, workers, routing, rollout and recent events, now: what `GET /api/status` answers. */
  status(): Status;
  /**
   * The last `lines` lines (default 100, at most 10000) the workers wrote to stdout and stderr, oldest first: of
   * the worker (`"v2.1"`) or the version (`"v2"`) `selector` names, or of every worker. What `graycluster logs`
   * prints. Throws a RangeError for a selector with no lines kept, or a bad count.
   */
  logs(selector?: string, lines?: number): LogLine[];
  /**
   * Changes the config file the way `graycluster set` and the dashboard do (under the file's lock, validated,
   * written atomically), then applies it before resolving with what changed (one line per step; empty when
   * nothing did). `edit` changes the file's contents in place. Rejects with ConfigError when the result is
   * invalid (nothing is written), or when it was written but could not be applied (a replaced version's new
   * workers never became ready, say: the old ones keep serving).
   */
  update(edit: Edit): Promise<string[]>;
  /** Sets the weights of the versions named (the others keep theirs), as `graycluster weights`. */
  setWeights(weights: Record<string, number>): Promise<string[]>;
  /** Makes `version` the default with all the weight, as `graycluster promote`. */
  promote(version: string): Promise<string[]>;
  /** Stops taking connections, lets every worker finish its in-flight requests (up to `drainTimeoutMs`), then closes everything. */
  stop(): Promise<void>;
  /** Kills every worker now. */
  kill(): void;
}

function checkPort(name: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isInteger(value) && value >= 0 && value <= 65535)) {
    throw new RangeError(`start(): ${name} must be a whole number from 0 to 65535, not ${JSON.stringify(value)}`);
  }
}

function changesOf(result: ControlResult): string[] {
  if (!result.ok) throw new ConfigError(result.status === 409 ? `written, but not applied: ${result.error}` : result.error);
  return result.changes;
}

/**
 * Starts graycluster in this process: the router on the public port, one worker pool per version, the
 * dashboard and status API, and a watch on the config file. Resolves once it listens and `routing.default` has
 * a ready worker (or is known not to have one in time: see `ready`). Rejects with ConfigError for a bad config
 * (naming the key), with the listen error when a port is taken, and with a RangeError or TypeError for a bad
 * option. Signals are left to the caller: call `stop` on SIGTERM.
 */
export async function start(options: StartOptions): Promise<Graycluster> {
  if (!cluster.isPrimary) throw new Error('start(): graycluster must run in a cluster primary, not in a worker');
  if (typeof options?.config !== 'string' || options.config === '') throw new TypeError('start(): config must be the path of a config file');
  checkPort('port', options.port);
  checkPort('dashboardPort', options.dashboardPort);
  checkPort('healthPort', options.healthPort);
  if (options.token !== undefined && (typeof options.token !== 'string' || options.token.length < 16)) {
    throw new RangeError('start(): token must be a string of at least 16 characters');
  }
  if (options.logFormat !== undefined && options.logFormat !== 'text' && options.logFormat !== 'json') {
    throw new RangeError(`start(): logFormat must be "text" or "json", not ${JSON.stringify(options.logFormat)}`);
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw new TypeError('start(): signal must be an AbortSignal');
  const overrides: ConfigOverrides = {};
  if (options.port !== undefined) overrides.port = options.port;
  if (options.dashboardPort !== undefined) overrides.dashboardPort = options.dashboardPort;
  if (options.healthPort !== undefined) overrides.healthPort = options.healthPort;
  if (options.token !== undefined) overrides.token = options.token;
  if (options.logFormat !== undefined) overrides.logFormat = options.logFormat;
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const running = await startPrimary(options.config, overrides, log, options.signal);
  return {
    port: running.port,
    dashboardPort: running.dashboardPort,
    healthPort: running.healthPort,
    token: running.token,
    logFormat: running.logFormat,
    ready: running.ready,
    status: running.status,
    logs(selector, lines = defaultLogLines) {
      if (selector !== undefined && (typeof selector !== 'string' || !running.logs.knows(selector))) {
        throw new RangeError(`logs(): no version or worker ${JSON.stringify(selector)} (ids as status() shows them, e.g. "v2" or "v2.1")`);
      }
      if (!isLogLineCount(lines)) throw new RangeError(`logs(): lines must be ${logLinesRule}, not ${JSON.stringify(lines)}`);
      return running.logs.recent(selector, lines);
    },
    update: async (edit) => changesOf(await running.edit(edit)),
    setWeights: async (weights) => changesOf(await running.edit(setWeights(weights))),
    promote: async (version) => changesOf(await running.edit(promote(version))),
    stop: running.stop,
    kill: running.kill,
  };
}
