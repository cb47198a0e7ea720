// `graycluster split-clients --output --watch --reload`: nginx's split kept in step with the config file's weights.
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { bin, runCli, startProcess, waitFor } from './helpers/cluster.js';

function folderWithConfig(t: { teardown(fn: () => void): void }, weights: Record<string, number> | undefined) {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-split-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  writeFileSync(path.join(folder, 'app.js'), '');
  const config = path.join(folder, 'graycluster.json');
  const write = (next: Record<string, number> | undefined) => writeFileSync(config, JSON.stringify({
    versions: { v1: { entry: 'app.js' }, v2: { entry: 'app.js', port: 8002 } },
    routing: { default: 'v1', sticky: { key: 'header:x-user' }, ...(next ? { weights: next } : {}) },
  }, null, 2));
  write(weights);
  return { folder, config, write, output: path.join(folder, 'split.conf'), reloads: path.join(folder, 'reloads.txt') };
}

/** The pids of processes in process group `group` that still run (a killed one may linger unreaped, as a zombie). */
function liveInGroup(group: number): number[] {
  return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).flatMap((pid) => {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return [];  // Gone meanwhile.
    }
    // Fields after the command name (which may hold spaces): state, ppid, pgrp.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(pgrp) === group && state !== 'Z' ? [Number(pid)] : [];
  });
}

const lines = (file: string) => {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
};

test('--output writes the lines to a file; --watch rewrites it when the weights change and runs --reload after each write; a config it cannot split keeps the last file', async (t) => {
  const { config, write, output, reloads } = folderWithConfig(t, { v1: 90, v2: 10 });
  // --output a symlink (conf.d pointing into another folder): the file it names is written, keeping its mode.
  const linked = path.join(path.dirname(output), 'linked.conf');
  writeFileSync(linked, '', { mode: 0o640 });
  symlinkSync(linked, output);
  const once = await runCli(['split-clients', '--config', config, '--output', output]);
  t.is(once.code, 0, once.stderr);
  t.true(lstatSync(output).isSymbolicLink(), 'the link stays a link');
  t.is(statSync(linked).mode & 0o777, 0o640);
  t.regex(readFileSync(output, 'utf8'), /^split_clients "\$\{http_x_user\}" \$graycluster_pool_split \{ 90% graycluster_v1; \* graycluster_v2; \}$/m);
  t.regex(readFileSync(output, 'utf8'), /^upstream graycluster_v2 \{ server 127\.0\.0\.1:8002 max_fails=0; server 127\.0\.0\.1:8000 backup max_fails=0; keepalive 32; \}$/m);

  const watching = startProcess('split-clients --watch', process.execPath, [bin, 'split-clients', '--config', config, '--output', output, '--watch', '--reload', `echo reloaded >> '${reloads}'`]);
  t.teardown(() => watching.stop());
  await watching.waitForOutput(/watching/);
  t.notRegex(watching.output(), /wrote/, 'the file held this split already');
  t.deepEqual(lines(reloads), ['reloaded'], 'the watch reloads once as it starts, the file unchanged or not');

  write({ v1: 70, v2: 30 });
  await waitFor(() => lines(reloads).length === 2, { what: 'a reload after the new weights', describe: () => watching.output() });
  t.regex(readFileSync(output, 'utf8'), /\{ 70% graycluster_v1; \* graycluster_v2; \}/);
  await watching.waitForOutput(/wrote .*split\.conf \(.*\)\ngraycluster: --reload "echo reloaded >> .*" done\n/);

  write(undefined);
  await watching.waitForOutput(/routing\.weights is not set: .*; .*split\.conf keeps the last split/);
  t.regex(readFileSync(output, 'utf8'), /\{ 70% graycluster_v1; \* graycluster_v2; \}/);

  write({ v1: 50, v2: 50 });
  await waitFor(() => lines(reloads).length === 3, { what: 'a reload after the weights came back', describe: () => watching.output() });
  t.regex(readFileSync(output, 'utf8'), /\{ 50% graycluster_v1; \* graycluster_v2; \}/);
  t.is(await watching.stop(), 0, 'SIGTERM ends the watch with 0');
});

test('--watch and --reload need --output, which must be writable; a --reload that fails is reported (exit 1) and the file is still written', async (t) => {
  const { config, output } = folderWithConfig(t, { v1: 90, v2: 10 });
  for (const flag of [['--watch'], ['--reload', 'true']]) {
    const refused = await runCli(['split-clients', '--config', config, ...flag]);
    t.is(refused.code, 2);
    t.regex(refused.stderr, new RegExp(`${flag[0]} needs --output <file>`));
  }
  const nowhere = await runCli(['split-clients', '--config', config, '--output', path.join(output, 'no-such-folder', 'split.conf')]);
  t.is(nowhere.code, 1);
  t.regex(nowhere.stderr, /^graycluster: --output ".*no-such-folder.*": cannot write it \(ENOENT\)\n$/);
  const failing = await runCli(['split-clients', '--config', config, '--output', output, '--reload', 'echo no nginx here >&2; exit 3']);
  t.is(failing.code, 1);
  t.regex(failing.stderr, /--reload "echo no nginx here >&2; exit 3" exited with 3: no nginx here/);
  t.regex(readFileSync(output, 'utf8'), /90% graycluster_v1/);
});

test('a --reload that runs past 30 s is killed with everything it started, reported, and the file is still written', async (t) => {
  const { config, output, folder } = folderWithConfig(t, { v1: 90, v2: 10 });
  const groupFile = path.join(folder, 'group.txt');
  // The shell (the leader of the command's process group) writes its pid, then waits on a child of its own.
  const slow = await runCli(['split-clients', '--config', config, '--output', output, '--reload', `echo $$ > '${groupFile}'; sleep 100`], { timeoutMs: 45_000 });
  t.is(slow.code, 1);
  t.regex(slow.stderr, /--reload "echo .*; sleep 100" did not finish within 30 s/);
  t.regex(readFileSync(output, 'utf8'), /90% graycluster_v1/);
  const group = Number(readFileSync(groupFile, 'utf8'));
  t.deepEqual(liveInGroup(group), [], 'nothing of the command\'s group is left running, the sleep included');
});

test('--watch tries a failed --reload again until it succeeds; a reload is over when its shell exits, whatever it left running', async (t) => {
  const { config, output, folder, reloads } = folderWithConfig(t, { v1: 90, v2: 10 });
  const up = path.join(folder, 'nginx-up');
  const groupsFile = path.join(folder, 'groups.txt');
  t.teardown(() => {
    for (const group of lines(groupsFile)) {
      try {
        process.kill(-Number(group), 'SIGKILL');
      } catch {
        // That run's group is gone.
      }
    }
  });
  // Each run leaves a sleep behind that holds the command's stderr open, and fails until the file `up` names exists.
  const command = `echo $$ >> '${groupsFile}'; sleep 100 >&2 & if [ -f '${up}' ]; then echo reloaded >> '${reloads}'; else echo nginx is down >&2; exit 1; fi`;
  const watching = startProcess('split-clients --watch', process.execPath, [bin, 'split-clients', '--config', config, '--output', output, '--watch', '--reload', command]);
  t.teardown(() => watching.stop());
  await watching.waitForOutput(/watching/);
  t.regex(watching.output(), /--reload ".*" exited with 1: nginx is down/);
  t.regex(readFileSync(output, 'utf8'), /90% graycluster_v1/);
  writeFileSync(up, '');
  await waitFor(() => lines(reloads).length === 1, { what: 'the failed reload tried again', describe: () => watching.output() });
  t.true(lines(groupsFile).length >= 2);
  t.notRegex(watching.output(), /did not finish/);
  t.is(await watching.stop(), 0);
});
