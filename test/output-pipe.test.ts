// The supervisor's stdout is a pipe to whatever collects its logs; that reader may go away (a log shipper restarting).
import test from 'ava';
import { get, makeConfig, runCli, startCluster, waitFor } from './helpers/cluster.js';

test('the supervisor keeps serving after the reader of its stdout and stderr is gone', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {} }));
  cluster.process.stdout!.destroy();
  cluster.process.stderr!.destroy();
  // Lines to write: a worker killed and restarted, with its events.
  const [worker] = (await cluster.status()).workers;
  process.kill(worker!.pid!, 'SIGKILL');
  await cluster.waitForStatus((status) => status.workers.some((each) => each.state === 'ready' && each.pid !== worker!.pid));
  t.is((await get(cluster.url('/'))).status, 200);
  t.is(cluster.process.exitCode, null, 'the primary runs on');
  await waitFor(async () => (await runCli(['status', '--config', cluster.configFile])).code === 0, { what: 'status answers' });
});
