import { spawn } from 'node:child_process';
import test from 'ava';
import { clockTicksPerSecond, cpuPercent, cpuSeconds, parseCpuTicks } from '../src/shared/procfs.js';
import { waitFor } from './helpers/wait.js';

// Fields 3.. of a real /proc/<pid>/stat line; utime (field 14) is 250 and stime (field 15) is 50.
const tail = 'S 1 1234 1234 0 -1 4194560 9000 0 0 0 250 50 0 0 20 0 11 0 5000 1000000000 12000 18446744073709551615';

test('CPU ticks are utime + stime, counted after the last parenthesis of the command name', (t) => {
  t.is(parseCpuTicks(`1234 (node) ${tail}`), 300);
  // A process may name itself anything: spaces and parentheses in the name must not shift the fields.
  t.is(parseCpuTicks(`1234 (my app (v2) 1 2 3) ${tail}`), 300);
  t.is(parseCpuTicks('1234 (node) S 1'), undefined);
  t.is(parseCpuTicks('not a stat line'), undefined);
  t.is(parseCpuTicks(`1234 (node) ${tail.replace(' 250 ', ' x ')}`), undefined);
});

test('CPU percent is the CPU time used between two readings over the time between them, per core', (t) => {
  t.is(cpuPercent({ seconds: 10, atMs: 1000 }, { seconds: 10.25, atMs: 1500 }), 50);
  t.is(cpuPercent({ seconds: 10, atMs: 1000 }, { seconds: 11.5, atMs: 2000 }), 150);  // Several threads busy.
  t.is(cpuPercent({ seconds: 10, atMs: 1000 }, { seconds: 10, atMs: 2000 }), 0);
  // No time passed, or a counter that went back (another process): no answer rather than a wrong one.
  t.is(cpuPercent({ seconds: 10, atMs: 1000 }, { seconds: 10.5, atMs: 1000 }), undefined);
  t.is(cpuPercent({ seconds: 10, atMs: 1000 }, { seconds: 2, atMs: 2000 }), undefined);
});

test('the clock tick rate comes from getconf, and a busy process\'s CPU time grows by about the time it burns', async (t) => {
  if (process.platform !== 'linux') return t.pass('no /proc here');
  t.true(Number.isInteger(clockTicksPerSecond()) && clockTicksPerSecond() > 0);
  const child = spawn(process.execPath, ['-e', 'const end = Date.now() + 60_000; while (Date.now() < end);'], { stdio: 'ignore' });
  t.teardown(() => child.kill('SIGKILL'));
  const start = cpuSeconds(child.pid!);
  t.not(start, undefined);
  const burnt = await waitFor(() => {
    const now = cpuSeconds(child.pid!);
    return now !== undefined && now - start! >= 0.3 ? now : undefined;
  }, { timeoutMs: 20_000, intervalMs: 50, what: 'the busy child to use 0.3 s of CPU' });
  t.true(burnt > start!);
  t.is(cpuSeconds(2 ** 22 + 1), undefined);
});
