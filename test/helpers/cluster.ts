import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import type { Status } from '../../src/primary/status.js';

export const root = path.resolve(import.meta.dirname, '../../..');
export const bin = path.join(root, 'bin/graycluster.js');
export const fixture = (name: string) => path.join(root, 'test/fixtures', name);
export const token = 'test-token-0123456789abcdef';

/** A config with every port ephemeral; `versions` maps a name to its fixture and options. */
export function makeConfig(versions: Record<string, { entry?: string; workers?: number; env?: Record<string, string>; maxInFlight?: number }>, routing: Record<string, unknown> = {}, server: Record<string, unknown> = {}) {
  return {
    server: { host: '127.0.0.1', port: 0, ...server },
    dashboard: { host: '127.0.0.1', port: 0, token },
    versions: Object.fromEntries(Object.entries(versions).map(([name, version]) => [name, {
      entry: version.entry ?? fixture('app.mjs'),
      workers: version.workers ?? 1,
      env: { APP_VERSION: name, ...version.env },
      ...(version.maxInFlight ? { maxInFlight: version.maxInFlight } : {}),
    }])),
    routing: { default: Object.keys(versions)[0], ...routing },
  };
}

export interface Cluster {
  process: ChildProcess;
  port: number;
  dashboardPort: number;
  configFile: string;
  url(path?: string): string;
  status(): Promise<Status>;
  /** Everything the supervisor printed so far. */
  output(): string;
  /** Resolves when the output matches `pattern` (checked on every new line). */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<string>;
  waitForStatus(check: (status: Status) => boolean, timeoutMs?: number): Promise<Status>;
  /** SIGTERM, then resolves with the exit code once it is gone. */
  stop(): Promise<number | null>;
}

/** Writes `config` to a temp folder and runs the real bin on it. Cleans up at the end of the test. */
export async function startCluster(t: ExecutionContext, config: object, options: { waitReady?: boolean; args?: string[]; user?: { uid: number; gid: number }; env?: Record<string, string> } = {}): Promise<Cluster> {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-test-'));
  const configFile = path.join(folder, 'graycluster.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  if (options.user) for (const owned of [folder, configFile]) chownSync(owned, options.user.uid, options.user.gid);
  const child = spawn(process.execPath, [bin, 'start', '--config', configFile, ...(options.args ?? [])], {
    cwd: folder,
    env: { ...process.env, GRAYCLUSTER_TOKEN: undefined, GRAYCLUSTER_PORT: undefined, GRAYCLUSTER_DASHBOARD_PORT: undefined, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...options.user,
  });
  let output = '';
  const waiters = new Set<() => void>();
  const onOutput = (chunk: Buffer) => {
    output += chunk.toString();
    for (const waiter of waiters) waiter();
  };
  child.stdout!.on('data', onOutput);
  child.stderr!.on('data', onOutput);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const waitForOutput = (pattern: RegExp, timeoutMs = 15_000) => new Promise<string>((resolve, reject) => {
    const check = () => {
      const match = pattern.exec(output);
      if (!match) return;
      clearTimeout(timer);
      waiters.delete(check);
      resolve(match[0]);
    };
    const timer = setTimeout(() => {
      waiters.delete(check);
      reject(new Error(`no output matching ${pattern} within ${timeoutMs} ms; output:\n${output}`));
    }, timeoutMs);
    waiters.add(check);
    check();
    void exited.then(() => check());
  });

  let stopped: Promise<number | null> | undefined;
  const stop = () => stopped ??= (async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const code = await exited;
    clearTimeout(killer);
    rmSync(folder, { recursive: true, force: true });
    return code;
  })();
  t.teardown(async () => {
    await stop();
  });

  const port = Number(/serving http:\/\/[^:]+:(\d+)/.exec(await waitForOutput(/serving http:\/\/[^:]+:\d+/))![1]);
  const dashboardPort = Number(/dashboard and API at http:\/\/[^:]+:(\d+)/.exec(await waitForOutput(/dashboard and API at http:\/\/[^:]+:\d+/))![1]);
  const status = async (): Promise<Status> => {
    const response = await fetch(`http://127.0.0.1:${dashboardPort}/api/status`, { headers: { authorization: `Bearer ${token}` } });
    return (await response.json()) as Status;
  };
  const waitForStatus = async (check: (status: Status) => boolean, timeoutMs = 15_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const current = await status();
      if (check(current)) return current;
      if (Date.now() > deadline) throw new Error(`status never matched within ${timeoutMs} ms: ${JSON.stringify(current.versions)} ${JSON.stringify(current.router)}\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const cluster: Cluster = {
    process: child, port, dashboardPort, configFile,
    url: (urlPath = '/') => `http://127.0.0.1:${port}${urlPath}`,
    status, output: () => output, waitForOutput, waitForStatus, stop,
  };
  if (options.waitReady !== false) {
    await waitForStatus((current) => Object.values(current.versions).every((version) => version.ready === version.configured));
  }
  return cluster;
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
  text: string;
}

/** One request on a fresh connection (or on `agent`); resolves with status, headers and the body, parsed when JSON. */
export function request(url: string, options: { method?: string; headers?: Record<string, string>; body?: Buffer | string; agent?: http.Agent } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: options.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {}
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text });
      });
      res.on('error', reject);
    });
    req.setTimeout(20_000, () => req.destroy(new Error(`no answer from ${url} within 20 s`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

export const get = (url: string, headers: Record<string, string> = {}) => request(url, { headers });
