import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { ConfigError, resolveConfig } from '../src/config/load.js';
import type { ConfigFile } from '../src/config/types.js';
import { formatOwnLine, formatWorkerLine } from '../src/primary/logs/format.js';
import { LineSplitter, cutMark } from '../src/primary/logs/line-splitter.js';
import { Ring } from '../src/primary/logs/ring.js';
import { LogStore } from '../src/primary/logs/store.js';
import type { LogLine } from '../src/primary/logs/types.js';

const messages = (lines: Array<{ message: string }>) => lines.map((line) => line.message);

test('the splitter gives complete lines, holds a partial one across chunks and gives it at the end', (t) => {
  const splitter = new LineSplitter(64);
  t.deepEqual(messages(splitter.push(Buffer.from('one\ntw'))), ['one']);
  t.deepEqual(messages(splitter.push(Buffer.from('o\r\nthree\n\nfou'))), ['two', 'three', '']);
  t.deepEqual(splitter.push(Buffer.from('r')), []);
  t.deepEqual(splitter.end(), [{ message: 'four', cut: false }]);
  t.deepEqual(splitter.end(), [], 'nothing is given twice');
});

test('a line longer than maxLineBytes comes in marked pieces of at most that size, never splitting a character', (t) => {
  const splitter = new LineSplitter(8);
  t.deepEqual(splitter.push(Buffer.from('abcdefghij')), [{ message: `abcdefgh${cutMark}`, cut: true }], 'a piece as soon as the cap is reached, newline or not');
  t.deepEqual(splitter.push(Buffer.from('klmnopqrst\n')), [{ message: `ijklmnop${cutMark}`, cut: true }, { message: 'qrst', cut: false }]);
  // "é" is 2 bytes and "€" 3: the piece stops before the character that would not fit whole.
  t.deepEqual(messages(splitter.push(Buffer.from('abcdefgé€€\n'))), [`abcdefg${cutMark}`, `é€€`]);
  const exact = new LineSplitter(8);
  t.deepEqual(exact.push(Buffer.from('12345678\n')), [{ message: '12345678', cut: false }], 'a line of exactly the cap is whole');
});

test('binary and control characters become valid, printable text: U+FFFD for invalid UTF-8, \\xNN for controls, tabs kept', (t) => {
  const splitter = new LineSplitter(1024);
  const bytes = Buffer.concat([Buffer.from('a\t'), Buffer.from([0x00, 0x1b, 0x5b, 0x32, 0x4a, 0x0d, 0x07, 0x7f, 0xc2, 0x9b, 0xff, 0xc3]), Buffer.from('z\n')]);
  t.deepEqual(messages(splitter.push(bytes)), ['a\t\\x00\\x1b[2J\\x0d\\x07\\x7f\\x9b\uFFFD\uFFFDz']);
});

test('the ring keeps the newest entries within both its line and its byte bound', (t) => {
  const ring = new Ring<string>(3, 10);
  const push = (item: string, sequence: number) => ring.push({ item, sequence, bytes: item.length });
  push('aa', 1);
  push('bb', 2);
  push('cc', 3);
  push('dd', 4);
  t.deepEqual(ring.last(10).map((entry) => entry.item), ['bb', 'cc', 'dd'], 'past 3 lines the oldest goes');
  push('eeeeeee', 5);
  t.deepEqual(ring.last(10).map((entry) => entry.item), ['dd', 'eeeeeee'], 'past 10 bytes the oldest go');
  t.is(ring.bytes, 9);
  push('x'.repeat(20), 6);
  t.deepEqual(ring.last(10).map((entry) => entry.item), ['x'.repeat(20)], 'the newest is kept even when larger than the bound alone');
  t.deepEqual(ring.last(0), []);
});

const line = (worker: string, message: string, stream: LogLine['stream'] = 'stdout'): LogLine => ({ time: 1, worker, version: worker.split('.')[0]!, stream, message });

test('the store answers recent lines by version, worker or all, merged in the order they were read', (t) => {
  const store = new LogStore({ ringLines: 2, ringBytes: 1024, keepExitedWorkers: 1 });
  store.attach('v1.1', 'v1');
  store.attach('v1.2', 'v1');
  store.attach('v2.1', 'v2');
  for (const [worker, message] of [['v1.1', 'a'], ['v2.1', 'b'], ['v1.2', 'c'], ['v1.1', 'd'], ['v1.1', 'e']] as const) store.add(line(worker, message));
  t.deepEqual(messages(store.recent(undefined, 10)), ['b', 'c', 'd', 'e'], 'v1.1 keeps its last 2');
  t.deepEqual(messages(store.recent('v1', 2)), ['d', 'e']);
  t.deepEqual(messages(store.recent('v1.2', 10)), ['c']);
  t.deepEqual(store.recent('v1', 0), []);
  t.true(store.knows('v2') && store.knows('v1.2'));
  t.false(store.knows('v3') || store.knows('v1.9'));
});

test('followers get the lines they selected until they stop; a throwing follower harms no one', (t) => {
  const store = new LogStore({ ringLines: 10, ringBytes: 1024, keepExitedWorkers: 1 });
  store.attach('v1.1', 'v1');
  store.attach('v2.1', 'v2');
  const seen: string[] = [];
  store.follow(undefined, () => { throw new Error('a broken follower'); });
  const stop = store.follow('v2', (followed) => seen.push(followed.message));
  store.add(line('v1.1', 'not for v2'));
  store.add(line('v2.1', 'for v2'));
  stop();
  store.add(line('v2.1', 'after stopping'));
  t.deepEqual(seen, ['for v2']);
  t.deepEqual(messages(store.recent('v2', 10)), ['for v2', 'after stopping']);
});

test('a worker\'s lines and drop count outlive its process: a restart keeps them, keepExitedWorkers bounds the ones gone', (t) => {
  const store = new LogStore({ ringLines: 10, ringBytes: 1024, keepExitedWorkers: 1 });
  store.attach('v1.1', 'v1');
  store.add(line('v1.1', 'last words'));
  store.countDropped('v1.1', 3);
  store.detach('v1.1');
  store.attach('v1.1', 'v1');  // Restarted: same id.
  t.deepEqual(messages(store.recent('v1.1', 10)), ['last words']);
  t.deepEqual(store.dropped(), { 'v1.1': 3 });
  store.detach('v1.1');
  store.attach('v1.2', 'v1');
  store.detach('v1.2');
  t.false(store.knows('v1.1'), 'two gone, one kept: the one gone first is forgotten');
  t.true(store.knows('v1.2'));
  t.deepEqual(store.dropped(), { 'v1.2': 0 });
});

test('text lines carry the worker and a stream mark; JSON lines (the primary\'s own too) parse back to their fields', (t) => {
  t.is(formatWorkerLine(line('v2.1', 'listening'), 'text'), 'v2.1 | listening');
  t.is(formatWorkerLine(line('v2.1', 'careful', 'stderr'), 'text'), 'v2.1 ! careful');
  t.deepEqual(JSON.parse(formatWorkerLine(line('v2.1', 'say "hi"\t\\x00'), 'json')), { time: 1, worker: 'v2.1', version: 'v2', stream: 'stdout', message: 'say "hi"\t\\x00' });
  t.deepEqual(JSON.parse(formatOwnLine('graycluster: stopped', 'json', 5)), { time: 5, worker: null, version: null, stream: 'graycluster', message: 'graycluster: stopped' });
  t.is(formatOwnLine('graycluster: stopped', 'text'), 'graycluster: stopped');
});

const file = path.join(os.tmpdir(), 'graycluster.json');
const withLogFile = (logFile: unknown, logs: ConfigFile['logs'] = {}): ConfigFile => ({
  logs,
  versions: { v1: { entry: './app.js', logFile: logFile as never } },
  routing: { default: 'v1' },
});

test('logFile: a path or { path, maxBytes, keep }, resolved against the config file\'s folder, with defaults', (t) => {
  t.deepEqual(resolveConfig(file, withLogFile('logs/v1.log')).versions.get('v1')!.logFile, { path: path.join(os.tmpdir(), 'logs/v1.log'), maxBytes: 10 * 1024 * 1024, keep: 5 });
  t.deepEqual(resolveConfig(file, withLogFile({ path: '/var/log/app.log', keep: 0 })).versions.get('v1')!.logFile, { path: '/var/log/app.log', maxBytes: 10 * 1024 * 1024, keep: 0 });
  t.is(resolveConfig(file, withLogFile(undefined)).versions.get('v1')!.logFile, null);
  t.throws(() => resolveConfig(file, withLogFile({ path: 'a.log', maxBytes: 8192 }, { maxLineBytes: 16384 })), {
    instanceOf: ConfigError, message: /versions\.v1\.logFile\.maxBytes \(8192\) must be at least logs\.maxLineBytes \(16384\)/,
  });
});

test('two versions may not share a log file', (t) => {
  const raw: ConfigFile = { versions: { v1: { entry: './a.js', logFile: 'logs/app.log' }, v2: { entry: './b.js', logFile: { path: './logs/../logs/app.log' } } }, routing: { default: 'v1' } };
  t.throws(() => resolveConfig(file, raw), { instanceOf: ConfigError, message: /versions\.v2\.logFile \(.*app\.log\) is versions\.v1\.logFile too: each version needs a file of its own/ });
});

test('--log-format wins over logs.format', (t) => {
  t.is(resolveConfig(file, withLogFile(undefined, { format: 'json' })).logs.format, 'json');
  t.is(resolveConfig(file, withLogFile(undefined, { format: 'json' }), { logFormat: 'text' }).logs.format, 'text');
  t.is(resolveConfig(file, withLogFile(undefined)).logs.format, 'text');
});
