import { readFileSync, writeFileSync } from 'node:fs';
import test from 'ava';
import { AfterBurst, afterBurstDefaults, type AfterBurstPolicy } from '../src/primary/after-burst.js';
import { makeConfig, request, sleep, startInstance, waitFor } from './helpers/toolkit.js';

const policy: AfterBurstPolicy = { minConnections: 5, quietMs: 20, minIntervalMs: 300 };

/** An AfterBurst whose collection only counts, and a way to send it `count` connections `gapMs` apart. */
function counted(withPolicy = policy) {
  const collections: number[] = [];
  const afterBurst = new AfterBurst(() => collections.push(performance.now()), withPolicy);
  const connections = async (count: number, gapMs = 0) => {
    for (let index = 0; index < count; index++) {
      afterBurst.connection();
      if (gapMs > 0) await sleep(gapMs);
    }
  };
  return { afterBurst, collections, connections };
}

test('a burst of connections, then quiet: one collection', async (t) => {
  const { afterBurst, collections, connections } = counted();
  await connections(10);
  await waitFor(() => collections.length === 1, { what: 'a collection after the burst' });
  // The check stopped with the collection: no second one, however long it stays quiet.
  await sleep(5 * policy.quietMs);
  t.is(collections.length, 1);
  afterBurst.close();
});

test('fewer connections than minConnections: no collection, and they count towards the next burst', async (t) => {
  const { afterBurst, collections, connections } = counted();
  await connections(3);
  await sleep(4 * policy.quietMs);
  t.is(collections.length, 0);
  await connections(2);
  await waitFor(() => collections.length === 1, { what: 'a collection once 5 connections came in all' });
  t.pass();
  afterBurst.close();
});

test('no collection while connections keep coming, however many', async (t) => {
  const { afterBurst, collections, connections } = counted({ ...policy, quietMs: 200 });
  // One connection every 10 ms, for about half a second: never a whole check interval without one.
  await connections(50, 10);
  t.is(collections.length, 0);
  await waitFor(() => collections.length === 1, { what: 'the collection once they stopped' });
  afterBurst.close();
});

test('two bursts within minIntervalMs: the second collection waits until minIntervalMs has passed', async (t) => {
  const { afterBurst, collections, connections } = counted();
  await connections(10);
  await waitFor(() => collections.length === 1, { what: 'the first collection' });
  await connections(10);
  await waitFor(() => collections.length === 2, { what: 'the second collection', timeoutMs: 5000 });
  t.true(collections[1]! - collections[0]! >= policy.minIntervalMs, `${(collections[1]! - collections[0]!).toFixed(0)} ms apart`);
  afterBurst.close();
});

test('after close, a burst starts no check', async (t) => {
  const { afterBurst, collections, connections } = counted();
  await connections(10);
  afterBurst.close();
  await sleep(4 * policy.quietMs);
  t.is(collections.length, 0);
});

/** A graycluster under --trace-gc, which prints V8's collections: the one the primary asks for has the reason "testing". */
async function tracedInstance(server: Record<string, unknown> = {}) {
  const instance = await startInstance(makeConfig({ v1: {} }, {}, server), { nodeArgs: ['--trace-gc'] });
  const collections = () => instance.process.output().split('\n').filter((line) => line.startsWith(`[${instance.state.pid}:`) && / Mark-Compact .* testing;/.test(line)).length;
  // A new connection per request (no agent), 16 at a time, past afterBurstDefaults.minConnections.
  const burst = async () => {
    let sent = 0;
    const statuses = new Set<number>();
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (sent < afterBurstDefaults.minConnections + 20) {
        sent++;
        statuses.add((await request(instance.url('/'))).status);
      }
    }));
    return [...statuses];
  };
  return { instance, collections, burst };
}

test('graycluster\'s primary runs one compacting collection once a burst of new connections stops', async (t) => {
  const { instance, collections, burst } = await tracedInstance();
  try {
    await instance.waitUntilReady();
    t.is(collections(), 0);
    t.deepEqual(await burst(), [200]);
    await waitFor(() => collections() === 1, { what: 'the primary\'s collection after the burst', describe: () => instance.process.output().slice(-2000) });
  } finally {
    await instance.stop();
  }
});

test('with server.compactAfterBursts false the primary never collects after a burst, and turning it on in the file takes effect live', async (t) => {
  const { instance, collections, burst } = await tracedInstance({ compactAfterBursts: false });
  try {
    await instance.waitUntilReady();
    t.deepEqual(await burst(), [200]);
    await sleep(afterBurstDefaults.quietMs * 4);  // Past the quiet that would have triggered it.
    t.is(collections(), 0);
    const config = JSON.parse(readFileSync(instance.configFile, 'utf8'));
    const appliedBefore = (await instance.status()).configAppliedAt;
    writeFileSync(instance.configFile, JSON.stringify({ ...config, server: { ...config.server, compactAfterBursts: true } }));
    await instance.waitForStatus((status) => status.configAppliedAt !== appliedBefore);
    t.deepEqual(await burst(), [200]);
    await waitFor(() => collections() === 1, { what: 'the primary\'s collection after the burst', describe: () => instance.process.output().slice(-2000) });
  } finally {
    await instance.stop();
  }
});
