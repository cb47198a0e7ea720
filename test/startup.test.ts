import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { bin, fixture, get, makeConfig, startInstance, startProcess, waitFor } from './helpers/cluster.js';

/** Writes `config` to a temp folder of the test's; returns the file. */
function configFile(t: ExecutionContext, config: object): string {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-test-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  const file = path.join(folder, 'graycluster.json');
  writeFileSync(file, JSON.stringify(config));
  return file;
}

/** A port free on 127.0.0.1 now: the test must know it before graycluster says anything. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('a request sent the instant start is launched waits for the first worker and is answered 200, and "serving" is said only then', async (t) => {
  const port = await freePort();
  const starting = startInstance(makeConfig({ v1: { entry: fixture('slow-start.mjs') } }), { args: ['--port', String(port)] });
  t.teardown(async () => (await starting).stop());
  // Retry only the connection refusals of the moment before the port is bound: the first request that gets
  // through is sent long before the app (1.5 s to start) can answer.
  const reply = await waitFor(() => get(`http://127.0.0.1:${port}/first`).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ECONNREFUSED') return undefined;
    throw error;
  }), { timeoutMs: 15_000, intervalMs: 10, what: 'the first request through the port' });
  t.is(reply.status, 200);
  t.is(reply.body.url, '/first');
  const output = (await starting).process.output();
  t.true(output.indexOf('ready in') < output.indexOf('graycluster: serving'), output);
});

test('connections waiting for a first worker are bounded: past maxQueuedHandoffs they get 503 at once', async (t) => {
  const port = await freePort();
  const starting = startInstance(makeConfig({ v1: { entry: fixture('slow-start.mjs') } }, {}, { maxQueuedHandoffs: 2 }), { args: ['--port', String(port)] });
  t.teardown(async () => (await starting).stop());
  await waitFor(() => new Promise<true | undefined>((resolve) => {
    const probe = net.connect(port, '127.0.0.1', () => {
      probe.destroy();
      resolve(true);
    });
    probe.on('error', () => resolve(undefined));
  }), { timeoutMs: 15_000, intervalMs: 10, what: 'the port bound' });
  const replies = await Promise.all(Array.from({ length: 5 }, (_, index) => get(`http://127.0.0.1:${port}/${index}`)));
  const statuses = replies.map((reply) => reply.status).sort();
  t.deepEqual(statuses, [200, 200, 503, 503, 503]);
});

test('a SIGTERM while the workers are still starting stops at once, without waiting for them to be ready: exit 0, no worker killed', async (t) => {
  const port = await freePort();
  // This worker never listens, and the primary would give it 10 minutes: a stop that waits for it times the test out.
  const config = makeConfig({ v1: { entry: fixture('never-listens.mjs') } }, {}, { readyTimeoutMs: 600_000 });
  const process = startProcess('graycluster', globalThis.process.execPath, [bin, 'start', '--config', configFile(t, config), '--port', String(port)]);
  t.teardown(() => process.stop());
  await process.waitForOutput(/started\s+\[v1 worker v1\.1/);
  process.child.kill('SIGTERM');
  const exit = await process.exited;
  t.is(exit.code, 0, process.output());
  // SIGTERM: its runtime drains on it (exit code 0), or, still loading, has no handler yet (the signal ends it).
  t.regex(process.output(), /stopped\s+\[v1 worker v1\.1 pid \d+\] stopped \((exit code 0|signal SIGTERM)\)/);
  t.regex(process.output(), /graycluster: stopped/);
  t.notRegex(process.output(), /killing/);
  t.notRegex(process.output(), /graycluster: serving/, 'it never said it serves');
});
