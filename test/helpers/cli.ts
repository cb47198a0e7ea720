import { execFile } from 'node:child_process';
import { bin } from './config.js';

export interface CliResult {
  /** The exit code (null when killed, at the timeout say). */
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real CLI (`node bin/graycluster.js …`) and resolves once it exited and its output streams closed
 * (output can still be arriving after 'exit'). The caller's GRAYCLUSTER_TOKEN is not passed on unless given.
 */
export function runCli(args: string[], { cwd, env = {}, timeoutMs = 30_000 }: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd, env: { ...process.env, GRAYCLUSTER_TOKEN: undefined, ...env }, timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}
