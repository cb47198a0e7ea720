import { parseArgs } from 'node:util';
import { ConfigError, type ConfigOverrides } from '../config/load.js';
import { start as startGraycluster } from '../index.js';
import { formatOwnLine } from '../primary/logs/format.js';
import { UsageError } from './usage.js';
import { configPath, portOption, refuseEmpty } from './options.js';

export const startUsage = `Usage: graycluster start [--config <file>] [--port <n>] [--dashboard-port <n>] [--health-port <n>]
                         [--log-format text|json]

Runs the supervisor in the foreground: one worker pool per version, the router on the
public port, and the dashboard/status API; with health.port set, also GET /livez and
/readyz for a kubelet or load balancer (no token). Logs one line per lifecycle event.
Every worker's stdout and stderr come out on this stdout, one line each, prefixed with
the worker: "v2.1 | listening" (stdout), "v2.1 ! warning" (stderr).
Ctrl-C or SIGTERM stops gracefully (in-flight requests finish), also while workers are still starting; a
second one forces.

Options:
  -c, --config <file>        Config file (default $GRAYCLUSTER_CONFIG or ./graycluster.json)
  -p, --port <n>             Public port, overrides server.port ($GRAYCLUSTER_PORT); 0 picks a free one
      --dashboard-port <n>   Dashboard/API port, overrides dashboard.port ($GRAYCLUSTER_DASHBOARD_PORT)
      --health-port <n>      Health probes' port, overrides health.port and turns the probes on
                             ($GRAYCLUSTER_HEALTH_PORT)
      --log-format <f>       "text" (default) or "json": one JSON object per line, workers' lines
                             ({time, worker, version, stream, message}) and graycluster's own
                             (worker null, stream "graycluster"); overrides logs.format
  -h, --help                 Show this help

Environment:
  GRAYCLUSTER_TOKEN          Dashboard/API token, overrides dashboard.token
`;

const repeatWindowMs = 500;

export async function start(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      port: { type: 'string', short: 'p' },
      'dashboard-port': { type: 'string' },
      'health-port': { type: 'string' },
      'log-format': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(startUsage);
    return 0;
  }
  refuseEmpty({ values }, startUsage);
  const overrides: ConfigOverrides = {};
  const port = portOption(values.port, '--port', 'GRAYCLUSTER_PORT', startUsage);
  if (port !== undefined) overrides.port = port;
  const dashboardPort = portOption(values['dashboard-port'], '--dashboard-port', 'GRAYCLUSTER_DASHBOARD_PORT', startUsage);
  if (dashboardPort !== undefined) overrides.dashboardPort = dashboardPort;
  const healthPort = portOption(values['health-port'], '--health-port', 'GRAYCLUSTER_HEALTH_PORT', startUsage);
  if (healthPort !== undefined) overrides.healthPort = healthPort;
  const logFormat = values['log-format'];
  if (logFormat !== undefined) {
    if (logFormat !== 'text' && logFormat !== 'json') throw new UsageError(`--log-format must be "text" or "json", not "${logFormat}"`, startUsage);
    overrides.logFormat = logFormat;
  }
  if (process.env.GRAYCLUSTER_TOKEN !== undefined) {
    // Set but empty (a compose file's ${TOKEN} with TOKEN unset) is an error, as for the other variables, not "unset".
    if (process.env.GRAYCLUSTER_TOKEN === '') throw new UsageError('GRAYCLUSTER_TOKEN is set but empty: give it a token of at least 16 characters, or unset it', startUsage);
    if (process.env.GRAYCLUSTER_TOKEN.length < 16) throw new UsageError('GRAYCLUSTER_TOKEN must be at least 16 characters', startUsage);
    overrides.token = process.env.GRAYCLUSTER_TOKEN;
  }

  const write = (line: string) => process.stdout.write(`${line}\n`);
  let running: Awaited<ReturnType<typeof startGraycluster>> | undefined;
  // Its own lines in the format the primary settles on (a signal while starting: the flag's, or text).
  const log = (line: string) => write(formatOwnLine(line, running?.logFormat ?? overrides.logFormat ?? 'text'));
  let firstSignalAt = 0;
  // A signal while starting ends the wait for workers to be ready: the stop begins at once.
  const starting = new AbortController();
  let settle: (code: number) => void = () => {};
  const stopped = new Promise<number>((resolve) => { settle = resolve; });
  const stop = () => running?.stop().then(() => settle(0), () => settle(1));
  const onSignal = (signal: NodeJS.Signals) => {
    // One signal can arrive twice at once (sent to the process and to its group, as `timeout` and some
    // service managers do); only one sent later is a second request.
    if (firstSignalAt !== 0 && Date.now() - firstSignalAt < repeatWindowMs) return;
    if (firstSignalAt !== 0) {
      log(`graycluster: ${signal} again: killing every worker now`);
      if (running) running.kill();
      else process.exit(1);  // Still starting: the workers exit as their channel to this process closes.
      settle(1);
      return;
    }
    firstSignalAt = Date.now();
    log(`graycluster: ${signal}: stopping gracefully (send it again to force)`);
    if (running) void stop();
    else starting.abort();  // Start-up returns at once, and the stop begins below.
  };
  // The primary owns these two signals from the start, while its workers are still starting too. conf's atomic
  // writer (through when-exit) hooks them when it loads and sends the signal to this process again after its
  // own clean-up: under load that echo arrived as a "second" SIGTERM and turned a graceful stop into a forced one.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.removeAllListeners(signal);
    process.on(signal, onSignal);
  }
  try {
    running = await startGraycluster({ config: configPath(values.config), ...overrides, log: write, signal: starting.signal });
  } catch (error) {
    if (error instanceof ConfigError) process.stderr.write(`graycluster: invalid config: ${error.message}\n`);
    else process.stderr.write(`graycluster: cannot start: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
  if (firstSignalAt !== 0) void stop();
  return stopped;
}
