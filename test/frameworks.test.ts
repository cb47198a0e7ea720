import test from 'ava';
import { fixture, get, makeConfig, request, startCluster } from './helpers/cluster.js';

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
