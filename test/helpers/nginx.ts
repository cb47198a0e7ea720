// A real nginx in front of graycluster, as it is deployed (it cannot terminate TLS), for tests and the bench: the
// system's nginx (Debian: `apt-get install nginx`; nothing here installs it), run as the current user in the
// foreground with its prefix, config, pid file, logs and temp folders in a temp folder, 1 worker, every upstream
// pooled (`keepalive 32`, HTTP/1.1, `Connection ""`; upgrades passed on when asked), everything on 127.0.0.1.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { canConnect, freePort } from './ports.js';
import { findExecutable, startProcess, temporaryFolder } from './processes.js';
import { sleep } from './wait.js';

/** Idle pooled connections nginx keeps per upstream (per worker), as a typical deployment does. */
export const upstreamKeepalive = 32;

/** What to tell someone whose machine has no nginx. */
export const nginxMissing = 'nginx is not installed (Debian: apt-get install nginx)';

/** Where nginx is: $NGINX, else `nginx` on $PATH or in /usr/sbin (not on a normal user's PATH), else null. */
export const nginxPath = () => findExecutable('nginx', { envVariable: 'NGINX', extraFolders: ['/usr/sbin', '/usr/local/sbin'] });

/** One listener: everything it receives is proxied to `pass` (an upstream's name, or a variable such as `$version`). */
export interface NginxServer {
  /** Names the listener in `ports` and `url()`. */
  key: string;
  pass: string;
}

export interface NginxOptions {
  /** For messages (default "nginx"). */
  name?: string;
  /** Upstream name → the 127.0.0.1 ports of its servers; each one pooled. */
  upstreams: Record<string, number[]>;
  /** One listener per entry, each on an ephemeral port. */
  servers: NginxServer[];
  /** Extra lines at the http level (split_clients, say). */
  http?: string[];
  /**
   * Pass WebSocket (and other) upgrades on, as a deployment serving WebSockets configures nginx: the client's
   * `Upgrade` header, and `Connection: upgrade` when it sent one, else `Connection ""` as always, so plain
   * requests still use pooled connections. Off by default, so the bench measures the plain pooled setup.
   */
  upgrades?: boolean;
  /** Largest request body nginx passes on (`client_max_body_size`); nginx's own default (1 MB) when absent. */
  maxBodyMegabytes?: number;
  /** How many times to pick ports and start again when one was taken meanwhile (default 5). */
  attempts?: number;
}

export interface Nginx {
  name: string;
  /** The master's pid (it runs one worker). */
  pid: number;
  /** Listener key → its port. */
  ports: Record<string, number>;
  /** The URL of `urlPath` (default "/") on the listener `key` (default: the first). */
  url(urlPath?: string, key?: string): string;
  /** The config it runs, its temp folder written as `<tmp>` (for a report). */
  config: string;
  /** The command line, likewise. */
  command: string;
  /** SIGTERM (nginx's fast shutdown: SIGQUIT would wait for idle keep-alive connections), then its folder removed. */
  stop(): Promise<void>;
}



/** The config for `options` with its files under `prefix` and the servers on `ports` (in their order). */
export function nginxConfig(prefix: string, ports: number[], { upstreams, servers, http = [], maxBodyMegabytes, upgrades = false }: NginxOptions): string {
  const inPrefix = (name: string) => path.join(prefix, name);
  return [
    '# Written by test/helpers/nginx.ts.',
    'worker_processes 1;',
    // As root nginx would hand its worker to "nobody", who cannot enter the temp folder: keep the current user.
    ...(process.getuid?.() === 0 ? ['user root;'] : []),
    `pid ${inPrefix('nginx.pid')};`,
    `error_log ${inPrefix('error.log')} warn;`,
    'events { worker_connections 4096; }',
    'http {',
    '  access_log off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `  ${kind}_temp_path ${inPrefix(`${kind}_temp`)};`),
    ...(maxBodyMegabytes === undefined ? [] : [`  client_max_body_size ${maxBodyMegabytes}m;`]),
    ...(upgrades ? ['  map $http_upgrade $connection_upgrade { default upgrade; \'\' \'\'; }'] : []),
    ...http.map((line) => `  ${line}`),
    ...Object.entries(upstreams).flatMap(([name, upstreamPorts]) => [
      `  upstream ${name} {`,
      ...upstreamPorts.map((port) => `    server 127.0.0.1:${port};`),
      `    keepalive ${upstreamKeepalive};`,
      '  }',
    ]),
    ...servers.flatMap((server, index) => [
      '  server {',
      `    listen 127.0.0.1:${ports[index]};`,
      '    location / {',
      `      proxy_pass http://${server.pass};`,
      '      proxy_http_version 1.1;',
      ...(upgrades
        ? ['      proxy_set_header Upgrade $http_upgrade;', '      proxy_set_header Connection $connection_upgrade;']
        : ['      proxy_set_header Connection "";']),
      '    }',
      '  }',
    ]),
    '}',
    '',
  ].join('\n');
}

/**
 * Starts nginx with `options` and resolves once every listener accepts connections (within 10 s). Ports are
 * picked free and the start retried when one was taken meanwhile. The caller stops it (a test in `t.teardown`);
 * if it does not, the end of the process does (processes.ts).
 */
export async function startNginx(options: NginxOptions): Promise<Nginx> {
  const { name = 'nginx', servers, attempts = 5 } = options;
  if (servers.length === 0) throw new Error(`${name}: no servers to listen for`);
  const nginx = nginxPath();
  if (!nginx) throw new Error(nginxMissing);
  for (let attempt = 1; ; attempt++) {
    const prefix = mkdtempSync(path.join(os.tmpdir(), 'graycluster-nginx-'));
    const removePrefix = temporaryFolder(prefix);
    const ports = await Promise.all(servers.map(() => freePort()));
    const config = nginxConfig(prefix, ports, options);
    const configFile = path.join(prefix, 'nginx.conf');
    writeFileSync(configFile, config);
    const child = startProcess(name, nginx, ['-p', prefix, '-c', configFile, '-e', path.join(prefix, 'error.log'), '-g', 'daemon off;']);
    const stop = async () => {
      await child.stop(5000);
      removePrefix();
    };
    const deadline = Date.now() + 10_000;
    let ready = false;
    while (!ready && child.child.exitCode === null && Date.now() < deadline) {
      ready = (await Promise.all(ports.map(canConnect))).every(Boolean);
      if (!ready) await sleep(20);
    }
    if (ready) {
      const portOf = Object.fromEntries(servers.map((server, index) => [server.key, ports[index]!]));
      return {
        name,
        pid: child.pid,
        ports: portOf,
        url: (urlPath = '/', key = servers[0]!.key) => {
          if (!(key in portOf)) throw new Error(`${name} has no listener "${key}"`);
          return `http://127.0.0.1:${portOf[key]}${urlPath}`;
        },
        config: config.replaceAll(prefix, '<tmp>'),
        command: `${nginx} -p <tmp> -c <tmp>/nginx.conf -e <tmp>/error.log -g 'daemon off;'`,
        stop,
      };
    }
    let log = '';
    try {
      log = readFileSync(path.join(prefix, 'error.log'), 'utf8');
    } catch {}  // It stopped before writing one: its output says why.
    await stop();
    if (!/Address already in use/.test(log + child.output()) || attempt >= attempts) {
      throw new Error(`${name} did not start (attempt ${attempt}):\n${child.output()}\n${log}`);
    }
  }
}
