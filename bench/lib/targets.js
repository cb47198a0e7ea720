/**
 * The servers the scenarios measure. Each start function resolves once the target answers, with
 * { name, url, pid (the process in front: primary, parent proxy), workerPids, command, stop() }.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { childPids } from './procfs.js';
import { makeConfig, startInstance, startProcess } from './toolkit.js';

export const benchDir = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const repoDir = path.dirname(benchDir);
export const app = (name) => path.join(benchDir, 'apps', name);
/** The seed incident's child.js, verbatim: the same file the tests run as an unmodified app. */
export const seedChild = path.join(repoDir, 'test/fixtures/seed-child.cjs');
const server = (name) => path.join(benchDir, 'servers', name);
const relative = (file) => path.relative(repoDir, file);

/**
 * graycluster, run through its real bin with a config written to a temp folder (the toolkit's makeConfig and
 * startInstance): one pool per entry of `versions` ({ v1: { entry, workers } }), routed by ?version=, everything
 * on 127.0.0.1 and ephemeral ports; `server` adds other server options (versionHeader, maxPendingConnections…).
 * Its ports and dashboard token come from the run-state file it writes once it listens.
 * `nodeArgs` go to the primary, and through execArgv to every worker (--cpu-prof, say). `bin`: another build's
 * bin/graycluster.js, to compare a patch against this one.
 */
export async function startGraycluster({ name = 'graycluster', versions, server = {}, nodeArgs = [], bin }) {
  // No token in the config (undefined leaves it out of the file): graycluster makes one, the run state names it.
  const config = makeConfig(versions, { rules: [{ query: 'version' }] }, server, { token: undefined });
  const instance = await startInstance(config, { name, nodeArgs, bin, args: ['--port', '0', '--dashboard-port', '0'] });
  try {
    const current = await instance.waitUntilReady(20_000);
    return {
      name,
      url: instance.url(),
      pid: instance.state.pid,
      workerPids: current.workers.map((worker) => worker.pid),
      status: instance.status,
      // For scenarios that change the running config or open the dashboard.
      configFile: instance.configFile,
      dashboardUrl: instance.dashboardUrl(),
      token: instance.token,
      command: `node ${nodeArgs.length ? `${nodeArgs.join(' ')} ` : ''}bin/graycluster.js start --config <tmp>/graycluster.json --port 0 --dashboard-port 0`,
      config: { ...config, versions: Object.fromEntries(Object.entries(config.versions).map(([version, options]) => [version, { ...options, entry: relative(options.entry) }])) },
      output: instance.process.output,
      stop: instance.stop,
    };
  } catch (error) {
    await instance.stop();
    throw error;
  }
}

/** A server script of ours that reports { kind: 'ready', port, workerPids } over IPC. */
async function startReporting(name, script, env, nodeArgs = []) {
  const child = startProcess(name, process.execPath, [...nodeArgs, script], { env, ipc: true });
  try {
    const ready = await child.waitForMessage((message) => message?.kind === 'ready');
    return {
      name,
      url: `http://127.0.0.1:${ready.port}/`,
      pid: child.pid,
      workerPids: ready.workerPids,
      command: `${Object.entries(env).map(([key, value]) => `${key}=${value.startsWith('/') ? relative(value) : value}`).join(' ')} node ${nodeArgs.length ? `${nodeArgs.join(' ')} ` : ''}${relative(script)}`,
      output: child.output,
      stop: () => child.stop(),
    };
  } catch (error) {
    await child.stop();
    throw error;
  }
}

/** Plain node:cluster round-robin over `workers` workers running `entry`. */
export function startPlainCluster({ name = 'node:cluster', entry, workers, nodeArgs }) {
  return startReporting(name, server('plain-cluster.js'), { APP: entry, WORKERS: String(workers) }, nodeArgs);
}

/** A parent HTTP proxy with a generous keep-alive agent in front of one child per version. */
export function startKeepAliveProxy({ name = 'keep-alive proxy', entry, versions, nodeArgs }) {
  return startReporting(name, server('keepalive-proxy.js'), { APP: entry, VERSIONS: versions.join(',') }, nodeArgs);
}

/** The seed article's parent proxy (maxSockets: 1) in front of its child.js, one child per version (v1, v2). */
export async function startSeedProxy({ name = 'seed proxy' } = {}) {
  const script = server('seed-proxy.cjs');
  const child = startProcess(name, process.execPath, [script], { env: { SEED_CHILD: seedChild } });
  try {
    const [, port] = await child.waitForOutput(/Start proxy server on (\d+)/);
    return {
      name,
      url: `http://127.0.0.1:${port}/`,
      pid: child.pid,
      workerPids: childPids(child.pid),  // Its two children, listening by now: it waited for both.
      command: `SEED_CHILD=${relative(seedChild)} node ${relative(script)}`,
      output: child.output,
      stop: () => child.stop(),
    };
  } catch (error) {
    await child.stop();
    throw error;
  }
}
