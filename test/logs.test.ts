// Reading workers' output through the real CLI and API of a real graycluster (the capture with real workers:
// test/fixtures/log-writer.mjs writes a line on stdout and one on stderr at start, then what a request asks for).
import net from 'node:net';
import test from 'ava';
import type { LogStreamItem } from '../src/dashboard/messages.js';
import type { LogLine } from '../src/primary/logs/types.js';
import { bin, fixture, get, makeConfig, runCli, startCluster, startProcess, token, waitFor, type Cluster } from './helpers/cluster.js';

const writer = fixture('log-writer.mjs');
const twoVersions = (dashboard: Record<string, unknown> = {}) => makeConfig(
  { v1: { entry: writer, workers: 2 }, v2: { entry: writer } },
  { rules: [{ header: 'x-version' }] },
  {},
  dashboard,
);

/** `graycluster logs …` against `cluster`, found by its config file as a user's shell would. */
const logs = (cluster: Cluster, ...args: string[]) => runCli(['logs', ...args, '--config', cluster.configFile]);

/** Asks a worker of `version` to write `count` lines `<tag> i of count` on `stream`; resolves once written. */
async function writeLines(cluster: Cluster, version: string, tag: string, count: number, stream = 'stdout'): Promise<void> {
  const answer = await get(cluster.url(`/lines?count=${count}&tag=${tag}&stream=${stream}`), { 'x-version': version });
  if (answer.status !== 200) throw new Error(`/lines answered ${answer.status}: ${answer.text}`);
}

/** Waits until the supervisor has read what the workers wrote: `graycluster logs` prints `expected` among its lines. */
async function logsInclude(cluster: Cluster, args: string[], expected: string): Promise<string> {
  let last = '';
  return waitFor(async () => {
    const result = await logs(cluster, ...args);
    last = `${result.code} ${result.stdout}${result.stderr}`;
    return result.stdout.split('\n').includes(expected) ? result.stdout : undefined;
  }, { what: `graycluster logs ${args.join(' ')} printing "${expected}"`, describe: () => last });
}

/** The `graycluster logs --follow` process, started as a user starts it. */
function follow(cluster: Cluster, ...args: string[]) {
  return startProcess('logs --follow', process.execPath, [bin, 'logs', ...args, '--follow', '--config', cluster.configFile], { env: { GRAYCLUSTER_TOKEN: undefined } });
}

test('graycluster logs prints what each worker of two versions wrote, by worker, by version or all, as text or JSON', async (t) => {
  const cluster = await startCluster(t, twoVersions());
  // The lines each worker writes as it starts, stdout marked "|" and stderr "!", as the supervisor prints them.
  const v11 = await logsInclude(cluster, ['v1.1'], 'v1.1 ! v1 warming up on stderr');
  t.deepEqual(v11.trimEnd().split('\n').sort(), ['v1.1 ! v1 warming up on stderr', 'v1.1 | v1 listening']);
  await logsInclude(cluster, ['v1.2'], 'v1.2 | v1 listening');

  await writeLines(cluster, 'v2', 'hello', 5, 'stderr');
  const last3 = await logsInclude(cluster, ['v2', '--lines', '3'], 'v2.1 ! hello 5 of 5');
  t.deepEqual(last3.trimEnd().split('\n'), ['v2.1 ! hello 3 of 5', 'v2.1 ! hello 4 of 5', 'v2.1 ! hello 5 of 5']);

  const everything = (await logs(cluster)).stdout.trimEnd().split('\n');
  for (const expected of ['v1.1 | v1 listening', 'v1.2 | v1 listening', 'v2.1 | v2 listening', 'v2.1 ! hello 1 of 5']) t.true(everything.includes(expected), expected);

  const json = await logs(cluster, 'v2', '--lines', '2', '--json');
  t.is(json.code, 0, json.stderr);
  const lines = json.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as LogLine);
  t.like(lines, [
    { worker: 'v2.1', version: 'v2', stream: 'stderr', message: 'hello 4 of 5' },
    { worker: 'v2.1', version: 'v2', stream: 'stderr', message: 'hello 5 of 5' },
  ]);
  t.true(lines.every((line) => typeof line.time === 'number' && Math.abs(Date.now() - line.time) < 60_000));
});

test('graycluster logs answers a bad flag with its usage (exit 2) and an unknown worker with a message naming it (exit 1)', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: { entry: writer } }));
  for (const [value, ...args] of [['ten', '--lines', 'ten'], ['-1', '--lines=-1'], ['10001', '-n', '10001'], ['1.5', '-n1.5']]) {
    const result = await logs(cluster, ...args);
    t.is(result.code, 2);
    t.regex(result.stderr, new RegExp(`^graycluster: --lines must be a whole number from 0 to 10000, not "${value}"\\n\\nUsage: graycluster logs`));
  }
  const unknownFlag = await logs(cluster, '--tail', '5');
  t.is(unknownFlag.code, 2);
  t.regex(unknownFlag.stderr, /Unknown option '--tail'/);
  const two = await logs(cluster, 'v1', 'v2');
  t.is(two.code, 2);
  t.regex(two.stderr, /expected at most 1 argument/);

  const unknown = await logs(cluster, 'v7.1');
  t.is(unknown.code, 1);
  t.is(unknown.stderr, `graycluster: http://127.0.0.1:${cluster.dashboardPort}/api/logs?target=v7.1 answered 404: no version or worker "v7.1" (ids as graycluster status shows them, e.g. v2 or v2.1)\n`);

  const help = await runCli(['logs', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /--follow/);
  t.regex((await runCli(['--help'])).stdout, /^ {2}logs {7}Show what the workers wrote/m);
});

test('logs --follow prints the last lines, then each new one as it is written; Ctrl-C exits 0, and a stop ends it with a message', async (t) => {
  const cluster = await startCluster(t, twoVersions());
  await logsInclude(cluster, ['v2'], 'v2.1 ! v2 warming up on stderr');
  await writeLines(cluster, 'v2', 'before', 2);
  await logsInclude(cluster, ['v2'], 'v2.1 | before 2 of 2');

  const interrupted = follow(cluster, 'v2', '--lines', '2');
  t.teardown(() => interrupted.stop());
  const stopped = follow(cluster, '--lines', '0');
  t.teardown(() => stopped.stop());
  await interrupted.waitForOutput(/v2\.1 \| before 1 of 2\nv2\.1 \| before 2 of 2\n/);
  // Only new lines (--lines 0) for the second one, of every worker: it is following once it has the first.
  await waitFor(async () => {
    await writeLines(cluster, 'v1', 'ping', 1);
    return stopped.output().includes('| ping 1 of 1');
  }, { what: 'the second follower to be following' });

  await writeLines(cluster, 'v2', 'live', 3);
  await writeLines(cluster, 'v1', 'elsewhere', 1);
  await interrupted.waitForOutput(/v2\.1 \| live 1 of 3\nv2\.1 \| live 2 of 3\nv2\.1 \| live 3 of 3\n/);
  await stopped.waitForOutput(/v2\.1 \| live 3 of 3\n/);
  await stopped.waitForOutput(/v1\.\d \| elsewhere 1 of 1\n/);
  t.false(interrupted.output().includes('elsewhere'), 'v2 only');
  t.false(stopped.output().includes('before'), 'no old lines with --lines 0');

  process.kill(interrupted.pid, 'SIGINT');
  t.deepEqual(await interrupted.exited, { code: 0, signal: null });

  t.is(await cluster.stop(), 0);
  t.deepEqual(await stopped.exited, { code: 0, signal: null });
  t.regex(stopped.output(), /graycluster: no more lines: graycluster is stopping\n$/);
});

test('past dashboard.maxLogFollowers a follower gets a clear refusal; one that stops reading misses lines and is told how many', async (t) => {
  const cluster = await startCluster(t, twoVersions({ maxLogFollowers: 1, maxLogBufferedBytes: 65_536 }));
  await logsInclude(cluster, ['v1'], 'v1.1 | v1 listening');

  // A follower that stops reading: a raw connection, paused once it is following.
  const socket = net.connect(cluster.dashboardPort, '127.0.0.1');
  t.teardown(() => socket.destroy());
  let received = '';
  socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1'); });
  socket.write(`GET /api/logs?target=v2&lines=1&follow=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n\r\n`);
  await waitFor(() => received.includes('"worker":"v2.1"'), { what: 'the raw follower to get its recent line' });

  const refused = await runCli(['logs', '--follow', '--config', cluster.configFile]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /answered 503: the dashboard has its maximum of 1 log followers \(dashboard\.maxLogFollowers\)\n$/);
  // Reading without following is not limited.
  t.is((await logs(cluster, 'v1')).code, 0);

  socket.pause();
  // Far more than loopback's socket buffers hold while nobody reads (about 4 MiB), numbered.
  const flood = await get(cluster.url('/flood?ms=20000&lineBytes=200&maxLines=40000'), { 'x-version': 'v2' });
  const written = Number(flood.text);
  t.is(written, 40_000);
  socket.resume();
  await waitFor(() => received.includes('"missed"'), { what: 'the count of missed lines', timeoutMs: 20_000 });
  // The first count can come while the primary is still reading the flood from the worker's pipe, and a line
  // written now could be missed too: first wait until every line of the flood is received or counted.
  const accounted = () => received.split('\n').filter((part) => part.startsWith('{') && part.endsWith('}')).reduce((sum, part) => {
    const item = JSON.parse(part) as LogStreamItem;
    return sum + ('missed' in item ? item.missed : 'message' in item && item.message.startsWith('flood ') ? 1 : 0);
  }, 0);
  await waitFor(() => accounted() === written, { what: 'every line of the flood received or counted as missed', timeoutMs: 20_000 });
  await writeLines(cluster, 'v2', 'after', 1);
  await waitFor(() => received.includes('"after 1 of 1"'), { what: 'the line after the flood', timeoutMs: 20_000 });

  const items = received.split('\n').filter((part) => part.startsWith('{')).map((part) => JSON.parse(part) as LogStreamItem);
  let expected = 0;
  let missed = 0;
  for (const item of items) {
    if ('missed' in item) {
      missed += item.missed;
      expected += item.missed;
    } else if ('message' in item && item.message.startsWith('flood ')) {
      t.is(Number.parseInt(item.message.slice('flood '.length), 10), expected, 'each count stands for the gap before the next line sent');
      expected++;
    }
  }
  t.true(missed > 0);
  t.is(expected, written, 'every line of the flood was either sent or counted as missed');
});
