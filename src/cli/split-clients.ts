import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.js';
import { nginxSplit, poolVariable, upstreamOf, type NginxSplit } from '../routing/split-clients.js';
import { configPath } from './options.js';

export const splitClientsUsage = `Usage: graycluster split-clients [--config <file>]

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
Rerun it and reload nginx after changing the weights. Another proxy (HAProxy, Envoy, a
cloud load balancer) can keep a pool per version with routing.versionCookie instead.

Options:
  -c, --config <file>   Config file (default $GRAYCLUSTER_CONFIG or ./graycluster.json)
  -h, --help            Show this help
`;

/** Addresses that listen everywhere: nginx on the same host reaches them on loopback. */
const wildcard = new Set(['0.0.0.0', '::', '']);

export function splitClients(args: string[]): number {
  const { values } = parseArgs({
    args,
    options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(splitClientsUsage);
    return 0;
  }
  const config = loadConfig(configPath(values.config));
  let split: NginxSplit;
  try {
    split = nginxSplit(config.routing);
  } catch (error) {
    throw new ConfigError(`${config.file}: ${(error as Error).message}`);
  }
  const { host, port } = config.server;
  const address = wildcard.has(host) ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const versionPorts = new Map([...config.versions.values()].flatMap((version) => (version.port === null ? [] : [[upstreamOf(version.name), version.port] as const])));
  const weights = config.routing.weights.map(([version, weight]) => `${version}=${weight}`).join(' ');
  const key = config.routing.sticky.key;
  process.stdout.write([
    `# From graycluster's routing: weights ${weights}, sticky key ${key.source === 'ip' ? 'ip' : `${key.source}:${key.name}`}.`,
    `# In nginx's http block; in the location: proxy_pass http://${poolVariable};`,
    '# with proxy_http_version 1.1; and proxy_set_header Connection "";',
    ...(key.source === 'ip' ? ['# The ip key: graycluster must see the client nginx saw (server.trustProxy listing nginx, and nginx setting X-Forwarded-For).'] : []),
    ...split.lines,
    ...split.upstreams.map((upstream) => {
      // A version with a port of its own is reached there, and through graycluster's port while that one is closed
      // (no worker of the version listens on it: all restarting, say).
      const own = versionPorts.get(upstream);
      return `upstream ${upstream} { server ${address}:${own ?? port};${own === undefined ? '' : ` server ${address}:${port} backup;`} keepalive 32; }`;
    }),
    '',
  ].join('\n'));
  return 0;
}
