/**
 * A real nginx in front of the targets, as graycluster is deployed (it cannot terminate TLS): the system's nginx
 * (Debian: `apt-get install nginx`; the bench installs nothing), run as the current user in the foreground with
 * its prefix, config, pid file, logs and temp folders in a temp folder, 1 worker, every upstream pooled
 * (`keepalive 32`, HTTP/1.1, `Connection ""`), everything on 127.0.0.1.
 */
import { accessSync, constants, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startProcess, temporaryFolder } from './toolkit.js';
import { childPids } from './procfs.js';

/** Idle pooled connections nginx keeps per upstream (per worker), as a typical deployment does. */
export const upstreamKeepalive = 32;

/** Where nginx is: $NGINX, else `nginx` on $PATH or in /usr/sbin (not on a normal user's PATH), else null. */
export function nginxPath() {
  const folders = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), '/usr/sbin', '/usr/local/sbin'];
  const candidates = process.env.NGINX ? [process.env.NGINX] : folders.map((folder) => path.join(folder, 'nginx'));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return null;
}

/** A port free on 127.0.0.1 right now (nginx needs a concrete one; a race is caught by the caller's retry). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

/**
 * The config: `upstreams` { name: [port, …] } each pooled; `servers` [{ key, pass }] one listener per entry
 * proxying everything to `pass` (an upstream name, or a variable such as `$version`); `http` extra lines at the
 * http level (split_clients, say).
 */
export function nginxConfig({ prefix, ports, upstreams, servers, http = [] }) {
  const inPrefix = (name) => path.join(prefix, name);
  return [
    '# Written by bench/lib/nginx.js for one bench run.',
    'worker_processes 1;',
    // As root nginx would hand its worker to "nobody", who cannot enter the temp folder: keep the current user.
    ...(process.getuid?.() === 0 ? ['user root;'] : []),
    `pid ${inPrefix('nginx.pid')};`,
    `error_log ${inPrefix('error.log')} warn;`,
    'events { worker_connections 4096; }',
    'http {',
    '  access_log off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `  ${kind}_temp_path ${inPrefix(`${kind}_temp`)};`),
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
      '      proxy_set_header Connection "";',
      '    }',
      '  }',
    ]),
    '}',
    '',
  ].join('\n');
}

/**
 * Starts nginx (see nginxConfig for the options) and resolves once every listener accepts connections, with
 * { pid (the master), workerPids, urls: { key: url }, config, command, stop() }. Ports are picked free and the
 * start retried when one was taken meanwhile.
 */
export async function startNginx({ name = 'nginx', upstreams, servers, http, attempts = 5 }) {
  const nginx = nginxPath();
  if (!nginx) throw new Error('nginx is not installed (Debian: apt-get install nginx)');
  for (let attempt = 1; ; attempt++) {
    const prefix = mkdtempSync(path.join(os.tmpdir(), 'graycluster-nginx-'));
    const removePrefix = temporaryFolder(prefix);
    const ports = await Promise.all(servers.map(() => freePort()));
    const config = nginxConfig({ prefix, ports, upstreams, servers, http });
    const configFile = path.join(prefix, 'nginx.conf');
    writeFileSync(configFile, config);
    const child = startProcess(name, nginx, ['-p', prefix, '-c', configFile, '-e', path.join(prefix, 'error.log'), '-g', 'daemon off;']);
    const stop = async () => {
      await child.stop();
      removePrefix();
    };
    const deadline = Date.now() + 10_000;
    let ready = false;
    while (!ready && child.child.exitCode === null && Date.now() < deadline) {
      ready = (await Promise.all(ports.map(canConnect))).every(Boolean);
      if (!ready) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    if (ready) {
      return {
        name,
        pid: child.pid,
        workerPids: childPids(child.pid),
        urls: Object.fromEntries(servers.map((server, index) => [server.key, `http://127.0.0.1:${ports[index]}/`])),
        config: config.replaceAll(prefix, '<tmp>'),
        command: `${nginx} -p <tmp> -c <tmp>/nginx.conf -e <tmp>/error.log -g 'daemon off;'`,
        stop,
      };
    }
    let log = '';
    try {
      log = readFileSync(path.join(prefix, 'error.log'), 'utf8');
    } catch {}
    await stop();
    if (!/Address already in use/.test(log + child.output()) || attempt >= attempts) {
      throw new Error(`nginx did not start (attempt ${attempt}):\n${child.output()}\n${log}`);
    }
  }
}
