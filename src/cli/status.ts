import { parseArgs } from 'node:util';
import type { Status, VersionStatus } from '../primary/status.js';
import { duration, megabytes, table } from './format.js';
import { apiTarget, callApi, isStatus } from './remote.js';
import { refuseEmpty } from './options.js';
import { UsageError } from './usage.js';

export const statusUsage = `Usage: graycluster status [--config <file>] [--json] [--watch [--interval <ms>]] [--url <url> [--token <token>]]

Shows every version and worker of a running supervisor: CPU (% of one core over the
last stats interval), state ("unresponsive": no heartbeat for server.heartbeatTimeoutMs,
its event loop blocked), memory, requests in flight, restarts, and LOG-DROPS (lines of
its output that missed the primary's stdout or its log file because they could not keep up). Finds the supervisor started with the same config file; --url and
--token (or $GRAYCLUSTER_TOKEN) reach one anywhere else.

Options:
  -c, --config <file>   Config file the supervisor was started with (default $GRAYCLUSTER_CONFIG or ./graycluster.json)
      --json            Print the raw status JSON (as GET /api/status returns it)
  -w, --watch           Redraw every second until Ctrl-C (with --json: one JSON
                        document per line instead)
      --interval <ms>   Redraw interval for --watch, 100 to 3600000 (default 1000)
      --url <url>       Dashboard address of a supervisor elsewhere, or of one of several running
                        the config file, e.g. http://127.0.0.1:9000
      --token <token>   API token (default $GRAYCLUSTER_TOKEN, else the run-state file's)
  -h, --help            Show this help
`;

export async function status(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean' },
      watch: { type: 'boolean', short: 'w' },
      interval: { type: 'string' },
      url: { type: 'string' },
      token: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(statusUsage);
    return 0;
  }
  refuseEmpty({ values }, statusUsage);
  const intervalMs = values.watch ? parseInterval(values.interval ?? '1000') : 0;
  const target = apiTarget(values);
  const show = async () => {
    const body = await callApi(target, isStatus, 'GET', '/api/status');
    return values.json ? `${JSON.stringify(body, null, values.watch ? undefined : 2)}\n` : `${formatStatus(body)}\n`;
  };
  if (!values.watch) {
    process.stdout.write(await show());
    return 0;
  }
  if (values.json) {
    // For a program to read: one JSON document per line, nothing else (an error goes to stderr).
    for (;;) {
      await show().then((text) => process.stdout.write(text), (error: Error) => process.stderr.write(`graycluster: ${error.message}\n`));
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }
  for (;;) {
    const text = await show().catch((error: Error) => `${error.message}\n`);
    // Clear the screen and home the cursor, then draw the new table.
    process.stdout.write(`\x1b[2J\x1b[H${new Date().toLocaleTimeString()}  (every ${intervalMs} ms; Ctrl-C to quit)\n\n${text}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** The longest --interval: 1 hour (a timer takes at most 2^31-1 ms; past it Node fires it at once). */
const longestIntervalMs = 3_600_000;

function parseInterval(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 100 || Number(value) > longestIntervalMs) {
    throw new UsageError(`--interval must be a number of milliseconds from 100 to ${longestIntervalMs} (1 hour), not "${value}"`, statusUsage);
  }
  return Number(value);
}

/** A version's own port, and how many of its ready workers listen there when not all do (another program holds it). */
function portText({ port, ready, portListening, portError }: VersionStatus): string {
  if (port === null) return '-';
  if (ready === 0 || portListening === ready) return String(port);
  return `${port} (${portListening}/${ready} listening${portError ? `: ${portError}` : ''})`;
}

/** A version's state, and how many of its workers missed their heartbeat (they count as ready, taking nothing new). */
function versionStateText(name: string, { state }: VersionStatus, workers: Status['workers']): string {
  const unresponsive = workers.filter((worker) => worker.version === name && worker.unresponsive).length;
  return unresponsive === 0 ? state : `${state} (${unresponsive} unresponsive)`;
}

export function formatStatus(status: Status): string {
  const versions = table([
    ['VERSION', 'STATE', 'READY', 'WEIGHT', 'PORT', 'ENTRY'],
    ...Object.entries(status.versions).map(([name, version]) => [
      name, versionStateText(name, version, status.workers), `${version.ready}/${version.configured}`, version.weight ?? '-', portText(version), version.entry,
    ]),
  ]);
  const workers = table([
    ['WORKER', 'PID', 'CPU', 'STATE', 'RSS', 'HEAP', 'IN-FLIGHT', 'CONNS', 'REQUESTS', 'SHED', 'RESTARTS', 'UPTIME', 'LOG-DROPS'],
    ...status.workers.map((worker) => [
      worker.id, worker.pid ?? '-', worker.cpuPercent === null ? '-' : `${worker.cpuPercent.toFixed(1)}%`,
      worker.unresponsive ? 'unresponsive' : worker.state, megabytes(worker.rss), megabytes(worker.heapUsed), worker.inFlight,
      worker.connections, worker.requests, worker.shed, worker.restarts, duration(worker.uptimeMs),
      worker.logLinesDropped,
    ]),
  ]);
  const lines = [
    `graycluster pid ${status.pid}, up ${duration(status.uptimeMs)}, serving port ${status.server.port}`,
    '',
    versions,
    '',
    workers,
    '',
    `routing: default ${status.routing.default}` +
      (status.routing.weights ? `, weights ${Object.entries(status.routing.weights).map(([name, weight]) => `${name}=${weight}`).join(' ')}` : '') +
      `, ${status.routing.rules?.length ?? 0} rules`,
  ];
  if (status.configError) lines.push(`config error: ${status.configError}`);
  return lines.join('\n');
}
