import test from 'ava';
import { get, makeConfig, runCli, startCluster, token, waitFor } from './helpers/cluster.js';
import { parseExposition } from './dashboard-helpers.js';
import type { Status } from '../src/primary/status.js';

const auth = { authorization: `Bearer ${token}` };

test('a worker that burns CPU shows it in /api/status, /metrics and status while an idle one stays near 0', async (t) => {
  // v2 takes the requests that ask for it; v1 gets none and stays idle.
  const cluster = await startCluster(t, makeConfig({ v1: {}, v2: {} }, { rules: [{ header: 'x-version' }] }));
  const cpuOf = (status: Status, id: string) => status.workers.find((worker) => worker.id === id)?.cpuPercent ?? null;
  // Both measured, and past their start-up (loading the app is CPU too, and on a busy machine it spills over the
  // first interval): from here v1.1 only idles.
  await cluster.waitForStatus((status) => (cpuOf(status, 'v1.1') ?? Infinity) < 25 && cpuOf(status, 'v2.1') !== null);
  const metrics = async () => {
    const families = parseExposition((await get(`http://127.0.0.1:${cluster.dashboardPort}/metrics`, auth)).body.toString());
    const of = (name: string, worker: string) => families.get(name)?.samples.find((sample) => sample.labels.worker === worker)?.value;
    return { seconds: (worker: string) => of('graycluster_worker_cpu_seconds_total', worker) ?? NaN, percent: (worker: string) => of('graycluster_worker_cpu_percent', worker) ?? NaN };
  };
  const before = await metrics();

  // Busy for long enough to be seen (its event loop is stuck: the primary reads /proc, not the worker's reports).
  const burning = get(cluster.url('/block?ms=8000'), { 'x-version': 'v2' });
  t.teardown(() => burning.catch(() => undefined));
  const busy = await cluster.waitForStatus((status) => (cpuOf(status, 'v2.1') ?? 0) >= 50);
  t.true((cpuOf(busy, 'v1.1') ?? Infinity) < 25, `idle v1.1 at ${cpuOf(busy, 'v1.1')}% while v2.1 burns`);

  const during = await waitFor(async () => {
    const now = await metrics();
    return now.percent('v2.1') >= 50 && now.seconds('v2.1') - before.seconds('v2.1') >= 1 ? now : undefined;
  }, { what: 'v2.1 to use a second of CPU, as /metrics counts it' });
  t.true(during.seconds('v1.1') - before.seconds('v1.1') < 0.5, 'the idle worker used little CPU meanwhile');
  t.true(during.percent('v1.1') < 25);

  const shown = await runCli(['status', '--config', cluster.configFile]);
  t.is(shown.code, 0, shown.stderr);
  const header = shown.stdout.split('\n').find((line) => line.startsWith('WORKER'));
  t.regex(header ?? '', /^WORKER\s+PID\s+CPU\s+STATE/);
  t.regex(shown.stdout, /^v2\.1\s+\d+\s+\d+\.\d%\s+ready/m);
  t.is((await burning).status, 200);
});
