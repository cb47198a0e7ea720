import net from 'node:net';
import test from 'ava';
import { fixture, get, makeConfig, request, startCluster, startProcess } from './helpers/cluster.js';

test('unmodified Express and Fastify apps run as versions, bodies and all', async (t) => {
  const cluster = await startCluster(t, makeConfig(
    { express: { entry: fixture('express-app.cjs') }, fastify: { entry: fixture('fastify-app.mjs') } },
    { rules: [{ header: 'x-version' }] },
  ));
  for (const framework of ['express', 'fastify']) {
    const who = await get(cluster.url('/who'), { 'x-version': framework });
    t.like(who.body, { framework, version: framework });
    t.is(who.headers['x-graycluster-version'], framework);
    const posted = await request(cluster.url('/json'), {
      method: 'POST', headers: { 'x-version': framework, 'content-type': 'application/json' }, body: JSON.stringify({ hello: 'world' }),
    });
    t.deepEqual(posted.body, { framework, got: { hello: 'world' } });
  }
  t.regex(cluster.output(), /express listening on \d+/);
  t.regex(cluster.output(), /fastify listening at http:\/\/.+:\d+/);
});

test('the server on $PORT is the one fed, even when the app listens on another port first', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: { entry: fixture('metrics-first.mjs') } }));
  t.is((await get(cluster.url('/'))).text, 'main v1\n');
  const metricsPort = /metrics on (\d+)/.exec(await cluster.waitForOutput(/metrics on \d+/))![1];
  t.is((await get(`http://127.0.0.1:${metricsPort}/`)).text, 'metrics\n');
});

test('connections to the app\'s own second port (shared with the workers by node:cluster) and to graycluster\'s port, at once, are all answered', async (t) => {
  // Node's cluster module sends each worker the second port's socket over the same channel as the handoff, which
  // must tell that handle's acknowledgement from its own; then the workers accept its connections themselves.
  const cluster = await startCluster(t, makeConfig({ v1: { entry: fixture('metrics-first.mjs'), workers: 2 }, v2: { entry: fixture('metrics-first.mjs') } }, { rules: [{ query: 'version' }] }));
  const metricsPort = /metrics on (\d+)/.exec(await cluster.waitForOutput(/metrics on \d+/))![1];
  const answers = new Map<string, number>();
  const lane = async (url: () => string, count: number) => {
    for (let index = 0; index < count; index++) {
      const reply = await get(url()).catch((error: Error) => error);
      const key = reply instanceof Error ? `error ${reply.message}` : `${reply.status} ${reply.text.trim()}`;
      answers.set(key, (answers.get(key) ?? 0) + 1);
    }
  };
  let request = 0;
  await Promise.all([
    ...Array.from({ length: 20 }, () => lane(() => cluster.url(`/?version=${request++ % 2 === 0 ? 'v1' : 'v2'}`), 40)),
    ...Array.from({ length: 20 }, () => lane(() => `http://127.0.0.1:${metricsPort}/`, 40)),
  ]);
  t.deepEqual(Object.fromEntries(answers), { '200 main v1': 400, '200 main v2': 400, '200 metrics': 800 });
});

/** Sends one request, half-closes the connection, and returns the JSON body of whatever answer comes back. */
function requestThenHalfClose(port: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end('GET / HTTP/1.1\r\nHost: app\r\n\r\n'));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer within 10 s')));
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const body = text.slice(text.indexOf('\r\n\r\n') + 4);
      try {
        resolve(JSON.parse(body));
      } catch {
        reject(new Error(`not a JSON answer: ${JSON.stringify(text.slice(0, 200))}`));
      }
    });
  });
}

test('an app\'s sockets are built as its own server builds them: half-open, buffer sizes, Nagle, TCP keep-alive, and published to diagnostics_channel', async (t) => {
  // The same app run directly says what its server gives a connection; under graycluster it must get the same.
  const alone = startProcess('socket-options alone', process.execPath, [fixture('socket-options.mjs')], { env: { PORT: '0' } });
  t.teardown(() => alone.stop());
  const alonePort = Number((await alone.waitForOutput(/listening on (\d+)/))[1]);
  const expected = await requestThenHalfClose(alonePort);
  t.like(expected, { allowHalfOpen: true, readableHighWaterMark: 48 * 1024, noDelay: false, keepAlive: true, keepAliveInitialDelay: 7, published: true });

  const cluster = await startCluster(t, makeConfig({ v1: { entry: fixture('socket-options.mjs') } }));
  // Answered 50 ms after the client half-closed: the app's server allows that (httpAllowHalfOpen).
  t.deepEqual(await requestThenHalfClose(cluster.port), expected);
});
