import { parseArgs } from 'node:util';
import { readRunState } from '../primary/state-file.js';
import type { Status } from '../primary/status.js';
import { duration, megabytes, table } from './format.js';
import { configPath } from './options.js';

export const statusUsage = `Usage: graycluster status [--config <file>] [--json] [--url <url> --token <token>]

Shows every version and worker of a running supervisor: state, memory, requests in
flight, restarts. Finds the supervisor started with the same config file; --url and
--token (or $GRAYCLUSTER_TOKEN) reach one anywhere else.

Options:
  -c, --config <file>   Config file the supervisor was started with (default $GRAYCLUSTER_CONFIG or ./graycluster.json)
      --json            Print the raw status JSON (as GET /api/status returns it)
      --url <url>       Dashboard address, e.g. http://127.0.0.1:9000
      --token <token>   API token (default $GRAYCLUSTER_TOKEN)
  -h, --help            Show this help
`;

export async function status(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean' },
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
  let url = values.url;
  let token = values.token ?? process.env.GRAYCLUSTER_TOKEN;
  if (url === undefined) {
    const file = configPath(values.config);
    const state = readRunState(file);
    if (!state) {
      process.stderr.write(`graycluster: no supervisor is running with ${file} (start one with: graycluster start --config ${file})\n`);
      return 1;
    }
    const host = state.dashboard.host === '0.0.0.0' ? '127.0.0.1' : state.dashboard.host === '::' ? '::1' : state.dashboard.host;
    url = `http://${host.includes(':') ? `[${host}]` : host}:${state.dashboard.port}`;
    token ??= state.dashboard.token;
  }
  let response: Response;
  try {
    response = await fetch(new URL('/api/status', url), { headers: { authorization: `Bearer ${token ?? ''}` }, signal: AbortSignal.timeout(5000) });
  } catch (error) {
    process.stderr.write(`graycluster: cannot reach ${url}: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
  if (!response.ok) {
    process.stderr.write(`graycluster: ${url} answered ${response.status}: ${(await response.text()).trim()}\n`);
    return 1;
  }
  const body = (await response.json()) as Status;
  process.stdout.write(values.json ? `${JSON.stringify(body, null, 2)}\n` : `${formatStatus(body)}\n`);
  return 0;
}

export function formatStatus(status: Status): string {
  const versions = table([
    ['VERSION', 'STATE', 'READY', 'WEIGHT', 'ENTRY'],
    ...Object.entries(status.versions).map(([name, version]) => [
      name, version.state, `${version.ready}/${version.configured}`, version.weight ?? '-', version.entry,
    ]),
  ]);
  const workers = table([
    ['WORKER', 'PID', 'STATE', 'RSS', 'HEAP', 'IN-FLIGHT', 'CONNS', 'REQUESTS', 'SHED', 'RESTARTS', 'UPTIME'],
    ...status.workers.map((worker) => [
      worker.id, worker.pid ?? '-', worker.state, megabytes(worker.rss), megabytes(worker.heapUsed), worker.inFlight,
      worker.connections, worker.requests, worker.shed, worker.restarts, duration(worker.uptimeMs),
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
