import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { bin, fixture, get, makeConfig, request, startCluster, token, type Cluster } from './helpers/cluster.js';
import { steadyLoad, type LoadReport } from './helpers/load.js';

// Asynchronous on purpose: a synchronous call would freeze the load's clients in this process, and a client
// frozen past the drain's idle grace reuses a connection the server has already closed.
const cli = async (cluster: Cluster, ...args: string[]) =>
  (await promisify(execFile)(process.execPath, [bin, ...args, '--config', cluster.configFile], { encoding: 'utf8', timeout: 60_000 })).stdout;

const canary = () => makeConfig(
  { v1: { workers: 2 }, v2: {} },
  { rules: [{ query: 'version' }], weights: { v1: 100, v2: 0 }, sticky: { key: 'cookie:uid' } },
);

const readConfig = (cluster: Cluster) => JSON.parse(readFileSync(cluster.configFile, 'utf8'));

/** Answers enough to see who serves now: several per client, on every connection the load keeps. */
const answersToJudge = 40;

/** Lets the load run on the new config for `answersToJudge` answers, then stops it and checks nothing failed. */
async function settle(t: { deepEqual: Function; is: Function }, load: ReturnType<typeof steadyLoad>): Promise<LoadReport> {
  load.mark();
  await load.answered(answersToJudge);
  const report = await load.stop();
  t.is(report.failed, 0, `failed requests: ${report.errors.join('; ')}`);
  t.deepEqual(report.unexpected, {}, `unexpected answers: ${report.errors.join('; ')}`);
  return report;
}

test.serial('a weight change moves new requests with no failed request and no restart', async (t) => {
  const cluster = await startCluster(t, canary());
  let user = 0;
  const load = steadyLoad(() => cluster.url('/who'), { clients: 6 });
  const withUsers = steadyLoad(() => cluster.url('/who'), { clients: 2, headers: () => ({ cookie: `uid=user-${user++}` }) });
  await Promise.all([load.answered(answersToJudge), withUsers.answered(answersToJudge)]);
  const usersBefore = user;
  const pids = (await cluster.status()).workers.map((worker) => worker.pid);
  await cli(cluster, 'weights', 'v1=0', 'v2=100');
  await cluster.waitForStatus((status) => status.versions.v2?.weight === 100);
  const report = await settle(t, load);
  const userReport = await settle(t, withUsers);
  t.true(report.ok > 0);
  t.deepEqual([...userReport.afterMark.keys()], ['v2']);
  t.true(user - usersBefore >= answersToJudge, `${user - usersBefore} users after the change`);
  t.deepEqual((await cluster.status()).workers.map((worker) => worker.pid), pids, 'no worker restarted');
});

test.serial('deploying new code to a version replaces its workers rolling, with no failed request', async (t) => {
  const cluster = await startCluster(t, canary());
  const load = steadyLoad(() => cluster.url('/who?version=v2'), { clients: 6 });
  const fresh = steadyLoad(() => cluster.url('/who?version=v2'), { clients: 2, keepAlive: false });
  await Promise.all([load.answered(answersToJudge), fresh.answered(answersToJudge)]);
  const output = await cli(cluster, 'deploy', 'v2', '--entry', fixture('app-next.mjs'));
  t.regex(output, /replace v2's workers, rolling \(entry .*app\.mjs → .*app-next\.mjs\)/);
  await cluster.waitForOutput(/\[v2\] replaced: 1 new workers serving/);
  await settle(t, fresh);
  const report = await settle(t, load);
  t.deepEqual([...report.afterMark.keys()], ['v2/next']);
  await cluster.waitForOutput(/stopped\s+\[v2 worker v2\.1 pid \d+\] stopped \(exit code 0\)/);
});

test.serial('scaling up and down, reload, promote and rollback all run with no failed request', async (t) => {
  const cluster = await startCluster(t, canary());
  const load = steadyLoad(() => cluster.url('/who?version=v1'), { clients: 6 });
  const fresh = steadyLoad(() => cluster.url('/who?version=v1'), { clients: 2, keepAlive: false });
  await Promise.all([load.answered(answersToJudge), fresh.answered(answersToJudge)]);

  await cli(cluster, 'scale', 'v1', '4');
  await cluster.waitForStatus((status) => status.versions.v1?.ready === 4);
  await cli(cluster, 'scale', 'v1', '1');
  await cluster.waitForStatus((status) => status.workers.filter((worker) => worker.version === 'v1').length === 1);

  const before = (await cluster.status()).workers.filter((worker) => worker.version === 'v1').map((worker) => worker.pid);
  t.regex(await cli(cluster, 'reload', 'v1'), /replaced every worker of v1, rolling/);
  const after = (await cluster.status()).workers.filter((worker) => worker.version === 'v1' && worker.state === 'ready').map((worker) => worker.pid);
  t.is(after.length, 1);
  t.notDeepEqual(after, before);

  const promoted = await cli(cluster, 'promote', 'v2');
  t.regex(promoted, /default v1, weights v1=100, 1 rules → default v2, weights v2=100, 1 rules/);
  await cluster.waitForStatus((status) => status.routing.default === 'v2');
  t.is((await get(cluster.url('/who'), { cookie: 'uid=someone' })).body.version, 'v2');

  t.regex(await cli(cluster, 'rollback'), /default v2, weights v2=100, 1 rules → default v1, weights v1=100, 1 rules/);
  t.is(readConfig(cluster).routing.default, 'v1', 'rollback is written to the file');
  t.is((await get(cluster.url('/who'), { cookie: 'uid=someone' })).body.version, 'v1');

  await settle(t, fresh);
  const report = await settle(t, load);
  t.deepEqual([...report.afterMark.keys()], ['v1']);
});

test.serial('a worker over maxMemoryMB is replaced rolling, never mid-request', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: { workers: 1 } }, {}, { statsIntervalMs: 200 }));
  const load = steadyLoad(() => cluster.url('/slow?ms=50'), { clients: 4 });
  const first = (await cluster.waitForStatus((status) => status.workers[0]!.rss > 0)).workers[0]!;
  const config = readConfig(cluster);
  config.versions.v1.maxMemoryMB = Math.ceil(first.rss / 1024 / 1024) + 60;
  writeFileSync(cluster.configFile, JSON.stringify(config));
  await cluster.waitForOutput(/config\s+applying: set v1's maxMemoryMB from none to \d+ \(no restart\)/);
  await get(cluster.url('/grow?mb=120'));
  await cluster.waitForOutput(/config\s+\[v1 worker v1\.1 pid \d+\] replacing this worker \(memory \d+ MB over maxMemoryMB \d+\)/);
  await cluster.waitForOutput(/stopped\s+\[v1 worker v1\.1 pid \d+\] stopped \(exit code 0\)/);
  await settle(t, load);
  const status = await cluster.status();
  t.deepEqual(status.workers.map((worker) => [worker.id, worker.state]), [['v1.2', 'ready']]);
});

test.serial('bad edits are never applied, never rewritten, and show as configError; fixing the file applies it', async (t) => {
  const cluster = await startCluster(t, canary());
  const good = readFileSync(cluster.configFile, 'utf8');
  const bad = [
    ['{ "versions": { "v1": ', /invalid JSON/],
    [good.replace('"workers": 2', '"workers": "two"'), /versions\.v1\.workers must be integer/],
    [good.replace('"default": "v1"', '"default": "v7"'), /routing\.default names unknown version "v7"/],
    [good.replace(fixture('app.mjs'), fixture('no-such-app.mjs')), /versions\.v1\.entry: file not found: .*no-such-app\.mjs/],
    [good.replace(fixture('app.mjs'), path.dirname(fixture('app.mjs'))), /versions\.v1\.entry: .* is a folder; name the app's file/],
  ] as const;
  for (const [text, message] of bad) {
    writeFileSync(cluster.configFile, text);
    const status = await cluster.waitForStatus((current) => message.test(current.configError ?? ''));
    t.is(status.routing.default, 'v1');
    t.is((await get(cluster.url('/who?version=v2'))).body.version, 'v2', 'the last good config keeps serving');
    // The primary has handled this text (its error shows, and it has answered since): a rewrite would be done.
    t.is(readFileSync(cluster.configFile, 'utf8'), text, 'the file is exactly as written');
  }
  const fixed = JSON.parse(good);
  fixed.routing.default = 'v2';
  writeFileSync(cluster.configFile, JSON.stringify(fixed));
  const status = await cluster.waitForStatus((current) => current.configError === null && current.routing.default === 'v2');
  t.is(status.configError, null);
});

test("an editor's rename and a ConfigMap's ..data symlink swap are both picked up", async (t) => {
  // A ConfigMap mount: graycluster.json -> ..data/graycluster.json, ..data -> ..2026_1 (swapped atomically).
  const cluster = await startCluster(t, canary());
  const folder = path.dirname(cluster.configFile);
  const write = (config: object) => {
    const temp = path.join(folder, '.graycluster.json.swp');
    writeFileSync(temp, JSON.stringify(config));
    renameSync(temp, cluster.configFile);
  };
  const config = readConfig(cluster);
  config.routing.weights = { v1: 0, v2: 100 };
  write(config);
  await cluster.waitForStatus((status) => status.routing.weights?.v2 === 100);

  const data = (name: string, routingDefault: string) => {
    mkdirSync(path.join(folder, name));
    writeFileSync(path.join(folder, name, 'graycluster.json'), JSON.stringify({ ...config, routing: { ...config.routing, default: routingDefault } }));
  };
  data('..2026_1', 'v1');
  symlinkSync('..2026_1', path.join(folder, '..data'));
  renameSync(cluster.configFile, path.join(folder, 'old.json'));
  symlinkSync('..data/graycluster.json', cluster.configFile);
  await cluster.waitForStatus((status) => status.routing.default === 'v1' && status.configError === null);
  data('..2026_2', 'v2');
  symlinkSync('..2026_2', path.join(folder, '..data_tmp'));
  renameSync(path.join(folder, '..data_tmp'), path.join(folder, '..data'));
  const status = await cluster.waitForStatus((current) => current.routing.default === 'v2');
  t.is(status.configError, null);
});

test.serial('a replacement whose new worker never becomes ready is aborted and the old workers keep serving', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {} }));
  const load = steadyLoad(() => cluster.url('/who'), { clients: 4 });
  const config = readConfig(cluster);
  config.versions.v1.entry = fixture('throws-at-load.mjs');
  writeFileSync(cluster.configFile, JSON.stringify(config));
  await cluster.waitForOutput(/failed\s+\[v1\] replacement aborted, old workers keep serving: new worker v1\.2 did not become ready/);
  const status = await cluster.waitForStatus((current) => current.configError !== null);
  t.regex(status.configError!, /versions\.v1: new worker v1\.2 did not become ready/);
  t.deepEqual(status.workers.filter((worker) => worker.state === 'ready').map((worker) => worker.id), ['v1.1']);
  const report = await settle(t, load);
  t.deepEqual([...report.afterMark.keys()], ['v1']);
});

test.serial('a replacement whose new worker never calls listen times out, and the old workers keep serving', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {} }));
  const load = steadyLoad(() => cluster.url('/who'), { clients: 4 });
  // The shorter ready timeout and the new entry arrive in one edit: the timeout applies to the new worker.
  const config = readConfig(cluster);
  config.server.readyTimeoutMs = 1500;
  config.versions.v1.entry = fixture('never-listens.mjs');
  writeFileSync(cluster.configFile, JSON.stringify(config));
  await cluster.waitForOutput(/failed\s+\[v1 worker v1\.2 pid \d+\] not ready within 1500 ms: killing it/);
  await cluster.waitForOutput(/failed\s+\[v1\] replacement aborted, old workers keep serving: new worker v1\.2 did not become ready \(signal SIGKILL\)/);
  const report = await settle(t, load);
  t.deepEqual([...report.afterMark.keys()], ['v1']);
  t.deepEqual((await cluster.status()).workers.map((worker) => [worker.id, worker.state]), [['v1.1', 'ready']]);
});

test.serial('concurrent changes from the CLI and the dashboard API lose no update', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {}, v2: {}, v3: {} }, { weights: { v1: 1, v2: 1, v3: 1 } }));
  const api = (version: string, weight: number) => request(`http://127.0.0.1:${cluster.dashboardPort}/api/weights`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ weights: { [version]: weight } }),
  });
  await Promise.all([cli(cluster, 'weights', 'v1=11'), api('v2', 22), cli(cluster, 'weights', 'v3=33'), cli(cluster, 'scale', 'v1', '2')]);
  const config = readConfig(cluster);
  t.deepEqual(config.routing.weights, { v1: 11, v2: 22, v3: 33 });
  t.is(config.versions.v1.workers, 2);
});
