import net from 'node:net';
import { performance } from 'node:perf_hooks';
import test, { type ExecutionContext } from 'ava';
import { Deadline, ranSince, runningNow, stallMs } from '../src/shared/stalls.js';
import { holdUp, makeConfig, sleep, startCluster, waitFor, type Cluster } from './helpers/cluster.js';
import { steadyLoad } from './helpers/load.js';

// Serial: the first tests hold this process's own event loop up on purpose.

/** Resolves once the timers due now have run (a timer set now is due after every one already overdue). */
const timersRan = () => new Promise((resolve) => setTimeout(resolve, 0));

test.serial('a deadline expires once this process has run for its time; cleared, never', async (t) => {
  let expired = 0;
  const deadline = new Deadline(40, () => expired++);
  const cleared = new Deadline(40, () => t.fail('a cleared deadline expired'));
  cleared.clear();
  await waitFor(() => expired === 1, { intervalMs: 5, what: 'the deadline' });
  deadline.clear();
  await sleep(60);
  t.is(expired, 1, 'once');
});

test.serial('after a stall of this process a deadline gives the other side its whole time again, from the end of the stall', async (t) => {
  runningNow();
  await sleep(150);  // The watch has ticked: what follows is a stall, not its start.
  const before = runningNow();
  let expiredAt: number | undefined;
  const setAt = performance.now();
  new Deadline(100, () => { expiredAt = performance.now(); });
  holdUp(stallMs + 400);
  const stallEnd = performance.now();
  await timersRan();
  t.is(expiredAt, undefined, 'its timer fired late, and found the time was the stall\'s');
  t.true(ranSince(before) < stallEnd - before, 'ranSince leaves the stall out');
  await waitFor(() => expiredAt !== undefined, { intervalMs: 5, what: 'the deadline after the stall' });
  t.true(expiredAt! - stallEnd >= 100 - 2, `expired ${Math.round(expiredAt! - stallEnd)} ms after the stall, ${Math.round(expiredAt! - setAt)} ms after it was set`);
});

test.serial('an answer that came during a stall is read before the deadline blames anyone', async (t) => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  t.teardown(() => client.destroy());
  const peer = await accepted;
  t.teardown(() => peer.destroy());
  let blamed = false;
  const deadline = new Deadline(100, () => { blamed = true; });
  peer.once('data', () => deadline.clear());
  await sleep(50);
  client.write('answer');  // In this process's socket buffer at once; read only once its loop runs again.
  holdUp(stallMs + 400);
  await waitFor(() => peer.readableLength > 0 || peer.bytesRead > 0, { intervalMs: 5, what: 'the answer read' });
  await sleep(200);
  t.false(blamed, 'a plain timer would have fired first, before the poll that reads the answer');
});

test.serial('a wait of the test toolkit under way when this process is held up gets its whole time again', async (t) => {
  let ready = false;
  const waiting = waitFor(() => ready, { timeoutMs: 300, intervalMs: 10, what: 'ready' });
  await sleep(50);
  holdUp(stallMs + 400);
  setTimeout(() => { ready = true; }, 100);
  await t.notThrowsAsync(waiting, 'a wait on the wall clock would have failed as soon as it looked again');
});

// Each well above what a loaded CI machine may hold a worker up for; the stops below are longer than all of them.
const deadlines = { handoffTimeoutMs: 2000, heartbeatTimeoutMs: 3000, unresponsiveRestartMs: 4000, statsIntervalMs: 200, headTimeoutMs: 3000 };

/** Stops `pid` (a process, or with a minus a process group) for longer than every deadline, then lets it go on. */
async function stopFor(t: ExecutionContext, pid: number, ms: number): Promise<void> {
  const resume = () => {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {}  // Gone already.
  };
  t.teardown(resume);
  process.kill(pid, 'SIGSTOP');
  await sleep(ms);
  resume();
}

async function survivesStop(t: ExecutionContext, cluster: Cluster, pid: number): Promise<void> {
  const pids = (await cluster.status()).workers.map((worker) => worker.pid);
  const fresh = steadyLoad(() => cluster.url('/who'), { clients: 2, keepAlive: false });
  const kept = steadyLoad(() => cluster.url('/who'), { clients: 2 });
  await Promise.all([fresh.answered(20), kept.answered(20)]);
  await stopFor(t, pid, 5000);
  await Promise.all([fresh.answered(50), kept.answered(50)]);
  const reports = [await fresh.stop(), await kept.stop()];
  for (const report of reports) {
    t.is(report.failed, 0, report.errors.join('; '));
    t.deepEqual(report.unexpected, {}, report.errors.join('; '));
  }
  t.deepEqual((await cluster.status()).workers.map((worker) => worker.pid), pids, 'no worker was killed');
  t.notRegex(cluster.output(), /unresponsive|killing|crashed/);
}

test.serial('a primary stopped for longer than every deadline kills no worker and refuses no connection when it runs again', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {} }, {}, deadlines));
  await survivesStop(t, cluster, cluster.process.pid!);
});

test.serial('a paused machine (the primary and its workers stopped together) resumes with the same workers and no failed request', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {} }, {}, deadlines));
  await survivesStop(t, cluster, -cluster.process.pid!);
});
