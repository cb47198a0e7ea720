import { readFileSync } from 'node:fs';
import test from 'ava';
import { makeConfig, startCluster, token } from './helpers/cluster.js';

/** A process's environment, as the kernel holds it. */
const environmentOf = (pid: number) => new Map(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean)
  .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)] as const));

test('a worker gets its version\'s env and PORT, never the supervisor\'s token or settings', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: { env: { LOG_LEVEL: 'debug' } } }), {
    env: { GRAYCLUSTER_TOKEN: token, GRAYCLUSTER_PORT: '0', GRAYCLUSTER_DASHBOARD_PORT: '0', GRAYCLUSTER_HEALTH_PORT: '0', GRAYCLUSTER_CONFIG: 'graycluster.json' },
  });
  const [worker] = (await cluster.status()).workers;
  const environment = environmentOf(worker!.pid!);
  t.is(environment.get('LOG_LEVEL'), 'debug');
  t.is(environment.get('PORT'), String(cluster.port));
  for (const name of ['GRAYCLUSTER_TOKEN', 'GRAYCLUSTER_PORT', 'GRAYCLUSTER_DASHBOARD_PORT', 'GRAYCLUSTER_HEALTH_PORT', 'GRAYCLUSTER_CONFIG']) t.false(environment.has(name), name);
  t.false([...environment.values()].some((value) => value.includes(token)), 'the token is nowhere in it');
});

