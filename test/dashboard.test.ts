import os from 'node:os';
import net from 'node:net';
import test from 'ava';
import WebSocket from 'ws';
import { get, makeConfig, request, startCluster, token } from './helpers/cluster.js';
import { RawConnection } from './helpers/raw-connection.js';
import { eventually, nextMessage, openFeed, parseExposition, refusal } from './dashboard-helpers.js';

const auth = { authorization: `Bearer ${token}` };
const dashboardUrl = (port: number, path: string) => `http://127.0.0.1:${port}${path}`;

/** One version, v1, with extra dashboard options. */
const configWith = (dashboard: Record<string, unknown>) => makeConfig({ v1: {} }, {}, {}, dashboard);

test('without the token: 401 on the API, on /metrics and on the WebSocket, before any handshake', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {} }));
  const port = cluster.dashboardPort;
  for (const path of ['/api/status', '/metrics']) {
    t.is((await get(dashboardUrl(port, path))).status, 401, path);
    t.is((await get(dashboardUrl(port, path), { authorization: 'Bearer wrong-token-0123456789' })).status, 401, path);
  }
  const post = await request(dashboardUrl(port, '/api/rollback'), { method: 'POST', body: '{}' });
  t.is(post.status, 401);
  t.is(post.headers['www-authenticate'], 'Bearer');

  t.is(await refusal(new WebSocket(`ws://127.0.0.1:${port}/ws`)), 401);
  t.is(await refusal(new WebSocket(`ws://127.0.0.1:${port}/ws`, ['graycluster', `graycluster.token.${Buffer.from('wrong').toString('base64url')}`])), 401);
  t.is(await refusal(new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })), 401);

  // The page itself is public (it holds no data), and asks for the token.
  const page = await get(dashboardUrl(port, '/'));
  t.is(page.status, 200);
  t.regex(page.headers['content-security-policy'] as string, /default-src 'none'/);
  t.is((await get(dashboardUrl(port, '/client/app.js'))).status, 200);
});

test('with the token: the feed sends a snapshot, then updates, samples and events', async (t) => {
  const cluster = await startCluster(t, configWith({ feedIntervalMs: 100 }));
  // As a browser does it: the token in a subprotocol; the server answers with the plain one.
  const socket = openFeed(cluster.dashboardPort, { headers: {}, protocols: ['graycluster', `graycluster.token.${Buffer.from(token).toString('base64url')}`] });
  t.teardown(() => socket.terminate());
  const snapshot = await nextMessage(socket);
  t.is(socket.protocol, 'graycluster');
  if (snapshot.type !== 'snapshot') return t.fail(`first message was ${snapshot.type}`);
  t.deepEqual(snapshot.status.workers.map((worker) => worker.id), ['v1.1']);
  t.true(snapshot.events.some((event) => event.type === 'ready'));
  const update = await nextMessage(socket, (message) => message.type === 'update');
  if (update.type !== 'update') return;
  t.true(update.status.workers[0]!.rss > 0);
  t.truthy(update.rates.workers['v1.1']);
  await nextMessage(socket, (message) => message.type === 'sample');

  const pid = update.status.workers[0]!.pid!;
  const crashed = nextMessage(socket, (message) => message.type === 'event' && message.event.type === 'crashed');
  process.kill(pid, 'SIGKILL');
  const event = await crashed;
  if (event.type === 'event') t.is(event.event.pid, pid);
});

test('a foreign Origin is refused with 403, on the WebSocket and on the API; the page\'s own origin is not', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {} }));
  const port = cluster.dashboardPort;
  t.is(await refusal(openFeed(port, { origin: 'http://evil.example' })), 403);
  t.is(await refusal(openFeed(port, { origin: `http://127.0.0.1:${port + 1}` })), 403);
  const own = openFeed(port, { origin: `http://127.0.0.1:${port}` });
  t.teardown(() => own.terminate());
  t.is((await nextMessage(own)).type, 'snapshot');

  const foreign = await request(dashboardUrl(port, '/api/rollback'), { method: 'POST', headers: { ...auth, origin: 'http://evil.example' }, body: '{}' });
  t.is(foreign.status, 403);
  t.is((await get(dashboardUrl(port, '/api/status'), { ...auth, origin: `http://127.0.0.1:${port}` })).status, 200);
});

test('the dashboard binds 127.0.0.1 when the config does not say otherwise', async (t) => {
  const config = makeConfig({ v1: {} });
  const cluster = await startCluster(t, { ...config, dashboard: { port: 0, token } });
  t.regex(cluster.output(), /dashboard and API at http:\/\/127\.0\.0\.1:\d+\//);
  // Not reachable on any other address of this machine.
  const others = Object.values(os.networkInterfaces()).flat().filter((address) => address && address.family === 'IPv4' && !address.internal);
  for (const address of others) {
    const reached = await new Promise<boolean>((resolve) => {
      const socket = net.connect(cluster.dashboardPort, address!.address, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    t.false(reached, `reachable on ${address!.address}`);
  }
  t.is((await get(dashboardUrl(cluster.dashboardPort, '/api/status'), auth)).status, 200);
});

test('the control API answers bad input with 400 naming the field, and passes good input to the controls', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {}, v2: {} }, { weights: { v1: 100, v2: 0 } }));
  const post = (path: string, body: string) => request(dashboardUrl(cluster.dashboardPort, path), { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body });

  const badWeight = await post('/api/weights', '{"weights":{"v1":90,"v2":"ten"}}');
  t.is(badWeight.status, 400);
  t.like(badWeight.body, { ok: false, status: 400 });
  t.regex(badWeight.body.error, /^weights\.v2 must be a whole number/);
  t.is((await post('/api/promote', '{"versoin":"v2"}')).body.error, 'unknown field "versoin": this endpoint takes version');
  t.regex((await post('/api/weights', '{"weights":')).body.error, /not valid JSON/);
  t.is((await post('/api/weights', JSON.stringify({ weights: { v1: 1, pad: 'x'.repeat(20_000) } }))).status, 413);
  // A body announced too long is refused at once, before it comes (a client that then sends little is not waited for).
  const announced = await RawConnection.connect(cluster.dashboardPort, 5000);
  t.teardown(() => announced.close());
  announced.send(`POST /api/weights HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{`);
  t.is((await announced.readResponse()).status, 413);
  // A version the body names that does not exist is bad input, whichever the endpoint.
  for (const [path, body] of [['/api/reload', { version: 'v9' }], ['/api/promote', { version: 'v9' }], ['/api/weights', { weights: { v9: 1 } }]] as const) {
    const unknownVersion = await post(path, JSON.stringify(body));
    t.is(unknownVersion.status, 400, path);
    t.regex(unknownVersion.body.error, /unknown version "v9"/, path);
  }
  t.is((await post('/api/nothing', '{}')).status, 404);
  t.is((await post('/api/nothing', '{bad')).status, 404, 'an unknown endpoint, whatever the body');
  t.is((await get(dashboardUrl(cluster.dashboardPort, '/api/nothing'), auth)).status, 404, 'an unknown endpoint, whatever the method');
  t.is((await get(dashboardUrl(cluster.dashboardPort, '/api/weights'), auth)).status, 405);

  // Good input reaches the controls: the weights are applied, and the answer says what changed.
  const result = await post('/api/weights', '{"weights":{"v1":50,"v2":50}}');
  t.is(result.status, 200, result.text);
  t.true(result.body.ok);
  t.true(result.body.changes.length > 0, 'the answer names the change');
  t.like((await cluster.waitForStatus((status) => status.routing.weights?.v2 === 50)).routing.weights, { v1: 50, v2: 50 });
  // A refusal by the controls comes back as their ControlResult, with its status.
  const unknown = await post('/api/workers/v9.9/restart', '{}');
  t.is(unknown.status, 404);
  t.like(unknown.body, { ok: false, status: 404, error: 'no serving worker "v9.9"' });
});

test('/metrics parses as Prometheus text with the expected series; metricsPublic serves it without the token', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: { workers: 2 }, v2: {} }, { weights: { v1: 90, v2: 10 } }, { statsIntervalMs: 100 }, { metricsPublic: true }));
  await Promise.all(Array.from({ length: 10 }, (_, index) => get(cluster.url(`/who?n=${index}`))));
  await cluster.waitForStatus((status) => status.workers.reduce((sum, worker) => sum + worker.requests, 0) >= 10);
  const response = await get(dashboardUrl(cluster.dashboardPort, '/metrics'));
  t.is(response.status, 200);
  t.regex(response.headers['content-type'] as string, /^text\/plain; version=0\.0\.4/);
  const families = parseExposition(response.text);
  const expected = {
    graycluster_worker_rss_bytes: 'gauge',
    graycluster_worker_heap_used_bytes: 'gauge',
    graycluster_worker_in_flight_requests: 'gauge',
    graycluster_worker_requests_total: 'counter',
    graycluster_worker_restarts_total: 'counter',
    graycluster_worker_request_duration_seconds: 'histogram',
    graycluster_worker_forwarded_total: 'counter',
    graycluster_worker_shed_total: 'counter',
    graycluster_version_workers_ready: 'gauge',
    graycluster_version_weight: 'gauge',
    graycluster_router_handed_off_total: 'counter',
    graycluster_dashboard_clients: 'gauge',
  };
  for (const [name, type] of Object.entries(expected)) t.is(families.get(name)?.type, type, name);
  const rss = families.get('graycluster_worker_rss_bytes')!.samples;
  t.deepEqual(rss.map((sample) => sample.labels.worker).sort(), ['v1.1', 'v1.2', 'v2.1']);
  t.true(rss.every((sample) => sample.value > 0));
  const answered = families.get('graycluster_worker_requests_total')!.samples.filter((sample) => sample.labels.class === '2xx').reduce((sum, sample) => sum + sample.value, 0);
  t.true(answered >= 10);
  const counts = families.get('graycluster_worker_request_duration_seconds')!.samples.filter((sample) => sample.name.endsWith('_count'));
  t.is(counts.reduce((sum, sample) => sum + sample.value, 0), answered);
});

test('past maxClients a WebSocket gets 503; a client sending more than maxPayload is cut off', async (t) => {
  const cluster = await startCluster(t, configWith({ maxClients: 2 }));
  const port = cluster.dashboardPort;
  const first = openFeed(port);
  const second = openFeed(port);
  t.teardown(() => {
    first.terminate();
    second.terminate();
  });
  await Promise.all([nextMessage(first), nextMessage(second)]);
  t.is(await refusal(openFeed(port)), 503);

  const closed = new Promise<number>((resolve) => first.once('close', (code) => resolve(code)));
  first.send('x'.repeat(64 * 1024));
  t.is(await closed, 1009);  // Message too big.
  // Its place is free again.
  await eventually(async () => {
    const third = openFeed(port);
    const admitted = await new Promise<boolean>((resolve) => {
      third.once('open', () => resolve(true));
      third.once('unexpected-response', (_req, res) => {
        res.resume();
        resolve(false);
      });
      third.once('error', () => resolve(false));
    });
    third.terminate();
    return admitted;
  }, 'a third client is let in');
  t.pass();
});
