import net from 'node:net';
import test from 'ava';
import { get, makeConfig, rssOf, startCluster } from './helpers/cluster.js';
import { steadyLoad } from './helpers/load.js';

test.serial('a worker at maxInFlight answers 503 with Retry-After and the app never runs more than the limit', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: { maxInFlight: 3 } }));
  const replies = await Promise.all(Array.from({ length: 12 }, () => get(cluster.url('/slow?ms=1000'))));
  const statuses = replies.map((reply) => reply.status).sort();
  t.is(statuses.filter((status) => status === 200).length, 3);
  t.is(statuses.filter((status) => status === 503).length, 9);
  for (const reply of replies.filter((each) => each.status === 503)) t.is(reply.headers['retry-after'], '1');
  t.is((await get(cluster.url('/most-active'))).body.mostActive, 3);
  const status = await cluster.waitForStatus((current) => current.workers[0]!.shed + (current.router.refused['503'] ?? 0) === 9);
  t.true(status.workers[0]!.shed > 0 || (status.router.refused['503'] ?? 0) > 0);
});

test.serial('the primary answers 503 itself when every worker of a version is at its limit', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: { workers: 2, maxInFlight: 1 } }, {}, { statsIntervalMs: 100 }));
  const slow = [get(cluster.url('/slow?ms=2500')), get(cluster.url('/slow?ms=2500'))];
  await cluster.waitForStatus((status) => status.workers.every((worker) => worker.inFlight === 1));
  const reply = await get(cluster.url('/'));
  t.is(reply.status, 503);
  t.is(reply.headers['retry-after'], '1');
  t.regex(reply.text, /every worker of "v1" is at its in-flight limit/);
  t.deepEqual((await Promise.all(slow)).map((each) => each.status), [200, 200]);
  // The workers tell the primary the moment they drop below their limit; once it has heard, it serves again.
  await cluster.waitForStatus((status) => status.workers.every((worker) => worker.inFlight === 0));
  const after = await get(cluster.url('/who'));
  t.is(after.status, 200, 'after the overload, the next request is answered normally');
  t.true(((await cluster.status()).router.refused['503'] ?? 0) >= 1);
});

test.serial("thousands of connections that send nothing don't grow the primary, and it serves normally afterwards", async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {} }, {}, { maxPendingConnections: 500, headTimeoutMs: 120_000 }));
  const primary = (await cluster.status()).pid;
  await get(cluster.url('/'));
  const before = rssOf(primary);
  const sockets: net.Socket[] = [];
  let answered = 0;
  t.teardown(() => sockets.forEach((socket) => socket.destroy()));
  await Promise.all(Array.from({ length: 3000 }, () => new Promise<void>((resolve) => {
    const socket = net.connect(cluster.port, '127.0.0.1', () => resolve());
    socket.on('data', () => { answered++; });
    socket.on('error', () => resolve());
    sockets.push(socket);
  })));
  // The kernel's accept queue holds some back; well over a thousand reach the primary past its caps (here the
  // per-address one, maxPendingPerSource).
  const status = await cluster.waitForStatus((current) => (current.router.refused['503'] ?? 0) >= 1000);
  t.true(status.router.pending <= 500, `${status.router.pending} connections pending`);
  // The cap is proven by `pending` above; rss catches anything kept per connection attempt. Measured on a
  // 2-core machine: +11 MB refusing ~2400 connections, +6 MB holding 3000 pending with no cap, from ~70 MB at
  // rest. Half the primary's own rss at rest (~12 KB per attempt) leaves room for that and fails a real leak.
  const growth = rssOf(primary) - before;
  t.true(growth < before / 2, `primary rss grew ${Math.round(growth / 1024 / 1024)} MB from ${Math.round(before / 1024 / 1024)} MB`);
  t.true(answered >= 1000, 'connections past the cap were answered');
  for (const socket of sockets) socket.destroy();
  // Connections still in the kernel's accept queue are accepted (and then seen closing) only now: give them time.
  // Seen in CI: 4, and once 26, of the 3000 still waiting after 40 s while another test loaded the machine. Most
  // likely connections caught mid-handshake by the accept queue's overflow (tcp_abort_on_overflow 0 drops the
  // client's last ACK, so its FIN may come only with TCP's retransmissions, backing off for minutes);
  // headTimeoutMs closes them in the end. Thousands must not stay.
  await cluster.waitForStatus((current) => current.router.pending <= 50, 40_000);
  t.is((await get(cluster.url('/who'))).status, 200);
});

/** Opens `count` connections from `localAddress` that send `bytes` (maybe nothing) and then wait. */
async function flood(port: number, localAddress: string, count: number, bytes: string, sockets: net.Socket[]): Promise<void> {
  await Promise.all(Array.from({ length: count }, () => new Promise<void>((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress }, () => {
      if (bytes) socket.write(bytes);
      resolve();
    });
    socket.on('error', () => resolve());
    sockets.push(socket);
  })));
}

test.serial('one address holding 1,100 idle connections and 2,000 half-sent heads refuses service to no one else', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {} }, {}, { headTimeoutMs: 120_000 }));
  const load = steadyLoad(() => cluster.url('/who'), { clients: 4, keepAlive: false });
  const sockets: net.Socket[] = [];
  t.teardown(async () => {
    sockets.forEach((socket) => socket.destroy());
    await load.stop();
  });
  await flood(cluster.port, '127.0.0.2', 1100, '', sockets);
  await flood(cluster.port, '127.0.0.2', 2000, 'GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ', sockets);
  const during = await cluster.waitForStatus((status) => status.router.pendingSourceRefused >= 2500, 30_000);
  // The attack is in place: the legitimate client must keep being served while it lasts.
  const servedBefore = load.report.ok;
  await cluster.waitForStatus((status) => status.router.handedOff >= during.router.handedOff + 200, 30_000);
  const report = await load.stop();
  t.true(report.ok >= servedBefore + 200);
  t.is(report.failed, 0, report.errors.join('; '));
  t.deepEqual(report.unexpected, {}, report.errors.join('; '));
  // An address may grow to half of maxPendingConnections (1024) before its own limit applies; then it is refused.
  t.true((await cluster.status()).router.pending <= 1024 / 2 + 4, 'the attacker holds at most half the pool');
});

test.serial('many addresses filling maxPendingConnections lose their oldest connections to newcomers, who are served', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {} }, {}, { headTimeoutMs: 120_000, maxPendingConnections: 200, maxPendingPerSource: 50 }));
  const load = steadyLoad(() => cluster.url('/who'), { clients: 4, keepAlive: false });
  const sockets: net.Socket[] = [];
  t.teardown(async () => {
    sockets.forEach((socket) => socket.destroy());
    await load.stop();
  });
  for (const address of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6']) {
    await flood(cluster.port, address, 60, 'GET / HTTP/1.1\r\n', sockets);
  }
  const during = await cluster.waitForStatus((status) => status.router.pendingShed >= 50 && status.router.pendingSourceRefused > 0, 30_000);
  await cluster.waitForStatus((status) => status.router.handedOff >= during.router.handedOff + 200, 30_000);
  const report = await load.stop();
  t.is(report.failed, 0, report.errors.join('; '));
  t.deepEqual(report.unexpected, {}, report.errors.join('; '));
  t.true((await cluster.status()).router.pending <= 200);
});
