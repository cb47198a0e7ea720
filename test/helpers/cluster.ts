// The toolkit's processes bound to one ava test (startCluster: a graycluster; startNginxFor: nginx in front of
// one or several), each stopped at the test's end. The whole toolkit is re-exported here, so a test can import
// everything it needs from this one file. (The toolkit itself does not import ava: the bench loads it outside ava.)
import type { ChildProcess } from 'node:child_process';
import test, { type ExecutionContext, type TestFn } from 'ava';
import type { RunState } from '../../src/primary/state-file.js';
import type { Status } from '../../src/primary/status.js';
import { startInstance } from './instance.js';
import { nginxMissing, nginxPath, startNginx, type Nginx } from './nginx.js';

export * from './toolkit.js';

export interface Cluster {
  process: ChildProcess;
  port: number;
  dashboardPort: number;
  configFile: string;
  /** Its run-state file as it wrote it once it listened: ports, token and its private run folder (`runDir`). */
  state: RunState;
  url(path?: string): string;
  status(): Promise<Status>;
  /** Everything the supervisor printed so far. */
  output(): string;
  /** What it printed on its stdout alone. */
  stdout(): string;
  /** Resolves with the first text matching `pattern` in the output (rejects if the process exits without it). */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<string>;
  waitForStatus(check: (status: Status) => boolean, timeoutMs?: number): Promise<Status>;
  /** SIGTERM, then resolves with the exit code once it is gone. */
  stop(): Promise<number | null>;
}

/**
 * Writes `config` to a temp folder and runs the real bin on it, or runs it on the config file `config` names
 * (several may share one: see startInstance). Cleans up at the end of the test.
 */
export async function startCluster(t: ExecutionContext, config: object | string, options: { name?: string; waitReady?: boolean; args?: string[]; nodeArgs?: string[]; env?: Record<string, string>; user?: { uid: number; gid: number }; maxFiles?: number } = {}): Promise<Cluster> {
  const { name, args, nodeArgs, env, user, maxFiles } = options;
  const instance = await startInstance(config, { name, args, nodeArgs, env, user, maxFiles });
  t.teardown(async () => {
    await instance.stop();
  });
  if (options.waitReady !== false) await instance.waitUntilReady();
  return {
    process: instance.process.child,
    port: instance.port,
    dashboardPort: instance.dashboardPort,
    configFile: instance.configFile,
    state: instance.state,
    url: instance.url,
    status: instance.status,
    output: instance.process.output,
    stdout: instance.process.stdout,
    waitForOutput: async (pattern, timeoutMs = 15_000) => (await instance.process.waitForOutput(pattern, timeoutMs))[0],
    waitForStatus: instance.waitForStatus,
    stop: instance.stop,
  };
}

/**
 * `test` when nginx is installed; otherwise `test.skip`, after saying why on the console (ava lists the tests as
 * skipped, and CI installs nginx so that it never skips them).
 */
export function testWithNginx(file: string): TestFn {
  if (nginxPath()) return test;
  console.log(`${file}: skipped: ${nginxMissing}`);
  return test.skip as unknown as TestFn;
}

/**
 * nginx in front of graycluster's `port`, or of several graycluster instances' `ports` as one round-robin upstream
 * (nginx's default balancing: each request to the next server, whichever client connection it came on). One
 * listener; request bodies up to `maxBodyMegabytes`, default 64, buffered in its temp folder as nginx does by
 * default; WebSocket upgrades passed on. Stopped at the test's end.
 */
export async function startNginxFor(t: ExecutionContext, port: number | number[], { maxBodyMegabytes = 64 }: { maxBodyMegabytes?: number } = {}): Promise<Nginx> {
  const ports = typeof port === 'number' ? [port] : port;
  const nginx = await startNginx({ upstreams: { graycluster: ports }, servers: [{ key: 'graycluster', pass: 'graycluster' }], maxBodyMegabytes, upgrades: true });
  t.teardown(nginx.stop);
  return nginx;
}
