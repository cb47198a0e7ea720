import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { fixture, get, makeConfig, rssOf, runCli, sampleRss, startCluster, temporaryFolder, waitFor } from './helpers/cluster.js';

const writer = fixture('log-writer.mjs');
const base64 = (bytes: Buffer | string) => encodeURIComponent(Buffer.from(bytes).toString('base64'));
const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('each worker\'s lines come out on the primary\'s stdout prefixed with the worker, stderr marked with "!"', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: { entry: writer, workers: 2 }, v2: { entry: writer } }));
  for (const worker of ['v1.1', 'v1.2', 'v2.1']) {
    const version = worker.split('.')[0]!;
    await cluster.waitForOutput(new RegExp(`^${escaped(worker)} \\| ${version} listening$`, 'm'));
    await cluster.waitForOutput(new RegExp(`^${escaped(worker)} ! ${version} warming up on stderr$`, 'm'));
  }
  t.notRegex(cluster.output(), /^v\d listening$/m, 'no worker line comes out without its prefix');
});

test('with --log-format json every line of the primary\'s stdout is a JSON object, workers\' with time, worker, version, stream and message', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: { entry: writer }, v2: { entry: writer } }, { rules: [{ header: 'x-version', equals: 'v2', to: 'v2' }] }), { args: ['--log-format', 'json'] });
  t.is((await get(`${cluster.url('/write')}?stream=stderr&base64=${base64(Buffer.from([0x62, 0x00, 0x1b, 0x5b, 0x32, 0x4a, 0xff, 0x0a]))}`, { 'x-version': 'v2' })).status, 200);
  await cluster.waitForOutput(/"message":"b\\\\x00\\\\x1b\[2J\uFFFD"/);
  t.is(await cluster.stop(), 0);

  const stdout = cluster.stdout();
  const lines = stdout.split('\n').slice(0, -1).map((line) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      return t.fail(`not JSON: ${JSON.stringify(line)}`);
    }
  });
  const fromWorkers = lines.filter((line) => line.stream !== 'graycluster');
  t.like(fromWorkers.find((line) => line.message === 'v1 listening'), { worker: 'v1.1', version: 'v1', stream: 'stdout' });
  t.like(fromWorkers.find((line) => line.message === 'v2 warming up on stderr'), { worker: 'v2.1', version: 'v2', stream: 'stderr' });
  t.like(fromWorkers.find((line) => line.stream === 'stderr' && String(line.message).startsWith('b')), { worker: 'v2.1', message: 'b\\x00\\x1b[2J\uFFFD' });
  for (const line of fromWorkers) t.true(typeof line.time === 'number' && Math.abs(Date.now() - line.time) < 120_000, JSON.stringify(line));
  const own = lines.filter((line) => line.stream === 'graycluster');
  t.true(own.some((line) => /^graycluster: serving http:/.test(String(line.message)) && line.worker === null && line.version === null));
  t.true(own.some((line) => line.message === 'graycluster: stopped'));
});

test('a partial line is printed when its worker exits, a long line is cut into marked pieces, binary output becomes valid text', async (t) => {
  const config = { ...makeConfig({ v1: { entry: writer } }), logs: { maxLineBytes: 1024 } };
  const cluster = await startCluster(t, config);
  const long = `${'a'.repeat(1024)}${'b'.repeat(1024)}${'c'.repeat(100)}\n`;
  t.is((await get(`${cluster.url('/write')}?base64=${base64(long)}`)).status, 200);
  await cluster.waitForOutput(/^v1\.1 \| c{100}$/m);
  t.regex(cluster.output(), new RegExp(`^v1\\.1 \\| a{1024} \\[cut\\]\nv1\\.1 \\| b{1024} \\[cut\\]\nv1\\.1 \\| c{100}$`, 'm'));

  // NUL, ESC and a colour sequence, invalid UTF-8, a valid "é", a CRLF ending.
  const binary = Buffer.concat([Buffer.from('bin '), Buffer.from([0x00, 0x1b]), Buffer.from('[31mred '), Buffer.from([0xff, 0xfe]), Buffer.from(' é end\r\n')]);
  t.is((await get(`${cluster.url('/write')}?base64=${base64(binary)}`)).status, 200);
  await cluster.waitForOutput(/^v1\.1 \| bin \\x00\\x1b\[31mred \uFFFD\uFFFD é end$/m);
  t.false(/[\u0000\u001b]/.test(cluster.output()), 'no control character reaches the terminal');

  t.is((await get(`${cluster.url('/exit')}?text=${encodeURIComponent('last words, no newline')}`)).status, 200);
  await cluster.waitForOutput(/^v1\.1 \| last words, no newline$/m);
});

test('a worker flooding stdout while nobody reads the primary\'s stdout: the primary\'s memory stays bounded, dropped lines are counted and announced', async (t) => {
  const config = { ...makeConfig({ v1: { entry: writer } }), logs: { maxStdoutBacklogBytes: 256 * 1024, ringBytes: 256 * 1024 } };
  const cluster = await startCluster(t, config);
  const pid = cluster.process.pid!;
  const before = rssOf(pid);
  cluster.process.stdout!.pause();  // The primary's reader stops: its pipe fills, then its backlog.
  const rss = sampleRss(pid, 100);
  const flood = await get(`${cluster.url('/flood')}?ms=3000&lineBytes=1000`);
  const samples = rss.stop();
  const written = Number(flood.body);
  t.true(written > 20_000, `the worker wrote ${written} lines`);

  const status = await cluster.waitForStatus((current) => (current.workers.find((worker) => worker.id === 'v1.1')?.logLinesDropped ?? 0) > 0);
  const dropped = status.workers.find((worker) => worker.id === 'v1.1')!.logLinesDropped;
  t.true(dropped > 0 && dropped <= written, `dropped ${dropped} of ${written}`);
  const peak = Math.max(...samples.map((sample) => sample.bytes));
  t.true(peak - before < 64 * 1024 * 1024, `rss went from ${before >> 20} MB to ${peak >> 20} MB while ${written} lines of 1000 bytes came`);

  cluster.process.stdout!.resume();
  await cluster.waitForOutput(/^graycluster: dropped \d+ lines of v1\.1: stdout could not keep up$/m);
});

test('a version\'s log file is rotated by size: no file exceeds maxBytes, at most keep old files, no line lost or split', async (t) => {
  const config = { ...makeConfig({ v1: { entry: writer } }), logs: { maxLineBytes: 1024 } };
  Object.assign(config.versions.v1!, { logFile: { path: 'logs/app.log', maxBytes: 4096, keep: 2 } });
  const cluster = await startCluster(t, config);
  const folder = path.join(path.dirname(cluster.configFile), 'logs');
  t.is((await get(`${cluster.url('/lines')}?count=400&tag=rotation`)).status, 200);
  await waitFor(() => {
    try {
      return readFileSync(path.join(folder, 'app.log'), 'utf8').includes('rotation 400 of 400\n');
    } catch {
      return false;
    }
  }, { what: 'the last line in app.log' });

  t.deepEqual(readdirSync(folder).sort(), ['app.log', 'app.log.1', 'app.log.2']);
  const files = ['app.log.2', 'app.log.1', 'app.log'].map((name) => path.join(folder, name));
  for (const file of files) t.true(statSync(file).size <= 4096, `${file}: ${statSync(file).size} bytes`);
  const lines = files.map((file) => readFileSync(file, 'utf8')).join('').split('\n').slice(0, -1).filter((line) => line.includes('rotation'));
  for (const line of lines) t.regex(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z v1\.1 \| rotation \d+ of 400$/);
  const numbers = lines.map((line) => Number(/rotation (\d+)/.exec(line)![1]));
  t.deepEqual(numbers, Array.from({ length: numbers.length }, (_, index) => 401 - numbers.length + index), 'the newest lines, in order, none missing');
  t.true(numbers.length > 150);
});

test('a bad --log-format is a usage error; a bad logs or logFile key is refused at start, naming it', async (t) => {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-logs-'));
  t.teardown(temporaryFolder(folder));
  const file = path.join(folder, 'graycluster.json');
  const start = () => runCli(['start', '--config', file, '--port', '0', '--dashboard-port', '0']);
  writeFileSync(file, JSON.stringify(makeConfig({ v1: { entry: writer } })));
  const usage = await runCli(['start', '--config', file, '--log-format', 'xml']);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /--log-format must be "text" or "json", not "xml"/);

  const cases: Array<[object, RegExp]> = [
    [{ logs: { format: 'xml' } }, /logs\.format must be equal to one of the allowed values/],
    [{ logs: { maxStdoutBacklogBytes: -1 } }, /logs\.maxStdoutBacklogBytes must be >= 0/],
    [{ logs: { ringLines: 0 } }, /logs\.ringLines must be >= 1/],
    [{ versions: { v1: { entry: writer, logFile: 5 } } }, /versions\.v1\.logFile must be a string or an object\n/],
    [{ versions: { v1: { entry: writer, logFile: { path: 'a.log', keep: 101 } } } }, /versions\.v1\.logFile\.keep must be <= 100/],
    [{ versions: { v1: { entry: writer, logFile: { path: 'a.log', maxBytes: 8192 } } } }, /versions\.v1\.logFile\.maxBytes \(8192\) must be at least logs\.maxLineBytes \(16384, its default\)/],
  ];
  for (const [change, message] of cases) {
    writeFileSync(file, JSON.stringify({ ...makeConfig({ v1: { entry: writer } }), ...change }));
    const result = await start();
    t.is(result.code, 1, JSON.stringify(change));
    t.regex(result.stderr, message);
  }
});

test('a logFile changed while running takes the next lines, without restarting the workers', async (t) => {
  const config = makeConfig({ v1: { entry: writer } });
  Object.assign(config.versions.v1!, { logFile: 'logs/first.log' });
  const cluster = await startCluster(t, config);
  const folder = path.join(path.dirname(cluster.configFile), 'logs');
  const read = (name: string) => {
    try {
      return readFileSync(path.join(folder, name), 'utf8');
    } catch {
      return '';
    }
  };
  const pid = (await cluster.status()).workers[0]!.pid;
  t.is((await get(`${cluster.url('/lines')}?count=3&tag=first`)).status, 200);
  await waitFor(() => read('first.log').includes('v1.1 | first 3 of 3\n'), { what: 'the first lines in first.log' });

  const set = await runCli(['set', 'versions.v1.logFile', '"logs/second.log"', '--config', cluster.configFile]);
  t.is(set.code, 0, set.stderr);
  await cluster.waitForOutput(/set v1's logFile from .*first\.log .* to .*second\.log .*\(no restart\)/);
  await cluster.waitForOutput(/config\s+applied/);
  t.is((await get(`${cluster.url('/lines')}?count=3&tag=second`)).status, 200);
  await waitFor(() => read('second.log').includes('v1.1 | second 3 of 3\n'), { what: 'the next lines in second.log' });
  t.false(read('first.log').includes('second'));
  t.is((await cluster.status()).workers[0]!.pid, pid, 'the worker was not restarted');
});

test('a log file that cannot keep up with a flood misses lines past logs.maxFileBacklogBytes, counted and announced', async (t) => {
  const config = { ...makeConfig({ v1: { entry: writer } }), logs: { maxFileBacklogBytes: 4096 } };
  Object.assign(config.versions.v1!, { logFile: { path: 'logs/flood.log', maxBytes: 1024 * 1024, keep: 1 } });
  const cluster = await startCluster(t, config);
  const written = Number((await get(`${cluster.url('/flood')}?ms=1000&lineBytes=200`)).body);
  // (The test reading the primary's stdout may fall behind too: then the notice names both.)
  await cluster.waitForOutput(/^graycluster: dropped \d+ lines of v1\.1: \S*\/logs\/flood\.log (and stdout )?could not keep up$/m);
  const status = await cluster.waitForStatus((current) => current.workers[0]!.logLinesDropped > 0);
  t.true(status.workers[0]!.logLinesDropped < written, `dropped ${status.workers[0]!.logLinesDropped} of ${written}`);
  const folder = path.join(path.dirname(cluster.configFile), 'logs');
  for (const name of readdirSync(folder)) t.true(statSync(path.join(folder, name)).size <= 1024 * 1024, name);
});
