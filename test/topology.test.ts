// graycluster behind a real nginx with pooled keep-alive upstream connections, as it is deployed: one upstream
// connection carries requests of many users, so of several versions.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { stickyHash, versionForHash } from '../src/routing/decide.js';
import { keylessUpstream, nginxSplit, poolVariable, upstreamOf } from '../src/routing/split-clients.js';
import { canConnect, fixture, freePort, makeConfig, runCli, startCluster, startNginxFor, testWithNginx, waitFor } from './helpers/cluster.js';
import { startNginx } from './helpers/nginx.js';
import { RawConnection } from './helpers/raw-connection.js';

const test = testWithNginx('topology.test');

const weights: Array<[string, number]> = [['v1', 50], ['v2', 50]];
const routing = { weights: Object.fromEntries(weights), sticky: { key: 'header:x-user' } };
const versionOf = (user: string, split = weights) => versionForHash(stickyHash(user), split);

interface Answer {
  status: number;
  version: string | undefined;
  /** The upstream block nginx picked, when it says (the split tests' nginx does). */
  pool: string | undefined;
  /** The answer's Set-Cookie values. */
  cookies: string[];
  body: Buffer;
}

/** One request on `agent`; resolves with the status, graycluster's version header and the raw body. */
function send(url: string, agent: http.Agent, user: string, options: { method?: string; body?: Buffer; cookie?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: options.method ?? 'GET', agent, headers: { 'x-user': user, ...(options.cookie ? { cookie: options.cookie } : {}) } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, version: response.headers['x-graycluster-version'] as string | undefined, pool: response.headers['x-nginx-pool'] as string | undefined, cookies: response.headers['set-cookie'] ?? [], body: Buffer.concat(chunks) }));
      response.on('error', reject);
    });
    request.setTimeout(30_000, () => request.destroy(new Error(`no answer from ${url} within 30 s`)));
    request.on('error', reject);
    request.end(options.body);
  });
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** A random user whose sticky hash belongs to `version`. */
function userOf(version: string): string {
  for (;;) {
    const user = randomBytes(8).toString('hex');
    if (versionOf(user) === version) return user;
  }
}

test('behind nginx\'s pooled connections, every random user is answered by the version of its sticky hash', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {}, v2: {} }, routing));
  const nginx = await startNginxFor(t, cluster.port);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  t.teardown(() => agent.destroy());

  const users = Array.from({ length: 400 }, () => randomBytes(8).toString('hex'));
  const answers = await Promise.all(users.map((user) => send(nginx.url('/who'), agent, user)));
  const wrong = answers.flatMap((answer, index) => {
    const wanted = versionOf(users[index]!);
    const body = answer.status === 200 ? JSON.parse(answer.body.toString()) as { version: string } : undefined;
    return answer.status === 200 && body?.version === wanted && answer.version === wanted
      ? []
      : [{ user: users[index], wanted, status: answer.status, header: answer.version, body: answer.body.toString().slice(0, 200) }];
  });
  t.deepEqual(wrong, []);
  const served = new Set(answers.map((answer) => answer.version));
  t.deepEqual([...served].sort(), ['v1', 'v2'], 'both versions answered: the connections carried mixed versions');
  // nginx pooled its upstream connections: graycluster saw far fewer connections than requests.
  const { router } = await cluster.status();
  t.true(router.handedOff <= users.length / 4, `${router.handedOff} connections handed off for ${users.length} requests`);
});

test('nginx split_clients written by graycluster, one upstream pool per version: nginx picks the version graycluster would for every user, so nothing is relayed', async (t) => {
  const threeWays: Array<[string, number]> = [['v1', 70], ['v2', 17], ['v3', 13]];
  const cluster = await startCluster(t, makeConfig({ v1: {}, v2: {}, v3: {} }, { weights: Object.fromEntries(threeWays), sticky: { key: 'header:x-user' } }));
  const split = nginxSplit({ default: 'v1', rules: [], weights: threeWays, sticky: { key: { source: 'header', name: 'x-user' }, cookie: null }, versionCookie: null });
  t.deepEqual(split.upstreams, [...threeWays.map(([version]) => upstreamOf(version)), keylessUpstream]);
  const nginx = await startNginx({
    upstreams: Object.fromEntries(split.upstreams.map((upstream) => [upstream, [cluster.port]])),
    http: [...split.lines, `add_header x-nginx-pool ${poolVariable};`],
    servers: [{ key: 'split', pass: poolVariable }],
  });
  t.teardown(nginx.stop);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  t.teardown(() => agent.destroy());

  // Keys of every length mod 4 (MurmurHash2's tail), and some with bytes above 0x7f, which Node sends as latin1.
  const users = Array.from({ length: 600 }, (_, index) => `${randomBytes(1 + (index % 13)).toString('hex')}${index % 5 === 0 ? '\u00e9\u00ff' : ''}`);
  const answers = await Promise.all(users.map((user) => send(nginx.url('/who', 'split'), agent, user)));
  const wrong = answers.flatMap((answer, index) => {
    const wanted = versionOf(users[index]!, threeWays);
    const body = answer.status === 200 ? JSON.parse(answer.body.toString()) as { version: string } : undefined;
    return answer.status === 200 && body?.version === wanted && answer.version === wanted && answer.pool === upstreamOf(wanted ?? '')
      ? []
      : [{ user: users[index], wanted, status: answer.status, pool: answer.pool, header: answer.version, body: answer.body.toString().slice(0, 200) }];
  });
  t.deepEqual(wrong, []);
  t.deepEqual([...new Set(answers.map((answer) => answer.version))].sort(), ['v1', 'v2', 'v3']);
  // Requests without a key go over a pool of their own, answered by whichever version their connection has.
  const keyless = await Promise.all(Array.from({ length: 60 }, () => send(nginx.url('/who', 'split'), agent, '')));
  t.deepEqual(new Set(keyless.map((answer) => `${answer.status} ${answer.pool}`)), new Set([`200 ${keylessUpstream}`]));
  // Every worker's counts are in once they add up to the requests sent: none was relayed.
  const sent = users.length + keyless.length;
  const status = await cluster.waitForStatus((current) => current.workers.reduce((sum, worker) => sum + worker.requests, 0) >= sent, 20_000);
  t.is(status.workers.reduce((sum, worker) => sum + worker.forwarded, 0), 0, 'requests relayed between workers');
});

test('split-clients with each version on a port of its own: nginx reaches the versions\' workers without the primary, and while a version\'s port is closed its backup line, graycluster\'s port', async (t) => {
  const [port, v1Port, v2Port] = [await freePort(), await freePort(), await freePort()];
  const cluster = await startCluster(t, makeConfig({ v1: { port: v1Port }, v2: { port: v2Port } }, routing, { port }));
  const printed = await runCli(['split-clients', '--config', cluster.configFile]);
  t.is(printed.code, 0, printed.stderr);
  t.true(printed.stdout.includes(`upstream ${upstreamOf('v2')} { server 127.0.0.1:${v2Port} max_fails=0; server 127.0.0.1:${port} backup max_fails=0; keepalive 32; }`), printed.stdout);
  const nginx = await startNginx({
    upstreams: {},
    http: [...printed.stdout.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#')), `add_header x-nginx-pool ${poolVariable};`],
    servers: [{ key: 'split', pass: poolVariable }],
  });
  t.teardown(nginx.stop);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  t.teardown(() => agent.destroy());
  const right = (answers: Answer[], users: string[]) => users.filter((user, index) => {
    const answer = answers[index]!;
    return answer.status !== 200 || answer.version !== versionOf(user) || answer.pool !== upstreamOf(versionOf(user) ?? '');
  });

  const before = await cluster.status();
  const users = Array.from({ length: 300 }, () => randomBytes(8).toString('hex'));
  t.deepEqual(right(await Promise.all(users.map((user) => send(nginx.url('/who', 'split'), agent, user))), users), [], 'answered by its version, over its pool');
  const after = await cluster.waitForStatus((current) => current.workers.reduce((sum, worker) => sum + worker.requests, 0) >= users.length, 20_000);
  t.is(after.router.handedOff, before.router.handedOff, 'no connection went through the primary');
  t.is(after.workers.reduce((sum, worker) => sum + worker.forwarded, 0), 0, 'nothing relayed');

  // v2's workers stop listening on its port (its port is taken out of the config, so they are replaced): nginx finds
  // the port closed and goes on through graycluster's, where the primary places each connection.
  const file = JSON.parse(readFileSync(cluster.configFile, 'utf8'));
  delete file.versions.v2.port;
  writeFileSync(cluster.configFile, JSON.stringify(file, null, 2));
  await waitFor(async () => !(await canConnect(v2Port)), { timeoutMs: 20_000, what: 'v2\'s port closed' });
  const v2Users = Array.from({ length: 40 }, () => userOf('v2'));
  t.deepEqual(right(await Promise.all(v2Users.map((user) => send(nginx.url('/who', 'split'), agent, user))), v2Users), [], 'answered by v2 through the backup line');
  const throughBackup = (await cluster.status()).router.handedOff;
  t.true(throughBackup > after.router.handedOff, 'those connections went through the primary');

  // The port back: nginx goes to it at once (max_fails=0), not only once fail_timeout (10 s) has passed.
  file.versions.v2.port = v2Port;
  writeFileSync(cluster.configFile, JSON.stringify(file, null, 2));
  await waitFor(() => canConnect(v2Port), { timeoutMs: 20_000, what: 'v2\'s port open again' });
  const returning = Array.from({ length: 40 }, () => userOf('v2'));
  t.deepEqual(right(await Promise.all(returning.map((user) => send(nginx.url('/who', 'split'), agent, user))), returning), [], 'answered by v2 over its port again');
  t.is((await cluster.status()).router.handedOff, throughBackup, 'no connection through the primary once the port is open');
});

test('with routing.versionCookie, nginx routing on that cookie keeps a pool per version: after a client\'s first answer, nothing of it is relayed', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {}, v2: {} }, { ...routing, versionCookie: 'gc_version' }));
  const pools = [...weights.map(([version]) => upstreamOf(version)), keylessUpstream];
  const nginx = await startNginx({
    upstreams: Object.fromEntries(pools.map((upstream) => [upstream, [cluster.port]])),
    http: [`map $cookie_gc_version ${poolVariable} { ${weights.map(([version]) => `${version} ${upstreamOf(version)};`).join(' ')} default ${keylessUpstream}; }`, `add_header x-nginx-pool ${poolVariable};`],
    servers: [{ key: 'by-cookie', pass: poolVariable }],
  });
  t.teardown(nginx.stop);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  t.teardown(() => agent.destroy());
  const users = Array.from({ length: 300 }, () => randomBytes(8).toString('hex'));
  // First visits: no version cookie yet, so nginx's default pool, whose connections carry both versions; every answer,
  // a relayed one too, names its version in the cookie.
  const first = await Promise.all(users.map((user) => send(nginx.url('/who', 'by-cookie'), agent, user)));
  const cookies = first.map((answer) => /gc_version=([^;]+)/.exec(answer.cookies.join('\n'))?.[1]);
  t.deepEqual(users.filter((user, index) => first[index]!.status !== 200 || cookies[index] !== versionOf(user)), [], 'each first answer names the user\'s version');
  t.deepEqual(new Set(first.map((answer) => answer.pool)), new Set([keylessUpstream]));
  const before = await cluster.waitForStatus((current) => current.workers.reduce((sum, worker) => sum + worker.requests, 0) >= users.length, 20_000);
  const relayedBefore = before.workers.reduce((sum, worker) => sum + worker.forwarded, 0);
  t.true(relayedBefore > 0, 'the default pool\'s connections carried both versions');
  // Later visits carry the cookie: each goes over its version's pool, answered in place, with no new cookie.
  const later = await Promise.all(users.map((user, index) => send(nginx.url('/who', 'by-cookie'), agent, user, { cookie: `gc_version=${cookies[index]}` })));
  t.deepEqual(users.filter((user, index) => later[index]!.version !== versionOf(user) || later[index]!.pool !== upstreamOf(versionOf(user) ?? '') || later[index]!.cookies.length > 0), []);
  const after = await cluster.waitForStatus((current) => current.workers.reduce((sum, worker) => sum + worker.requests, 0) >= 2 * users.length, 20_000);
  t.is(after.workers.reduce((sum, worker) => sum + worker.forwarded, 0), relayedBefore, 'no later visit was relayed');
});

test('a 10 MB binary body crosses nginx and graycluster byte-exact both ways, for either version on one pooled connection', async (t) => {
  const echo = fixture('buffered-echo.mjs');
  const cluster = await startCluster(t, makeConfig({ v1: { entry: echo }, v2: { entry: echo } }, routing));
  const nginx = await startNginxFor(t, cluster.port);
  // One client connection, so nginx sends both uploads through its pool one after the other.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());

  for (const version of ['v1', 'v2', 'v1']) {
    const upload = randomBytes(10 * 1024 * 1024);
    const answer = await send(nginx.url('/upload'), agent, userOf(version), { method: 'POST', body: upload });
    t.is(answer.status, 200);
    t.is(answer.version, version);
    t.is(answer.body.length, upload.length);
    t.is(sha256(answer.body), sha256(upload), `${version}: the echoed body differs from the upload`);
  }
  // All three went over one upstream connection, so the two whose version is not the one it was handed to were
  // relayed: without this the test would pass as well with every upload answered in place on a fresh connection.
  const status = await cluster.waitForStatus((current) => current.workers.reduce((sum, worker) => sum + worker.requests, 0) >= 3, 20_000);
  t.is(status.router.handedOff, 1, 'one pooled upstream connection carried the three uploads');
  t.true(status.workers.reduce((sum, worker) => sum + worker.forwarded, 0) >= 1, 'an upload of the other version was relayed');
});

test('a WebSocket upgrade on a pooled upstream connection reaches the version its user belongs to, after a request of the other version on it', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: { entry: fixture('client-view.mjs') }, v2: { entry: fixture('client-view.mjs') } }, routing));
  const nginx = await startNginxFor(t, cluster.port);
  const key = randomBytes(16).toString('base64');
  for (const [first, upgraded, connections] of [['v1', 'v2', 1], ['v2', 'v1', 2]] as const) {
    const client = await RawConnection.connect(nginx.ports.graycluster!);
    t.teardown(() => client.close());
    client.send(`GET /first HTTP/1.1\r\nHost: app\r\nx-user: ${userOf(first)}\r\n\r\n`);
    const answer = await client.readResponse();
    t.is(JSON.parse(answer.body.toString()).version, first);
    // nginx took its one idle upstream connection for the upgrade: no new connection reached graycluster.
    client.send(`GET /ws HTTP/1.1\r\nHost: app\r\nx-user: ${userOf(upgraded)}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    const handshake = await client.readHead();
    t.is(handshake.status, 101);
    const greeting = JSON.parse(await client.readTextFrame()) as { version: string; via: string };
    t.deepEqual({ version: greeting.version, via: greeting.via }, { version: upgraded, via: 'upgrade' }, `first ${first}, then an upgrade for ${upgraded}`);
    t.is((await cluster.status()).router.handedOff, connections, 'the upgrade went over the upstream connection of the request before it');
  }
});

interface Outcome {
  /** The version the user's sticky hash belongs to. */
  owner: string | undefined;
  status: number;
  /** The version whose app answered (its body), if one did. */
  answeredBy: string | undefined;
  error?: string;
}

test('a worker SIGKILLed mid-relay under random users through nginx fails no request of the other version\'s users', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {}, v2: {} }, routing));
  const nginx = await startNginxFor(t, cluster.port);
  const loops = 24;
  const agent = new http.Agent({ keepAlive: true, maxSockets: loops });
  t.teardown(() => agent.destroy());

  const outcomes: Outcome[] = [];
  let outstanding = 0;
  let stopped = false;
  const deadline = Date.now() + 60_000;
  const load = async () => {
    while (!stopped && Date.now() < deadline && outcomes.length < 50_000) {
      const user = randomBytes(8).toString('hex');
      const owner = versionOf(user);
      outstanding++;
      try {
        // 20 ms in the app: at any moment many requests are on their way, relayed ones among them.
        const answer = await send(nginx.url('/slow?ms=20'), agent, user);
        const answeredBy = answer.status === 200 ? (JSON.parse(answer.body.toString()) as { version: string }).version : undefined;
        outcomes.push({ owner, status: answer.status, answeredBy });
      } catch (error) {
        outcomes.push({ owner, status: 0, answeredBy: undefined, error: String(error) });
      } finally {
        outstanding--;
      }
    }
  };
  const running = Promise.all(Array.from({ length: loops }, load));
  t.teardown(() => { stopped = true; });

  // Both workers relay requests of the other version's users on the pooled connections they own.
  const before = await cluster.waitForStatus((status) => status.workers.filter((worker) => worker.state === 'ready' && worker.forwarded >= 20).length === 2, 30_000);
  await waitFor(() => outcomes.length >= 200, { timeoutMs: 30_000, what: '200 requests answered before the kill' });
  const killed = before.workers.find((worker) => worker.version === 'v2')?.pid;
  if (!killed) throw new Error('no pid for the v2 worker');
  await waitFor(() => outstanding >= loops / 2, { intervalMs: 1, what: 'requests under way' });
  process.kill(killed, 'SIGKILL');
  const killedAt = outcomes.length;

  await cluster.waitForStatus((status) => status.workers.some((worker) => worker.version === 'v2' && worker.state === 'ready' && worker.pid !== killed), 30_000);
  const restartedAt = outcomes.length;
  await waitFor(() => outcomes.slice(restartedAt).filter((outcome) => outcome.answeredBy === 'v2').length >= 200, { timeoutMs: 30_000, what: 'the restarted v2 answering its users' });
  stopped = true;
  await running;

  // A v1 user's request on a connection the killed worker owned was relayed by it to v1: nginx sees that upstream
  // connection fail before an answer and, the request being a GET on a pooled connection, sends it again on a
  // new one, which graycluster hands to v1. So no v1 user may see anything but v1's answer.
  const v1Failures = outcomes.filter((outcome) => outcome.owner === 'v1' && !(outcome.status === 200 && outcome.answeredBy === 'v1'));
  t.deepEqual(v1Failures, [], 'every request of a v1 user was answered by v1');
  // A v2 user's request may fail only with 502, when it was on its way to the killed worker: relayed to it by the
  // v1 worker (in flight, or sent before the primary's new settings told v1 it was gone), where v1 answers 502 and
  // never retries; or on a fresh upstream connection it owned, which nginx does not retry either and answers 502.
  // While v2 had no ready worker, new connections of its users went to routing.default (v1), as documented.
  const v2Unexpected = outcomes.filter((outcome) => outcome.owner === 'v2' && outcome.status !== 502 && !(outcome.status === 200 && (outcome.answeredBy === 'v2' || outcome.answeredBy === 'v1')));
  t.deepEqual(v2Unexpected, [], 'a v2 user got 502 or an answer, never a dropped connection');
  const v2Before = outcomes.slice(0, killedAt).filter((outcome) => outcome.owner === 'v2');
  t.true(v2Before.every((outcome) => outcome.answeredBy === 'v2'), 'before the kill, v2 users were answered by v2');
  // The 502s are the kill's alone: once the restarted v2 is ready, nothing is relayed to the dead worker any more.
  const lateFailures = outcomes.slice(restartedAt).filter((outcome) => outcome.status !== 200);
  t.deepEqual(lateFailures, [], 'no request failed once the restarted v2 was ready');
  t.log(`502 at: ${outcomes.flatMap((outcome, index) => (outcome.status === 502 ? [index] : [])).join(',')}; killed at ${killedAt}, restarted at ${restartedAt}`);
  t.log(`${outcomes.length} requests; v2 users: ${outcomes.filter((outcome) => outcome.owner === 'v2' && outcome.status === 502).length} got 502, ${outcomes.filter((outcome) => outcome.owner === 'v2' && outcome.answeredBy === 'v1').length} answered by v1 while v2 restarted`);
});
