import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second: the unit of utime and stime in /proc/<pid>/stat. */
export const ticksPerSecond = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Resident set size of a process in kB (VmRSS), or undefined once it is gone. */
export function rssKb(pid) {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
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

/** CPU seconds used by a set of processes between two calls of the function it returns. */
export function cpuMeter(pids) {
  const before = pids.map(cpuTicks);
  return () => pids.map((pid, index) => (cpuTicks(pid) - before[index]) / ticksPerSecond);
}

/** Samples a process's RSS every `intervalMs`; `stop()` returns the samples as { at (ms since start), kb }. */
export function sampleRss(pid, intervalMs = 200) {
  const started = performance.now();
  const samples = [];
  const take = () => {
    const kb = rssKb(pid);
    if (kb !== undefined) samples.push({ at: performance.now() - started, kb });
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    samples,
    /** The latest sample: what the process holds now. */
    latest: () => samples.at(-1)?.kb,
    stop() {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}
