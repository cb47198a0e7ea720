import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { currentProcess } from '../src/shared/process-alive.js';
import { makeConfig, startCluster, token } from './helpers/cluster.js';

const occurrences = (text: string, part: string) => text.split(part).length - 1;

function scratch(t: { teardown(fn: () => void): void }): string {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-test-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  return folder;
}

test('a generated token is printed once; a token the user set is not printed, only where it comes from', async (t) => {
  const temp = scratch(t);
  const { dashboard: _dashboard, ...rest } = makeConfig({ v1: {} });
  const generated = await startCluster(t, { ...rest, dashboard: { host: '127.0.0.1', port: 0 } }, { waitReady: false, env: { TMPDIR: temp } });
  const line = await generated.waitForOutput(/graycluster: dashboard and API at http:\/\/127\.0\.0\.1:\d+\/.*/);
  const state = JSON.parse(readFileSync(path.join(temp, readdirSync(temp).find((name) => name.endsWith('.json'))!), 'utf8'));
  t.is(occurrences(generated.output(), state.dashboard.token), 1, line);
  t.regex(line, /token generated for this run/);

  const fromFile = await startCluster(t, makeConfig({ v1: {} }));
  t.is(occurrences(fromFile.output(), token), 0);
  t.regex(fromFile.output(), /graycluster: dashboard and API at http:\/\/127\.0\.0\.1:\d+\/ \(token from dashboard\.token\)/);

  const fromEnv = await startCluster(t, makeConfig({ v1: {} }), { env: { GRAYCLUSTER_TOKEN: token } });
  t.is(occurrences(fromEnv.output(), token), 0);
  t.regex(fromEnv.output(), /graycluster: dashboard and API at http:\/\/127\.0\.0\.1:\d+\/ \(token from GRAYCLUSTER_TOKEN\)/);
});

test('after a kill -9 of the primary, the next start removes its run folder and state file, and nothing else', async (t) => {
  const temp = scratch(t);
  const killed = await startCluster(t, makeConfig({ v1: {} }), { env: { TMPDIR: temp } });
  const workers = (await killed.status()).workers.map((worker) => worker.pid!);
  t.teardown(() => workers.forEach((pid) => { try { process.kill(pid, 'SIGKILL'); } catch {} }));
  const leftovers = readdirSync(temp);
  t.is(leftovers.filter((name) => /^graycluster-run-/.test(name)).length, 1);
  t.is(leftovers.filter((name) => /^graycluster-[0-9a-f]{16}-\d+\.json$/.test(name)).length, 1);
  killed.process.kill('SIGKILL');
  await killed.stop();
  t.deepEqual(readdirSync(temp).sort(), leftovers.sort(), 'a kill -9 leaves them behind');

  // Not provably ours and stale: a test's folder, a run folder whose owner runs, one that names no owner.
  const keep = ['graycluster-test-decoy', 'graycluster-run-alive', 'graycluster-run-no-owner'];
  for (const name of keep) mkdirSync(path.join(temp, name));
  writeFileSync(path.join(temp, 'graycluster-run-alive', 'owner.json'), JSON.stringify(currentProcess()));

  const next = await startCluster(t, makeConfig({ v1: {} }), { env: { TMPDIR: temp } });
  for (const name of leftovers) {
    t.regex(next.output(), new RegExp(`removed .*${name}, left by a primary that is gone`));
    t.false(existsSync(path.join(temp, name)), name);
  }
  for (const name of keep) t.true(existsSync(path.join(temp, name)), name);
  t.is(readdirSync(temp).filter((name) => /^graycluster-run-/.test(name) && !keep.includes(name)).length, 1, 'its own run folder');
});
