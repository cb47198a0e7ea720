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

test('graycluster\'s primary runs one compacting collection once a burst of new connections stops', async (t) => {
  // --trace-gc prints V8's collections; the one the primary asks for is traced with the reason "testing".
  const instance = await startInstance(makeConfig({ v1: {} }), { nodeArgs: ['--trace-gc'] });
  try {
    await instance.waitUntilReady();
    const primaryCollections = () => instance.process.output().split('\n').filter((line) => line.startsWith(`[${instance.state.pid}:`) && / Mark-Compact .* testing;/.test(line)).length;
    t.is(primaryCollections(), 0);
    let sent = 0;
    // A new connection per request (no agent), 16 at a time, past afterBurstDefaults.minConnections.
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (sent < afterBurstDefaults.minConnections + 20) {
        sent++;
        t.is((await request(instance.url('/'))).status, 200);
      }
    }));
    await waitFor(() => primaryCollections() === 1, { what: 'the primary\'s collection after the burst', describe: () => instance.process.output().slice(-2000) });
  } finally {
    await instance.stop();
  }
});
