import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';

/** Processes this run started and has not seen exit: what every cleanup path must end. */
const live = new Set();
/** Output kept per process, so a failure can show what it printed last. */
const outputCap = 64 * 1024;

/**
 * Starts a process as the leader of its own process group, so that stopping it also ends everything it forked
 * (workers, children), and so that a Ctrl-C in the terminal reaches only this script, which then cleans up.
 */
export function startProcess(name, command, args, { env = {}, ipc = false, cwd } = {}) {
  const child = spawn(command, args, {
    cwd,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe', ...(ipc ? ['ipc'] : [])],
  });
  const pid = child.pid;
  let output = '';
  const waiters = new Set();
  const onOutput = (chunk) => {
    output = (output + chunk.toString()).slice(-outputCap);
    for (const check of waiters) check();
  };
  child.stdout.on('data', onOutput);
  child.stderr.on('data', onOutput);
  const entry = { name, pid };
  live.add(entry);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    live.delete(entry);
    for (const check of waiters) check();
    resolve({ code, signal });
  }));
  const spawnFailed = new Promise((_, reject) => child.once('error', reject));
  spawnFailed.catch(() => {});
  const gone = () => child.exitCode !== null || child.signalCode !== null;

  /** Resolves with the first match of `pattern` in the output; rejects on exit or after `timeoutMs`. */
  const waitForOutput = (pattern, timeoutMs = 20_000) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`${name}: no output matching ${pattern} within ${timeoutMs} ms:\n${output}`)), timeoutMs);
    const finish = (error, match) => {
      clearTimeout(timer);
      waiters.delete(check);
      if (error) reject(error);
      else resolve(match);
    };
    const check = () => {
      const match = pattern.exec(output);
      if (match) finish(null, match);
      else if (gone()) finish(new Error(`${name} exited before printing ${pattern}:\n${output}`));
    };
    waiters.add(check);
    check();
  });

  /** Resolves with the first IPC message `accept` returns true for. */
  const waitForMessage = (accept, timeoutMs = 20_000) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`${name}: no expected message within ${timeoutMs} ms:\n${output}`)), timeoutMs);
    const onMessage = (message) => {
      if (accept(message)) finish(null, message);
    };
    const onExit = () => finish(new Error(`${name} exited before sending the expected message:\n${output}`));
    const finish = (error, message) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve(message);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });

  let stopping;
  /** SIGTERM to the leader (a graceful stop, which writes --cpu-prof profiles), then SIGKILL to the whole group. */
  const stop = (graceMs = 12_000) => stopping ??= (async () => {
    if (!gone()) {
      signal(pid, 'SIGTERM');
      const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    }
    signalGroup(pid, 'SIGKILL');  // Whatever the leader forked and left behind.
  })();

  return { name, pid, child, exited, spawnFailed, output: () => output, waitForOutput, waitForMessage, stop };
}

function signal(pid, name) {
  try {
    process.kill(pid, name);
  } catch {}  // Already gone.
}

function signalGroup(pid, name) {
  try {
    process.kill(-pid, name);
  } catch {}  // The group is empty.
}

/** Temp folders to remove however the run ends (configs written for a target). */
const folders = new Set();

/** Removes `folder` at the end of the run unless `release()` (which removes it now) is called first. */
export function temporaryFolder(folder) {
  folders.add(folder);
  return () => {
    folders.delete(folder);
    rmSync(folder, { recursive: true, force: true });
  };
}

/** Kills every process group this run started, now. Synchronous, so it can run from an 'exit' handler. */
export function killAll() {
  for (const { pid } of live) signalGroup(pid, 'SIGKILL');
  live.clear();
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  folders.clear();
}

/** Ends every process this run started on any way out: normal exit, uncaught error, Ctrl-C or SIGTERM. */
export function installCleanup() {
  process.once('exit', killAll);
  for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(name, () => {
      process.stderr.write(`\nbench: ${name}: stopping every process it started\n`);
      killAll();
      process.exit(128 + ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1 })[name]);
    });
  }
}
