import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { withFileLock } from '../src/config/update.js';
import { processStartTime } from '../src/shared/process-alive.js';
import { fixture, root } from './helpers/cluster.js';

function folder(t: { teardown(fn: () => void): void }): string {
  const created = mkdtempSync(path.join(os.tmpdir(), 'graycluster-test-'));
  t.teardown(() => rmSync(created, { recursive: true, force: true }));
  return created;
}

test('a lock naming a live pid with another start time (the pid was reused) is taken over at once', async (t) => {
  const file = path.join(folder(t), 'graycluster.json');
  t.truthy(processStartTime(process.pid), 'this test needs /proc');
  // process.ppid is alive, but it is not the process that wrote this lock.
  writeFileSync(`${file}.lock`, JSON.stringify({ pid: process.ppid, start: '1', nonce: 'left-over' }));
  t.is(await withFileLock(file, () => 'held'), 'held');
  t.false(existsSync(`${file}.lock`), 'released');
});

test('a lock held by a live process is waited for', async (t) => {
  const file = path.join(folder(t), 'graycluster.json');
  writeFileSync(`${file}.lock`, JSON.stringify({ pid: process.pid, start: processStartTime(process.pid), nonce: 'ours' }));
  let released = false;
  const waiting = withFileLock(file, () => released);
  setTimeout(() => {
    released = true;
    rmSync(`${file}.lock`);
  }, 100);
  t.true(await waiting, 'ran only once the holder let go');
});

test('writers racing over locks left by dead processes never hold the lock together', async (t) => {
  const scratch = folder(t);
  const file = path.join(scratch, 'graycluster.json');
  const log = path.join(scratch, 'holders.log');
  writeFileSync(log, '');
  const updateModule = path.join(root, 'dist/src/config/update.js');
  const waves = 5;
  const contenders = 5;
  const rounds = 6;
  for (let wave = 0; wave < waves; wave++) {
    // Each contender dies holding the lock at a different round, so the others race over each stale lock.
    await Promise.all(Array.from({ length: contenders }, (_, index) => new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, [fixture('lock-contender.mjs'), updateModule, file, log, String(rounds), String(2 + index)], { stdio: 'inherit' });
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`contender exited ${code}`))));
    })));
  }
  const lines = readFileSync(log, 'utf8').trim().split('\n');
  let holder: string | null = null;
  let died = 0;
  for (const [index, line] of lines.entries()) {
    const [event, pid] = line.split(' ');
    if (event === 'enter') {
      if (holder !== null) return t.fail(`line ${index + 1}: ${pid} entered while ${holder} held the lock`);
      holder = pid!;
    } else {
      if (holder !== pid) return t.fail(`line ${index + 1}: ${pid} left a lock it did not hold`);
      holder = null;
      if (event === 'died') died++;
    }
  }
  t.is(died, waves * contenders, 'every contender died once holding the lock');
  t.is(lines.filter((line) => line.startsWith('enter')).length, waves * (2 + 3 + 4 + 5 + 6), 'each contender entered up to its death');
  t.deepEqual(readdirSync(scratch).filter((name) => name.includes('.takeover-')), [], 'no takeover file is left behind');
});
