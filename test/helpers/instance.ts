// A running graycluster (the real bin) for tests and the bench, found the way a program finds one: through the
// run-state file it writes once it listens, never through the lines it prints for people.
import { chownSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readRunState, type RunState } from '../../src/primary/state-file.js';
import type { Status } from '../../src/primary/status.js';
import { bin as defaultBin } from './config.js';
import { startProcess, temporaryFolder, type StartedProcess } from './processes.js';
import { waitFor } from './wait.js';

export interface Instance {
  name: string;
  process: StartedProcess;
  /** The config file: in a temp folder of its own (the process's working folder too), or the one it was given. */
  configFile: string;
  /** Where it serves and its dashboard listens, and the dashboard's token: from its run-state file. */
  state: RunState;
  port: number;
  dashboardPort: number;
  token: string;
  url(urlPath?: string): string;
  dashboardUrl(urlPath?: string): string;
  /** GET /api/status with the token. */
  status(): Promise<Status>;
  /** Resolves with the first status `check` accepts, checked every 50 ms; rejects after `timeoutMs` (default 15 s). */
  waitForStatus(check: (status: Status) => boolean, timeoutMs?: number): Promise<Status>;
  /** Resolves once every version has as many ready workers as configured. */
  waitUntilReady(timeoutMs?: number): Promise<Status>;
  /** Stops it (SIGTERM, then SIGKILL to the group), removes its folder; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface InstanceOptions {
  /** A name for messages (default "graycluster"). */
  name?: string;
  /** More arguments after `start --config <file>`. */
  args?: string[];
  /** Node options before the bin (--cpu-prof, say); workers inherit them through execArgv. */
  nodeArgs?: string[];
  /** Another build's bin/graycluster.js (default: this repository's). */
  bin?: string;
  /** How long it may take to listen (default 20 s). */
  timeoutMs?: number;
  /** Added to its environment (TMPDIR moves its run-state file and run folder: they are looked for there). */
  env?: Record<string, string | undefined>;
  /** Run it as this user; its folder and config file are given to that user. */
  user?: { uid: number; gid: number };
  /** Its file descriptor limit (RLIMIT_NOFILE, soft and hard), set by util-linux's prlimit; workers inherit it. */
  maxFiles?: number;
}

/** How to reach a listener on `host` from this machine. */
function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Waits until primary `pid` has written its run-state file for `configFile` (each primary writes its own, so
 * several may share a config file); rejects if `alive()` turns false first, or after `timeoutMs`.
 */
export function waitForRunState(configFile: string, pid: number, { alive = () => true, timeoutMs = 20_000, describe, tmp }: { alive?: () => boolean; timeoutMs?: number; describe?: () => string; tmp?: string } = {}): Promise<RunState> {
  return waitFor(() => {
    const state = readRunState(configFile, pid, tmp);
    if (state?.pid === pid) return state;
    if (!alive()) throw new Error(`pid ${pid} exited before writing its run state${describe ? `\n${describe()}` : ''}`);
    return undefined;
  }, { timeoutMs, intervalMs: 25, what: `the run state of pid ${pid}`, describe });
}

/**
 * Runs the real bin on `config`, written to a temp folder of its own, or on the config file `config` names (one
 * that several instances share, say: left as it is, the caller owns it); resolves once it listens. Its temp
 * folder is its working folder either way.
 */
export async function startInstance(config: object | string, { name = 'graycluster', args = [], nodeArgs = [], bin = defaultBin, timeoutMs, env: extraEnv = {}, user, maxFiles }: InstanceOptions = {}): Promise<Instance> {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-toolkit-'));
  const removeFolder = temporaryFolder(folder);
  const configFile = typeof config === 'string' ? path.resolve(config) : path.join(folder, 'graycluster.json');
  if (typeof config !== 'string') writeFileSync(configFile, JSON.stringify(config, null, 2));
  // The config and the arguments alone decide ports and token: nothing from the caller's environment.
  const env: Record<string, string | undefined> = { GRAYCLUSTER_TOKEN: undefined, GRAYCLUSTER_PORT: undefined, GRAYCLUSTER_DASHBOARD_PORT: undefined, ...extraEnv };
  if (user) for (const owned of typeof config === 'string' ? [folder] : [folder, configFile]) chownSync(owned, user.uid, user.gid);
  const nodeCommand = [...nodeArgs, bin, 'start', '--config', configFile, ...args];
  // prlimit sets the limit and execs node in its place: same pid.
  const [command, commandArgs] = maxFiles === undefined ? [process.execPath, nodeCommand] : ['prlimit', [`--nofile=${maxFiles}:${maxFiles}`, process.execPath, ...nodeCommand]];
  const child = startProcess(name, command, commandArgs, { env, cwd: folder, user });
  let stopped: Promise<number | null> | undefined;
  const stop = () => stopped ??= child.stop().finally(removeFolder);
  let state: RunState;
  try {
    state = await Promise.race([
      waitForRunState(configFile, child.pid, { tmp: env.TMPDIR, alive: () => child.child.exitCode === null && child.child.signalCode === null, timeoutMs, describe: child.output }),
      child.spawnFailed,
    ]);
  } catch (error) {
    await stop();
    throw error;
  }

  const { port } = state.server;
  const { port: dashboardPort, token } = state.dashboard;
  const dashboardUrl = (urlPath = '/') => `http://${urlHost(state.dashboard.host)}:${dashboardPort}${urlPath}`;
  const status = async (): Promise<Status> => {
    const response = await fetch(dashboardUrl('/api/status'), { headers: { authorization: `Bearer ${token}` } });
    if (!response.ok) throw new Error(`${name}: GET /api/status answered ${response.status}`);
    return (await response.json()) as Status;
  };
  let last: Status | undefined;
  const waitForStatus = (check: (status: Status) => boolean, statusTimeoutMs = 15_000) => waitFor(async () => {
    last = await status();
    return check(last) ? last : undefined;
  }, { timeoutMs: statusTimeoutMs, what: `${name}: the expected status`, describe: () => `last: ${JSON.stringify(last?.versions)} router ${JSON.stringify(last?.router)}\noutput:\n${child.output()}` });
  return {
    name, process: child, configFile, state, port, dashboardPort, token,
    url: (urlPath = '/') => `http://${urlHost(state.server.host)}:${port}${urlPath}`,
    dashboardUrl, status, waitForStatus,
    waitUntilReady: (readyTimeoutMs?: number) => waitForStatus((current) => Object.values(current.versions).every((version) => version.ready === version.configured), readyTimeoutMs),
    stop,
  };
}
