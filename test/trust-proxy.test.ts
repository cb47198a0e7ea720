import http from 'node:http';
import test from 'ava';
import { stickyHash, versionForHash } from '../src/routing/decide.js';
import { get, makeConfig, request, startCluster } from './helpers/cluster.js';

const weights = { v1: 50, v2: 50 };
const users = Array.from({ length: 40 }, (_, index) => `198.51.100.${index + 1}`);
const expected = (address: string) => versionForHash(stickyHash(address), Object.entries(weights));

test('behind a trusted proxy, the ip sticky key is the client the proxy names, not the proxy', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {}, v2: {} }, { weights }, { trustProxy: ['127.0.0.0/8'] }));
  for (const user of users) {
    const reply = await get(cluster.url('/who'), { 'x-forwarded-for': `203.0.113.66, ${user}` });
    t.is(reply.body.version, expected(user), user);
  }
});

test('without trustProxy, X-Forwarded-For never moves a user: every request from one peer shares its hash', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {}, v2: {} }, { weights }));
  const answers = new Set<string>();
  for (const user of users) answers.add((await get(cluster.url('/who'), { 'x-forwarded-for': user })).body.version);
  t.deepEqual([...answers], [expected('127.0.0.1')]);
});

test('on a proxy\'s pooled keep-alive connection, each later request goes by the hash of the client it names', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {}, v2: {} }, { weights }, { trustProxy: ['127.0.0.0/8'] }));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  for (const user of users) {
    const reply = await request(cluster.url('/who'), { agent, headers: { 'x-forwarded-for': user } });
    t.is(reply.body.version, expected(user), user);
  }
  t.is((await cluster.status()).router.handedOff, 1, 'one connection carried them all');
});
