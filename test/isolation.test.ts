import { existsSync, readdirSync } from 'node:fs';
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import { stateFilePath } from '../src/primary/state-file.js';
import { fixture, get, makeConfig, request, startCluster, token, waitFor, type Reply } from './helpers/cluster.js';
import { steadyLoad } from './helpers/load.js';

const twoVersions = (server: Record<string, unknown> = {}) => makeConfig({ v1: {}, v2: {} }, { rules: [{ query: 'version' }] }, server);

/** Sends `count` requests of its own connection each, `concurrency` at a time; resolves with every reply or error. */
async function flood(url: string, count: number, concurrency: number): Promise<Array<Reply | Error>> {
  const results: Array<Reply | Error> = [];
  let next = 0;
  const lane = async () => {
    while (next < count) {
      next++;
      results.push(await get(url).catch((error: Error) => error));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return results;
}

const statuses = (results: Array<Reply | Error>) => results.map((result) => (result instanceof Error ? 'error' : result.status));

test.serial('a stopped canary worker (SIGSTOP) costs stable traffic nothing: its traffic falls back to the default, and a stop after it resumes exits 0 and cleans up', async (t) => {
  const cluster = await startCluster(t, twoVersions({ maxPendingConnections: 200, handoffTimeoutMs: 300, heartbeatTimeoutMs: 1500, statsIntervalMs: 200 }));
  const status = await cluster.status();
  const canary = status.workers.find((worker) => worker.version === 'v2')!;
  const runFolder = cluster.state.runDir;
  const stable = steadyLoad(() => cluster.url('/who?version=v1'), { clients: 2, keepAlive: false });
  process.kill(canary.pid!, 'SIGSTOP');
  t.teardown(() => {
    try {
      process.kill(canary.pid!, 'SIGCONT');
    } catch {}
  });
  // Far more canary connections than maxPendingConnections: none may crowd out v1.
  const first = flood(cluster.url('/who?version=v2'), 300, 50);
  await cluster.waitForOutput(new RegExp(`unresponsive\\s+\\[v2 worker v2\\.1 pid ${canary.pid}\\] did not take a connection within 300 ms`));
  const afterFlagged = await flood(cluster.url('/who?version=v2'), 100, 20);
  t.deepEqual(new Set(afterFlagged.map((reply) => (reply instanceof Error ? reply.message : `${reply.status} ${reply.body.version ?? reply.text}`))), new Set(['200 v1']));
  process.kill(canary.pid!, 'SIGCONT');
  const firstResults = await first;
  const report = await stable.stop();
  t.is(report.failed, 0, report.errors.join('; '));
  t.deepEqual(report.unexpected, {}, report.errors.join('; '));
  t.true(report.ok > 0);
  t.false(cluster.output().includes('connections waiting'), 'the primary never answered 503 for too many waiting connections');
  // The socket already sent to the stopped worker is served by it when it resumes; none is lost.
  t.deepEqual([...new Set(statuses(firstResults))], [200]);

  t.is(await cluster.stop(), 0);
  t.regex(cluster.output(), /graycluster: stopped/);
  t.false(existsSync(runFolder), 'the run folder is removed');
  t.false(existsSync(stateFilePath(cluster.configFile, cluster.state.pid)), 'the state file is removed');
});

test.serial('connections on their way to a worker killed with SIGKILL fall back to the default: none gets 503', async (t) => {
  const cluster = await startCluster(t, twoVersions({ statsIntervalMs: 200 }));
  const canary = (await cluster.status()).workers.find((worker) => worker.version === 'v2')!;
  let running = true;
  const results: Array<Reply | Error> = [];
  const lane = async () => {
    while (running) results.push(await get(cluster.url('/who?version=v2')).catch((error: Error) => error));
  };
  const lanes = Array.from({ length: 16 }, lane);
  await cluster.waitForStatus((current) => current.router.handedOff > 200);
  process.kill(canary.pid!, 'SIGKILL');
  await cluster.waitForStatus((current) => current.workers.some((worker) => worker.version === 'v2' && worker.state === 'ready' && worker.pid !== canary.pid));
  const handedOff = (await cluster.status()).router.handedOff;
  await cluster.waitForStatus((current) => current.router.handedOff > handedOff + 200);
  running = false;
  await Promise.all(lanes);
  const replies = results.filter((result): result is Reply => !(result instanceof Error));
  t.deepEqual(replies.filter((reply) => reply.status !== 200).map((reply) => `${reply.status} ${reply.text}`), []);
  const byVersion: Record<string, number> = {};
  for (const reply of replies) byVersion[String(reply.body.version)] = (byVersion[String(reply.body.version)] ?? 0) + 1;
  t.true(replies.some((reply) => reply.body.version === 'v1'), `while v2 was down its traffic went to v1 (replies by version: ${JSON.stringify(byVersion)}; ${results.length - replies.length} failed)`);
  // Only a connection whose socket had already left for the worker can die with it (Node closes it).
  t.true(results.length - replies.length <= 16, `${results.length - replies.length} connections failed`);
});

test.serial('connections sent to a worker that never took them are served elsewhere when it is killed: none is lost', async (t) => {
  const cluster = await startCluster(t, twoVersions({ handoffTimeoutMs: 10_000, unresponsiveRestartMs: 20_000 }));
  const canary = (await cluster.status()).workers.find((worker) => worker.version === 'v2')!;
  const before = (await cluster.status()).router.handedOff;
  process.kill(canary.pid!, 'SIGSTOP');
  t.teardown(() => {
    try {
      process.kill(canary.pid!, 'SIGCONT');
    } catch {}
  });
  const replies = Promise.all(Array.from({ length: 10 }, () => get(cluster.url('/who?version=v2')).catch((error: Error) => error)));
  // All ten are on their way to the stopped worker, which cannot answer for them.
  await cluster.waitForStatus((current) => current.router.handedOff >= before + 10);
  process.kill(canary.pid!, 'SIGKILL');
  const results = await replies;
  t.deepEqual(results.map((reply) => (reply instanceof Error ? reply.message : reply.status)), Array(10).fill(200));
  t.false(results.some((reply) => !(reply instanceof Error) && reply.body.pid === canary.pid));
});

test.serial('a worker past its hard memory limit is killed at once and restarted', async (t) => {
  const config = makeConfig({ v1: { entry: fixture('leak-fast.mjs') } }, {}, { statsIntervalMs: 100 });
  (config.versions.v1 as Record<string, unknown>).maxMemoryMB = 100;
  (config.versions.v1 as Record<string, unknown>).maxMemoryHardMB = 150;
  const cluster = await startCluster(t, config);
  const leaker = (await cluster.status()).workers[0]!;
  // The connection stays open, so the drain its soft limit begins cannot finish (and the worker exit 0 by itself)
  // before the hard limit kills it: that drain waits a second for an idle connection.
  const agent = new http.Agent({ keepAlive: true });
  t.teardown(() => agent.destroy());
  await request(cluster.url('/leak'), { agent });
  await cluster.waitForOutput(new RegExp(`failed\\s+\\[v1 worker v1\\.1 pid ${leaker.pid}\\] memory \\d+ MB over the hard limit of 150 MB: killing it`));
  // Its exit reads "crashed", and its slot restarts at once; or, when the replacement that its soft limit began is
  // ready before the kill has taken effect, the replacement takes it out of the pool first ("stopping: it is being
  // killed already") and its exit reads "stopped".
  await cluster.waitForOutput(new RegExp(`(crashed|stopped)\\s+\\[v1 worker v1\\.1 pid ${leaker.pid}\\] (crashed|stopped) \\(signal SIGKILL\\)`));
  await cluster.waitForStatus((current) => current.workers.some((worker) => worker.version === 'v1' && worker.state === 'ready' && worker.pid !== leaker.pid));
  t.is((await get(cluster.url('/'))).status, 200);
});

test.serial("a dead worker's forward socket file is removed: after crashes the run folder holds only the live workers' sockets", async (t) => {
  const cluster = await startCluster(t, twoVersions());
  let status = await cluster.status();
  const runFolder = cluster.state.runDir;
  for (let crash = 1; crash <= 3; crash++) {
    await get(cluster.url('/exit?version=v2')).catch(() => {});
    status = await cluster.waitForStatus((current) => current.workers.some((worker) => worker.version === 'v2' && worker.state === 'ready' && worker.restarts === crash));
  }
  const live = status.workers.map((worker) => `${worker.id}-${worker.pid}.sock`).sort();
  // Beside them, owner.json: who made the folder, for a later start's clean-up of stale ones.
  t.deepEqual(readdirSync(runFolder).sort(), [...live, 'owner.json'].sort());
});

test.serial('one SIGTERM stops gracefully even when the primary is too busy to see it again at once: exit 0, no forced kill', async (t) => {
  // conf's atomic writer hooks SIGTERM and sends it to the process again; a primary busy for 800 ms after that
  // used to take the echo for a second SIGTERM and kill every worker (exit 1).
  const cluster = await startCluster(t, twoVersions(), { nodeArgs: ['--import', pathToFileURL(fixture('busy-after-self-signal.mjs')).href] });
  t.is((await get(cluster.url('/who?version=v2'))).status, 200);
  t.is(await cluster.stop(), 0);
  t.false(cluster.output().includes('again: killing every worker'), cluster.output());
  t.regex(cluster.output(), /graycluster: stopped/);
});

test.serial('one SIGTERM still stops gracefully after a dashboard edit loaded the config writer: exit 0, no forced kill', async (t) => {
  // The primary loads conf (and its signal-echoing atomic writer) only on its first write of the config file.
  const cluster = await startCluster(t, makeConfig({ v1: {}, v2: {} }, { weights: { v1: 100, v2: 0 } }), { nodeArgs: ['--import', pathToFileURL(fixture('busy-after-self-signal.mjs')).href] });
  const edit = await request(`http://127.0.0.1:${cluster.dashboardPort}/api/weights`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"weights":{"v1":50,"v2":50}}',
  });
  t.is(edit.status, 200);
  t.is(await cluster.stop(), 0);
  t.false(cluster.output().includes('again: killing every worker'), cluster.output());
  t.regex(cluster.output(), /graycluster: stopped/);
});

test.serial('a worker with no file descriptor free: connections sent to it go to another worker at once, and it takes them again once it has some', async (t) => {
  // Every process of this graycluster may hold 256 descriptors; the app uses up its own on request.
  const cluster = await startCluster(t, makeConfig({ v1: { workers: 2 } }, {}, { handoffTimeoutMs: 200, statsIntervalMs: 100 }), { maxFiles: 256 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  // The connection this request came on stays open, so the worker has no descriptor left at all.
  const exhausted = await request(cluster.url('/exhaust-files'), { agent });
  t.is(exhausted.body.code, 'EMFILE');
  const full = exhausted.body.pid as number;
  // Its stats report, read at its next interval, counts that request: reading its memory needs a descriptor too.
  await cluster.waitForStatus((status) => (status.workers.find((worker) => worker.pid === full)?.requests ?? 0) >= 1);
  const answers = await Promise.all(Array.from({ length: 20 }, () => get(cluster.url('/who'))));
  t.deepEqual(answers.map((answer) => answer.status), Array(20).fill(200), 'every connection is answered, none waits for the full worker');
  t.false(answers.some((answer) => answer.body.pid === full), 'all by the other worker');
  const refused = (await cluster.status()).events.find((event) => event.type === 'unresponsive' && event.pid === full);
  t.regex(refused?.message ?? '', /could not receive a connection/);
  const released = await request(cluster.url('/release-files'), { agent });
  t.is(released.body.pid, full);
  await waitFor(async () => ((await get(cluster.url('/who'))).body.pid === full ? true : undefined), { timeoutMs: 10_000, what: 'a connection answered by the worker that had no descriptor free' });
  const status = await cluster.status();
  t.true(status.events.some((event) => event.type === 'recovered' && event.pid === full), 'it is back');
  t.is(status.router.refused[503] ?? 0, 0);
  t.true(status.workers.every((worker) => worker.state === 'ready' && worker.restarts === 0), 'no worker crashed on the way (its stats need a descriptor to read its memory)');
});

test.serial('a build that passes maxMemoryMB soon after every start is recycled with backoff, not every few seconds for good', async (t) => {
  const config = makeConfig({ v1: { entry: fixture('leak-fast.mjs'), env: { LEAK_AT_START: '1', LEAK_CAP_MB: '150' } } }, {}, { statsIntervalMs: 100 });
  (config.versions.v1 as Record<string, unknown>).maxMemoryMB = 100;
  (config.versions.v1 as Record<string, unknown>).maxMemoryHardMB = 1000;
  const cluster = await startCluster(t, config);
  // Each new worker is over the limit within half a second of its start: the nth recycle in a row waits for the
  // worker to have served 0, 100 ms, 200 ms … doubling (restartDelay), and says so once per worker it holds back.
  for (const waitMs of [1600, 3200]) {
    t.truthy(await cluster.waitForOutput(new RegExp(`restarting\\s+\\[v1 worker v1\\.\\d+ pid \\d+\\] memory \\d+ MB over maxMemoryMB 100, recycle \\d+ in a row within 30 s of a start: replacing it once it has served ${waitMs} ms`), 30_000));
  }
  t.is((await get(cluster.url('/'))).status, 200, 'still serving throughout');
});
