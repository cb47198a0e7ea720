import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { bin, get, makeConfig, request, startCluster, token } from './helpers/cluster.js';

const run = async (...args: string[]) =>
  (await promisify(execFile)(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 30_000 })).stdout;
const modeOf = (file: string) => statSync(file).mode & 0o777;

test('an edit by the CLI or the dashboard keeps the config file\'s mode (it holds the token)', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {}, v2: {} }, { weights: { v1: 90, v2: 10 } }));
  chmodSync(cluster.configFile, 0o640);
  await run('weights', 'v1=80', 'v2=20', '--config', cluster.configFile);
  t.is(JSON.parse(readFileSync(cluster.configFile, 'utf8')).routing.weights.v2, 20);
  t.is(modeOf(cluster.configFile).toString(8), '640', 'after a CLI edit');

  const reply = await request(`http://127.0.0.1:${cluster.dashboardPort}/api/weights`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ weights: { v2: 30 } }),
  });
  t.is(reply.status, 200, reply.text);
  t.is(JSON.parse(readFileSync(cluster.configFile, 'utf8')).routing.weights.v2, 30);
  t.is(modeOf(cluster.configFile).toString(8), '640', 'after a dashboard edit');

  chmodSync(cluster.configFile, 0o600);
  await run('set', 'routing.sticky.cookie', '"gc"', '--config', cluster.configFile);
  t.is(modeOf(cluster.configFile).toString(8), '600', 'after graycluster set');
});

test('graycluster init writes a config only its owner can read', async (t) => {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-test-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  await run('init', folder);
  t.is(modeOf(path.join(folder, 'graycluster.json')).toString(8), '600');
});

test('a config file that goes missing, becomes a folder or cannot be read is reported; the last good config keeps serving', async (t) => {
  // As root every file is readable: run the supervisor as an ordinary user so that chmod 000 means something.
  const user = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : undefined;
  const cluster = await startCluster(t, makeConfig({ v1: {} }), { user });
  const good = readFileSync(cluster.configFile);
  const reported = async (pattern: RegExp) => {
    await cluster.waitForOutput(new RegExp(`config\\s+rejected, the last good config keeps serving: .*${pattern.source}`));
    const status = await cluster.waitForStatus((current) => pattern.test(current.configError ?? ''));
    t.regex(status.configError!, pattern);
    t.is((await get(cluster.url('/who'))).status, 200, 'still serving');
    restore();
    await cluster.waitForStatus((current) => current.configError === null);
  };
  const restore = () => {
    rmSync(cluster.configFile, { recursive: true, force: true });
    writeFileSync(cluster.configFile, good);
    if (user) chownSync(cluster.configFile, user.uid, user.gid);
  };

  rmSync(cluster.configFile);
  await reported(/config file not found/);
  rmSync(cluster.configFile);
  mkdirSync(cluster.configFile);
  await reported(/EISDIR/);
  chmodSync(cluster.configFile, 0o000);
  await reported(/EACCES/);
});

test('configAppliedAt in the status moves when a change of the file is applied, not when a bad file is rejected', async (t) => {
  const config = makeConfig({ v1: {}, v2: {} }, { weights: { v1: 90, v2: 10 } });
  const cluster = await startCluster(t, config);
  const { configAppliedAt: atStart } = await cluster.status();

  writeFileSync(cluster.configFile, '{ "versions": ');
  const rejected = await cluster.waitForStatus((status) => status.configError !== null);
  t.is(rejected.configAppliedAt, atStart, 'a rejected file applied nothing');

  writeFileSync(cluster.configFile, JSON.stringify({ ...config, routing: { ...config.routing, weights: { v1: 80, v2: 20 } } }));
  const writtenAt = statSync(cluster.configFile).mtimeMs;
  const applied = await cluster.waitForStatus((status) => status.routing.weights?.v2 === 20 && status.configError === null);
  t.true(applied.configAppliedAt >= writtenAt, `applied at ${applied.configAppliedAt}, after the file was written at ${writtenAt}`);
});
