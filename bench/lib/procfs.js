// CPU time from /proc, for the bench's measurements (rss: the toolkit's sampleRss, in bench/lib/toolkit.js).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second: the unit of utime and stime in /proc/<pid>/stat. */
export const ticksPerSecond = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** The pids of a process's children (from /proc/<pid>/task/<tid>/children), or none once it is gone. */
export function childPids(pid) {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((thread) => readFileSync(`/proc/${pid}/task/${thread}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number));
  } catch {
    return [];
  }
}

/** CPU time a process has used (user + system) in clock ticks, or 0 once it is gone. */
export function cpuTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis start at field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);  // Fields 14 (utime) and 15 (stime).
  } catch {
    return 0;
  }
}

/** CPU time the whole machine has spent in user and system mode, in clock ticks (the first line of /proc/stat). */
export function machineBusyTicks() {
  const [, user, nice, system] = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).map(Number);
  return user + nice + system;
}

/**
 * CPU seconds used by other processes than `pids` (and their threads) between two calls of the function it
 * returns: the machine's busy time minus theirs. Anything well above zero means someone else's work shared the
 * cores with the measurement.
 */
export function otherCpuMeter(pids) {
  const machineBefore = machineBusyTicks();
  const oursBefore = pids.reduce((sum, pid) => sum + cpuTicks(pid), 0);
  return () => {
    const ours = pids.reduce((sum, pid) => sum + cpuTicks(pid), 0) - oursBefore;
    return Math.max(0, machineBusyTicks() - machineBefore - ours) / ticksPerSecond;
  };
}

/** How long waitForQuiet waits at most unless told otherwise. */
export const defaultQuietWaitMs = 8000;

/**
 * Waits (at most `maxWaitMs`) for a `windowMs` stretch in which processes other than `pids` use less than
 * `thresholdCores` of CPU, so that a measurement does not start while someone else's build or test runs.
 * Resolves with the milliseconds waited, and whether it got quiet.
 */
export async function waitForQuiet(pids, { thresholdCores = 0.1, windowMs = 500, maxWaitMs = defaultQuietWaitMs } = {}) {
  const started = performance.now();
  for (;;) {
    const others = otherCpuMeter(pids);
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const quiet = others() / (windowMs / 1000) < thresholdCores;
    const waited = performance.now() - started;
    if (quiet || waited >= maxWaitMs) return { waitedMs: waited - windowMs, quiet };
  }
}

/** CPU seconds used by a set of processes between two calls of the function it returns. */
export function cpuMeter(pids) {
  const before = pids.map(cpuTicks);
  return () => pids.map((pid, index) => (cpuTicks(pid) - before[index]) / ticksPerSecond);
}
