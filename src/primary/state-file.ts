import { hash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { removeLeftovers } from './run-folder.js';

/** Where a running supervisor can be reached: written at start so `graycluster status` finds it. */
export interface RunState {
  pid: number;
  /** The primary's start time (see processStartTime), so a reused pid is not taken for it. */
  pidStart: string | null;
  /** Its run folder. */
  runDir: string;
  config: string;
  server: { host: string; port: number };
  dashboard: { host: string; port: number; token: string };
  /** The probe listener, when `health.port` is set. */
  health?: { host: string; port: number };
}

const stateFileName = /^graycluster-[0-9a-f]{16}\.json$/;

/**
 * One file per config file, in the temp folder (the primary's: `tmp` for a reader whose TMPDIR differs),
 * readable by its owner only (it holds the token).
 */
export function stateFilePath(configFile: string, tmp = os.tmpdir()): string {
  return path.join(tmp, `graycluster-${hash('sha256', path.resolve(configFile)).slice(0, 16)}.json`);
}

/** Removes state files (and the token in them) left by primaries that are gone; returns what it removed. */
export function removeStaleRunStates(): string[] {
  return removeLeftovers({
    matches: (name) => stateFileName.test(name),
    isDirectory: false,
    ownerOf: (file) => {
      const state = JSON.parse(readFileSync(file, 'utf8')) as Partial<RunState>;
      return { pid: Number(state.pid), start: state.pidStart ?? null };
    },
  });
}

export function writeRunState(state: RunState): string {
  const file = stateFilePath(state.config);
  writeFileSync(file, JSON.stringify(state, null, 2), { mode: 0o600 });
  return file;
}

export function readRunState(configFile: string, tmp?: string): RunState | undefined {
  try {
    return JSON.parse(readFileSync(stateFilePath(configFile, tmp), 'utf8')) as RunState;
  } catch {
    return undefined;
  }
}

export function removeRunState(configFile: string): void {
  rmSync(stateFilePath(configFile), { force: true });
}
