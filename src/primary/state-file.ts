import { hash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Where a running supervisor can be reached: written at start so `graycluster status` finds it. */
export interface RunState {
  pid: number;
  config: string;
  server: { host: string; port: number };
  dashboard: { host: string; port: number; token: string };
}

/** One file per config file, in the temp folder, readable by its owner only (it holds the token). */
export function stateFilePath(configFile: string): string {
  return path.join(os.tmpdir(), `graycluster-${hash('sha256', path.resolve(configFile)).slice(0, 16)}.json`);
}

export function writeRunState(state: RunState): string {
  const file = stateFilePath(state.config);
  writeFileSync(file, JSON.stringify(state, null, 2), { mode: 0o600 });
  return file;
}

export function readRunState(configFile: string): RunState | undefined {
  try {
    return JSON.parse(readFileSync(stateFilePath(configFile), 'utf8')) as RunState;
  } catch {
    return undefined;
  }
}

export function removeRunState(configFile: string): void {
  rmSync(stateFilePath(configFile), { force: true });
}
