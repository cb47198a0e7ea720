import { randomBytes } from 'node:crypto';
import test from 'ava';
import type { Status } from '../src/primary/status.js';
import { fixture, makeConfig, runCli, sleep, startCluster } from './helpers/cluster.js';
import { RawConnection } from './helpers/raw-connection.js';
import { sharedPeerLimits } from '../src/primary/shared-peers.js';

// Two versions of an app that reports what it sees; the query parameter `version` picks one. A raw connection
// is first handed to v1 by its first request, so every later request for v2 on it is the worker's to route.
const config = (server: Record<string, unknown> = {}) => makeConfig(
  { v1: { entry: fixture('client-view.mjs') }, v2: { entry: fixture('client-view.mjs') } },
  { rules: [{ query: 'version' }] },
  server,
);

async function connectedToV1(t: { teardown(fn: () => void): void }, port: number): Promise<RawConnection> {
  const connection = await RawConnection.connect(port);
  t.teardown(() => connection.close());
  connection.send('GET /first?version=v1 HTTP/1.1\r\nHost: app\r\n\r\n');
  const first = await connection.readResponse();
  if (JSON.parse(first.body.toString()).version !== 'v1') throw new Error(`first request not answered by v1: ${first.body}`);
  return connection;
}

test('a WebSocket upgrade as the second request on a keep-alive connection reaches the version its query names', async (t) => {
  const cluster = await startCluster(t, config());
  const connection = await connectedToV1(t, cluster.port);
  const key = randomBytes(16).toString('base64');
  connection.send(`GET /ws?version=v2 HTTP/1.1\r\nHost: app\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  const handshake = await connection.readHead();
  t.is(handshake.status, 101);
  t.is(handshake.headers.upgrade?.toLowerCase(), 'websocket');
  const greeting = JSON.parse(await connection.readTextFrame());
  t.is(greeting.version, 'v2');
  t.is(greeting.via, 'upgrade');
  t.is(greeting.remoteAddress, '127.0.0.1', 'the app sees the client, not the relaying worker');
});

test('a CONNECT as the second request on a keep-alive connection reaches the version its query names', async (t) => {
  const cluster = await startCluster(t, config());
  const connection = await connectedToV1(t, cluster.port);
  connection.send('CONNECT /tunnel?version=v2 HTTP/1.1\r\nHost: app\r\n\r\n');
  const answer = (await connection.readToEnd()).toString();
  t.regex(answer, /^HTTP\/1\.1 200 /);
  const seen = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
  t.is(seen.version, 'v2');
  t.is(seen.via, 'connect');
});

test('Expect: 100-continue for another version gets 100 Continue, then that version answers with the body', async (t) => {
  const cluster = await startCluster(t, config());
  const connection = await connectedToV1(t, cluster.port);
  connection.send('POST /upload?version=v2 HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
  const interim = await connection.readHead();
  t.is(interim.status, 100);
  connection.send('hello');
  const answer = await connection.readResponse();
  const seen = JSON.parse(answer.body.toString());
  t.is(answer.status, 200);
  t.is(seen.version, 'v2');
  t.is(seen.via, 'checkContinue');
  t.is(seen.body, 'hello');
  t.is(answer.headers['x-graycluster-version'], 'v2');
});

test('a forwarded request shows the app the client\'s address, and no forwarding or hop-by-hop header the client chose', async (t) => {
  const cluster = await startCluster(t, config());
  const connection = await connectedToV1(t, cluster.port);
  connection.send([
    'GET /seen?version=v2 HTTP/1.1', 'Host: app', 'X-Forwarded-For: 203.0.113.9', 'Forwarded: for=203.0.113.9',
    'X-Real-IP: 203.0.113.9', 'X-Graycluster-Client: 203.0.113.9 4444', 'Connection: keep-alive, x-hop', 'X-Hop: secret', '', '',
  ].join('\r\n'));
  const forwarded = JSON.parse((await connection.readResponse()).body.toString());
  t.is(forwarded.version, 'v2');
  t.is(forwarded.remoteAddress, '127.0.0.1');
  t.is(forwarded.remotePort, connection.socket.localPort);
  t.is(forwarded.remoteFamily, 'IPv4');
  t.is(forwarded.forwardedFor, null);
  t.deepEqual(Object.keys(forwarded.headers).filter((name) => /forwarded|real-ip|graycluster|hop/.test(name)), []);

  // Served in place, by the worker the connection was handed to: the same view.
  connection.send('GET /seen?version=v1 HTTP/1.1\r\nHost: app\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n');
  const inPlace = JSON.parse((await connection.readResponse()).body.toString());
  t.is(inPlace.version, 'v1');
  t.is(inPlace.remoteAddress, '127.0.0.1');
  t.is(inPlace.forwardedFor, null);
});

test('with server.trustProxy naming the client, its forwarding headers reach the app, in place and forwarded', async (t) => {
  const cluster = await startCluster(t, config({ trustProxy: ['127.0.0.0/8'] }));
  const connection = await connectedToV1(t, cluster.port);
  for (const version of ['v2', 'v1']) {
    connection.send(`GET /seen?version=${version} HTTP/1.1\r\nHost: app\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n\r\n`);
    const seen = JSON.parse((await connection.readResponse()).body.toString());
    t.is(seen.version, version);
    t.is(seen.forwardedFor, '203.0.113.9', `${version}: the proxy's header is passed on as it sent it`);
    t.is(seen.headers['x-forwarded-proto'], 'https');
    t.is(seen.remoteAddress, '127.0.0.1');
  }
});

test('once a peer\'s connection carries two versions, its new connections go to the version that leads, and each first request, an upgrade too, still reaches its own version', async (t) => {
  const cluster = await startCluster(t, config({ statsIntervalMs: 100 }));
  const relayedBy = (status: Status, version: string) => status.workers.find((worker) => worker.version === version)!.forwarded;
  /** What v1's worker relayed, once its reports show every request answered so far. */
  const relayedByV1 = async (atLeast: number) => {
    await cluster.waitForStatus((status) => relayedBy(status, 'v1') >= atLeast);
    await sleep(300);  // Three more reports: a request relayed by mistake would show by now.
    return relayedBy(await cluster.status(), 'v1');
  };
  const mixed = await connectedToV1(t, cluster.port);
  mixed.send('GET /second?version=v2 HTTP/1.1\r\nHost: app\r\n\r\n');
  t.is(JSON.parse((await mixed.readResponse()).body.toString()).version, 'v2');
  await cluster.waitForStatus((status) => status.router.sharedPeers === 1);

  // Too few first requests from this peer yet to say which version leads: a connection goes by its first request.
  const early = await RawConnection.connect(cluster.port);
  t.teardown(() => early.close());
  early.send('GET /early?version=v2 HTTP/1.1\r\nHost: app\r\n\r\n');
  t.is(JSON.parse((await early.readResponse()).body.toString()).version, 'v2');
  t.is((await cluster.status()).router.sharedPlacements, 0);

  for (let count = 1; count < sharedPeerLimits.minSamples; count++) (await connectedToV1(t, cluster.port)).close();
  const relayedBefore = await relayedByV1(1);
  const placed = await RawConnection.connect(cluster.port);
  t.teardown(() => placed.close());
  placed.send('GET /first?version=v2 HTTP/1.1\r\nHost: app\r\n\r\n');
  const first = await placed.readResponse();
  t.is(JSON.parse(first.body.toString()).version, 'v2', 'its first request is answered by its own version');
  t.is(first.headers['x-graycluster-version'], 'v2');
  t.is(JSON.parse(first.body.toString()).remoteAddress, '127.0.0.1');
  placed.send('GET /then?version=v1 HTTP/1.1\r\nHost: app\r\n\r\n');
  t.is(JSON.parse((await placed.readResponse()).body.toString()).version, 'v1');
  t.is((await cluster.status()).router.sharedPlacements, 1, 'it went to v1, the version most of this peer\'s connections began with');
  t.is(await relayedByV1(relayedBefore + 1), relayedBefore + 1, 'v1\'s worker relayed its first request, and served the second itself');

  const upgrade = await RawConnection.connect(cluster.port);
  t.teardown(() => upgrade.close());
  const key = randomBytes(16).toString('base64');
  upgrade.send(`GET /ws?version=v2 HTTP/1.1\r\nHost: app\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  t.is((await upgrade.readHead()).status, 101);
  t.is(JSON.parse(await upgrade.readTextFrame()).version, 'v2', 'an upgrade as the first request reaches its own version too');
  t.is((await cluster.status()).router.sharedPlacements, 2);

  // One user's connection placed with v1 for its peer's sake: after four requests for v2 it closes, and the peer's
  // connections go by their first request again.
  const oneUser = await RawConnection.connect(cluster.port);
  t.teardown(() => oneUser.close());
  for (let count = 1; count <= 4; count++) {
    oneUser.send('GET /mine?version=v2 HTTP/1.1\r\nHost: app\r\n\r\n');
    const answer = await oneUser.readResponse();
    t.is(JSON.parse(answer.body.toString()).version, 'v2');
    t.is(answer.headers.connection, count < 4 ? 'keep-alive' : 'close');
  }
  t.is((await oneUser.readToEnd()).length, 0);
  await cluster.waitForStatus((status) => status.router.sharedPeers === 0);
  const after = await RawConnection.connect(cluster.port);
  t.teardown(() => after.close());
  after.send('GET /again?version=v2 HTTP/1.1\r\nHost: app\r\n\r\n');
  t.is(JSON.parse((await after.readResponse()).body.toString()).version, 'v2');
  t.is((await cluster.status()).router.sharedPlacements, 3, 'only the one-user connection was placed since');
});

test('once another version leads among a peer\'s pooled connections, one held by a worker of another version closes after an answer, and the next goes to the leading one', async (t) => {
  const cluster = await startCluster(t, config());
  const held = await RawConnection.connect(cluster.port);
  t.teardown(() => held.close());
  const ask = async (connection: RawConnection, version: string) => {
    connection.send(`GET /?version=${version} HTTP/1.1\r\nHost: app\r\n\r\n`);
    const answer = await connection.readResponse();
    t.is(JSON.parse(answer.body.toString()).version, version);
    return answer.headers.connection;
  };
  t.is(await ask(held, 'v2'), 'keep-alive');
  t.is(await ask(held, 'v1'), 'keep-alive', 'two versions on it: its peer pools, but no version leads yet');
  await cluster.waitForStatus((status) => status.router.sharedPeers === 1);
  for (let count = 0; count < sharedPeerLimits.minSamples; count++) (await connectedToV1(t, cluster.port)).close();
  await cluster.waitForStatus((status) => status.router.sharedLeading === 'v1');

  // The leading version reaches v2's worker with its settings; an answer after that closes the connection.
  let closes: string | undefined;
  for (let attempt = 0; attempt < 20 && closes !== 'close'; attempt++) {
    closes = await ask(held, attempt % 2 === 0 ? 'v2' : 'v1');
    if (closes !== 'close') await sleep(50);
  }
  t.is(closes, 'close');
  t.is((await held.readToEnd()).length, 0, 'and it is closed');

  const next = await RawConnection.connect(cluster.port);
  t.teardown(() => next.close());
  t.is(await ask(next, 'v2'), 'keep-alive');
  t.is(await ask(next, 'v1'), 'keep-alive', 'the new connection went to v1, the version that leads: it stays');
  t.true((await cluster.status()).router.sharedPlacements >= 1);
});

test('a request relayed to another version finishes while the worker that relays it drains: its version reloaded, or graycluster stopping', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {}, v2: {} }, { rules: [{ query: 'version' }] }));
  const relayedDuring = async (drain: () => Promise<unknown>) => {
    const connection = await connectedToV1(t, cluster.port);
    // Longer than a reload takes even on a loaded machine, so the answer comes after the relaying worker drains.
    connection.send('GET /slow?ms=8000&version=v2 HTTP/1.1\r\nHost: app\r\n\r\n');
    await sleep(300);
    await drain();
    const answer = await connection.readResponse();
    t.is(answer.status, 200);
    t.is(JSON.parse(answer.body.toString()).version, 'v2');
    t.is(answer.headers.connection, 'close', 'and the draining worker then lets the connection go');
  };
  await relayedDuring(() => runCli(['reload', 'v1', '--config', cluster.configFile]));
  await relayedDuring(async () => cluster.process.kill('SIGTERM'));
});
