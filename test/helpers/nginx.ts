import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext, type TestFn } from 'ava';

/** The system's nginx ($NGINX, else on $PATH or in /usr/sbin), or null when it is not installed. */
export const nginxBinary: string | null = (() => {
  const folders = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), '/usr/sbin', '/usr/local/sbin'];
  for (const candidate of process.env.NGINX ? [process.env.NGINX] : folders.map((folder) => path.join(folder, 'nginx'))) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return null;
})();

/**
 * `test` when nginx is installed; otherwise `test.skip`, after saying why on the console (ava lists the tests as
 * skipped, and CI installs nginx so that it never skips them).
 */
export function testWithNginx(file: string): TestFn {
  if (nginxBinary) return test;
  console.log(`${file}: skipped: nginx is not installed (Debian: apt-get install nginx)`);
  return test.skip as unknown as TestFn;
}

export interface Nginx {
  port: number;
  url(path?: string): string;
  /** The master's pid (it runs one worker). */
  pid: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

/**
 * The config of a typical deployment in front of graycluster: 1 worker, the upstream pooled (`keepalive 32`, HTTP/1.1,
 * `Connection ""`), so one upstream connection carries many clients' requests. Request bodies up to
 * `maxBodyMegabytes` (nginx's default is 1 MB), buffered in the temp folder as nginx does by default.
 */
function config(prefix: string, port: number, upstreamPort: number, maxBodyMegabytes: number): string {
  const inPrefix = (name: string) => path.join(prefix, name);
  return `# Written by test/helpers/nginx.ts for one test.
worker_processes 1;
${process.getuid?.() === 0 ? 'user root;  # As root nginx would hand its worker to "nobody", who cannot enter the temp folder.' : ''}
pid ${inPrefix('nginx.pid')};
error_log ${inPrefix('error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `  ${kind}_temp_path ${inPrefix(`${kind}_temp`)};`).join('\n')}
  client_max_body_size ${maxBodyMegabytes}m;
  upstream graycluster {
    server 127.0.0.1:${upstreamPort};
    keepalive 32;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://graycluster;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/**
 * Starts the system's nginx as the current user in front of `upstreamPort` (a running graycluster) on an ephemeral
 * port (picked free, retried when taken meanwhile), with its prefix, pid file, logs and temp folders in a temp folder.
 * Resolves once it accepts connections; stopped and removed in `t.teardown`.
 */
export async function startNginx(t: ExecutionContext, upstreamPort: number, options: { maxBodyMegabytes?: number } = {}): Promise<Nginx> {
  if (!nginxBinary) throw new Error('nginx is not installed');
  for (let attempt = 1; ; attempt++) {
    const prefix = mkdtempSync(path.join(os.tmpdir(), 'graycluster-nginx-'));
    const port = await freePort();
    const configFile = path.join(prefix, 'nginx.conf');
    writeFileSync(configFile, config(prefix, port, upstreamPort, options.maxBodyMegabytes ?? 64));
    const child = spawn(nginxBinary, ['-p', prefix, '-c', configFile, '-e', path.join(prefix, 'error.log'), '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const stop = async () => {
      // SIGQUIT would wait for open keep-alive connections; SIGTERM is nginx's fast shutdown.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
      rmSync(prefix, { recursive: true, force: true });
    };
    const deadline = Date.now() + 10_000;
    let ready = false;
    while (!ready && child.exitCode === null && Date.now() < deadline) {
      ready = await canConnect(port);
      if (!ready) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    if (ready) {
      t.teardown(stop);
      return { port, url: (urlPath = '/') => `http://127.0.0.1:${port}${urlPath}`, pid: child.pid! };
    }
    let log = '';
    try {
      log = readFileSync(path.join(prefix, 'error.log'), 'utf8');
    } catch {}
    await stop();
    if (!/Address already in use/.test(output + log) || attempt >= 5) throw new Error(`nginx did not start (attempt ${attempt}):\n${output}\n${log}`);
  }
}
