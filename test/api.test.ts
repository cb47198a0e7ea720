import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { ConfigError, start, type LogLine } from '../src/index.js';
import { fixture, get, makeConfig, root, startProcess, temporaryFolder, token, waitFor } from './helpers/cluster.js';

/** The embedder script (test/fixtures/api-embedder.mjs) on `config`, driven over IPC; stopped at the test's end. */
function startEmbedder(t: ExecutionContext, config: object) {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-api-'));
  t.teardown(temporaryFolder(folder));
  const configFile = path.join(folder, 'graycluster.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const embedder = startProcess('api-embedder', process.execPath, [fixture('api-embedder.mjs'), configFile], { ipc: true, cwd: folder });
  t.teardown(() => embedder.stop());
  const outcome = (step: string, timeoutMs?: number) => embedder.waitForMessage((message) => message.step === step, timeoutMs);
  const send = (command: object) => embedder.child.send(command);
  const statusUntil = (check: (status: any) => boolean, what: string) => waitFor(async () => {
    send({ do: 'status' });
    return check((await outcome('status')).status);
  }, { what });
  return { embedder, configFile, outcome, send, statusUntil };
}

test('the programmatic API starts graycluster, changes weights and worker counts, reports status, and stops', async (t) => {
  const { embedder, configFile, outcome, send, statusUntil } = startEmbedder(t, makeConfig({ v1: {}, v2: {} }, { weights: { v1: 100, v2: 0 }, sticky: { key: 'header:x-user' } }));

  const started = await outcome('start');
  t.is(started.error, undefined);
  t.is(started.token, token);
  send({ do: 'ready' });
  // `ready`: the default version serves; the others may still be starting.
  t.like((await outcome('ready')).status.versions, { v1: { ready: 1, configured: 1, weight: 100 }, v2: { configured: 1, weight: 0 } });
  await statusUntil((status) => status.versions.v2.ready === 1, 'v2 ready, in status()');
  const url = `http://127.0.0.1:${started.port}/`;
  t.is((await get(url, { 'x-user': 'someone' })).body.version, 'v1');

  send({ do: 'weights', weights: { v1: 0, v2: 100 } });
  const weighted = await outcome('weights');
  t.deepEqual(weighted.changes, ['switch routing: default v1, weights v1=100, 0 rules → default v1, weights v2=100, 0 rules']);
  t.deepEqual(weighted.status.routing.weights, { v1: 0, v2: 100 });
  t.is((await get(url, { 'x-user': 'someone' })).body.version, 'v2');
  t.deepEqual(JSON.parse(readFileSync(configFile, 'utf8')).routing.weights, { v1: 0, v2: 100 });

  send({ do: 'weights', weights: { v9: 5 } });
  t.deepEqual((await outcome('weights')).error, { name: 'ConfigError', message: 'unknown version "v9" (known: v1, v2)' });

  send({ do: 'update', version: 'v2', workers: 2 });
  const scaled = await outcome('update');
  t.deepEqual(scaled.changes, ['scale v2 from 1 to 2 workers']);
  t.is(scaled.status.versions.v2.configured, 2);
  await statusUntil((status) => status.versions.v2.ready === 2, 'the second worker of v2 ready, in status()');

  send({ do: 'stop' });
  const stopped = await outcome('stop');
  t.is(stopped.error, undefined);
  t.true(stopped.log.includes('graycluster: stopped'));
  // Everything closed: the embedder's script ends by itself once its IPC channel is gone.
  t.deepEqual(await embedder.exited, { code: 0, signal: null });
  await t.throwsAsync(get(url), { code: 'ECONNREFUSED' });
});

test('logs() gives the lines the workers wrote, of a worker, a version or every worker; an unknown one or a bad count is refused', async (t) => {
  const { outcome, send } = startEmbedder(t, makeConfig({ v1: { entry: fixture('log-writer.mjs'), workers: 2 } }));
  t.is((await outcome('start')).error, undefined);
  const logs = (...args: unknown[]) => {
    send({ do: 'logs', args });
    return outcome('logs');
  };
  // Each worker writes a line on stdout and one on stderr as it starts.
  const all = await waitFor(async () => {
    const { lines } = await logs();
    return lines.length === 4 ? lines as LogLine[] : undefined;
  }, { what: 'the start-up lines of both workers' });
  t.deepEqual(all.map((line) => `${line.worker} ${line.version} ${line.stream} ${line.message}`).sort(), [
    'v1.1 v1 stderr v1 warming up on stderr', 'v1.1 v1 stdout v1 listening',
    'v1.2 v1 stderr v1 warming up on stderr', 'v1.2 v1 stdout v1 listening',
  ]);
  t.deepEqual((await logs('v1.2')).lines, all.filter((line) => line.worker === 'v1.2'));
  t.deepEqual((await logs('v1', 1)).lines, all.slice(-1));
  t.deepEqual((await logs('v1', 0)).lines, []);
  t.deepEqual((await logs('v9')).error, { name: 'RangeError', message: 'logs(): no version or worker "v9" (ids as status() shows them, e.g. "v2" or "v2.1")' });
  for (const lines of [-1, 1.5, 10_001, '5']) {
    t.deepEqual((await logs('v1', lines)).error, { name: 'RangeError', message: `logs(): lines must be a whole number from 0 to 10000, not ${JSON.stringify(lines)}` });
  }
});

test('ready waits for the default version: a crash-looping one, fixed by an edit of the file, resolves it', async (t) => {
  const config = makeConfig({ v1: { entry: fixture('throws-at-load.mjs') } });
  const { configFile, outcome, send, statusUntil } = startEmbedder(t, config);
  const started = await outcome('start');
  t.is(started.error, undefined);
  let settled = false;
  const ready = outcome('ready').finally(() => { settled = true; });
  send({ do: 'ready' });
  await statusUntil((status) => status.versions.v1.state === 'crashloop', 'v1 crash-looping');
  t.false(settled);
  config.versions.v1!.entry = fixture('app.mjs');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  t.is((await ready).status.versions.v1.ready, 1);
  const reply = await get(`http://127.0.0.1:${started.port}/`);
  t.is(reply.status, 200);
  t.is(reply.body.version, 'v1');
});

test('start() refuses a bad config or a bad option with an error that names it, before anything runs', async (t) => {
  await t.throwsAsync(start({ config: path.join(root, 'no-such-config.json') }), { instanceOf: ConfigError, message: /config file not found: .*no-such-config\.json/ });
  await t.throwsAsync(start({ config: path.join(root, 'config/graycluster.json'), port: 70_000 }), { instanceOf: RangeError, message: 'start(): port must be a whole number from 0 to 65535, not 70000' });
  await t.throwsAsync(start({ config: path.join(root, 'config/graycluster.json'), token: 'short' }), { instanceOf: RangeError, message: 'start(): token must be a string of at least 16 characters' });
  await t.throwsAsync(start({} as never), { instanceOf: TypeError, message: 'start(): config must be the path of a config file' });
  await t.throwsAsync(start({ config: path.join(root, 'config/graycluster.json'), signal: 'stop' as never }), { instanceOf: TypeError, message: 'start(): signal must be an AbortSignal' });
});
