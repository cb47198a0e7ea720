import { hash, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { EditError, type Edit } from './edits.js';
import { currentProcess, identityAlive, type ProcessIdentity } from '../shared/process-alive.js';
import { checkConfigContents, checkVersionPorts, ConfigError, readConfigFile, resolveConfig, writeConfigFile } from './load.js';
import { describe, plan } from './plan.js';
import type { ConfigFile, ResolvedConfig } from './types.js';

const lockWaitMs = 10_000;
/** A lock from a system without process start times, this old, is left over from a process that died holding it. */
const staleLockMs = 30_000;

/** Every version's entry must exist before a change is applied (at start a missing one is only an error event). */
export function checkEntries(config: ResolvedConfig): void {
  for (const version of config.versions.values()) {
    if (!existsSync(version.entry)) throw new ConfigError(`${config.file}: versions.${version.name}.entry: file not found: ${version.entry}`);
    if (statSync(version.entry).isDirectory()) throw new ConfigError(`${config.file}: versions.${version.name}.entry: ${version.entry} is a folder; name the app's file (its main script)`);
  }
}

/**
 * Runs `work` holding `<file>.lock`, so that two writers (two CLI calls, or the CLI and the dashboard) never
 * read the same version of the file and lose one another's change. The lock names its owner by pid and start
 * time, so a lock left by a dead process is taken over at once even when its pid now belongs to another one.
 */
export async function withFileLock<T>(file: string, work: () => T | Promise<T>): Promise<T> {
  const lock = `${file}.lock`;
  const mine = ownerText();
  const deadline = Date.now() + lockWaitMs;
  for (;;) {
    try {
      writeFileSync(lock, mine, { flag: 'wx', mode: 0o600 });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const held = readOwner(lock);
      if (!held) continue;  // Released between our attempt and our look.
      if (!held.alive && removeStale(lock, held.text)) continue;
      if (Date.now() > deadline) throw new ConfigError(`${file} is locked by process ${held.pid} (${lock}); try again`);
      await sleep(20);
    }
  }
  try {
    return await work();
  } finally {
    rmSync(lock, { force: true });  // Ours: a lock is removed only by its owner, or once its owner is dead.
  }
}

function ownerText(): string {
  return JSON.stringify({ ...currentProcess(), nonce: randomUUID() });
}

/** The lock at `file`: its exact contents, and whether the process it names still runs. */
function readOwner(file: string): { text: string; pid: number; alive: boolean } | undefined {
  let text: string;
  let age: number;
  try {
    text = readFileSync(file, 'utf8');
    age = Date.now() - statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
  let owner: ProcessIdentity | undefined;
  try {
    const parsed = JSON.parse(text) as unknown;
    // A bare number: a lock written by an older graycluster, with no start time.
    owner = typeof parsed === 'number' ? { pid: parsed, start: null } : { pid: Number((parsed as ProcessIdentity).pid), start: (parsed as ProcessIdentity).start ?? null };
  } catch {}
  // Empty or cut short: a lock being written this instant (creating the file and writing it are two steps). It
  // counts as held until it is older than staleLockMs, or its writer would lose it to a reader that came between.
  if (owner === undefined || !Number.isInteger(owner.pid)) return { text, pid: NaN, alive: age <= staleLockMs };
  return { text, pid: owner.pid, alive: identityAlive(owner) && (owner.start !== null || age <= staleLockMs) };
}

/**
 * Removes the dead owner's lock at `file` whose contents are `staleText`, racing no one: only the writer that
 * creates `<file>.takeover-<hash of those contents>` may remove it, and while that one exists nothing can
 * change the lock (it is only ever created where absent, or removed by its owner, who is dead). A takeover
 * left by a writer that died in its midst is itself stale and removed the same way. False: another writer is
 * taking it over now.
 */
function removeStale(file: string, staleText: string): boolean {
  const takeover = `${file}.takeover-${hash('sha256', staleText).slice(0, 16)}`;
  try {
    writeFileSync(takeover, ownerText(), { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const held = readOwner(takeover);
    return held === undefined || (!held.alive && removeStale(takeover, held.text));
  }
  try {
    let current: string | undefined;
    try {
      current = readFileSync(file, 'utf8');
    } catch {}
    if (current === staleText) rmSync(file, { force: true });
    return true;
  } finally {
    rmSync(takeover, { force: true });
  }
}

export interface UpdateResult {
  before: ResolvedConfig;
  after: ResolvedConfig;
  /** What the change does, one line each; empty when it changes nothing. */
  changes: string[];
}

/**
 * Applies an edit to the config file: read and validate the current file, edit a copy, validate the result
 * (schema, versions named, entries present), then write it atomically. Nothing is written when the edit is
 * invalid or changes nothing. With `dryRun`, only says what would change. An edit's EditError of code 'invalid'
 * becomes a ConfigError (the CLI's exit 1, the API's 400); one of code 'conflict' passes, for its caller.
 * `held`: the ports running supervisors of the file hold (heldPorts), which no version's port may take.
 */
export function updateConfigFile(file: string, edit: Edit, { dryRun = false, held = [] as Array<[key: string, port: number | null]> } = {}): Promise<UpdateResult> {
  return withFileLock(file, async () => {
    const absolute = path.resolve(file);
    const raw = readConfigFile(absolute);
    const before = resolveConfig(absolute, raw);
    const next = structuredClone(raw) as ConfigFile;
    try {
      edit(next);
    } catch (error) {
      if (error instanceof EditError && error.code === 'invalid') throw new ConfigError(error.message, { cause: error });
      throw error;
    }
    checkConfigContents(absolute, next);  // Here, not only in the write: a dry run checks the same.
    const after = resolveConfig(absolute, next);
    checkEntries(after);
    checkVersionPorts(after.versions.values(), held, (key, message) => {
      throw new ConfigError(`${absolute}: ${key} ${message}`);
    });
    const changes = plan(before, after).map((step) => describe(step, before, after));
    if (changes.length === 0 && JSON.stringify(raw) !== JSON.stringify(next)) changes.push('no effect on the running workers or routing');
    if (!dryRun && JSON.stringify(raw) !== JSON.stringify(next)) await writeConfigFile(absolute, next);
    return { before, after, changes };
  });
}
