import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { primaryControls } from './control/primary.js';
import { loadConfig, type ConfigOverrides } from './config/load.js';
import { DashboardServer } from './dashboard/server.js';
import { CanaryController } from './primary/canary.js';
import { EventLog, formatEvent } from './primary/events.js';
import { Reconfigurer } from './primary/reconfigure.js';
import { Router } from './primary/router.js';
import { removeRunState, writeRunState } from './primary/state-file.js';
import { snapshot, workerStatuses } from './primary/status.js';
import { Supervisor } from './primary/supervisor.js';
import { clusterFork } from './primary/worker-process.js';
import type { ResolvedConfig } from './config/types.js';

/** A running graycluster: what tests and embedders can hold on to. */
export interface Running {
  port: number;
  dashboardPort: number;
  token: string;
  /** Drains every worker, then closes everything. */
  stop(): Promise<void>;
  /** Kills every worker now (a second Ctrl-C). */
  kill(): void;
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Starts the primary: router on the public port, one pool per version, the status API.
 * Throws ConfigError (bad config) or a listen error (port taken) before anything runs.
 */
export async function startPrimary(configFile: string, overrides: ConfigOverrides, log: (line: string) => void): Promise<Running> {
  const config = loadConfig(configFile, overrides);
  const generatedToken = config.dashboard.token === null;
  const token = config.dashboard.token ?? randomBytes(24).toString('base64url');
  const startedAt = Date.now();
  const events = new EventLog();
  events.on('event', (event) => log(formatEvent(event)));

  // The applied config has one owner, the reconfigurer; everything else reads it through this getter.
  const current = (): ResolvedConfig => reconfigurer.current;
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'graycluster-'));
  const supervisor = new Supervisor(current, events, clusterFork(), { publicHost: config.server.host, runDir });
  const reconfigurer = new Reconfigurer(config, overrides, supervisor, events);
  const router = new Router(current, supervisor.handoff);
  const canary = new CanaryController(reconfigurer, () => workerStatuses(supervisor), events);
  let address;
  try {
    address = await router.listen();
  } catch (error) {
    rmSync(runDir, { recursive: true, force: true });
    throw error;
  }

  const dashboard = new DashboardServer({
    ...config.dashboard,
    host: config.dashboard.host,
    port: config.dashboard.port,
    token,
    status: () => snapshot({
      supervisor,
      routing: () => reconfigurer.current.raw.routing,
      rollout: () => canary.report(),
      router: () => ({ ...router.counters, pending: router.pending }),
      server: { host: config.server.host, port: address.port },
      configError: () => reconfigurer.configError,
      events: () => events.recent().slice(-100),
      startedAt,
    }),
    events,
    controls: primaryControls(reconfigurer, supervisor),
  });
  let dashboardAddress;
  try {
    dashboardAddress = await dashboard.listen();
  } catch (error) {
    await router.close();
    rmSync(runDir, { recursive: true, force: true });
    throw error;
  }

  supervisor.start(address.port);
  reconfigurer.watch();
  canary.start();
  const versions = [...config.versions.values()].map((version) => `${version.name} ×${version.workers}`).join(', ');
  log(`graycluster: serving http://${urlHost(config.server.host)}:${address.port}/ (${versions})`);
  log(`graycluster: dashboard and API at http://${urlHost(config.dashboard.host)}:${dashboardAddress.port}/?token=${token} (token ${token}${generatedToken ? ', generated: set dashboard.token or GRAYCLUSTER_TOKEN to fix it' : ''})`);
  writeRunState({
    pid: process.pid,
    config: config.file,
    server: { host: config.server.host, port: address.port },
    dashboard: { host: config.dashboard.host, port: dashboardAddress.port, token },
  });

  let stopping: Promise<void> | undefined;
  const stop = () => stopping ??= (async () => {
    events.record({ type: 'shutdown', message: `stopping: draining in-flight requests (up to ${config.server.drainTimeoutMs} ms)` });
    await canary.close();
    reconfigurer.close();
    const closed = router.close();
    await supervisor.stop();
    await Promise.all([closed, dashboard.close()]);
    removeRunState(config.file);
    rmSync(runDir, { recursive: true, force: true });
    log('graycluster: stopped');
  })();

  return {
    port: address.port,
    dashboardPort: dashboardAddress.port,
    token,
    stop,
    kill() {
      void canary.close();
      supervisor.kill();
      removeRunState(config.file);
      rmSync(runDir, { recursive: true, force: true });
    },
  };
}
