// GET /api/logs against a fake WorkerLogs (the capture is tested with real workers in logs.test.ts): the
// query's checks, the recent lines, the follow stream and its two limits, and the end of followers on stop.
import net from 'node:net';
import test from 'ava';
import { dashboardDefaults } from '../src/config/types.js';
import type { Controls } from '../src/control/types.js';
import { defaultLogLines, maxLogLines, parseLogQuery } from '../src/dashboard/logs.js';
import type { LogsAnswer, LogStreamItem } from '../src/dashboard/messages.js';
import { DashboardServer } from '../src/dashboard/server.js';
import { EventLog } from '../src/primary/events.js';
import type { LogLine, LogStream, WorkerLogs } from '../src/primary/logs/types.js';
import type { Status } from '../src/primary/status.js';
import { parseExposition } from './dashboard-helpers.js';
import { waitFor } from './helpers/toolkit.js';

const token = 'test-token-0123456789abcdef';
const auth = { authorization: `Bearer ${token}` };
/** A status with nothing running: the dashboard samples it, /metrics renders it. */
const idle: Status = {
  pid: process.pid, uptimeMs: 1000, server: { host: '127.0.0.1', port: 0 }, versions: {}, workers: [], routing: { default: 'v1' },
  rollout: null, router: { handedOff: 0, fallbacks: 0, sharedPeers: 0, sharedPlacements: 0, sharedLeading: null, refused: {}, pendingShed: 0, pendingSourceRefused: 0, pending: 0 }, configError: null, configAppliedAt: 0, events: [],
};

/** Keeps every line of each worker (no bound: a test writes few) and calls followers at once, as the capture does. */
class FakeLogs implements WorkerLogs {
  readonly lines: LogLine[] = [];
  readonly listeners = new Set<{ selector: string | undefined; listener: (line: LogLine) => void }>();
  #clock = 0;

  write(worker: string, message: string, stream: LogStream = 'stdout'): void {
    const line: LogLine = { time: 1_700_000_000_000 + this.#clock++, worker, version: worker.split('.')[0]!, stream, message };
    this.lines.push(line);
    for (const { selector, listener } of this.listeners) if (matches(selector, line)) listener(line);
  }

  knows(selector: string): boolean {
    return this.lines.some((line) => matches(selector, line));
  }

  recent(selector: string | undefined, lines: number): LogLine[] {
    return lines === 0 ? [] : this.lines.filter((line) => matches(selector, line)).slice(-lines);
  }

  follow(selector: string | undefined, listener: (line: LogLine) => void): () => void {
    const entry = { selector, listener };
    this.listeners.add(entry);
    return () => this.listeners.delete(entry);
  }

  dropped(): Record<string, number> {
    return {};
  }
}

function matches(selector: string | undefined, line: LogLine): boolean {
  return selector === undefined || selector === line.worker || selector === line.version;
}

async function startDashboard(t: { teardown(fn: () => Promise<void>): void }, limits: Partial<typeof dashboardDefaults> = {}) {
  const logs = new FakeLogs();
  const dashboard = new DashboardServer({
    ...limits,
    host: '127.0.0.1',
    port: 0,
    token,
    status: () => idle,
    events: new EventLog(),
    controls: {} as Controls,
    logs,
  });
  const { port } = await dashboard.listen();
  let closed: Promise<void> | undefined;
  const close = () => closed ??= dashboard.close();
  t.teardown(close);
  /** The dashboard's own figure `name` in /metrics. */
  const metric = async (name: string) => {
    const families = parseExposition(await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: auth })).text());
    return families.get(name)?.samples[0]?.value;
  };
  return { logs, port, close, metric, url: (query: string) => `http://127.0.0.1:${port}/api/logs${query}` };
}

/** The follow stream's items as they come; `next` resolves with the first one `check` accepts. */
function itemsOf(body: ReadableStream<Uint8Array>) {
  const items: LogStreamItem[] = [];
  let ended = false;
  const done = (async () => {
    const decoder = new TextDecoder();
    let pending = '';
    for await (const chunk of body) {
      pending += decoder.decode(chunk, { stream: true });
      const lines = pending.split('\n');
      pending = lines.pop()!;
      items.push(...lines.map((line) => JSON.parse(line) as LogStreamItem));
    }
    ended = true;
  })();
  done.catch(() => { ended = true; });
  return {
    items,
    done,
    ended: () => ended,
    next: (check: (item: LogStreamItem) => boolean, what: string) => waitFor(() => items.find(check), { what, timeoutMs: 10_000, intervalMs: 10 }),
  };
}

const messages = (items: LogStreamItem[]) => items.flatMap((item) => ('message' in item ? [item.message] : []));

test('the query is checked parameter by parameter: lines, follow, target, unknown and repeated ones', (t) => {
  const knows = (target: string) => target === 'v1' || target === 'v1.1';
  const query = (text: string) => parseLogQuery(new URLSearchParams(text), knows);
  t.deepEqual(query(''), { target: undefined, lines: defaultLogLines, follow: false });
  t.deepEqual(query('target=v1.1&lines=5&follow=1'), { target: 'v1.1', lines: 5, follow: true });
  t.deepEqual(query(`target=v1&lines=${maxLogLines}&follow=false`), { target: 'v1', lines: maxLogLines, follow: false });
  t.deepEqual(query('lines=0&follow=true'), { target: undefined, lines: 0, follow: true });
  for (const lines of ['-1', '1.5', 'ten', '', String(maxLogLines + 1), '1e3']) {
    t.deepEqual(query(`lines=${lines}`), { status: 400, error: `lines must be a whole number from 0 to ${maxLogLines}, not "${lines}"` });
  }
  t.deepEqual(query('follow=yes'), { status: 400, error: 'follow must be 1 or 0 (or true or false), not "yes"' });
  t.like(query('target='), { status: 400, error: 'target must be a version name or a worker id (such as v2 or v2.1), or left out for every worker' });
  t.like(query('target=v9'), { status: 404, error: 'no version or worker "v9" (ids as graycluster status shows them, e.g. v2 or v2.1)' });
  t.like(query('line=5'), { status: 400, error: 'unknown parameter "line": GET /api/logs takes target, lines, follow' });
  t.like(query('lines=5&lines=6'), { status: 400, error: 'lines is given more than once' });
});

test('GET /api/logs answers the recent lines of a worker, a version or every worker; bad input 400, an unknown target 404, no token 401', async (t) => {
  const { logs, url } = await startDashboard(t);
  logs.write('v1.1', 'one');
  logs.write('v2.1', 'two', 'stderr');
  logs.write('v1.2', 'three');
  logs.write('v1.1', 'four');
  const get = async (query: string, headers: Record<string, string> = auth) => {
    const response = await fetch(url(query), { headers });
    return { status: response.status, type: response.headers.get('content-type'), body: await response.json() as LogsAnswer & { error?: string } };
  };
  const all = await get('');
  t.is(all.status, 200);
  t.is(all.type, 'application/json; charset=utf-8');
  t.deepEqual(all.body.lines, logs.lines);
  t.deepEqual((await get('?target=v1&lines=2')).body.lines.map((line) => line.message), ['three', 'four']);
  t.deepEqual((await get('?target=v2.1')).body.lines, [{ time: logs.lines[1]!.time, worker: 'v2.1', version: 'v2', stream: 'stderr', message: 'two' }]);

  t.like(await get('?lines=abc'), { status: 400, body: { error: `lines must be a whole number from 0 to ${maxLogLines}, not "abc"` } });
  t.like(await get(`?lines=${maxLogLines + 1}`), { status: 400 });
  t.like(await get('?target=v3'), { status: 404, body: { error: 'no version or worker "v3" (ids as graycluster status shows them, e.g. v2 or v2.1)' } });
  t.is((await fetch(url(''))).status, 401);
  t.is((await fetch(url(''), { method: 'POST', headers: auth })).status, 405);
});

test('with follow=1 the last lines come first, then every new line as it is written, until the client goes away', async (t) => {
  const { logs, url } = await startDashboard(t);
  for (const message of ['a', 'b', 'c']) logs.write('v1.1', message);
  logs.write('v2.1', 'not v1');
  const abort = new AbortController();
  const response = await fetch(url('?target=v1&lines=2&follow=1'), { headers: auth, signal: abort.signal });
  t.is(response.status, 200);
  t.is(response.headers.get('content-type'), 'application/x-ndjson; charset=utf-8');
  const stream = itemsOf(response.body!);
  await stream.next((item) => 'message' in item && item.message === 'c', 'the recent lines');
  logs.write('v1.2', 'd');
  logs.write('v2.1', 'still not v1');
  logs.write('v1.1', 'e', 'stderr');
  await stream.next((item) => 'message' in item && item.message === 'e', 'the new lines');
  t.deepEqual(messages(stream.items), ['b', 'c', 'd', 'e']);
  t.like(stream.items.at(-1), { worker: 'v1.1', version: 'v1', stream: 'stderr', message: 'e' });

  t.is(logs.listeners.size, 1);
  abort.abort();
  await waitFor(() => logs.listeners.size === 0, { what: 'the follower is forgotten once its client went away' });
});

test('past maxLogFollowers a follow request gets 503 with Retry-After; a follower leaving makes room', async (t) => {
  const { logs, url, metric } = await startDashboard(t, { maxLogFollowers: 2 });
  logs.write('v1.1', 'hello');
  const followers = [new AbortController(), new AbortController()];
  for (const abort of followers) t.is((await fetch(url('?follow=1'), { headers: auth, signal: abort.signal })).status, 200);
  const refused = await fetch(url('?follow=1'), { headers: auth });
  t.is(refused.status, 503);
  t.is(refused.headers.get('retry-after'), '10');
  t.like(await refused.json(), { error: 'the dashboard has its maximum of 2 log followers (dashboard.maxLogFollowers)' });
  // Reading the recent lines without following is not limited.
  t.is((await fetch(url(''), { headers: auth })).status, 200);
  t.is(await metric('graycluster_dashboard_log_followers'), 2);
  t.is(await metric('graycluster_dashboard_log_followers_refused_total'), 1);

  followers[0]!.abort();
  await waitFor(() => logs.listeners.size === 1, { what: 'the first follower leaves' });
  const third = new AbortController();
  t.is((await fetch(url('?follow=1'), { headers: auth, signal: third.signal })).status, 200);
  followers[1]!.abort();
  third.abort();
});

test('a follower that stops reading misses the lines past maxLogBufferedBytes and is told how many once it catches up', async (t) => {
  const maxLogBufferedBytes = 64 * 1024;
  const { logs, port, metric } = await startDashboard(t, { maxLogBufferedBytes });
  logs.write('v1.1', 'first');
  // A raw client, so that it can stop reading: the kernel's buffers fill, then the response's own.
  const socket = net.connect(port, '127.0.0.1');
  t.teardown(() => socket.destroy());
  let received = '';
  socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1'); });
  socket.write(`GET /api/logs?follow=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n\r\n`);
  await waitFor(() => received.includes('"first"'), { what: 'the recent line' });
  socket.pause();

  // Far more than loopback's socket buffers hold (4 MiB to send, the receive window well under that while unread).
  // Written over many turns of the event loop, as a worker's output comes, so that each turn's writes leave.
  const burst = 60_000;
  const padding = 'x'.repeat(200);
  for (let index = 0; index < burst; index++) {
    logs.write('v1.1', `${index} ${padding}`);
    if (index % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
  }
  socket.resume();
  // Once it has caught up the count comes at once, before any new line.
  await waitFor(() => received.includes('"missed"'), { what: 'the count of missed lines', timeoutMs: 20_000 });
  logs.write('v1.1', 'last');
  await waitFor(() => received.includes('"last"'), { what: 'the line after the burst', timeoutMs: 20_000 });

  // Chunked framing aside, each item is a line of its own.
  const items = received.split('\n').filter((part) => part.startsWith('{')).map((part) => JSON.parse(part) as LogStreamItem);
  const missed = items.flatMap((item) => ('missed' in item ? [item.missed] : []));
  const sent = messages(items).filter((message) => /^\d+ /.test(message)).map((message) => Number.parseInt(message, 10));
  t.log(`${sent.length} lines sent, ${burst - sent.length} missed, told in ${missed.length} "missed" items`);
  t.true(missed.length > 0 && missed.every((count) => count > 0), `missed: ${JSON.stringify(missed)}`);
  t.is(sent.length + missed.reduce((sum, count) => sum + count, 0), burst, 'every line of the burst was either sent or counted as missed');
  t.is(await metric('graycluster_dashboard_log_lines_missed_total'), burst - sent.length);
  // Each count stands exactly for the gap before the next line sent.
  let expected = 0;
  for (const item of items) {
    if ('missed' in item) expected += item.missed;
    else if ('message' in item && /^\d+ /.test(item.message)) {
      t.is(Number.parseInt(item.message, 10), expected);
      expected++;
    }
  }
});

test('stopping the dashboard ends each follower with an end line', async (t) => {
  const { logs, url, close } = await startDashboard(t);
  logs.write('v1.1', 'hello');
  const response = await fetch(url('?follow=1'), { headers: auth });
  const stream = itemsOf(response.body!);
  await stream.next((item) => 'message' in item, 'the recent line');
  await close();
  await stream.done;
  t.like(stream.items.at(-1), { end: 'graycluster is stopping' });
  t.is(logs.listeners.size, 0);
});
