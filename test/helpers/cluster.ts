// startCluster: a graycluster for one ava test, stopped at the test's end. The whole toolkit is re-exported
// here, so a test can import everything it needs from this one file.
import type { ChildProcess } from 'node:child_process';
import type { ExecutionContext } from 'ava';
import type { Status } from '../../src/primary/status.js';
import { startInstance } from './instance.js';

export * from './toolkit.js';

export interface Cluster {
  process: ChildProcess;
  port: number;
  dashboardPort: number;
  configFile: string;
  url(path?: string): string;
  status(): Promise<Status>;
  /** Everything the supervisor printed so far. */
  output(): string;
  /** Resolves with the first text matching `pattern` in the output (rejects if the process exits without it). */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<string>;
  waitForStatus(check: (status: Status) => boolean, timeoutMs?: number): Promise<Status>;
  /** SIGTERM, then resolves with the exit code once it is gone. */
  stop(): Promise<number | null>;
}

/** Writes `config` to a temp folder and runs the real bin on it. Cleans up at the end of the test. */
export async function startCluster(t: ExecutionContext, config: object, options: { waitReady?: boolean; args?: string[]; nodeArgs?: string[]; env?: Record<string, string>; user?: { uid: number; gid: number } } = {}): Promise<Cluster> {
  const instance = await startInstance(config, { args: options.args, nodeArgs: options.nodeArgs, env: options.env, user: options.user });
  t.teardown(async () => {
    await instance.stop();
  });
  if (options.waitReady !== false) await instance.waitUntilReady();
  return {
    process: instance.process.child,
    port: instance.port,
    dashboardPort: instance.dashboardPort,
    configFile: instance.configFile,
    url: instance.url,
    status: instance.status,
    output: instance.process.output,
    waitForOutput: async (pattern, timeoutMs = 15_000) => (await instance.process.waitForOutput(pattern, timeoutMs))[0],
    waitForStatus: instance.waitForStatus,
    stop: instance.stop,
  };
}
