import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { ConfigError, resolveConfig } from '../src/config/load.js';
import { healthDefaults, type ConfigFile } from '../src/config/types.js';
import { EventLoopWatch, liveness, readiness } from '../src/primary/probes.js';
import { fixture, get, makeConfig, request, runCli, startCluster, waitFor } from './helpers/cluster.js';
import { RawConnection } from './helpers/raw-connection.js';

const probesOn = { host: '127.0.0.1', port: 0 };

test('the probe listener is off by default; when on, it binds every interface unless told otherwise', (t) => {
  t.is(healthDefaults.port, null);
  t.is(healthDefaults.host, '0.0.0.0');
  const raw: ConfigFile = { versions: { v1: { entry: 'app.js' } }, routing: { default: 'v1' } };
  t.deepEqual(resolveConfig('/srv/graycluster.json', raw).health, healthDefaults);
  const clash = { ...raw, server: { port: 8080 }, health: { port: 8080 } };
  t.throws(() => resolveConfig('/srv/graycluster.json', clash), { instanceOf: ConfigError, message: /health\.port \(8080\) must differ from server\.port/ });
  t.throws(() => resolveConfig('/srv/graycluster.json', { ...raw, dashboard: { port: 9000 }, health: { port: 9000 } }), { message: /health\.port \(9000\) must differ from dashboard\.port/ });
});

test('a bad health key is refused at start, naming it', async (t) => {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-health-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  const file = path.join(folder, 'graycluster.json');
  for (const [health, message] of [
    [{ prot: 9100 }, /health\.prot is not a known key/],
    [{ port: 'x' }, /health\.port must be integer,null/],
    [{ maxConnections: 0 }, /health\.maxConnections must be >= 1/],
  ] as const) {
    writeFileSync(file, JSON.stringify({ versions: { v1: { entry: fixture('app.mjs') } }, routing: { default: 'v1' }, health }));
    const result = await runCli(['start', '--config', file]);
    t.is(result.code, 1, JSON.stringify(health));
    t.regex(result.stderr, message);
  }
});

test('a health port already taken stops the start with an error naming health.port', async (t) => {
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => taken.close());
  const port = (taken.address() as AddressInfo).port;
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-health-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  const file = path.join(folder, 'graycluster.json');
  writeFileSync(file, JSON.stringify({ ...makeConfig({ v1: {} }), health: { host: '127.0.0.1', port } }));
  const result = await runCli(['start', '--config', file]);
  t.is(result.code, 1);
  t.regex(result.stderr, new RegExp(`health\\.host/health\\.port 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
});

test('liveness fails on a stalled event loop and readiness names why it is not ready, without names or paths', (t) => {
  t.deepEqual(liveness(5, 2000), { ok: true, reason: 'ok' });
  t.false(liveness(2500, 2000).ok);
  t.regex(liveness(2500, 2000).reason, /event loop stalled 2500 ms/);
  t.deepEqual(readiness({ stopping: false, defaultState: 'ready', configRejected: false }), { ok: true, reason: 'ok' });
  t.deepEqual(readiness({ stopping: false, defaultState: 'crashloop', configRejected: false }), { ok: false, reason: 'no ready worker of the default version (crashloop)' });
  const rejected = readiness({ stopping: false, defaultState: 'ready', configRejected: true });
  t.false(rejected.ok);
  t.is(rejected.reason, 'config file rejected; serving the last good config');
  t.deepEqual(readiness({ stopping: true, defaultState: 'ready', configRejected: false }), { ok: false, reason: 'stopping' });
});

test('the event-loop watch sees a stall of this process', async (t) => {
  const watch = new EventLoopWatch();
  watch.start();
  t.teardown(() => watch.stop());
  await new Promise((resolve) => setTimeout(resolve, 50));
  const until = Date.now() + 400;
  while (Date.now() < until);
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.true(watch.recentMaxMs >= 300, `saw ${watch.recentMaxMs} ms`);
});

test('without a token: /livez and /readyz answer 200, HEAD too, and nothing else is served', async (t) => {
  const cluster = await startCluster(t, { ...makeConfig({ v1: {} }), health: probesOn });
  const port = cluster.state.health?.port;
  if (port === undefined) return t.fail('no health port in the run-state file');
  const probe = (urlPath: string, method = 'GET') => request(`http://127.0.0.1:${port}${urlPath}`, { method });
  for (const urlPath of ['/livez', '/readyz', '/readyz?verbose']) {
    const answer = await probe(urlPath);
    t.is(answer.status, 200, urlPath);
    t.is(answer.body.toString(), 'ok\n');
    t.regex(String(answer.headers['content-type']), /^text\/plain/);
    t.is(answer.headers.connection, 'close');
    const head = await probe(urlPath, 'HEAD');
    t.is(head.status, 200);
    t.is(head.body.length, 0);
  }
  for (const urlPath of ['/', '/api/status', '/metrics', '/ws', '/client/app.js', '/livez/', '/healthz']) {
    const answer = await probe(urlPath);
    t.is(answer.status, 404, urlPath);
    t.is(answer.body.toString(), 'not found\n');
  }
  const post = await probe('/readyz', 'POST');
  t.is(post.status, 405);
  t.is(post.headers.allow, 'GET, HEAD');
});

test('readiness is 503 while the default crash-loops or the config file is broken, 200 once fixed, and 200 while a canary\'s new build fails to start; liveness stays 200', async (t) => {
  const config = { ...makeConfig({ v1: {}, v2: {}, broken: { entry: fixture('throws-at-load.mjs') } }), health: probesOn };
  const cluster = await startCluster(t, config, { waitReady: false });
  await cluster.waitForStatus((status) => status.versions.v1?.state === 'ready');
  const port = cluster.state.health?.port;
  if (port === undefined) return t.fail('no health port in the run-state file');
  const probe = async (urlPath: string) => {
    const answer = await get(`http://127.0.0.1:${port}${urlPath}`);
    return `${answer.status} ${answer.body.toString().trim()}`;
  };
  const probeUntil = (urlPath: string, expected: string) => waitFor(async () => (await probe(urlPath)) === expected, { what: `${urlPath} to answer "${expected}"`, describe: () => cluster.output() });
  t.is(await probe('/readyz'), '200 ok');

  writeFileSync(cluster.configFile, JSON.stringify({ ...config, routing: { default: 'broken' } }));
  await probeUntil('/readyz', '503 no ready worker of the default version (crashloop)');
  t.is(await probe('/livez'), '200 ok');
  writeFileSync(cluster.configFile, JSON.stringify(config));
  await probeUntil('/readyz', '200 ok');

  writeFileSync(cluster.configFile, '{ "versions": ');
  await probeUntil('/readyz', '503 config file rejected; serving the last good config');
  t.is(await probe('/livez'), '200 ok');
  writeFileSync(cluster.configFile, JSON.stringify(config));
  await probeUntil('/readyz', '200 ok');

  // A new build of v2 that cannot start: v2 keeps its workers, the status says why, and the pod stays in service.
  const badBuild = structuredClone(config);
  badBuild.versions.v2!.entry = fixture('throws-at-load.mjs');
  writeFileSync(cluster.configFile, JSON.stringify(badBuild));
  const status = await cluster.waitForStatus((current) => /versions\.v2: /.test(current.configError ?? ''), 30_000);
  t.is(status.versions.v2?.state, 'ready', 'v2 served by its previous workers');
  t.is(await probe('/readyz'), '200 ok');
});

test('while it drains on SIGTERM, readiness is 503 "stopping" and liveness 200', async (t) => {
  const cluster = await startCluster(t, { ...makeConfig({ v1: {} }), health: probesOn });
  const port = cluster.state.health?.port;
  if (port === undefined) return t.fail('no health port in the run-state file');
  const slow = get(cluster.url('/slow?ms=4000'));
  await cluster.waitForStatus((status) => status.workers.some((worker) => worker.inFlight > 0));
  cluster.process.kill('SIGTERM');
  const probe = async (urlPath: string) => {
    const answer = await get(`http://127.0.0.1:${port}${urlPath}`);
    return `${answer.status} ${answer.body.toString().trim()}`;
  };
  await waitFor(async () => (await probe('/readyz')) === '503 stopping', { what: 'readiness to say stopping' });
  t.is(await probe('/livez'), '200 ok');
  t.is((await slow).status, 200);
});

test('past health.maxConnections a probe connection is closed unanswered; an idle one is closed after health.timeoutMs', async (t) => {
  const cluster = await startCluster(t, { ...makeConfig({ v1: {} }), health: { ...probesOn, maxConnections: 2, timeoutMs: 1000 } });
  const port = cluster.state.health?.port;
  if (port === undefined) return t.fail('no health port in the run-state file');
  const idle = [await RawConnection.connect(port), await RawConnection.connect(port)];
  t.teardown(() => idle.forEach((connection) => connection.close()));
  const third = await RawConnection.connect(port);
  third.send('GET /livez HTTP/1.1\r\nHost: probe\r\n\r\n');
  t.is((await third.readToEnd()).length, 0, 'the connection over the limit got no answer');
  // The idle ones never send a request: the listener closes them itself.
  for (const connection of idle) await connection.readToEnd();
  const answer = await get(`http://127.0.0.1:${port}/livez`);
  t.is(answer.status, 200);
});

test('--health-port turns the probes on for a file without health.port (instances sharing one file), and a bad one is refused naming the flag', async (t) => {
  const cluster = await startCluster(t, { ...makeConfig({ v1: {} }), health: { host: '127.0.0.1' } }, { args: ['--health-port', '0'] });
  const port = cluster.state.health?.port;
  if (port === undefined) return t.fail('no health port in the run-state file');
  t.is((await get(`http://127.0.0.1:${port}/readyz`)).status, 200);

  for (const [args, env, named] of [
    [['--health-port', 'x'], {}, /--health-port/],
    [['--health-port', '70000'], {}, /--health-port/],
    [[], { GRAYCLUSTER_HEALTH_PORT: 'nine' }, /GRAYCLUSTER_HEALTH_PORT/],
  ] as const) {
    const result = await runCli(['start', '--config', cluster.configFile, ...args], { env: { ...env } });
    t.is(result.code, 2, `${args.join(' ')} ${JSON.stringify(env)}: ${result.stderr}`);
    t.regex(result.stderr, named);
  }
});
