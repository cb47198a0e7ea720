import test from 'ava';
import type WebSocket from 'ws';
import { get, makeConfig, startCluster, token } from './helpers/cluster.js';
import { eventually, nextMessage, openFeed, parseExposition, rssOf } from './dashboard-helpers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const configWith = (dashboard: Record<string, unknown>) => makeConfig({ v1: {}, v2: {} }, {}, {}, dashboard);

async function metrics(dashboardPort: number) {
  const families = parseExposition((await get(`http://127.0.0.1:${dashboardPort}/metrics`, { authorization: `Bearer ${token}` })).text);
  return (name: string) => families.get(name)!.samples[0]!.value;
}

/** Connects `count` feed clients and waits for each one's snapshot. */
async function connect(t: { teardown(fn: () => void): void }, dashboardPort: number, count: number): Promise<WebSocket[]> {
  const clients = Array.from({ length: count }, () => openFeed(dashboardPort));
  t.teardown(() => {
    for (const client of clients) client.terminate();
  });
  await Promise.all(clients.map((client) => nextMessage(client)));
  for (const client of clients) client.on('message', () => {});
  return clients;
}

// Without the skipping, this setup grows the primary by about 60 MB of rss in 20 s on a 2-core machine, nearly
// all of it queued frames (array buffers); with it, rss moves by what V8 sizes its young generation to under a
// 1 kHz feed, and the queued bytes stay near zero.
test('dashboard clients that never read do not grow the primary\'s memory: their frames are skipped', async (t) => {
  t.timeout(60_000);
  const maxBufferedBytes = 64 * 1024;
  const cluster = await startCluster(t, configWith({ feedIntervalMs: 1, maxBufferedBytes, pingIntervalMs: 60_000 }));
  const primary = cluster.process.pid!;
  const clients = await connect(t, cluster.dashboardPort, 4);
  await sleep(3000);  // The primary warms up at this feed rate while the clients still read.

  for (const client of clients) client.pause();  // From here on they read nothing: the socket stops being read.
  const before = { rss: rssOf(primary), buffers: (await metrics(cluster.dashboardPort))('graycluster_primary_array_buffers_bytes') };
  let peakRss = before.rss;
  for (let second = 0; second < 20; second++) {
    await sleep(1000);
    peakRss = Math.max(peakRss, rssOf(primary));
  }
  const after = await metrics(cluster.dashboardPort);

  t.true(after('graycluster_dashboard_frames_skipped_total') > 0, 'frames were skipped');
  t.is(after('graycluster_dashboard_clients'), 4, 'the slow clients are still connected (they were only skipped)');
  const buffered = after('graycluster_primary_array_buffers_bytes') - before.buffers;
  t.true(buffered < 2 * 1024 * 1024, `the primary's buffers grew by ${(buffered / 1024).toFixed(0)} KB`);
  const grown = peakRss - before.rss;
  t.true(grown < 40 * 1024 * 1024, `the primary's rss grew by ${(grown / 1024 ** 2).toFixed(1)} MB`);
  t.log(`rss +${(grown / 1024 ** 2).toFixed(1)} MB, buffers +${(buffered / 1024).toFixed(0)} KB, ${after('graycluster_dashboard_frames_skipped_total')} frames skipped`);
});

test('a client that stops answering pings is cut off; one that answers stays', async (t) => {
  const cluster = await startCluster(t, configWith({ feedIntervalMs: 100, pingIntervalMs: 200 }));
  const [silent, live] = await connect(t, cluster.dashboardPort, 2);
  silent!.pause();
  await eventually(async () => (await metrics(cluster.dashboardPort))('graycluster_dashboard_clients_terminated_total') === 1, 'the silent client is terminated');
  const after = await metrics(cluster.dashboardPort);
  t.is(after('graycluster_dashboard_clients'), 1);
  // The one that reads (and so answers pings) still gets updates.
  t.is((await nextMessage(live!, (message) => message.type === 'update')).type, 'update');
  await sleep(600);
  t.is((await metrics(cluster.dashboardPort))('graycluster_dashboard_clients_terminated_total'), 1);
});

test('a client that falls behind gets a full snapshot once it catches up', async (t) => {
  const cluster = await startCluster(t, configWith({ feedIntervalMs: 1, maxBufferedBytes: 1024, pingIntervalMs: 60_000 }));
  const [client] = await connect(t, cluster.dashboardPort, 1);
  client!.pause();
  await eventually(async () => (await metrics(cluster.dashboardPort))('graycluster_dashboard_frames_skipped_total') > 0, 'frames are skipped', 30_000);
  const snapshot = nextMessage(client!, (message) => message.type === 'snapshot', 30_000);
  client!.resume();
  const message = await snapshot;
  if (message.type === 'snapshot') t.true(message.status.workers.length === 2 && message.events.length > 0);
});
