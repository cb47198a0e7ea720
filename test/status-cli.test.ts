// `graycluster status --json --watch`: a stream a program can read.
import test from 'ava';
import type { Status } from '../src/primary/status.js';
import { bin, makeConfig, runCli, startCluster, startProcess, waitFor } from './helpers/cluster.js';

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

test('status --watch refuses an --interval past 1 hour, or under 100 ms, before looking for a supervisor', async (t) => {
  // 2^31 ms is past what a timer takes: Node would fire it at once, and the table would redraw without pause.
  for (const interval of ['2147483648', '3600001', '99', '1e3']) {
    const result = await runCli(['status', '--watch', '--interval', interval, '--config', '/nonexistent/graycluster.json']);
    t.is(result.code, 2, interval);
    t.regex(result.stderr, new RegExp(`^graycluster: --interval must be a number of milliseconds from 100 to 3600000 \\(1 hour\\), not "${interval}"\n`));
  }
  const longest = await runCli(['status', '--watch', '--interval', '3600000', '--config', '/nonexistent/graycluster.json']);
  t.is(longest.code, 1, 'an hour is taken: what fails is finding the supervisor');
  t.regex(longest.stderr, /^graycluster: no supervisor is running with \/nonexistent\/graycluster\.json/);
});
