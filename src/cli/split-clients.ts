import { spawn } from 'node:child_process';
import { chmodSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type ConfigOverrides } from '../config/load.js';
import { ConfigWatcher } from '../config/watch.js';
import type { ResolvedConfig } from '../config/types.js';
import { nginxSplit, poolVariable, upstreamOf, type NginxSplit } from '../routing/split-clients.js';
import { configPath, portOption, refuseEmpty } from './options.js';
import { CommandFailure, UsageError } from './usage.js';

export const splitClientsUsage = `Usage: graycluster split-clients [--config <file>] [--port <n>] [--output <file> [--watch] [--reload <command>]]

Prints nginx config that splits users by routing.weights exactly as graycluster does
(split_clients on the sticky key, MurmurHash2 like graycluster's), with one upstream
block per version, pointing at graycluster's port (or at the version's own port,
versions.<name>.port, where its workers take connections without the primary, with
graycluster's port as the backup), and one more for requests without a key
(graycluster picks theirs at random). nginx keeps a pool of
connections per block, so each pooled connection carries one version's users, and
graycluster serves every request in place instead of relaying it to another version's
worker. graycluster still routes every request itself: a request nginx sent to the
other pool (after a weight change nginx has not been given yet, or a rule that picks
another version) is relayed to its version, never answered by the wrong one.
Rerun it and reload nginx after changing the weights, or let --watch do both: it
rewrites the file whenever the config's split changes (graycluster weights, each step
of a progressive rollout) and runs --reload after each write. Another proxy (HAProxy,
Envoy, a cloud load balancer) can keep a pool per version with routing.versionCookie
instead.

Options:
  -c, --config <file>   Config file (default $GRAYCLUSTER_CONFIG or ./graycluster.json)
  -p, --port <n>        The port graycluster serves on, when start's --port gave another
                        than server.port ($GRAYCLUSTER_PORT)
  -o, --output <file>   Write the lines to this file (atomically) instead of printing them
  -w, --watch           With --output: keep running, and rewrite the file whenever the
                        config file's split changes, until Ctrl-C or SIGTERM
  -r, --reload <command>  With --output: a shell command to run after each write of the
                        file, such as "nginx -s reload"; with --watch also once at the start.
                        A failure is printed (without --watch: exit 1; with it: tried again
                        every 5 s until it succeeds). It is done when its shell exits; one
                        still running after 30 s is killed with its process group
  -h, --help            Show this help
`;

/** How long a --reload command may run. */
const reloadTimeoutMs = 30_000;
/** With --watch, how soon a failed --reload is tried again. */
const reloadRetryMs = 5_000;

/** Addresses that listen everywhere: nginx on the same host reaches them on loopback. */
const wildcard = new Set(['0.0.0.0', '::', '']);

export async function splitClients(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      port: { type: 'string', short: 'p' },
      output: { type: 'string', short: 'o' },
      watch: { type: 'boolean', short: 'w' },
      reload: { type: 'string', short: 'r' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(splitClientsUsage);
    return 0;
  }
  refuseEmpty({ values }, splitClientsUsage);
  const { output, reload } = values;
  if (output === undefined && (values.watch || reload !== undefined)) throw new UsageError(`--${values.watch ? 'watch' : 'reload'} needs --output <file>`, splitClientsUsage);
  const file = configPath(values.config);
  const port = portOption(values.port, '--port', 'GRAYCLUSTER_PORT', splitClientsUsage);
  const overrides: ConfigOverrides = port === undefined ? {} : { port };
  const split = () => splitClientsText(loadConfig(file, overrides));
  if (output === undefined) {
    process.stdout.write(split());
    return 0;
  }
  if (!values.watch) {
    const { reloaded } = await writeSplit(output, split(), reload, false);
    return reloaded ? 0 : 1;
  }
  // Ctrl-C or SIGTERM from here on ends the watch once the write or reload under way is done.
  let stop = () => {};
  const stopped = new Promise<void>((resolve) => { stop = resolve; });
  const keepAlive = setInterval(() => {}, 1 << 30);
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // The watcher takes the file's fingerprint before the first read, so an edit made meanwhile is a change it sees.
  // Changes are written one at a time, in the order they came; a config that cannot be split keeps the last file.
  // The first pass reloads even when the file held its split already (an earlier watch's last reload may have
  // failed), and a failed reload is tried again every reloadRetryMs until one succeeds or the next write reloads.
  let written = '';
  let retry: NodeJS.Timeout | undefined;
  let queue = Promise.resolve();
  const write = async (force: boolean) => {
    clearTimeout(retry);
    const next = split();
    if (next === written && !force) return;
    const result = await writeSplit(output, next, reload, force);
    written = result.text;
    if (!result.reloaded) retry = setTimeout(() => pass(true), reloadRetryMs);
  };
  const pass = (force: boolean) => {
    queue = queue.then(() => write(force)).catch((error: unknown) => {
      process.stderr.write(`graycluster: ${(error as Error).message}; ${output} keeps the last split\n`);
    });
  };
  const watcher = new ConfigWatcher(file, () => pass(false));
  try {
    await write(true);  // A config or file that fails here is an error of the command, as without --watch.
    watcher.start();
    process.stdout.write(`graycluster: watching ${file}; ${output} follows its split (Ctrl-C to stop)\n`);
    await stopped;
    watcher.close();
    await queue;
  } finally {
    watcher.close();
    clearTimeout(retry);
    clearInterval(keepAlive);
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  return 0;
}

/**
 * Writes `text` to `output` unless it holds that already (through a temporary file in its folder, renamed over it,
 * so nginx never reads half of it; a symlink's target is what is written, keeping its mode), then runs `reload` if
 * it wrote, or always with `alwaysReload`. Returns the text the file holds, and false for `reloaded` only when a
 * reload ran and failed.
 */
async function writeSplit(output: string, text: string, reload: string | undefined, alwaysReload: boolean): Promise<{ text: string; reloaded: boolean }> {
  let current: string | undefined;
  try {
    current = readFileSync(output, 'utf8');
  } catch {
    current = undefined;
  }
  if (current !== text) {
    // Through a symlink to the file it names, and with the mode the file had.
    let target = output;
    let mode: number | undefined;
    try {
      target = realpathSync(output);
      mode = statSync(target).mode & 0o7777;
    } catch {
      // Not there yet: a new file, with the usual mode.
    }
    const temporary = `${target}.${process.pid}.tmp`;
    try {
      writeFileSync(temporary, text);
      if (mode !== undefined) chmodSync(temporary, mode);
      renameSync(temporary, target);
    } catch (error) {
      rmSync(temporary, { force: true });
      throw new CommandFailure(`--output "${output}": cannot write it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    process.stdout.write(`graycluster: wrote ${output} (${text.split('\n', 1)[0]?.replace(/^# From graycluster's routing: (.*)\.$/, '$1')})\n`);
  }
  const reloaded = reload === undefined || (current === text && !alwaysReload) ? true : await runReload(reload);
  return { text, reloaded };
}

/**
 * Runs the --reload command through the shell, in a process group of its own, so that at the timeout the shell and
 * whatever it started are killed together; a failure is printed (with the first 4 KiB of its stderr), not fatal.
 * It is done when the shell exits: something it left running in the background (which may keep stderr open) is
 * not waited for. Resolves to whether it exited with 0.
 */
function runReload(command: string): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < 4096) stderr = (stderr + chunk).slice(0, 4096);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // The group is gone already.
      }
    }, reloadTimeoutMs);
    const report = (how: string) => process.stderr.write(`graycluster: --reload "${command}" ${how}${stderr.trim() ? `: ${stderr.trim()}` : ''}\n`);
    child.on('error', (error) => {
      clearTimeout(timer);
      report(`could not start (${error.message})`);
      resolve(false);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      // What the shell wrote is in the pipe already; a moment for it to be read, then the pipe is let go.
      let settled = false;
      const settle = () => {
        if (settled) return;
        settled = true;
        clearTimeout(grace);
        child.stderr.destroy();
        if (timedOut) report(`did not finish within ${reloadTimeoutMs / 1000} s`);
        else if (code !== 0) report(`exited with ${code ?? signal}`);
        else process.stdout.write(`graycluster: --reload "${command}" done\n`);
        resolve(!timedOut && code === 0);
      };
      const grace = setTimeout(settle, 100);
      child.stderr.once('close', settle);
    });
  });
}

/** The nginx lines for `config`, as printed. Throws a ConfigError naming the key when nginx cannot split by it. */
export function splitClientsText(config: ResolvedConfig): string {
  let split: NginxSplit;
  try {
    split = nginxSplit(config.routing);
  } catch (error) {
    throw new ConfigError(`${config.file}: ${(error as Error).message}`);
  }
  const { host, port } = config.server;
  if (port === 0) throw new ConfigError(`${config.file}: server.port is 0 (a free port, picked as graycluster starts), so nginx has no port to go to: give the one it serves on with --port`);
  const address = wildcard.has(host) ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const versionPorts = new Map([...config.versions.values()].flatMap((version) => (version.port === null ? [] : [[upstreamOf(version.name), version.port] as const])));
  const weights = config.routing.weights.map(([version, weight]) => `${version}=${weight}`).join(' ');
  const key = config.routing.sticky.key;
  return [
    `# From graycluster's routing: weights ${weights}, sticky key ${key.source === 'ip' ? 'ip' : `${key.source}:${key.name}`}.`,
    `# In nginx's http block; in the location: proxy_pass http://${poolVariable};`,
    '# with proxy_http_version 1.1; and proxy_set_header Connection "";',
    ...(key.source === 'ip' ? ['# The ip key: graycluster must see the client nginx saw (server.trustProxy listing nginx, and nginx setting X-Forwarded-For).'] : []),
    ...split.lines,
    ...split.upstreams.map((upstream) => {
      // A version with a port of its own is reached there, and through graycluster's port while that one is closed
      // (no worker of the version listens on it: all restarting, say). max_fails=0: nginx tries the version's port
      // again at the next request instead of leaving it for fail_timeout (10 s) after one refused connection, and
      // never takes graycluster's port out for a connection a killed worker reset.
      const own = versionPorts.get(upstream);
      return own === undefined
        ? `upstream ${upstream} { server ${address}:${port}; keepalive 32; }`
        : `upstream ${upstream} { server ${address}:${own} max_fails=0; server ${address}:${port} backup max_fails=0; keepalive 32; }`;
    }),
    '',
  ].join('\n');
}
