// `graycluster status --json --watch`: a stream a program can read.
import test from 'ava';
import type { Status } from '../src/primary/status.js';
import { bin, makeConfig, startCluster, startProcess, waitFor } from './helpers/cluster.js';

test('status --json --watch prints one JSON document per line and nothing else', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {} }));
  const watching = startProcess('status --json --watch', process.execPath, [bin, 'status', '--config', cluster.configFile, '--json', '--watch', '--interval', '200']);
  t.teardown(() => watching.stop());
  await waitFor(() => watching.output().split('\n').length > 3, { what: 'three documents', describe: () => watching.output() });
  await watching.stop();
  const lines = watching.output().split('\n').filter(Boolean);
  t.true(lines.length >= 3);
  for (const line of lines) t.deepEqual(Object.keys((JSON.parse(line) as Status).versions), ['v1']);
});
