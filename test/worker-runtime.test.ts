import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { resolveConfig } from '../src/config/load.js';
import type { ToPrimary, WorkerSettings } from '../src/ipc/messages.js';
import type { WorkerEnv } from '../src/ipc/worker-env.js';
import { addressMatcher, parseAddressRange } from '../src/shared/address-range.js';
import { acceptBareHandles } from '../src/shared/node-internals.js';
import { stallMs } from '../src/shared/stalls.js';
import { hasForwardingHeaders } from '../src/worker/client-address.js';
import { endToEnd } from '../src/worker/forward.js';
import { emptyRouteMemo, RouteCheck } from '../src/worker/route-check.js';
import { stickyHash, versionForHash } from '../src/routing/decide.js';
import { latencyBucketOf, RequestStats, statusClassOf } from '../src/worker/stats.js';
import { WorkerRuntime } from '../src/worker/worker-runtime.js';
import { holdUp, request } from './helpers/cluster.js';
import { RawConnection } from './helpers/raw-connection.js';

const settings = (extra: Partial<WorkerSettings> = {}): WorkerSettings => ({
  routing: { default: 'v1', rules: [{ source: 'query', name: 'version' }], weights: [], sticky: { key: { source: 'ip' }, cookie: null }, versionCookie: null },
  versions: ['v1', 'v2', 'v3'],
  serving: ['v1', 'v2', 'v3'],
  forwardPaths: {},
  versionHeader: 'x-graycluster-version',
  forwardMaxPending: 8,
  relayMaxIdlePerTarget: 64,
  relayIdleTimeoutMs: 500,
  headTimeoutMs: 10_000,
  maxPendingConnections: 1024,
  maxPendingPerSource: 128,
  trustProxy: false,
  sharedLeading: null,
  ...extra,
});
/** A request as the app's server parsed it, seen by a routing check with nothing remembered of its connection. */
const checked = (route: RouteCheck, url: string, headers: Record<string, string> = {}, socket: object = { remoteAddress: '127.0.0.1' }) =>
  route.versionForLater({ url, method: 'GET', headers, socket } as unknown as http.IncomingMessage, emptyRouteMemo());

async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

interface Harness {
  runtime: WorkerRuntime;
  sent: ToPrimary[];
  exits: number[];
  port: number;
  url(target: string): string;
}

/**
 * A runtime in this process around a real server (an http.Server, or a plain net.Server app) that never listens,
 * fed the sockets a real TCP server accepts (as the primary's handoff would), with the primary's side faked.
 */
async function harness(t: ExecutionContext, version: string, app: http.RequestListener | net.Server, options: { maxInFlight?: number; drainIdleGraceMs?: number; runDir?: string } = {}): Promise<Harness> {
  const sent: ToPrimary[] = [];
  const exits: number[] = [];
  const runDir = options.runDir ?? mkdtempSync(path.join(os.tmpdir(), 'graycluster-runtime-'));
  const env: WorkerEnv = { version, workerId: `${version}.1`, entry: '', maxInFlight: options.maxInFlight ?? 64, runDir, port: 0, host: '127.0.0.1', statsIntervalMs: 500, versionPort: null };
  const runtime = new WorkerRuntime({
    env,
    hooks: { send: (message) => (sent.push(message), true), exit: (code) => exits.push(code) },
    ...(options.drainIdleGraceMs === undefined ? {} : { drainIdleGraceMs: options.drainIdleGraceMs }),
  });
  const server = app instanceof net.Server ? app : http.createServer(app);
  runtime.adopt(server as http.Server);
  const front = net.createServer((socket) => runtime.admit(socket, { forwarded: false }));
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => runtime.forwardServer.listen(runtime.forwardPath, resolve));
  t.teardown(() => {
    if (server instanceof http.Server) server.closeAllConnections();
    front.close();
    runtime.forwardServer.close();
    rmSync(runDir, { recursive: true, force: true });
  });
  const port = (front.address() as net.AddressInfo).port;
  return { runtime, sent, exits, port, url: (target) => `http://127.0.0.1:${port}${target}` };
}

const whoAnswers = (version: string): http.RequestListener => (req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ version, remoteAddress: req.socket.remoteAddress ?? null, forwardedFor: req.headers['x-forwarded-for'] ?? null }));
};

test('a later request stays here unless a rule names another version, which falls back to the default when not serving', (t) => {
  const route = new RouteCheck(settings(), 'v2');
  t.is(checked(route, '/'), 'v2', 'no rule matches: the connection\'s version');
  t.is(checked(route, '/?version=v2'), 'v2');
  t.is(checked(route, '/?version=v3'), 'v3');
  t.is(checked(route, '/?version=nope'), 'v2', 'an unknown version is no match');
  t.is(checked(new RouteCheck(settings({ serving: ['v1', 'v2'] }), 'v2'), '/?version=v3'), 'v1', 'v3 not serving: the default');
  t.is(checked(new RouteCheck(settings({ serving: ['v2'] }), 'v2'), '/?version=v3'), null, 'neither v3 nor the default serving');
  t.is(checked(new RouteCheck(settings({ serving: ['v2'] }), 'v1'), '/?version=v3'), 'v1', 'this worker is the default');
});

test('a later request whose routing values equal the previous one\'s gets its answer again; any change, or new settings, runs the rules', (t) => {
  const routing = { default: 'v1', rules: [{ source: 'query' as const, name: 'version' }, { source: 'cookie' as const, name: 'version' }], weights: [['v1', 50], ['v2', 50]] as Array<[string, number]>, sticky: { key: { source: 'header' as const, name: 'x-user' }, cookie: null }, versionCookie: null };
  const route = new RouteCheck(settings({ routing }), 'v1');
  const memo = emptyRouteMemo();
  const later = (url: string, headers: Record<string, string> = {}) => route.versionForLater({ url, method: 'GET', headers, socket: { remoteAddress: '127.0.0.1' } } as unknown as http.IncomingMessage, memo);
  const fresh = (url: string, headers: Record<string, string> = {}) => checked(route, url, headers);
  const sequence: Array<[string, Record<string, string>]> = [
    ['/a?version=v2', {}], ['/b?version=v2', {}], ['/b?version=v3', {}], ['/b?version=v1', {}], ['/b', {}], ['/c', {}],
    ['/c', { cookie: 'version=v2' }], ['/d', { cookie: 'version=v2' }], ['/d', { cookie: 'version=v1' }],
    ...Array.from({ length: 20 }, (_, index): [string, Record<string, string>] => ['/u', { 'x-user': `user-${index % 7}` }]),
    ['/?version=v2x', {}], ['/?version=v2', { 'x-user': 'user-1' }],
  ];
  for (const [url, headers] of sequence) t.is(later(url, headers), fresh(url, headers), `${url} ${JSON.stringify(headers)}`);
  const notServing = new RouteCheck(settings({ routing, serving: ['v1'] }), 'v1');
  const request = { url: '/?version=v2', method: 'GET', headers: {}, socket: { remoteAddress: '127.0.0.1' } } as unknown as http.IncomingMessage;
  const fallbackMemo = emptyRouteMemo();
  t.is(notServing.versionForLater(request, fallbackMemo), 'v1', 'v2 not serving: the default');
  t.is(new RouteCheck(settings({ routing }), 'v1').versionForLater(request, fallbackMemo), 'v2', 'new settings: the rules run again');
});

test('a later request from a client without a key, when sticky.cookie is set, gets a weighted pick and a cookie of its own; one with a key is remembered as before', (t) => {
  const weights: Array<[string, number]> = [['v1', 50], ['v2', 50]];
  const routing = { default: 'v1', rules: [], weights, sticky: { key: { source: 'cookie' as const, name: 'uid' }, cookie: 'gc' }, versionCookie: null };
  const route = new RouteCheck(settings({ routing }), 'v1');
  const memo = emptyRouteMemo();
  const later = (headers: Record<string, string> = {}) => route.versionForLater({ url: '/', method: 'GET', headers, socket: { remoteAddress: '127.0.0.1' } } as unknown as http.IncomingMessage, memo);
  const picks = Array.from({ length: 200 }, () => ({ version: later(), cookie: memo.assignCookie }));
  t.deepEqual([...new Set(picks.map((pick) => pick.version))].sort(), ['v1', 'v2'], 'both versions picked: not the connection\'s');
  t.is(new Set(picks.map((pick) => pick.cookie)).size, picks.length, 'every client its own cookie');
  t.deepEqual(picks.filter((pick) => versionForHash(stickyHash(pick.cookie ?? ''), weights) !== pick.version), [], 'each cookie keeps its client on its pick');
  const keyed = later({ cookie: 'uid=alice' });
  t.is(keyed, versionForHash(stickyHash('alice'), weights) ?? null);
  t.is(memo.assignCookie, undefined, 'a client with a key gets no cookie');
  const unserved = new RouteCheck(settings({ routing, serving: ['v1'] }), 'v1');
  t.true(Array.from({ length: 50 }, () => unserved.versionForLater({ url: '/', method: 'GET', headers: {}, socket: {} } as unknown as http.IncomingMessage, emptyRouteMemo())).every((version) => version === 'v1'), 'a pick with no ready worker stays here');
});

test('a routing check reads the client\'s address only for an ip sticky key, and then through trusted proxies', (t) => {
  let reads = 0;
  const socket = { get remoteAddress() { reads++; return '10.0.0.1'; } };
  const request = (url: string, headers: Record<string, string> = {}) => ({ url, method: 'GET', headers, socket }) as unknown as http.IncomingMessage;
  const byQuery = new RouteCheck(settings(), 'v1');
  t.is(byQuery.versionForLater(request('/?version=v2'), emptyRouteMemo()), 'v2');
  t.is(byQuery.versionForLater(request('/?version=v3'), emptyRouteMemo()), 'v3');
  t.is(reads, 0, 'routing by query: the address is never asked for (it costs a system call)');
  const weights: Array<[string, number]> = [['v1', 50], ['v2', 50]];
  const byAddress = new RouteCheck(settings({ routing: { default: 'v1', rules: [], weights, sticky: { key: { source: 'ip' }, cookie: null }, versionCookie: null }, trustProxy: ['10.0.0.0/8'] }), 'v1');
  const direct = byAddress.versionForLater(request('/'), emptyRouteMemo());
  t.is(reads, 1);
  const sameClient = Array.from({ length: 8 }, () => byAddress.versionForLater(request('/'), emptyRouteMemo()));
  t.deepEqual(sameClient, Array(8).fill(direct), 'one client, one version');
  const viaProxy = Array.from({ length: 64 }, (_, index) => byAddress.versionForLater(request('/', { 'x-forwarded-for': `192.0.2.${index}` }), emptyRouteMemo()));
  t.true(viaProxy.includes('v1') && viaProxy.includes('v2'), 'behind a trusted proxy the forwarded clients spread over both versions');
});

test('forwarding headers are found among the raw headers whatever their case, and nothing else counts', (t) => {
  for (const name of ['Forwarded', 'X-Forwarded-For', 'x-forwarded-host', 'X-FORWARDED-PROTO', 'x-Forwarded-Port', 'X-Real-IP']) {
    t.true(hasForwardingHeaders(['Host', 'a', name, 'b']), name);
  }
  t.false(hasForwardingHeaders([]));
  t.false(hasForwardingHeaders(['Host', 'x-forwarded-for', 'X-Forwarded-Fo', 'x', 'X-Forwarded-Forr', 'x', 'Forwarder', 'x', 'x-real-ips', 'x']), 'names of the same length or values do not count');
});

test('stats count status classes and latency buckets, and a snapshot copies them', (t) => {
  t.is(statusClassOf(101), '1xx');
  t.is(statusClassOf(503), '5xx');
  t.is(statusClassOf(0), '1xx');
  t.is(statusClassOf(999), '5xx');
  t.is(latencyBucketOf(0), 0);
  t.is(latencyBucketOf(5), 0);
  t.is(latencyBucketOf(5.1), 1);
  t.is(latencyBucketOf(1e9), 11);
  const stats = new RequestStats();
  stats.record(200, 3);
  stats.record(404, 30);
  const snapshot = stats.snapshot({ inFlight: 2, connections: 3 });
  stats.record(500, 3);
  t.is(snapshot.requests, 2);
  t.deepEqual(snapshot.statusClasses, { '1xx': 0, '2xx': 1, '3xx': 0, '4xx': 1, '5xx': 0 });
  t.is(snapshot.latencyBuckets[0], 1);
  t.is(snapshot.latencyBuckets[3], 1);
  t.is(snapshot.latencySumMs, 33);
  t.is(snapshot.inFlight, 2);
  t.is(snapshot.connections, 3);
});

test('trustProxy ranges: addresses and CIDRs of both families, IPv4-mapped clients included; bad ones rejected by name', (t) => {
  t.deepEqual(parseAddressRange('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 'ipv4' });
  t.is(parseAddressRange('10.0.0.0/33'), undefined);
  t.is(parseAddressRange('10.0.0/8'), undefined);
  t.is(parseAddressRange('fd00::/129'), undefined);
  const trusted = addressMatcher(['10.0.0.0/8', '::1', '192.168.1.7']);
  t.true(trusted('10.1.2.3'));
  t.true(trusted('::ffff:10.1.2.3'));
  t.true(trusted('::1'));
  t.true(trusted('192.168.1.7'));
  t.false(trusted('192.168.1.8'));
  t.false(trusted(undefined));
  t.false(trusted('not an address'));
  const raw = { versions: { v1: { entry: 'app.js' } }, routing: { default: 'v1' }, server: { trustProxy: ['127.0.0.1', '10.0.0.0/40'] } };
  t.throws(() => resolveConfig('/srv/graycluster.json', raw), { message: /server\.trustProxy\[1\] "10\.0\.0\.0\/40" is not an IP address or CIDR range/ });
  t.deepEqual(resolveConfig('/srv/graycluster.json', { ...raw, server: {} }).server.trustProxy, false);
});

test('forwarded headers leave out hop-by-hop ones, those Connection names, and a client\'s copy of the private header', (t) => {
  const raw = ['Host', 'a', 'Connection', 'keep-alive, X-Secret', 'X-Secret', '1', 'Keep-Alive', 'timeout=5', 'Upgrade', 'websocket', 'X-Graycluster-Client', '6.6.6.6 1', 'Accept', '*/*'];
  t.deepEqual(endToEnd(raw), ['Host', 'a', 'Accept', '*/*']);
  t.deepEqual(endToEnd(raw, true), ['Host', 'a', 'Upgrade', 'websocket', 'Accept', '*/*', 'connection', 'upgrade']);
});

test('a connection from the primary reaches the app with the bytes the primary read in front of the rest: Node\'s HTTP server, and an app that reads its sockets itself, later', async (t) => {
  // The primary read the head's first bytes; the client sends the rest. A plain net.Server app that starts reading a
  // socket only a while after taking it must find the head whole, and in order, as Node's HTTP parser does.
  const lateReader = net.createServer((socket) => {
    setTimeout(() => {
      let text = '';
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
        if (text.endsWith('\r\n\r\n')) socket.end(`HTTP/1.1 200 OK\r\nContent-Length: ${text.length}\r\nConnection: close\r\n\r\n${text}`);
      });
    }, 50);
  });
  const echoHead = http.createServer((req, res) => res.end(`${req.method} ${req.url} ${req.headers['x-rest']}`));
  for (const [app, expected] of [[echoHead, 'GET /first x'], [lateReader, 'GET /first HTTP/1.1\r\nHost: a\r\nX-Rest: x\r\n\r\n']] as const) {
    const { runtime } = await harness(t, 'v1', app);
    runtime.applySettings(settings());
    const front = net.createServer();
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    t.teardown(() => front.close());
    acceptBareHandles(front, (handle) => runtime.receive({ kind: 'connection', bytes: Buffer.from('GET /first HTTP/1.1\r\nHost: a\r\n').toString('base64') }, handle));
    const client = await RawConnection.connect((front.address() as net.AddressInfo).port);
    t.teardown(() => client.close());
    client.send('X-Rest: x\r\n\r\n');
    const answer = await client.readResponse();
    t.is(answer.status, 200);
    t.is(answer.body.toString('latin1'), expected);
  }
});

test('the runtime counts a request in flight while the app runs it, and sheds past maxInFlight with 503 and a load report', async (t) => {
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  const { runtime, sent, url } = await harness(t, 'v1', (_req, res) => void held.then(() => res.end('done')), { maxInFlight: 1 });
  runtime.applySettings(settings());
  const first = request(url('/'));
  await until(() => runtime.inFlight === 1, 'the first request in flight');
  t.deepEqual(sent, [{ kind: 'load', inFlight: 1 }]);
  const second = await request(url('/'));
  t.is(second.status, 503);
  t.is(second.headers['retry-after'], '1');
  release();
  t.is((await first).text, 'done');
  t.is((await first).headers['x-graycluster-version'], 'v1');
  await until(() => runtime.inFlight === 0, 'the first request done');
  const snapshot = runtime.snapshot();
  t.is(snapshot.shed, 1);
  t.is(snapshot.statusClasses['2xx'], 1);
  t.deepEqual(sent.at(-1), { kind: 'load', inFlight: 0 });
});

// Serial, so it runs before the others: it holds this process up.
test.serial('draining, a request that came while this process was held up is answered, not cut off as idle: the stall does not count toward the grace', async (t) => {
  const graceMs = 200;
  const { runtime, port } = await harness(t, 'v1', whoAnswers('v1'), { drainIdleGraceMs: graceMs });
  const client = await RawConnection.connect(port);
  t.teardown(() => client.close());
  client.send('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
  t.is((await client.readResponse()).status, 200);
  runtime.startDrain();
  client.send('GET / HTTP/1.1\r\nHost: a\r\n\r\n');  // In the server socket's buffer at once; read once this loop runs.
  holdUp(graceMs + stallMs + 200);
  const answer = await client.readResponse();
  t.is(answer.status, 200);
  t.is(answer.headers.connection, 'close', 'and then closed: it drains');
});

test('draining closes a keep-alive connection once it has been idle for the grace period, then exits 0', async (t) => {
  const graceMs = 60_000;
  const { runtime, exits, url } = await harness(t, 'v1', whoAnswers('v1'), { drainIdleGraceMs: graceMs });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  await request(url('/'), { agent });
  t.is(runtime.connections, 1);
  runtime.startDrain();
  t.true(runtime.draining);
  runtime.closeIdleConnections();
  t.is(runtime.connections, 1, 'an idle connection is kept for the grace period');
  t.deepEqual(exits, []);
  runtime.closeIdleConnections(performance.now() + graceMs);
  await until(() => runtime.connections === 0, 'the idle connection closed');
  t.deepEqual(exits, [0]);
});

test('in place, an untrusted client\'s forwarding headers never reach the app; a trusted proxy\'s do', async (t) => {
  const { runtime, url } = await harness(t, 'v1', whoAnswers('v1'));
  runtime.applySettings(settings());
  const spoofed = await request(url('/'), { headers: { 'x-forwarded-for': '203.0.113.9' } });
  t.is(spoofed.body.forwardedFor, null);
  t.is(spoofed.body.remoteAddress, '127.0.0.1');
  runtime.applySettings(settings({ trustProxy: ['127.0.0.1'] }));
  const proxied = await request(url('/'), { headers: { 'x-forwarded-for': '203.0.113.9' } });
  t.is(proxied.body.forwardedFor, '203.0.113.9');
});

test('a request forwarded to another runtime reaches its app with the client\'s address', async (t) => {
  const v2 = await harness(t, 'v2', whoAnswers('v2'));
  const v1 = await harness(t, 'v1', whoAnswers('v1'));
  v1.runtime.applySettings(settings({ forwardPaths: { v2: [v2.runtime.forwardPath] } }));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  t.is((await request(v1.url('/'), { agent })).body.version, 'v1');
  const forwarded = await request(v1.url('/?version=v2'), { agent, headers: { 'x-graycluster-client': '6.6.6.6 1' } });
  t.deepEqual(forwarded.body, { version: 'v2', remoteAddress: '127.0.0.1', forwardedFor: null });
  t.is(v1.runtime.snapshot().forwarded, 1);
});

test('a connection that carries two versions reports its peer to the primary: once per connection, and per peer at most every 10 s', async (t) => {
  const v2 = await harness(t, 'v2', whoAnswers('v2'));
  const v1 = await harness(t, 'v1', whoAnswers('v1'));
  v1.runtime.applySettings(settings({ forwardPaths: { v2: [v2.runtime.forwardPath] } }));
  const reports = () => v1.sent.filter((message) => message.kind === 'shared-peer');
  const [one, other] = await sharedConnections(t, v1, 2);
  await request(v1.url('/?version=v1'), { agent: one });
  t.deepEqual(reports(), [], 'requests of its own version only: nothing to report');
  for (const target of ['/?version=v2', '/?version=v1', '/?version=v2']) await request(v1.url(target), { agent: one });
  t.deepEqual(reports(), [{ kind: 'shared-peer', address: '127.0.0.1' }]);
  await request(v1.url('/?version=v2'), { agent: other });
  t.is(reports().length, 1, 'the same peer, within 10 s: not again');
  t.is(v2.sent.filter((message) => message.kind === 'shared-peer').length, 0, 'the worker that serves relayed requests reports nothing');
});

test('a connection placed for its peer\'s sake has its first request routed here too, an upgrade as well; handed back, it says so', async (t) => {
  const v2 = await harness(t, 'v2', whoAnswers('v2'));
  const v1 = await harness(t, 'v1', whoAnswers('v1'));
  v1.runtime.applySettings(settings({ forwardPaths: { v2: [v2.runtime.forwardPath] } }));
  const front = net.createServer((socket) => v1.runtime.admit(socket, { forwarded: false, routeFirst: true }));
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  t.teardown(() => front.close());
  const port = (front.address() as net.AddressInfo).port;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  t.is((await request(`http://127.0.0.1:${port}/?version=v2`, { agent })).body.version, 'v2');
  t.is((await request(`http://127.0.0.1:${port}/?version=v1`, { agent })).body.version, 'v1');
  t.is(v1.runtime.snapshot().forwarded, 1);
  t.deepEqual(v1.sent.filter((message) => message.kind === 'shared-peer'), [{ kind: 'shared-peer', address: '127.0.0.1' }], 'v2 then v1: two versions');

  // One user's connection placed here for its peer's sake: its fourth request of one other version closes it, and
  // the primary hears that this peer's connections are not all pooled.
  const single = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => single.destroy());
  const answers = [];
  for (let count = 0; count < 4; count++) answers.push(await request(`http://127.0.0.1:${port}/?version=v2`, { agent: single }));
  t.deepEqual(answers.map((answer) => [answer.body.version, answer.headers.connection]), [['v2', 'keep-alive'], ['v2', 'keep-alive'], ['v2', 'keep-alive'], ['v2', 'close']]);
  t.deepEqual(v1.sent.filter((message) => message.kind === 'unpooled-peer'), [{ kind: 'unpooled-peer', address: '127.0.0.1' }]);

  // Without settings, such a first request cannot be routed: 503, never this worker's app.
  const unset = await harness(t, 'v1', () => t.fail('the app got a first request it could not be sure was its own'));
  const bare = net.createServer((socket) => unset.runtime.admit(socket, { forwarded: false, routeFirst: true }));
  await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
  t.teardown(() => bare.close());
  const unrouted = await request(`http://127.0.0.1:${(bare.address() as net.AddressInfo).port}/`);
  t.is(unrouted.status, 503);
});

test('while another version leads among pooled connections, a pooled connection held here closes after its answer, relayed or not; others stay', async (t) => {
  const v2 = await harness(t, 'v2', whoAnswers('v2'));
  const v1 = await harness(t, 'v1', whoAnswers('v1'));
  const open = async () => {
    const connection = await RawConnection.connect(v2.port, 5000);
    t.teardown(() => connection.close());
    connection.send('GET /?version=v2 HTTP/1.1\r\nHost: a\r\n\r\n');
    await connection.readResponse();
    return connection;
  };
  v2.runtime.applySettings(settings({ forwardPaths: { v1: [v1.runtime.forwardPath] } }));
  const pooled = await open();
  const single = await open();
  pooled.send('GET /?version=v1 HTTP/1.1\r\nHost: a\r\n\r\n');
  const before = await pooled.readResponse();
  t.is(JSON.parse(before.body.toString()).version, 'v1');
  t.is(before.headers.connection, 'keep-alive', 'no version leads yet: it stays');

  v2.runtime.applySettings(settings({ forwardPaths: { v1: [v1.runtime.forwardPath] }, sharedLeading: 'v2' }));
  pooled.send('GET /?version=v1 HTTP/1.1\r\nHost: a\r\n\r\n');
  t.is((await pooled.readResponse()).headers.connection, 'keep-alive', 'its own version leads: it stays');
  const servedHere = await open();
  servedHere.send('GET /?version=v1 HTTP/1.1\r\nHost: a\r\n\r\n');
  await servedHere.readResponse();

  v2.runtime.applySettings(settings({ forwardPaths: { v1: [v1.runtime.forwardPath] }, sharedLeading: 'v1' }));
  single.send('GET /?version=v2 HTTP/1.1\r\nHost: a\r\n\r\n');
  t.is((await single.readResponse()).headers.connection, 'keep-alive', 'a connection that never carried two versions stays');
  pooled.send('GET /?version=v1 HTTP/1.1\r\nHost: a\r\n\r\n');
  const relayed = await pooled.readResponse();
  t.is(JSON.parse(relayed.body.toString()).version, 'v1');
  t.is(relayed.headers.connection, 'close', 'a relayed answer closes it');
  t.is((await pooled.readToEnd()).length, 0);
  servedHere.send('GET /?version=v2 HTTP/1.1\r\nHost: a\r\n\r\n');
  const inPlace = await servedHere.readResponse();
  t.is(JSON.parse(inPlace.body.toString()).version, 'v2');
  t.is(inPlace.headers.connection, 'close', 'so does an answer served here');
  t.is((await servedHere.readToEnd()).length, 0);
});

test('relayed upgrades count against forwardMaxPending while their tunnel is open: past it 503, after it closes again', async (t) => {
  // Node hands an upgrade's socket over only to a server with an 'upgrade' listener: both apps have one.
  const echoTunnel = (_req: http.IncomingMessage, socket: net.Socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n');
    socket.on('data', (data) => socket.write(data));
  };
  const v2 = await harness(t, 'v2', http.createServer(whoAnswers('v2')).on('upgrade', echoTunnel));
  const v1 = await harness(t, 'v1', http.createServer(whoAnswers('v1')).on('upgrade', () => t.fail('v1 took an upgrade for v2')));
  v1.runtime.applySettings(settings({ forwardPaths: { v2: [v2.runtime.forwardPath] }, forwardMaxPending: 1 }));
  const upgradeOnSharedConnection = async () => {
    const connection = await RawConnection.connect(v1.port, 5000);
    t.teardown(() => connection.close());
    connection.send('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    await connection.readResponse();
    connection.send('GET /?version=v2 HTTP/1.1\r\nHost: a\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n');
    return { connection, answer: await connection.readHead() };
  };
  const open = await upgradeOnSharedConnection();
  t.is(open.answer.status, 101);
  open.connection.send('ping');
  t.is((await open.connection.readBytes(4)).toString(), 'ping', 'the tunnel carries bytes both ways');
  const refused = await upgradeOnSharedConnection();
  t.is(refused.answer.status, 503);
  t.is(v1.runtime.snapshot().forwardShed, 1);
  open.connection.close();
  await until(() => v1.runtime.forwards.pending === 0, 'the tunnel counted closed');
  t.is((await upgradeOnSharedConnection()).answer.status, 101);
});

/** `count` client connections to `front`, each handed to its version by a first request answered in place. */
async function sharedConnections(t: ExecutionContext, front: Harness, count: number): Promise<http.Agent[]> {
  const agents = Array.from({ length: count }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  t.teardown(() => agents.forEach((agent) => agent.destroy()));
  await Promise.all(agents.map((agent) => request(front.url('/'), { agent })));
  return agents;
}

/** An app that holds each /hold request until `release()`; other paths answer at once. */
function holdingApp(version: string) {
  const held: Array<() => void> = [];
  const app: http.RequestListener = (req, res) => {
    if (req.url?.startsWith('/hold')) held.push(() => res.end(`${version} released`));
    else whoAnswers(version)(req, res);
  };
  return { app, held, release: () => held.splice(0).forEach((answer) => answer()) };
}

test('relay connections: past relayMaxIdlePerTarget idle ones are closed at once, the rest after relayIdleTimeoutMs', async (t) => {
  const target = holdingApp('v2');
  const v2 = await harness(t, 'v2', target.app);
  const v1 = await harness(t, 'v1', whoAnswers('v1'));
  v1.runtime.applySettings(settings({ forwardPaths: { v2: [v2.runtime.forwardPath] }, relayMaxIdlePerTarget: 2, relayIdleTimeoutMs: 300 }));
  const agents = await sharedConnections(t, v1, 5);
  const relayed = agents.map((agent) => request(v1.url('/hold?version=v2'), { agent }));
  await until(() => target.held.length === 5, 'five requests relayed at once');
  t.is(v2.runtime.connections, 5, 'one relay connection per request under way');
  target.release();
  t.deepEqual((await Promise.all(relayed)).map((reply) => reply.text), Array(5).fill('v2 released'));
  await until(() => v2.runtime.connections === 2, 'the relay connections past the idle limit closed');
  t.is(v1.runtime.relay.idleConnections(v2.runtime.forwardPath), 2);
  t.is((await request(v1.url('/?version=v2'), { agent: agents[0] })).body.version, 'v2', 'an idle connection is reused');
  t.is(v2.runtime.connections, 2);
  await until(() => v2.runtime.connections === 0 && v1.runtime.relay.idleConnections() === 0, 'idle relay connections closed after the idle timeout');
  t.is((await request(v1.url('/?version=v2'), { agent: agents[1] })).body.version, 'v2', 'a new one opens when needed');
});

test('relayed requests past forwardMaxPending get 503 with Retry-After and count in forwardShed', async (t) => {
  const target = holdingApp('v2');
  const v2 = await harness(t, 'v2', target.app);
  const v1 = await harness(t, 'v1', whoAnswers('v1'));
  v1.runtime.applySettings(settings({ forwardPaths: { v2: [v2.runtime.forwardPath] }, forwardMaxPending: 2 }));
  const agents = await sharedConnections(t, v1, 3);
  const relayed = agents.slice(0, 2).map((agent) => request(v1.url('/hold?version=v2'), { agent }));
  await until(() => target.held.length === 2, 'two requests relayed');
  const refused = await request(v1.url('/hold?version=v2'), { agent: agents[2] });
  t.is(refused.status, 503);
  t.is(refused.headers['retry-after'], '1');
  t.regex(refused.text, /more than 2 forwarded requests under way/);
  t.is(v1.runtime.snapshot().forwardShed, 1);
  target.release();
  await Promise.all(relayed);
  await until(() => v1.runtime.forwards.pending === 0, 'the relays counted done');
  t.is((await request(v1.url('/?version=v2'), { agent: agents[2] })).body.version, 'v2', 'below the limit again');
});

test('a relay connection that fails before any answer byte gets 502; one that fails mid-answer closes the client connection', async (t) => {
  const v2 = await harness(t, 'v2', (req, res) => {
    if (req.url?.startsWith('/vanish')) req.socket.destroy();
    else if (req.url?.startsWith('/half')) {
      res.writeHead(200, { 'content-length': '100' });
      res.write('only part', () => req.socket.destroy());
    } else whoAnswers('v2')(req, res);
  });
  const v1 = await harness(t, 'v1', whoAnswers('v1'));
  v1.runtime.applySettings(settings({ forwardPaths: { v2: [v2.runtime.forwardPath], v3: [path.join(os.tmpdir(), 'graycluster-no-such-worker.sock')] } }));
  const [agent] = await sharedConnections(t, v1, 1);
  const vanished = await request(v1.url('/vanish?version=v2'), { agent: agent!, method: 'POST', body: 'not retried' });
  t.is(vanished.status, 502);
  t.regex(vanished.text, /closed the connection before its answer ended/);
  const unreachable = await request(v1.url('/?version=v3'), { agent: agent! });
  t.is(unreachable.status, 502, 'a worker whose socket is gone');
  t.is((await request(v1.url('/?version=v2'), { agent: agent! })).body.version, 'v2', 'the client connection goes on after a 502');
  await t.throwsAsync(request(v1.url('/half?version=v2'), { agent: agent! }), undefined, 'a truncated answer never looks complete');
  t.is((await request(v1.url('/'))).body.version, 'v1', 'other connections are untouched');
  await until(() => v1.runtime.forwards.pending === 0, 'nothing left counted');
});

test('a request without a body whose pooled relay connection closes before any answer byte goes once more on a new connection; a POST, or a second failure, gets 502', async (t) => {
  // The target closes a pooled connection as a request arrives on it, as its keep-alive timer may while the request
  // is on its way; on a connection of its own the request is answered, except /vanish, which fails everywhere.
  const seen: string[] = [];
  const served = new WeakSet<net.Socket>();
  const v2 = await harness(t, 'v2', (req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const pooled = served.has(req.socket);
    served.add(req.socket);
    if (req.url?.startsWith('/vanish') || (req.url?.startsWith('/race') && pooled)) req.socket.destroy();
    else whoAnswers('v2')(req, res);
  });
  const v1 = await harness(t, 'v1', whoAnswers('v1'));
  v1.runtime.applySettings(settings({ forwardPaths: { v2: [v2.runtime.forwardPath] } }));
  const [agent] = await sharedConnections(t, v1, 1);
  const warm = async () => t.is((await request(v1.url('/?version=v2'), { agent: agent! })).body.version, 'v2');

  await warm();
  const raced = await request(v1.url('/race?version=v2'), { agent: agent! });
  t.is(raced.status, 200);
  t.is(raced.body.version, 'v2', 'answered by its version on a new connection');
  t.deepEqual(seen.splice(0), ['GET /?version=v2', 'GET /race?version=v2', 'GET /race?version=v2']);

  const posted = await request(v1.url('/race?version=v2'), { agent: agent!, method: 'POST', body: 'sent once' });
  t.is(posted.status, 502, 'a POST is never sent twice');
  t.deepEqual(seen.splice(0), ['POST /race?version=v2']);

  await warm();
  const vanished = await request(v1.url('/vanish?version=v2'), { agent: agent!, method: 'DELETE' });
  t.is(vanished.status, 502, 'a request whose new connection fails too');
  t.regex(vanished.text, /closed the connection before its answer ended/);
  t.deepEqual(seen.splice(0), ['GET /?version=v2', 'DELETE /vanish?version=v2', 'DELETE /vanish?version=v2'], 'sent twice, not more');

  await warm();
  await until(() => v1.runtime.forwards.pending === 0, 'nothing left counted');
  t.is(v1.runtime.snapshot().forwarded, 6, 'each request counted once');
});

test('a relayed request sent again after its pooled connection closed goes to another worker of its version when there is one', async (t) => {
  const seen: string[] = [];
  const served = new WeakSet<net.Socket>();
  // The first v2 worker closes a pooled connection as a request arrives on it (it drains, say); the second answers.
  const closing = await harness(t, 'v2', (req, res) => {
    seen.push(`closing ${req.url}`);
    const pooled = served.has(req.socket);
    served.add(req.socket);
    if (pooled) req.socket.destroy();
    else whoAnswers('v2')(req, res);
  });
  const other = await harness(t, 'v2', (req, res) => {
    seen.push(`other ${req.url}`);
    whoAnswers('v2')(req, res);
  });
  const v1 = await harness(t, 'v1', whoAnswers('v1'));
  v1.runtime.applySettings(settings({ forwardPaths: { v2: [closing.runtime.forwardPath] } }));
  const [agent] = await sharedConnections(t, v1, 1);
  t.is((await request(v1.url('/warm?version=v2'), { agent: agent! })).body.version, 'v2');
  // Both workers now; the relay's turn falls on the first, over the connection it keeps to it.
  v1.runtime.applySettings(settings({ forwardPaths: { v2: [other.runtime.forwardPath, closing.runtime.forwardPath] } }));
  const raced = await request(v1.url('/race?version=v2'), { agent: agent! });
  t.is(raced.status, 200);
  t.is(raced.body.version, 'v2');
  t.deepEqual(seen, ['closing /warm?version=v2', 'closing /race?version=v2', 'other /race?version=v2']);
});

test('connections from clients and from other workers\' forwarders report their clients and share one hidden class', async (t) => {
  // Run with V8's natives syntax, to ask V8 itself. A hidden class per connection (an accessor with a closure of
  // its own), or one per way of learning the peer, made Node's net and HTTP code generic for every connection.
  const module = (file: string) => JSON.stringify(pathToFileURL(path.resolve(import.meta.dirname, file)).href);
  const script = `
    import { mkdtempSync, rmSync } from 'node:fs';
    import http from 'node:http';
    import net from 'node:net';
    import os from 'node:os';
    import path from 'node:path';
    const { applyForwardedClient } = await import(${module('../src/worker/client-address.js')});
    const { reservePeerSlot } = await import(${module('../src/shared/node-internals.js')});
    const sockets = [];
    const app = http.createServer((req, res) => {
      const forwarded = req.headers['x-graycluster-client'] !== undefined;
      if (forwarded) applyForwardedClient(req);
      sockets.push(req.socket);
      // A client connection's peer is asked of the kernel, or never (most apps do not read it).
      const peer = forwarded || req.url === '/peer' ? \`\${req.socket.remoteAddress} \${req.socket.remotePort} \${req.socket.remoteFamily}\` : 'not asked';
      res.end(\`\${peer} \${req.headers['x-graycluster-client'] ?? 'gone'}\`);
    });
    // As the worker runtime admits every connection, the primary's and the forwarders' alike.
    const admit = (socket) => {
      reservePeerSlot(socket);
      app.emit('connection', socket);
    };
    const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-peer-'));
    const forwards = net.createServer(admit);
    const clients = net.createServer(admit);
    await new Promise((resolve) => forwards.listen(path.join(folder, 'forward.sock'), resolve));
    await new Promise((resolve) => clients.listen(0, '127.0.0.1', resolve));
    const ask = (target, url, client) => new Promise((resolve, reject) => {
      const socket = net.connect(target);
      let text = '';
      socket.on('data', (chunk) => (text += chunk)).on('end', () => resolve(text.slice(text.indexOf('\\r\\n\\r\\n') + 4))).on('error', reject);
      socket.end(\`GET \${url} HTTP/1.1\\r\\nHost: a\\r\\nConnection: close\\r\\n\${client ? \`x-graycluster-client: \${client}\\r\\n\` : ''}\\r\\n\`);
    });
    const forwardedClient = (index) => (index % 2 ? \`10.0.\${index >> 8}.\${index & 255} \${1000 + index}\` : \`::\${index} \${1000 + index}\`);
    const answers = [];
    for (let index = 0; index < 300; index++) {
      const kind = index % 3;
      if (kind === 0) answers.push(await ask(path.join(folder, 'forward.sock'), '/', forwardedClient(index)));
      else answers.push(await ask({ port: clients.address().port, host: '127.0.0.1' }, kind === 1 ? '/peer' : '/', undefined));
    }
    forwards.close();
    clients.close();
    rmSync(folder, { recursive: true, force: true });
    const expected = (index) => {
      const kind = index % 3;
      if (kind === 0) return \`\${forwardedClient(index)} \${index % 2 ? 'IPv4' : 'IPv6'} gone\`;
      return kind === 1 ? /^127\\.0\\.0\\.1 \\d+ IPv4 gone$/ : /^not asked gone$/;
    };
    console.log(JSON.stringify({
      first: answers.slice(0, 3).map((answer) => answer.replace(/ \\d+ IPv4/, ' <port> IPv4')),
      everyAnswerRight: answers.every((answer, index) => (typeof expected(index) === 'string' ? answer === expected(index) : expected(index).test(answer))),
      hiddenClasses: new Set(sockets.map((socket) => sockets.findIndex((other) => %HaveSameMap(socket, other)))).size,
      fast: sockets.every((socket) => %HasFastProperties(socket)),
    }));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', script], { timeout: 30_000 });
  t.deepEqual(JSON.parse(stdout), {
    first: ['::0 1000 IPv6 gone', '127.0.0.1 <port> IPv4 gone', 'not asked gone'],
    everyAnswerRight: true,
    hiddenClasses: 1,
    fast: true,
  }, 'Node internal changed, or a way of reporting the peer adds a hidden class: net.Socket no longer keeps its peer in _peername (reservePeerSlot, reportPeer)');
});

test('a diagnose request is answered with the same request id: a snapshot written, or the write error named', async (t) => {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-diagnose-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  const { runtime, sent } = await harness(t, 'v1', (_req, res) => res.end('ok'));
  const file = path.join(folder, 'v1.1.heapsnapshot');
  runtime.receive({ kind: 'diagnose', requestId: 7, request: { action: 'heap-snapshot', file } });
  t.deepEqual(sent.at(-1), { kind: 'diagnosed', requestId: 7, answer: { ok: true, file } });
  t.true(Array.isArray(JSON.parse(readFileSync(file, 'utf8')).nodes));

  const underAFile = path.join(file, 'x.heapsnapshot');
  runtime.receive({ kind: 'diagnose', requestId: 8, request: { action: 'heap-snapshot', file: underAFile } });
  const answer = sent.at(-1);
  t.like(answer, { kind: 'diagnosed', requestId: 8, answer: { ok: false } });
  t.regex((answer as { answer: { error: string } }).answer.error, /ENOTDIR/);
});
