// A version's own port (versions.<name>.port): its workers accept the connections to it themselves, from one socket
// the cluster primary binds for them all, so a proxy that keeps a pool per version reaches them without the primary.
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import test from 'ava';
import { ConfigError, resolveConfig } from '../src/config/load.js';
import { canConnect, freePort, makeConfig, request, runCli, startCluster, waitFor, type Cluster } from './helpers/cluster.js';
import { RawConnection } from './helpers/raw-connection.js';
import { steadyLoad } from './helpers/load.js';

/** Two versions routed by `?version=`, with these ports of their own (undefined: none). */
const configWithPorts = (ports: { v1?: number; v2?: number }) => makeConfig({ v1: { port: ports.v1 }, v2: { port: ports.v2 } }, { rules: [{ query: 'version' }] });

/** Rewrites the cluster's config file with `change` applied to its versions. */
function editVersions(cluster: Cluster, change: (versions: Record<string, Record<string, unknown>>) => void): void {
  const file = JSON.parse(readFileSync(cluster.configFile, 'utf8'));
  change(file.versions);
  writeFileSync(cluster.configFile, JSON.stringify(file, null, 2));
}

test('on a version\'s own port its workers take the connections themselves: that version\'s requests are served in place, another\'s relayed, and the primary hands over none', async (t) => {
  const ports = { v1: await freePort(), v2: await freePort() };
  const cluster = await startCluster(t, configWithPorts(ports));
  const before = await cluster.status();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const on = (port: number, target: string) => request(`http://127.0.0.1:${port}${target}`, { agent });

  t.is((await on(ports.v2, '/')).body.version, 'v2');
  t.is((await on(ports.v2, '/?version=v1')).body.version, 'v1', 'a rule still routes: relayed to v1');
  t.is((await on(ports.v2, '/?version=v2')).body.version, 'v2');
  t.is((await on(ports.v1, '/')).body.version, 'v1');
  t.is((await request(cluster.url('/?version=v2'))).body.version, 'v2', 'server.port routes as before');

  const after = await cluster.waitForStatus((status) => status.workers.reduce((sum, worker) => sum + worker.requests, 0) >= 5);
  t.is(after.router.handedOff - before.router.handedOff, 1, 'only the connection to server.port went through the primary');
  t.is(after.workers.find((worker) => worker.version === 'v2')?.forwarded, 1, 'v2\'s worker relayed the one request for v1');
});

test('on a version\'s own port, which the primary\'s connection limits do not cover, maxInFlight still sheds: past it 503 with Retry-After, in place and for a request relayed from it to a worker at its limit', async (t) => {
  const ports = { v1: await freePort() };
  const cluster = await startCluster(t, makeConfig({ v1: { port: ports.v1, maxInFlight: 2 }, v2: { maxInFlight: 2 } }, { rules: [{ query: 'version' }] }));
  const on = (target: string) => request(`http://127.0.0.1:${ports.v1}${target}`);
  for (const version of ['v1', 'v2']) {
    // Each on a connection of its own to v1's port: v1's requests served there, v2's relayed by v1's worker.
    const replies = await Promise.all(Array.from({ length: 6 }, () => on(`/slow?ms=2500&version=${version}`)));
    const ok = replies.filter((reply) => reply.status === 200);
    const shed = replies.filter((reply) => reply.status === 503);
    t.is(ok.length, 2, `${version}: as many answered as its maxInFlight`);
    t.is(shed.length, 4, `${version}: the rest 503`);
    t.true(ok.every((reply) => (reply.body as { version: string }).version === version), `${version}: answered by ${version}`);
    t.true(shed.every((reply) => reply.headers['retry-after'] === '1' && /at its limit of 2 requests in flight/.test(reply.text)), `${version}: ${shed.map((reply) => reply.text).join(' | ')}`);
    t.is((await on(`/most-active?version=${version}`)).body.mostActive, 2, `${version}'s app never ran more than its limit`);
  }
  const status = await cluster.waitForStatus((current) => current.workers.every((worker) => worker.shed >= 4));
  t.is(status.router.handedOff, 0, 'nothing went through the primary');
});

test('on a version\'s own port, connections waiting for their first head are held to the primary\'s limits: 408 past headTimeoutMs, the oldest closed to make room past maxPendingConnections, 503 past maxPendingPerSource', async (t) => {
  const port = await freePort();
  const server = { headTimeoutMs: 1500, maxPendingConnections: 4, maxPendingPerSource: 100 };
  const cluster = await startCluster(t, makeConfig({ v1: { port } }, {}, server));
  const connect = () => RawConnection.connect(port);
  const textOf = async (connection: RawConnection) => (await connection.readToEnd()).toString();

  const silent = await connect();
  t.regex(await textOf(silent), /^HTTP\/1\.1 408 Request Timeout\r\n[^]*no complete request head within 1500 ms/, 'a connection that sends no head');
  const trickling = await connect();
  trickling.send('GET / HTTP/1.1\r\nHost: x\r\n');
  t.regex(await textOf(trickling), /^HTTP\/1\.1 408 /, 'a head begun but never finished');

  const waiting = [];
  for (let index = 0; index < 4; index++) waiting.push(await connect());
  const newcomer = await connect();
  t.regex(await textOf(waiting[0]!), /^HTTP\/1\.1 408 [^]*closed to make room: 4 connections were waiting for their head/, 'the oldest makes room');
  for (const connection of waiting.slice(2)) connection.close();
  newcomer.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  t.is((await newcomer.readResponse()).status, 200, 'the newcomer is served');
  const served = waiting[1]!;
  served.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  t.is((await served.readResponse()).status, 200, 'a connection whose head came in time is served');
  await new Promise((resolve) => setTimeout(resolve, 2000));
  served.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  t.is((await served.readResponse()).status, 200, 'and no longer held to headTimeoutMs once its first head came');
  for (const connection of [...waiting, newcomer]) connection.close();

  const file = JSON.parse(readFileSync(cluster.configFile, 'utf8'));
  file.server.maxPendingPerSource = 1;
  writeFileSync(cluster.configFile, JSON.stringify(file, null, 2));
  await cluster.waitForOutput(/config\s+applied/);
  await new Promise((resolve) => setTimeout(resolve, 500));  // The workers' settings follow the primary's.
  const pressure = [await connect(), await connect()];
  const refused = await connect();
  t.regex(await textOf(refused), /^HTTP\/1\.1 503 Service Unavailable\r\n[^]*retry-after: 1\r\n[^]*more than 1 connections from one address waiting/, 'under pressure, one address past its limit');
  for (const connection of pressure) connection.close();

  await cluster.waitForStatus((current) => current.workers[0]!.pendingTurnedAway >= 4);
  await new Promise((resolve) => setTimeout(resolve, 1500));  // A report later: nothing more was turned away.
  const status = await cluster.status();
  t.is(status.workers[0]!.pendingTurnedAway, 4, 'each counted: two timed out, one made room, one refused');
  t.is(status.router.handedOff, 0, 'none of it went through the primary');
});

test('a version\'s port stays open while its workers are replaced under load, and closes once the version has none listening', async (t) => {
  const port = await freePort();
  const cluster = await startCluster(t, configWithPorts({ v2: port }));
  const load = steadyLoad(() => `http://127.0.0.1:${port}/`, { clients: 4 });
  t.teardown(() => load.stop());
  await load.answered(50);
  const [old] = (await cluster.status()).workers.filter((worker) => worker.version === 'v2');
  editVersions(cluster, (versions) => {
    versions.v2!.env = { ...(versions.v2!.env as object), APP_BUILD: 'b2' };
  });
  await cluster.waitForStatus((status) => status.workers.some((worker) => worker.version === 'v2' && worker.pid !== old?.pid && worker.state === 'ready')
    && !status.workers.some((worker) => worker.pid === old?.pid), 20_000);
  load.mark();
  await load.answered(50);
  const report = await load.stop();
  t.deepEqual({ failed: report.failed, unexpected: report.unexpected, errors: report.errors }, { failed: 0, unexpected: {}, errors: [] });
  t.deepEqual([...report.afterMark.keys()], ['v2/b2'], 'the new workers answer on the same port');

  t.true(await canConnect(port));
  editVersions(cluster, (versions) => {
    delete versions.v2!.port;
  });
  await waitFor(async () => !(await canConnect(port)), { timeoutMs: 20_000, what: 'the port closed once v2\'s workers left it' });
  t.is((await request(cluster.url('/?version=v2'))).body.version, 'v2', 'v2 still serves through server.port');
});

test('a version\'s port that is taken is reported naming the key and shown in status; its workers serve through server.port, and take the port once it is free', async (t) => {
  const squatter = net.createServer((socket) => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 8\r\nconnection: close\r\n\r\nsquatter'));
  const squatters = new Set<net.Socket>();
  squatter.on('connection', (socket) => squatters.add(socket));
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  t.teardown(() => squatter.close());
  const { port } = squatter.address() as net.AddressInfo;
  const cluster = await startCluster(t, configWithPorts({ v2: port }));
  await cluster.waitForOutput(new RegExp(`versions\\.v2\\.port: 127\\.0\\.0\\.1:${port}: cannot listen \\(EADDRINUSE\\)`));
  t.is((await request(cluster.url('/?version=v2'))).body.version, 'v2');
  const taken = await cluster.waitForStatus((status) => status.versions.v2?.portError === 'EADDRINUSE');
  t.like(taken.versions.v2, { port, ready: 1, portListening: 0 });
  const shown = await runCli(['status', '--config', cluster.configFile]);
  t.regex(shown.stdout, new RegExp(`^v2\\s+ready\\s+1/1\\s+\\S+\\s+${port} \\(0/1 listening: EADDRINUSE\\)`, 'm'), shown.stdout);
  t.is((await request(`http://127.0.0.1:${port}/`)).text, 'squatter');

  // The other program goes: v2's worker takes the port at its next try.
  await new Promise<void>((resolve) => {
    squatter.close(() => resolve());
    for (const socket of squatters) socket.destroy();
  });
  const free = await cluster.waitForStatus((status) => status.versions.v2?.portListening === 1, 20_000);
  t.like(free.versions.v2, { portError: null });
  t.is((await request(`http://127.0.0.1:${port}/`)).body.version, 'v2');
  await cluster.waitForOutput(new RegExp(`versions\\.v2\\.port: 127\\.0\\.0\\.1:${port}: listening now`));
  t.regex((await runCli(['status', '--config', cluster.configFile])).stdout, new RegExp(`^v2\\s+ready\\s+1/1\\s+\\S+\\s+${port}\\s`, 'm'));
});

test('a running graycluster refuses a version port on a port it still holds: a changed dashboard.port takes effect only at a restart', async (t) => {
  const cluster = await startCluster(t, configWithPorts({}));
  const file = JSON.parse(readFileSync(cluster.configFile, 'utf8'));
  file.dashboard = { ...file.dashboard, port: await freePort() };
  file.versions.v2.port = cluster.dashboardPort;
  writeFileSync(cluster.configFile, JSON.stringify(file, null, 2));
  const rejected = await cluster.waitForStatus((status) => status.configError !== null);
  t.regex(rejected.configError!, new RegExp(`versions\\.v2\\.port \\(${cluster.dashboardPort}\\) must differ from dashboard\\.port \\(held by the running graycluster until it restarts\\)`));
  t.is((await request(cluster.url('/?version=v2'))).body.version, 'v2', 'the last good config keeps serving');
  t.is((await cluster.status()).versions.v2?.port, null, 'v2 has no port of its own');

  // The CLI refuses the same before it writes, reading the ports the running supervisor holds from its run state.
  writeFileSync(cluster.configFile, JSON.stringify(configWithPorts({}), null, 2));
  await cluster.waitForStatus((status) => status.configError === null);
  const before = readFileSync(cluster.configFile, 'utf8');
  for (const dryRun of [['--dry-run'], []]) {
    const refused = await runCli(['set', 'versions.v2.port', String(cluster.dashboardPort), '--config', cluster.configFile, ...dryRun]);
    t.is(refused.code, 1, refused.stdout);
    t.regex(refused.stderr, new RegExp(`versions\\.v2\\.port \\(${cluster.dashboardPort}\\) must differ from dashboard\\.port \\(held by the running graycluster until it restarts\\)`));
  }
  t.is(readFileSync(cluster.configFile, 'utf8'), before, 'nothing written');
});

test('a version\'s port must differ from every other port graycluster listens on', (t) => {
  const raw = { server: { port: 8000 }, dashboard: { port: 9000 }, health: { port: 9001 }, versions: { v1: { entry: 'a.js', port: 8001 }, v2: { entry: 'b.js', port: 8002 } }, routing: { default: 'v1' } };
  t.is(resolveConfig('/srv/graycluster.json', raw).versions.get('v2')?.port, 8002);
  const clash = (v2: number) => () => resolveConfig('/srv/graycluster.json', { ...raw, versions: { ...raw.versions, v2: { entry: 'b.js', port: v2 } } });
  t.throws(clash(8001), { instanceOf: ConfigError, message: /versions\.v2\.port \(8001\) must differ from versions\.v1\.port/ });
  t.throws(clash(8000), { message: /versions\.v2\.port \(8000\) must differ from server\.port/ });
  t.throws(clash(9000), { message: /versions\.v2\.port \(9000\) must differ from dashboard\.port/ });
  t.throws(clash(9001), { message: /versions\.v2\.port \(9001\) must differ from health\.port/ });
  t.throws(() => resolveConfig('/srv/graycluster.json', raw, { port: 8002 }), { message: /versions\.v2\.port \(8002\) must differ from server\.port \(given by --port or \$GRAYCLUSTER_PORT\)/ });
});
