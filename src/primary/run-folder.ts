import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { currentProcess, identityAlive, type ProcessIdentity } from '../shared/process-alive.js';

/** Run folders are named so nothing else in the temp folder can be taken for one. */
const prefix = 'graycluster-run-';
/** Inside a run folder: the primary that owns it, so a later start can tell a dead one's leftovers. */
const ownerFile = 'owner.json';

/** Creates this primary's run folder (workers' forward sockets), owner-only, recording who owns it. */
export function createRunFolder(): string {
  const folder = mkdtempSync(path.join(os.tmpdir(), prefix));
  writeFileSync(path.join(folder, ownerFile), JSON.stringify(currentProcess()), { mode: 0o600 });
  return folder;
}

/**
 * Removes the run folders of primaries that are gone (killed with SIGKILL, say): only folders with our
 * prefix, owned by this user, that name their owner, and whose owner is not running. Returns what it removed.
 */
export function removeStaleRunFolders(): string[] {
  const removed: string[] = [];
  for (const name of safeList(os.tmpdir())) {
    if (!name.startsWith(prefix)) continue;
    const folder = path.join(os.tmpdir(), name);
    try {
      const stat = lstatSync(folder);
      if (!stat.isDirectory() || stat.uid !== process.getuid?.()) continue;
      const owner = JSON.parse(readFileSync(path.join(folder, ownerFile), 'utf8')) as ProcessIdentity;
      if (identityAlive({ pid: Number(owner.pid), start: owner.start ?? null })) continue;
    } catch {
      continue;  // No owner recorded (yet, or not one of ours): not provably stale.
    }
    rmSync(folder, { recursive: true, force: true });
    removed.push(folder);
  }
  return removed;
}

export function safeList(folder: string): string[] {
  try {
    return readdirSync(folder);
  } catch {
    return [];
  }
}
