import { readFileSync } from 'node:fs';

/** True when a process with this pid exists (signal 0 checks without sending anything). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';  // It exists, but is not ours to signal.
  }
}

/**
 * When the process with this pid started (clock ticks since boot, field 22 of /proc/<pid>/stat), or null when
 * it does not exist or the system has no /proc. With the pid, it names one process: a pid is reused, this pair is not.
 */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** Who owns something (a lock, a run folder): a pid, and its start time where the system tells it. */
export interface ProcessIdentity {
  pid: number;
  start: string | null;
}

export function currentProcess(): ProcessIdentity {
  return { pid: process.pid, start: processStartTime(process.pid) };
}

/** True while the process named is the one running: same pid and, where known, same start time. */
export function identityAlive(owner: ProcessIdentity): boolean {
  if (!Number.isInteger(owner.pid) || owner.pid <= 0) return false;
  if (owner.start !== null && processStartTime(process.pid) !== null) return processStartTime(owner.pid) === owner.start;
  return processAlive(owner.pid);
}
