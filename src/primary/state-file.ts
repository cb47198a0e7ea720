import { hash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { identityAlive } from '../shared/process-alive.js';
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

/** `graycluster-<config hash>-<pid>.json`; without the pid, as graycluster wrote it before several could share a config. */
const stateFileName = /^graycluster-([0-9a-f]{16})(?:-\d+)?\.json$/;

const configKey = (configFile: string) => hash('sha256', path.resolve(configFile)).slice(0, 16);

/**
 * One file per primary, named by its config file and its pid, since several primaries may run one config file
 * (a fleet on one host); in the temp folder (the primary's: `tmp` for a reader whose TMPDIR differs), readable
 * by its owner only (it holds the token).
 */
export function stateFilePath(configFile: string, pid = process.pid, tmp = os.tmpdir()): string {
  return path.join(tmp, `graycluster-${configKey(configFile)}-${pid}.json`);
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

/** Writes this primary's state file; other primaries running the same config file keep theirs. */
export function writeRunState(state: RunState): string {
  const file = stateFilePath(state.config, state.pid);
  writeFileSync(file, JSON.stringify(state, null, 2), { mode: 0o600 });
  return file;
}

/** The state file primary `pid` wrote for `configFile`, whether or not it still runs; undefined if none. */
export function readRunState(configFile: string, pid: number, tmp?: string): RunState | undefined {
  return readStateFile(stateFilePath(configFile, pid, tmp));
}

/** Every primary running with `configFile` now (files of primaries that are gone are skipped), by pid. */
export function readRunStates(configFile: string, tmp = os.tmpdir()): RunState[] {
  const key = configKey(configFile);
  return liveRunStates(tmp, (fileKey) => fileKey === key);
}

/** Every primary running now, whatever its config file, by pid. */
export function readAllRunStates(tmp = os.tmpdir()): RunState[] {
  return liveRunStates(tmp, () => true);
}

function liveRunStates(tmp: string, keyMatches: (key: string) => boolean): RunState[] {
  let names: string[];
  try {
    names = readdirSync(tmp);
  } catch {
    return [];
  }
  return names
    .filter((name) => {
      const key = stateFileName.exec(name)?.[1];
      return key !== undefined && keyMatches(key);
    })
    .flatMap((name) => readStateFile(path.join(tmp, name)) ?? [])
    .filter((state) => identityAlive({ pid: state.pid, start: state.pidStart ?? null }))
    .sort((a, b) => a.pid - b.pid);
}

/** Removes this primary's state file. */
export function removeRunState(configFile: string): void {
  rmSync(stateFilePath(configFile), { force: true });
}

function readStateFile(file: string): RunState | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as RunState;
  } catch {
    return undefined;  // Gone meanwhile, or being written this instant.
  }
}
