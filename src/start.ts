import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { applyEdit, primaryControls } from './control/primary.js';
import type { ControlResult } from './control/types.js';
import type { Edit } from './config/edits.js';
import { loadConfig, type ConfigOverrides } from './config/load.js';
import { DashboardServer } from './dashboard/server.js';
import { CanaryController } from './primary/canary.js';
import { EventLog, formatEvent } from './primary/events.js';
import { formatOwnLine } from './primary/logs/format.js';
import type { WorkerLogs } from './primary/logs/types.js';
import { Reconfigurer } from './primary/reconfigure.js';
import type { ReadinessFacts } from './primary/probes.js';
import { Router } from './primary/router.js';
import { createRunFolder, removeStaleRunFolders } from './primary/run-folder.js';
import { removeRunState, removeStaleRunStates, writeRunState } from './primary/state-file.js';
import { currentProcess } from './shared/process-alive.js';
import { snapshot, workerStatuses, type Status } from './primary/status.js';
import { Supervisor } from './primary/supervisor.js';
import { clusterFork } from './primary/worker-process.js';
import type { HealthConfig, LogFormat, ResolvedConfig } from './config/types.js';

/** A running graycluster: what tests and embedders can hold on to. */
export interface Running {
  port: number;
  dashboardPort: number;
  /** The probe listener's port (/livez, /readyz); null when `health.port` is not set. */
  healthPort: number | null;
  token: string;
  /** Drains every worker, then closes everything. */
  stop(): Promise<void>;
  /** Kills every worker now (a second Ctrl-C). */
  kill(): void;
  /** Resolves once routing.default has a ready worker (at once if it had at start); rejects if stopped first. */
  ready: Promise<void>;
  /** What GET /api/status answers, now. */
  status(): Status;
  /** Writes an edit to the config file through the same locked path as the CLI, then applies it at once. */
  edit(change: Edit): Promise<ControlResult>;
  /** Every worker's recent output, live followers and dropped-line counts. */
  logs: WorkerLogs;
  /** How lines are printed (`logs.format`, or `--log-format`): `log` is given graycluster's own lines in it. */
  logFormat: LogFormat;
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Starts the primary: router on the public port, one pool per version, the status API. `write` is given each of
 * graycluster's own lines, formatted (a JSON object with `logs.format` "json"); workers' lines go to stdout.
 * Throws ConfigError (bad config) or a listen error (port taken) before anything runs. Aborting `signal` ends
 * the wait for routing.default's first ready worker, for the caller to stop at once.
 */
export async function startPrimary(configFile: string, overrides: ConfigOverrides, write: (line: string) => void, signal?: AbortSignal): Promise<Running> {
  const config = loadConfig(configFile, overrides);
  const log = (line: string) => write(formatOwnLine(line, config.logs.format));
  const tokenSource = overrides.token !== undefined ? 'GRAYCLUSTER_TOKEN' : config.dashboard.token !== null ? 'dashboard.token' : null;
  const token = config.dashboard.token ?? randomBytes(24).toString('base64url');
  const startedAt = Date.now();
  const events = new EventLog();
  events.on('event', (event) => log(formatEvent(event)));

  // Leftovers of primaries killed without a chance to clean up: their sockets, and state files holding a token.
  for (const stale of [...removeStaleRunFolders(), ...removeStaleRunStates()]) log(`graycluster: removed ${stale}, left by a primary that is gone`);
  // The applied config has one owner, the reconfigurer; everything else reads it through this getter.
  const current = (): ResolvedConfig => reconfigurer.current;
  const runDir = createRunFolder();
  const supervisor = new Supervisor(current, events, clusterFork(), { publicHost: config.server.host, runDir, logs: config.logs, terminal: process.stdout, log });
  const reconfigurer = new Reconfigurer(config, overrides, supervisor, events);
  const router = new Router(current, supervisor.handoff, supervisor.sharedPeers);
  const canary = new CanaryController(reconfigurer, () => workerStatuses(supervisor), events);
  let address;
  try {
    address = await router.listen();
  } catch (error) {
    rmSync(runDir, { recursive: true, force: true });
    throw error;
  }

  const status = () => snapshot({
    supervisor,
    routing: () => reconfigurer.current.raw.routing,
    rollout: () => canary.report(),
    router: () => ({ ...router.counters, pending: router.pending }),
    server: { host: config.server.host, port: address.port },
    configError: () => reconfigurer.configError,
    configAppliedAt: () => reconfigurer.appliedAt,
    events: () => events.recent().slice(-100),
    startedAt,
  });
  const controls = primaryControls(reconfigurer, supervisor);
  const dashboard = new DashboardServer({
    ...config.dashboard,
    host: config.dashboard.host,
    port: config.dashboard.port,
    token,
    status,
    events,
    controls,
    logs: supervisor.logs,
  });
  let dashboardAddress;
  try {
    dashboardAddress = await dashboard.listen();
  } catch (error) {
    await router.close();
    rmSync(runDir, { recursive: true, force: true });
    throw error;
  }

  let stopping: Promise<void> | undefined;
  let probes;
  try {
    probes = config.health.port === null ? undefined : await openProbes(config.health, () => ({
      stopping: stopping !== undefined, defaultState: supervisor.versionState(current().routing.default), configRejected: reconfigurer.configRejected,
    }));
  } catch (error) {
    await Promise.all([router.close(), dashboard.close()]);
    rmSync(runDir, { recursive: true, force: true });
    throw error;
  }
  const healthAddress = probes?.address;

  // Connections that come before a worker is ready wait for it (bounded): "serving" is said once one is.
  const defaultReady = await untilAborted(supervisor.start(address.port), signal);
  reconfigurer.holdPorts({ server: address.port, dashboard: dashboardAddress.port, health: healthAddress?.port ?? null });
  reconfigurer.watch();
  canary.start();
  if (!signal?.aborted) {
    const versions = [...config.versions.values()].map((version) => `${version.name} ×${version.workers}`).join(', ');
    const notYet = defaultReady ? '' : `; no worker of the default "${config.routing.default}" is ready yet`;
    log(`graycluster: serving http://${urlHost(config.server.host)}:${address.port}/ (${versions}${notYet})`);
    // The token is printed once, and only when it was generated (this line ends up in journald and container logs).
    const dashboardUrl = `http://${urlHost(config.dashboard.host)}:${dashboardAddress.port}/`;
    log(tokenSource
      ? `graycluster: dashboard and API at ${dashboardUrl} (token from ${tokenSource})`
      : `graycluster: dashboard and API at ${dashboardUrl}?token=${token} (token generated for this run: set dashboard.token or GRAYCLUSTER_TOKEN to keep one)`);
    if (healthAddress) log(`graycluster: health probes at http://${urlHost(config.health.host)}:${healthAddress.port}/livez and /readyz`);
  }
  writeRunState({
    pid: process.pid,
    pidStart: currentProcess().start,
    runDir,
    config: config.file,
    server: { host: config.server.host, port: address.port },
    dashboard: { host: config.dashboard.host, port: dashboardAddress.port, token },
    ...(healthAddress ? { health: { host: config.health.host, port: healthAddress.port } } : {}),
  });

  const ready = defaultServing(supervisor, current, events);
  const stop = () => stopping ??= (async () => {
    ready.cancel();
    events.record({ type: 'shutdown', message: `stopping: draining in-flight requests (up to ${config.server.drainTimeoutMs} ms)` });
    await canary.close();
    reconfigurer.close();
    const closed = router.close();
    await supervisor.stop();
    await Promise.all([closed, dashboard.close(), probes?.close()]);
    removeRunState(config.file);
    rmSync(runDir, { recursive: true, force: true });
    log('graycluster: stopped');
  })();

  return {
    port: address.port,
    dashboardPort: dashboardAddress.port,
    healthPort: healthAddress?.port ?? null,
    token,
    stop,
    ready: ready.promise,
    status,
    edit: (change) => applyEdit(reconfigurer, change),
    logs: supervisor.logs,
    logFormat: config.logs.format,
    kill() {
      ready.cancel();
      void canary.close();
      supervisor.kill();
      removeRunState(config.file);
      rmSync(runDir, { recursive: true, force: true });
    },
  };
}

/**
 * The probe listener (/livez, /readyz) and the event-loop watch behind /livez. Loaded only when health.port is set:
 * a primary without probes needs neither their modules nor the event-loop delay histogram.
 */
async function openProbes(health: HealthConfig, readinessFacts: () => ReadinessFacts): Promise<{ address: AddressInfo; close(): Promise<void> }> {
  const [{ ProbeServer }, { EventLoopWatch, liveness, readiness }] = await Promise.all([import('./primary/probe-server.js'), import('./primary/probes.js')]);
  const loop = new EventLoopWatch();
  const server = new ProbeServer(health, {
    live: () => liveness(loop.recentMaxMs, health.maxEventLoopDelayMs),
    ready: () => readiness(readinessFacts()),
  });
  const address = await server.listen();
  loop.start();
  return {
    address,
    async close() {
      await server.close();
      loop.stop();
    },
  };
}

/** What `waiting` resolves with, or false as soon as `signal` is aborted (at once if it already is). */
function untilAborted(waiting: Promise<boolean>, signal: AbortSignal | undefined): Promise<boolean> {
  if (!signal) return waiting;
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve, reject) => {
    const abort = () => resolve(false);
    signal.addEventListener('abort', abort, { once: true });
    waiting.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}

/** A promise that resolves once routing.default (as it is then) has a ready worker, checked after every event. */
function defaultServing(supervisor: Supervisor, current: () => ResolvedConfig, events: EventLog): { promise: Promise<void>; cancel(): void } {
  let settle: { resolve(): void; reject(error: Error): void } | undefined;
  const promise = new Promise<void>((resolve, reject) => { settle = { resolve, reject }; });
  promise.catch(() => {});  // Nobody need await it; stopping first is not an error of its own.
  const check = () => {
    if (!supervisor.serving(current().routing.default)) return;
    events.off('event', check);
    settle?.resolve();
  };
  events.on('event', check);
  check();
  return {
    promise,
    cancel() {
      events.off('event', check);
      settle?.reject(new Error('graycluster stopped before routing.default had a ready worker'));
    },
  };
}
