// Child processes for tests and the bench: each one leads its own process group, so stopping it also ends
// whatever it forked (graycluster's workers), and nothing is left running however the run ends.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, rmSync } from 'node:fs';
import path from 'node:path';
import { Deadline } from '../../src/shared/stalls.js';

/** What a process printed (stdout and stderr) is kept up to this much, the latest; enough for any test. */
const outputCap = 1024 * 1024;

/** Process groups started and not yet seen exit: what every cleanup path must end. */
const live = new Set<number>();
/** Temp folders to remove however the run ends. */
const folders = new Set<string>();

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartedProcess {
  name: string;
  pid: number;
  child: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<ProcessExit>;
  /** Rejects if the process could not be started at all. */
  spawnFailed: Promise<never>;
  /** Everything it printed so far (the last MiB). */
  output(): string;
  /** What it printed on its stdout alone (the last MiB). */
  stdout(): string;
  /** Resolves with the first match of `pattern` in the output; rejects on exit without one, or after `timeoutMs`. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** Resolves with the first IPC message `accept` returns true for (start it with `ipc: true`). */
  waitForMessage(accept: (message: any) => boolean, timeoutMs?: number): Promise<any>;
  /** SIGTERM to the process (a graceful stop), SIGKILL to its group after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

export interface StartOptions {
  /** Added to this process's environment; an undefined value removes the variable. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** An IPC channel as the child's fd 3 (for waitForMessage). */
  ipc?: boolean;
  /** Run it as this user (the tests run as root: a user for whom file modes mean something). */
  user?: { uid: number; gid: number };
}

let exitHookInstalled = false;
let cleanupInstalled = false;

/** Starts `command` as the leader of its own process group. */
export function startProcess(name: string, command: string, args: string[], { env = {}, ipc = false, cwd, user }: StartOptions = {}): StartedProcess {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', killAll);
    // ava ends a test file that runs past its timeout with SIGTERM (Ctrl-C too), which skips 'exit' handlers: the
    // process groups started here would be left running.
    installCleanup();
  }
  const child = spawn(command, args, {
    cwd,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe', ...(ipc ? ['ipc' as const] : [])],
    ...user,
  });
  const pid = child.pid ?? -1;
  let output = '';
  let stdout = '';
  const waiters = new Set<() => void>();
  const onOutput = (chunk: string) => {
    output = (output + chunk).slice(-outputCap);
    for (const check of waiters) check();
  };
  // Decoded per stream, so a character split between two reads is not garbled.
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    stdout = (stdout + chunk).slice(-outputCap);
    onOutput(chunk);
  });
  child.stderr!.on('data', onOutput);
  if (pid > 0) live.add(pid);
  // 'exit' can come before the last of its output has been read; 'close' comes once its pipes are closed too. It
  // counts as exited once both came, or 2 s after 'exit' if something it left behind holds its pipes open.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let finished = false;
  const exited = new Promise<ProcessExit>((resolve) => child.once('exit', (code, signal) => {
    live.delete(pid);
    let timer: NodeJS.Timeout | undefined;
    void Promise.race([closed, new Promise((late) => { timer = setTimeout(late, 2000); })]).then(() => {
      clearTimeout(timer);
      finished = true;
      for (const check of waiters) check();
      resolve({ code, signal });
    });
  }));
  const spawnFailed = new Promise<never>((_, reject) => child.once('error', reject));
  spawnFailed.catch(() => {});
  const gone = () => child.exitCode !== null || child.signalCode !== null;

  const waitForOutput = (pattern: RegExp, timeoutMs = 20_000) => new Promise<RegExpExecArray>((resolve, reject) => {
    const deadline = new Deadline(timeoutMs, () => finish(new Error(`${name}: no output matching ${pattern} within ${timeoutMs} ms; output:\n${output}`)));
    const finish = (error: Error | null, match?: RegExpExecArray) => {
      deadline.clear();
      waiters.delete(check);
      if (error) reject(error);
      else resolve(match!);
    };
    const check = () => {
      const match = pattern.exec(output);
      if (match) finish(null, match);
      else if (finished) finish(new Error(`${name} exited before printing ${pattern}; output:\n${output}`));
    };
    waiters.add(check);
    check();
  });

  const waitForMessage = (accept: (message: any) => boolean, timeoutMs = 20_000) => new Promise<any>((resolve, reject) => {
    const deadline = new Deadline(timeoutMs, () => finish(new Error(`${name}: no expected message within ${timeoutMs} ms; output:\n${output}`)));
    const onMessage = (message: unknown) => {
      if (accept(message)) finish(null, message);
    };
    const onExit = () => finish(new Error(`${name} exited before sending the expected message; output:\n${output}`));
    const finish = (error: Error | null, message?: unknown) => {
      deadline.clear();
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve(message);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });

  let stopping: Promise<number | null> | undefined;
  const stop = (graceMs = 15_000) => stopping ??= (async () => {
    if (!gone()) {
      signal(pid, 'SIGTERM');
      const deadline = new Deadline(graceMs, () => signal(-pid, 'SIGKILL'));
      await exited;
      deadline.clear();
    }
    signal(-pid, 'SIGKILL');  // Whatever the leader forked and left behind.
    return (await exited).code;
  })();

  return { name, pid, child, exited, spawnFailed, output: () => output, stdout: () => stdout, waitForOutput, waitForMessage, stop };
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {}  // Already gone (or, for a group, empty).
}

/**
 * Where the executable `name` is: the file named by `$envVariable` when that is set (then nothing else is tried),
 * else the first `name` on $PATH or in `extraFolders` (such as /usr/sbin, which a normal user's PATH lacks),
 * else null.
 */
export function findExecutable(name: string, { envVariable, extraFolders = [] }: { envVariable?: string; extraFolders?: string[] } = {}): string | null {
  const chosen = envVariable ? process.env[envVariable] : undefined;
  const folders = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...extraFolders];
  for (const candidate of chosen ? [chosen] : folders.map((folder) => path.join(folder, name))) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}  // Not there, or not executable: the next one.
  }
  return null;
}

/** Removes `folder` at the end of the run unless the function it returns (which removes it now) is called first. */
export function temporaryFolder(folder: string): () => void {
  folders.add(folder);
  return () => {
    folders.delete(folder);
    rmSync(folder, { recursive: true, force: true });
  };
}

/** Kills every process group started here, now, and removes the temp folders. Synchronous, for an 'exit' handler. */
export function killAll(): void {
  for (const pid of live) signal(-pid, 'SIGKILL');
  live.clear();
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  folders.clear();
}

/** For a script (the bench, a test file): ends every process it started on Ctrl-C, SIGTERM or SIGHUP too, then exits. */
export function installCleanup(log: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): void {
  if (cleanupInstalled) return;  // The first caller's log wins (the bench installs its own before any process starts).
  cleanupInstalled = true;
  const signals = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;
  for (const [name, number] of Object.entries(signals)) {
    process.once(name, () => {
      log(`${name}: stopping every process started`);
      killAll();
      // Ended by the signal, as without this handler (ava reports a process.exit() in a test file as an error of its
      // own); should another handler keep the process up, it exits anyway.
      setTimeout(() => process.exit(128 + number), 1000).unref();
      process.kill(process.pid, name);
    });
  }
}
