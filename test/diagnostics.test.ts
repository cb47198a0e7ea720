import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { fixture, get, makeConfig, request, runCli, startCluster, temporaryFolder, token, waitFor, type Cluster } from './helpers/cluster.js';
import { steadyLoad } from './helpers/load.js';

function folderFor(t: ExecutionContext): string {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-diagnostics-'));
  t.teardown(temporaryFolder(folder));
  return folder;
}

const cli = (cluster: Cluster, ...args: string[]) => runCli([...args, '--config', cluster.configFile]);

function postApi(cluster: Cluster, apiPath: string, body: object = {}) {
  return request(`http://127.0.0.1:${cluster.dashboardPort}${apiPath}`, {
    method: 'POST', body: JSON.stringify(body), headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
  });
}

/** Holds the only worker's event loop (test/fixtures/hold-loop.mjs) until `release()`; resolves once it is stuck. */
async function holdWorker(cluster: Cluster, folder: string) {
  const marker = path.join(folder, 'held');
  const releaseFile = path.join(folder, 'release');
  const answered = get(cluster.url(`/hold?marker=${encodeURIComponent(marker)}&release=${encodeURIComponent(releaseFile)}`));
  await waitFor(() => existsSync(marker), { what: 'the worker to hold its event loop' });
  return { pid: Number(readFileSync(marker, 'utf8')), release: () => writeFileSync(releaseFile, ''), answered };
}

test('heap-snapshot writes a valid snapshot of a worker under load into the default folder, and no request fails', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: { workers: 2 } }));
  const load = steadyLoad(() => cluster.url('/'));
  t.teardown(() => load.stop());
  await load.answered(50);

  const result = await cli(cluster, 'heap-snapshot', 'v1.1');
  t.is(result.code, 0, result.stderr);
  const file = result.stdout.trim();
  t.is(path.dirname(file), path.join(path.dirname(cluster.configFile), 'heapsnapshots'));
  t.regex(path.basename(file), /^v1\.1-\d+-.+\.heapsnapshot$/);
  await load.answered(50);
  const report = await load.stop();

  const snapshot = JSON.parse(readFileSync(file, 'utf8')) as { snapshot: { node_count: number }; nodes: number[] };
  t.true(snapshot.snapshot.node_count > 0);
  t.true(snapshot.nodes.length > 0);
  t.is(report.failed, 0, report.errors.join('; '));
  t.deepEqual(report.unexpected, {}, report.errors.join('; '));
});

test('a second snapshot of a worker while one is being written is refused with 409 naming it', async (t) => {
  const folder = folderFor(t);
  const config = { ...makeConfig({ v1: { entry: fixture('hold-loop.mjs') } }), diagnostics: { folder: path.join(folder, 'snapshots') } };
  const cluster = await startCluster(t, config);
  const held = await holdWorker(cluster, folder);

  const first = postApi(cluster, '/api/workers/v1.1/heap-snapshot');
  const second = await waitFor(async () => {
    const reply = await postApi(cluster, '/api/workers/v1.1/heap-snapshot');
    return reply.status === 409 ? reply : undefined;  // Until the first request has reached the primary.
  }, { what: 'a 409 for the second snapshot' });
  t.regex(second.body.error, /^a heap snapshot \(.+\.heapsnapshot\) of worker v1\.1 is under way/);

  held.release();
  const written = await first;
  t.is(written.status, 200, JSON.stringify(written.body));
  t.true(existsSync(written.body.file));
  t.is((await held.answered).status, 200);
});

test('a snapshot of a worker that dies meanwhile is answered 502 naming how it ended; no file is left', async (t) => {
  const folder = folderFor(t);
  const snapshots = path.join(folder, 'snapshots');
  const cluster = await startCluster(t, { ...makeConfig({ v1: { entry: fixture('hold-loop.mjs') } }), diagnostics: { folder: snapshots } });
  const held = await holdWorker(cluster, folder);

  const asked = postApi(cluster, '/api/workers/v1.1/heap-snapshot');
  await waitFor(async () => (await postApi(cluster, '/api/workers/v1.1/heap-snapshot')).status === 409, { what: 'the snapshot to be under way' });
  process.kill(held.pid, 'SIGKILL');
  const reply = await asked;
  t.is(reply.status, 502);
  t.is(reply.body.error, 'worker v1.1 exited (signal SIGKILL) before finishing a heap snapshot');
  t.deepEqual(existsSync(snapshots) ? readdirSync(snapshots) : [], []);
  await t.throwsAsync(held.answered, { message: /socket hang up|ECONNRESET/ });
  await cluster.waitForStatus((status) => status.workers.some((worker) => worker.id === 'v1.1' && worker.state === 'ready' && worker.pid !== held.pid));
});

test('a worker that does not answer within diagnostics.timeoutMs gets 504 naming the limit, and takes requests again after', async (t) => {
  const folder = folderFor(t);
  const cluster = await startCluster(t, { ...makeConfig({ v1: { entry: fixture('hold-loop.mjs') } }), diagnostics: { folder, timeoutMs: 1000 } });
  const held = await holdWorker(cluster, folder);

  const reply = await postApi(cluster, '/api/workers/v1.1/inspect');
  held.release();
  t.is(reply.status, 504);
  t.is(reply.body.error, 'worker v1.1 did not finish opening the inspector within diagnostics.timeoutMs (1000 ms)');
  t.is((await held.answered).status, 200);
  const closed = await postApi(cluster, '/api/workers/v1.1/inspect', { close: true });
  t.is(closed.status, 200, JSON.stringify(closed.body));
});

test('heap-snapshot into a folder that cannot be created fails with a message naming the folder', async (t) => {
  const folder = folderFor(t);
  const regularFile = path.join(folder, 'not-a-folder');
  writeFileSync(regularFile, '');
  const cluster = await startCluster(t, { ...makeConfig({ v1: {} }), diagnostics: { folder: path.join(regularFile, 'x') } });

  const result = await cli(cluster, 'heap-snapshot', 'v1.1');
  t.is(result.code, 1);
  t.is(result.stdout, '');
  t.regex(result.stderr, /answered 500: cannot create diagnostics\.folder .+not-a-folder\/x: ENOTDIR/);
  t.is((await get(cluster.url('/'))).status, 200);
});

test('heap-snapshot into a folder under /proc fails with 500 and leaves the primary serving (Node\'s recursive mkdir never returns there)', async (t) => {
  const cluster = await startCluster(t, { ...makeConfig({ v1: {} }), diagnostics: { folder: '/proc/graycluster-test/snapshots' } });
  const result = await cli(cluster, 'heap-snapshot', 'v1.1');
  t.is(result.code, 1);
  t.regex(result.stderr, /answered 500: cannot create diagnostics\.folder \/proc\/graycluster-test\/snapshots: ENOENT/);
  t.is((await get(cluster.url('/'))).status, 200);
  t.is((await cluster.status()).workers.length, 1);
});

test('heap-snapshot of an unknown worker is a 404; a missing worker id is a usage error', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {} }));
  const unknown = await cli(cluster, 'heap-snapshot', 'v9.1');
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /answered 404: no live worker "v9\.1"/);
  const missing = await cli(cluster, 'heap-snapshot');
  t.is(missing.code, 2);
  t.regex(missing.stderr, /expected 1 argument/);
});

test('inspect opens the inspector of a worker on a loopback port, and --close closes it', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {} }));
  const opened = await cli(cluster, 'inspect', 'v1.1');
  t.is(opened.code, 0, opened.stderr);
  const [, wsUrl] = /^inspector of v1\.1: (ws:\/\/127\.0\.0\.1:\d+\/\S+)$/m.exec(opened.stdout) ?? [];
  t.truthy(wsUrl, opened.stdout);
  const address = new URL(wsUrl!);
  t.true(opened.stdout.includes(`DevTools: devtools://devtools/bundled/js_app.html?experiments=true&v8only=true&ws=${address.host}${address.pathname}\n`));
  const version = await get(`http://${address.host}/json/version`);
  t.is(version.status, 200);
  t.truthy(version.body.Browser);
  t.is((await get(cluster.url('/'))).status, 200);

  const closed = await cli(cluster, 'inspect', 'v1.1', '--close');
  t.is(closed.code, 0, closed.stderr);
  t.is(closed.stdout, `closed the inspector of v1.1 (${wsUrl})\n`);
  await waitFor(async () => {
    try {
      await get(`http://${address.host}/json/version`);
      return false;
    } catch {
      return true;
    }
  }, { what: 'the inspector port to stop answering' });
  t.is((await get(cluster.url('/'))).status, 200);
  const none = await cli(cluster, 'inspect', 'v1.1', '--close');
  t.is(none.code, 0, none.stderr);
  t.is(none.stdout, 'v1.1 had no inspector open\n');
});
