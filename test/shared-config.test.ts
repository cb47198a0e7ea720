// Several graycluster instances on one host running one config file (each with its own ports from the flags), as a
// fleet behind a load balancer does: each keeps its own run-state file, so the CLI finds every one of them.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import type { Status } from '../src/primary/status.js';
import { makeConfig, runCli, startCluster, temporaryFolder } from './helpers/cluster.js';

const ownPorts = ['--port', '0', '--dashboard-port', '0'];

/** A config file of its own in a temp folder, removed at the end of the test. No token: each instance makes its own. */
function sharedConfigFile(t: ExecutionContext): string {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-shared-'));
  t.teardown(temporaryFolder(folder));
  const file = path.join(folder, 'graycluster.json');
  writeFileSync(file, JSON.stringify({ ...makeConfig({ v1: {} }), dashboard: { host: '127.0.0.1', port: 0 } }, null, 2));
  return file;
}

test('two instances of one config file: `status` names both, --url picks one with its own token, and stopping one leaves the other found', async (t) => {
  const file = sharedConfigFile(t);
  const [first, second] = await Promise.all([startCluster(t, file, { name: 'first', args: ownPorts }), startCluster(t, file, { name: 'second', args: ownPorts })]);

  const ambiguous = await runCli(['status', '--config', file]);
  t.is(ambiguous.code, 1, ambiguous.stderr);
  t.true(ambiguous.stderr.includes(`2 supervisors are running with ${file}: name one with --url`), ambiguous.stderr);
  for (const instance of [first, second]) {
    t.true(ambiguous.stderr.includes(`--url http://127.0.0.1:${instance.dashboardPort}   (pid ${instance.state.pid})`), ambiguous.stderr);
  }

  const picked = await runCli(['status', '--json', '--config', file, '--url', `http://127.0.0.1:${second.dashboardPort}`]);
  t.is(picked.code, 0, picked.stderr);
  t.is((JSON.parse(picked.stdout) as Status).pid, second.state.pid, 'the token of the one at that address came from its run-state file');

  await second.stop();
  const left = await runCli(['status', '--json', '--config', file]);
  t.is(left.code, 0, left.stderr);
  t.is((JSON.parse(left.stdout) as Status).pid, first.state.pid, 'the instance still running is found after the other stopped');
});

test('an edit of a shared config file says every supervisor running with it applies it', async (t) => {
  const file = sharedConfigFile(t);
  const instances = await Promise.all(['first', 'second'].map((name) => startCluster(t, file, { name, args: ownPorts })));
  const pids = instances.map((instance) => instance.state.pid).sort((a, b) => a - b);
  const edit = await runCli(['scale', 'v1', '2', '--config', file]);
  t.is(edit.code, 0, edit.stderr);
  t.true(edit.stdout.includes(`wrote ${file}; the 2 supervisors running with it (pids ${pids.join(', ')}) apply it within a second`), edit.stdout);
  // Both apply it: each runs two ready workers of v1 (waitForStatus fails the test otherwise).
  await Promise.all(instances.map((instance) => instance.waitForStatus((status) => status.versions.v1?.ready === 2)));
});

test('--url that is not an address is refused naming the flag', async (t) => {
  const result = await runCli(['status', '--url', 'not a url']);
  t.is(result.code, 1);
  t.is(result.stderr, 'graycluster: --url must be a dashboard address such as http://127.0.0.1:9000, not "not a url"\n');
});

test('a CLI call or an edit naming another config file than the one a supervisor runs with names that one', async (t) => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'graycluster-runstate-'));
  t.teardown(temporaryFolder(tmp));
  const file = sharedConfigFile(t);
  const running = await startCluster(t, file, { name: 'running', args: ownPorts, env: { TMPDIR: tmp } });
  const other = path.join(path.dirname(file), 'other.json');
  const missed = await runCli(['status', '--config', other], { env: { TMPDIR: tmp } });
  t.is(missed.code, 1, missed.stderr);
  t.true(missed.stderr.includes(`no supervisor is running with ${other}; one runs with another config file: name it with --config`), missed.stderr);
  t.true(missed.stderr.includes(`--config ${file}   (pid ${running.state.pid})`), missed.stderr);
  const edit = await runCli(['weights', 'v1=100', '--config', other], { env: { TMPDIR: tmp } });
  t.is(edit.code, 1, edit.stderr);
  t.true(edit.stderr.includes(`config file not found: ${other}; one runs with another config file: name it with --config\n  --config ${file}   (pid ${running.state.pid})`), edit.stderr);

  await running.stop();
  const none = await runCli(['status', '--config', other], { env: { TMPDIR: tmp } });
  t.true(none.stderr.includes(`no supervisor is running with ${other} (start one with: graycluster start --config ${other})`), none.stderr);
});
