import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { EditError, type Edit } from './edits.js';
import { RolloutError } from '../rollout/edits.js';
import { processAlive } from '../shared/process-alive.js';
import { ConfigError, describeLoadError, openStore, readStore, resolveConfig } from './load.js';
import { describe, plan } from './plan.js';
import type { ConfigFile, ResolvedConfig } from './types.js';

const lockWaitMs = 10_000;
/** A lock older than this is left over from a process that died while holding it. */
const staleLockMs = 30_000;

/** Every version's entry must exist before a change is applied (at start a missing one is only an error event). */
export function checkEntries(config: ResolvedConfig): void {
  for (const version of config.versions.values()) {
    if (!existsSync(version.entry)) throw new ConfigError(`${config.file}: versions.${version.name}.entry: file not found: ${version.entry}`);
  }
}

/**
 * Runs `work` holding `<file>.lock`, so that two writers (two CLI calls, or the CLI and the dashboard) never
 * read the same version of the file and lose one another's change.
 */
export async function withFileLock<T>(file: string, work: () => T | Promise<T>): Promise<T> {
  const lock = `${file}.lock`;
  const deadline = Date.now() + lockWaitMs;
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      let holder = NaN;
      let age = 0;
      try {
        holder = Number(readFileSync(lock, 'utf8'));
        age = Date.now() - statSync(lock).mtimeMs;
      } catch {
        continue;  // Released between our attempt and our look.
      }
      if (age > staleLockMs || (Number.isInteger(holder) && holder > 0 && !processAlive(holder))) {
        rmSync(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new ConfigError(`${file} is locked by process ${holder} (${lock}); try again`);
      await sleep(20);
    }
  }
  try {
    return await work();
  } finally {
    rmSync(lock, { force: true });
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
 * invalid or changes nothing. With `dryRun`, only says what would change. An edit's EditError, or its RolloutError
 * of code 'invalid', becomes a ConfigError (the CLI's exit 1, the API's 400); a RolloutError 'conflict' passes.
 */
export function updateConfigFile(file: string, edit: Edit, { dryRun = false } = {}): Promise<UpdateResult> {
  return withFileLock(file, () => {
    const store = openStore(file);
    const raw = readStore(store);
    const before = resolveConfig(store.path, raw);
    const next = structuredClone(raw) as ConfigFile;
    try {
      edit(next);
    } catch (error) {
      if (error instanceof EditError) throw new ConfigError(error.message);
      // A rollout request its state refuses is the asker's mistake; a 'conflict' is the controller's to skip.
      if (error instanceof RolloutError && error.code === 'invalid') throw new ConfigError(error.message, { cause: error });
      throw error;
    }
    const after = resolveConfig(store.path, next);
    checkEntries(after);
    const changes = plan(before, after).map((step) => describe(step, before, after));
    if (changes.length === 0 && JSON.stringify(raw) !== JSON.stringify(next)) changes.push('no effect on the running workers or routing');
    if (!dryRun && JSON.stringify(raw) !== JSON.stringify(next)) {
      try {
        store.store = next;  // conf validates against the schema, then writes to a temp file and renames it.
      } catch (error) {
        throw new ConfigError(describeLoadError(store.path, error));
      }
    }
    return { before, after, changes };
  });
}
