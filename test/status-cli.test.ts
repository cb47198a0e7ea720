// `graycluster status` and the other commands that ask a supervisor through its API: `--json --watch` as a stream
// a program can read, and what they say when the address they reach is not a graycluster dashboard.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import type { Status } from '../src/primary/status.js';
import { bin, get, makeConfig, runCli, startCluster, startProcess, waitFor } from './helpers/cluster.js';

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

/** A plain HTTP server on a free loopback port answering every request as `answer` does; closed at the test's end. */
async function foreignServer(t: import('ava').ExecutionContext, answer: (res: http.ServerResponse) => void): Promise<string> {
  const server = http.createServer((req, res) => {
    req.resume();
    answer(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('every command that asks a supervisor says, in one line with exit 1, that an address answering something else is not a graycluster dashboard', async (t) => {
  // The app's own port, say: one answering JSON the API never sends, one answering an HTML page.
  const json = await foreignServer(t, (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  const html = await foreignServer(t, (res) => res.writeHead(404, { 'content-type': 'text/html' }).end('<!DOCTYPE html>\n<html><body><h1>Not Found</h1></body></html>\n'));
  const commands: Array<[string[], string]> = [
    [['status'], 'GET /api/status'],
    [['status', '--json'], 'GET /api/status'],
    [['canary', 'status'], 'GET /api/status'],
    [['logs'], 'GET /api/logs?'],
    [['logs', 'v1', '--follow'], 'GET /api/logs?target=v1&follow=1'],
    [['reload'], 'POST /api/reload'],
    [['restart', 'v1.4'], 'POST /api/workers/v1.4/restart'],
    [['rollback'], 'POST /api/rollback'],
    [['heap-snapshot', 'v1.4'], 'POST /api/workers/v1.4/heap-snapshot'],
    [['inspect', 'v1.4'], 'POST /api/workers/v1.4/inspect'],
  ];
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  for (const [url, answered] of [[json, '200 application/json: {}'], [html, '404 text/html: <!DOCTYPE html> <html><body><h1>Not Found</h1></body></html>']] as const) {
    for (const [args, request] of commands) {
      const result = await runCli([...args, '--url', url]);
      const what = `${args.join(' ')} at ${answered}`;
      t.is(result.code, 1, what);
      t.is(result.stdout, '', what);
      t.regex(result.stderr, new RegExp(`^graycluster: ${escape(url)} is not a graycluster dashboard \\(${escape(request)}\\S* answered ${escape(answered)}\\)\n$`), what);
    }
  }
});

test('status shows a worker whose event loop is blocked as unresponsive, and its version as not plainly ready', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: { workers: 2 } }, {}, { statsIntervalMs: 200, heartbeatTimeoutMs: 1000, unresponsiveRestartMs: 30_000 }));
  // app.mjs busy-loops on /block: no heartbeat until it ends.
  const blocked = get(cluster.url('/block?ms=12000')).catch((error: Error) => error);
  t.teardown(() => blocked);
  const stuck = await cluster.waitForStatus((status) => status.workers.some((worker) => worker.unresponsive));
  const victim = stuck.workers.find((worker) => worker.unresponsive)!;
  const sibling = stuck.workers.find((worker) => !worker.unresponsive)!;
  t.is(victim.state, 'ready', 'the API says ready, with unresponsive set');
  const result = await runCli(['status', '--config', cluster.configFile]);
  t.is(result.code, 0, result.stderr);
  const rows = new Map(result.stdout.split('\n').map((line) => [line.split(/\s+/)[0], line.split(/\s{2,}/)] as const));
  t.is(rows.get('v1')?.[1], 'ready (1 unresponsive)', result.stdout);
  t.is(rows.get(victim.id)?.[3], 'unresponsive', result.stdout);
  t.is(rows.get(sibling.id)?.[3], 'ready', result.stdout);
});
