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
  return removeLeftovers({
    matches: (name) => name.startsWith(prefix),
    isDirectory: true,
    ownerOf: (folder) => {
      const owner = JSON.parse(readFileSync(path.join(folder, ownerFile), 'utf8')) as Partial<ProcessIdentity>;
      return { pid: Number(owner.pid), start: owner.start ?? null };
    },
  });
}

/**
 * Removes what primaries that are gone left in the temp folder: entries whose name `matches`, of the kind
 * given, owned by this user, whose recorded owner (`ownerOf`, which may throw: then it is not provably
 * stale) is not running. Returns what it removed.
 */
export function removeLeftovers({ matches, isDirectory, ownerOf }: {
  matches: (name: string) => boolean;
  isDirectory: boolean;
  ownerOf: (entry: string) => ProcessIdentity;
}): string[] {
  const removed: string[] = [];
  for (const name of safeList(os.tmpdir())) {
    if (!matches(name)) continue;
    const entry = path.join(os.tmpdir(), name);
    try {
      const stat = lstatSync(entry);
      if ((isDirectory ? !stat.isDirectory() : !stat.isFile()) || stat.uid !== process.getuid?.()) continue;
      if (identityAlive(ownerOf(entry))) continue;
    } catch {
      continue;  // No owner recorded (yet, or not one of ours): not provably stale.
    }
    rmSync(entry, { recursive: isDirectory, force: true });
    removed.push(entry);
  }
  return removed;
}

function safeList(folder: string): string[] {
  try {
    return readdirSync(folder);
  } catch {
    return [];
  }
}
