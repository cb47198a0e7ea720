import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** A process's resident memory in bytes, read from /proc (Linux); undefined where that is not available. */
export function residentBytes(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * This process's memory as `process.memoryUsage()` reports it, or undefined when that fails: it reads
 * /proc/self/statm through a new file descriptor, so it throws EMFILE once the process has used up its descriptors,
 * which an app may well do; a reading is never worth a crash.
 */
export function ownMemoryUsage(): NodeJS.MemoryUsage | undefined {
  try {
    return process.memoryUsage();
  } catch {
    return undefined;
  }
}

/** Linux's USER_HZ: the unit of /proc's CPU times, 100 on every architecture Node runs on. */
const fallbackClockTicks = 100;
let clockTicks: number | undefined;

/** Clock ticks per second (`getconf CLK_TCK`), asked once; 100 when getconf is missing or answers nonsense. */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      const answer = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'latin1', timeout: 2000, stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      clockTicks = Number.isInteger(answer) && answer > 0 ? answer : fallbackClockTicks;
    } catch {
      clockTicks = fallbackClockTicks;
    }
  }
  return clockTicks;
}

/**
 * utime + stime, in clock ticks, from the text of /proc/<pid>/stat; undefined if it does not parse. The command
 * name (field 2) is in parentheses and may hold spaces or parentheses itself, so fields are counted after the last `)`.
 */
export function parseCpuTicks(stat: string): number | undefined {
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  // After the name: state is field 3, so utime (field 14) and stime (field 15) are at 11 and 12.
  const [utime, stime] = stat.slice(close + 2).split(' ').slice(11, 13).map((field) => (/^\d+$/.test(field) ? Number(field) : NaN));
  return utime !== undefined && stime !== undefined && Number.isSafeInteger(utime + stime) ? utime + stime : undefined;
}

/** CPU time a process has used, in seconds, read from /proc (Linux); undefined where that is not available. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const ticks = parseCpuTicks(readFileSync(`/proc/${pid}/stat`, 'latin1'));
    return ticks === undefined ? undefined : ticks / clockTicksPerSecond();
  } catch {
    return undefined;
  }
}

/** One reading of a process's CPU time, at a monotonic time in ms (performance.now()). */
export interface CpuReading {
  seconds: number;
  atMs: number;
}

/** Percent of one core used between two readings of the same process (may pass 100 with several threads). */
export function cpuPercent(before: CpuReading, after: CpuReading): number | undefined {
  const elapsedMs = after.atMs - before.atMs;
  if (elapsedMs <= 0 || after.seconds < before.seconds) return undefined;
  return ((after.seconds - before.seconds) * 1000 / elapsedMs) * 100;
}
