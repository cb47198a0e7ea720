import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import test, { type ExecutionContext } from 'ava';
import { resolveConfig } from '../src/config/load.js';
import { handleWindowLimits } from '../src/ipc/handle-window.js';
import type { ConfigFile, ResolvedConfig } from '../src/config/types.js';
import { EventLog } from '../src/primary/events.js';
import { Handoff } from '../src/primary/handoff.js';
import { HealthMonitor } from '../src/primary/health.js';
import { Lifecycle } from '../src/primary/lifecycle.js';
import { Replacements } from '../src/primary/replacement.js';
import type { WorkerSlot } from '../src/primary/worker-slot.js';
import { canTransition } from '../src/primary/worker-state.js';
import { fakeFork, socketPairs, type FakeWorker } from './helpers/fake-worker.js';

const { maxHandles } = handleWindowLimits;
const head = Buffer.from('GET / HTTP/1.1\r\n\r\n');
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, index) => from + index);

/** Everything a client connection receives until the other side closes it. */
async function answerOf(socket: Socket): Promise<string> {
  let text = '';
  for await (const chunk of socket) text += chunk;
  return text;
}

/** The primary's worker side, wired as start.ts wires it, with fake worker processes. */
function primary(t: ExecutionContext, server: ConfigFile['server'] = {}, versions: ConfigFile['versions'] = { v1: { entry: 'a.js' }, v2: { entry: 'b.js' } }) {
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'graycluster-unit-'));
  t.teardown(() => rmSync(runDir, { recursive: true, force: true }));
  let config: ResolvedConfig = resolveConfig(path.join(runDir, 'graycluster.json'), { server, versions, routing: { default: 'v1' } });
  const current = () => config;
  const events = new EventLog();
  const forks = fakeFork();
  const lifecycle = new Lifecycle(current, events, forks.fork, { publicHost: '127.0.0.1', runDir, backoff: { initialMs: 5, crashloopAfter: 3 } });
  const replacements = new Replacements(lifecycle, current, events);
  const health = new HealthMonitor(lifecycle, current, (slot, reason) => replacements.recycle(slot, reason));
  const handoff = new Handoff(lifecycle, current, events);
  const moves: string[] = [];
  lifecycle.on('transition', (slot, from, to) => moves.push(`${slot.id} ${from.kind}→${to.kind}`));
  t.teardown(() => lifecycle.killAll());
  const workerOf = (slot: WorkerSlot) => slot.process as FakeWorker;
  const ready = (slot: WorkerSlot) => workerOf(slot).listening(path.join(runDir, `${slot.id}.sock`));
  /** Adds each version, then makes the first worker of each ready; returns those workers, in order. */
  const readyVersions = (...versions: string[]) => {
    for (const version of versions) void lifecycle.addVersion(version);
    const firsts = versions.map((version) => lifecycle.pool(version)[0]!);
    firsts.forEach(ready);
    return firsts;
  };
  return {
    lifecycle, replacements, health, handoff, events, forks, moves, runDir, ready, readyVersions, workerOf,
    setConfig: (next: (config: ResolvedConfig) => ResolvedConfig) => { config = next(config); },
    types: () => events.recent().map((event) => event.type),
    messages: () => events.recent().map((event) => `${event.type} ${event.message}`),
  };
}

test('a worker goes stopped → starting → ready, and a crash restarts it at once, recording each step', async (t) => {
  const p = primary(t);
  const [slot] = p.readyVersions('v1');
  t.is(slot!.state.kind, 'ready');
  p.workerOf(slot!).exit(1);
  t.is(slot!.state.kind, 'restarting');
  t.true(p.messages().includes('crashed crashed (exit code 1); restarting at once'));
  await p.lifecycle.until(() => (slot!.state.kind === 'starting' ? true : undefined));
  p.ready(slot!);
  t.deepEqual(p.moves, ['v1.1 stopped→starting', 'v1.1 starting→ready', 'v1.1 ready→restarting', 'v1.1 restarting→starting', 'v1.1 starting→ready']);
  t.deepEqual(p.types(), ['started', 'ready', 'crashed', 'restarting', 'started', 'ready']);
  t.is(slot!.restarts, 1);
});

test('a slow start stays starting; addVersion resolves once the worker is ready', async (t) => {
  const p = primary(t);
  const serving = p.lifecycle.addVersion('v1');
  const [slot] = p.lifecycle.pool('v1');
  t.is(p.lifecycle.versionState('v1'), 'starting');
  setTimeout(() => p.ready(slot!), 50);
  t.true(await serving);
  t.is(p.lifecycle.versionState('v1'), 'ready');
});

test('a worker not ready within readyTimeoutMs is killed and counts as a failed start', async (t) => {
  const p = primary(t, { readyTimeoutMs: 30 });
  void p.lifecycle.addVersion('v1');
  const [slot] = p.lifecycle.pool('v1');
  const first = p.workerOf(slot!);
  await p.lifecycle.until(() => (slot!.state.kind === 'restarting' ? true : undefined));
  t.deepEqual(first.signals, ['SIGKILL']);
  t.true(p.messages().includes('failed not ready within 30 ms: killing it'));
  t.true(p.messages().includes('crashed failed to start (signal SIGKILL); restarting at once'));
});

test('failures in a row back off, then crashloop; a ready worker brings the version back', async (t) => {
  const p = primary(t);
  void p.lifecycle.addVersion('v2');
  const [slot] = p.lifecycle.pool('v2');
  const delays: number[] = [];
  p.lifecycle.on('transition', (_slot, _from, to) => {
    if (to.kind === 'restarting' || to.kind === 'crashloop') delays.push(to.delayMs);
  });
  for (let failure = 1; failure <= 3; failure++) {
    await p.lifecycle.until(() => (slot!.state.kind === 'starting' ? true : undefined));
    p.workerOf(slot!).exit(1);
  }
  t.deepEqual(delays, [0, 5, 10]);
  t.is(slot!.state.kind, 'crashloop');
  t.is(p.lifecycle.versionState('v2'), 'crashloop');
  t.true(p.messages().includes('crashloop keeps crashing: its traffic gets 503 until a worker is ready again'));
  await p.lifecycle.until(() => (slot!.state.kind === 'starting' ? true : undefined));
  p.ready(slot!);
  t.is(p.lifecycle.versionState('v2'), 'ready');
  t.is(p.events.recent().at(-1)!.type, 'recovered');
});

test('a worker that misses its heartbeat is unresponsive, gets no connections, recovers with a report, and is killed when silent too long', async (t) => {
  const p = primary(t, { statsIntervalMs: 10, heartbeatTimeoutMs: 50, unresponsiveRestartMs: 1000, handoffTimeoutMs: 500 });
  const [v1, v2] = p.readyVersions('v1', 'v2');
  await new Promise((resolve) => setTimeout(resolve, 80));
  p.workerOf(v1!).emit('message', { kind: 'stats', stats: v1!.stats }, undefined);
  p.health.sample();
  t.is(v2!.state.kind, 'unresponsive');
  t.is(v2!.view().state, 'ready', 'the status API still says ready, with unresponsive set');
  t.true(v2!.view().unresponsive);
  const { server } = await socketPairs(t, 1);
  p.handoff.place(server[0]!, head, 'v2', undefined);
  t.is(p.workerOf(v1!).connections.length, 1, 'v2 has no responsive worker: its connection falls back to v1');
  t.is(p.handoff.counters.fallbacks, 1);
  p.workerOf(v2!).emit('message', { kind: 'stats', stats: v2!.stats }, undefined);
  t.is(v2!.state.kind, 'ready');
  t.is(p.events.recent().at(-1)!.message, 'heartbeat is back');
  p.health.sample(performance.now() + 2000);
  t.deepEqual(p.workerOf(v2!).signals, ['SIGKILL']);
});

test('a worker takes up to its window of connections unacknowledged; the next ones queue until it answers, in order', async (t) => {
  const p = primary(t);
  const [v1] = p.readyVersions('v1');
  const { server, handles } = await socketPairs(t, maxHandles + 2);
  const sentTo = (slot: WorkerSlot) => p.workerOf(slot).connections.map((handle) => handles.indexOf(handle));
  for (const connection of server) p.handoff.place(connection, head, 'v1', undefined);
  t.deepEqual(sentTo(v1!), range(0, maxHandles), 'a window of connections in flight at once');
  t.is(p.handoff.waiting, maxHandles + 2, 'and two queued behind them');
  t.true(server[0]!.open, 'the primary keeps its copy of a connection until the worker acknowledges it');
  p.workerOf(v1!).acknowledge();
  t.false(server[0]!.open, 'and closes it then (answers come in the order sent)');
  t.true(server[1]!.open);
  t.deepEqual(sentTo(v1!), range(0, maxHandles + 1), 'an answer lets the next queued one go');
  for (let answer = 0; answer < maxHandles + 1; answer++) p.workerOf(v1!).acknowledge();
  t.deepEqual(sentTo(v1!), range(0, maxHandles + 2));
  t.is(p.handoff.waiting, 0);
  t.true(server.every((connection) => !connection.open));
});

test('a handoff not acknowledged in time stops new connections to that worker and moves its queue to the default', async (t) => {
  const p = primary(t, { handoffTimeoutMs: 30 });
  const [v1, v2] = p.readyVersions('v1', 'v2');
  const { server, handles } = await socketPairs(t, maxHandles + 3);
  const sentTo = (slot: WorkerSlot) => p.workerOf(slot).connections.map((handle) => handles.indexOf(handle));
  for (const connection of server.slice(0, maxHandles + 2)) p.handoff.place(connection, head, 'v2', undefined);
  t.deepEqual(sentTo(v2!), range(0, maxHandles), 'a window in flight, two waiting behind it');
  await new Promise<void>((resolve) => p.events.on('event', (event) => event.type === 'unresponsive' && resolve()));
  t.deepEqual(sentTo(v1!), [maxHandles, maxHandles + 1], 'the queued ones went to the default');
  t.is(p.types().filter((type) => type === 'unresponsive').length, 1, 'one event, however many connections it holds');
  p.workerOf(v1!).acknowledge();
  t.false(server[maxHandles]!.open);
  p.handoff.place(server[maxHandles + 2]!, head, 'v2', undefined);
  t.deepEqual(sentTo(v1!), [maxHandles, maxHandles + 1, maxHandles + 2], 'new ones too');
  p.workerOf(v2!).acknowledge();
  t.is(p.events.recent().at(-1)!.type, 'recovered');
  t.is(p.handoff.waiting, maxHandles - 1 + 2, 'v2 has the rest of its window unacknowledged, v1 two');
});

test('each connection in flight gets its own handoffTimeoutMs: one answered in time leaves a younger one its full time, and a lane that recovers is watched again', async (t) => {
  const p = primary(t, { handoffTimeoutMs: 1000 });
  const [, v2] = p.readyVersions('v1', 'v2');
  const { server } = await socketPairs(t, 4);
  const unresponsive = () => p.types().filter((type) => type === 'unresponsive').length;
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  p.handoff.place(server[0]!, head, 'v2', undefined);
  await sleep(600);
  p.handoff.place(server[1]!, head, 'v2', undefined);
  await sleep(100);
  p.workerOf(v2!).acknowledge();  // The first, 700 ms after it was sent.
  await sleep(500);  // 200 ms past the first one's deadline, 600 ms into the second one's 1000.
  t.is(unresponsive(), 0, 'the second one still has time');
  p.workerOf(v2!).acknowledge();
  p.handoff.place(server[2]!, head, 'v2', undefined);
  await new Promise<void>((resolve) => p.events.on('event', (event) => event.type === 'unresponsive' && resolve()));
  t.is(unresponsive(), 1, 'the third one was not taken in time');
  p.workerOf(v2!).acknowledge();
  t.is(p.types().at(-1), 'recovered');
  p.handoff.place(server[3]!, head, 'v2', undefined);
  await new Promise<void>((resolve) => p.events.on('event', (event) => event.type === 'unresponsive' && resolve()));
  t.is(unresponsive(), 2, 'watched again once it recovered');
});

test('a connection that reaches a worker without its socket (NODE_HANDLE_NACK: no descriptor free) goes elsewhere at once, and that worker is tried again after handoffTimeoutMs', async (t) => {
  const p = primary(t, { handoffTimeoutMs: 40 }, { v1: { entry: 'a.js', workers: 2 } });
  void p.lifecycle.addVersion('v1');
  const [first, second] = [...p.lifecycle.pool('v1')];
  p.ready(first!);
  p.ready(second!);
  const { server, handles } = await socketPairs(t, 4);
  const sentTo = (slot: WorkerSlot) => p.workerOf(slot).connections.map((handle) => handles.indexOf(handle));
  p.handoff.place(server[0]!, head, 'v1', undefined);
  p.handoff.place(server[1]!, head, 'v1', undefined);
  const [refusing, taking] = sentTo(first!).includes(0) ? [first!, second!] : [second!, first!];
  t.deepEqual([sentTo(refusing), sentTo(taking)], [[0], [1]]);
  p.workerOf(taking).acknowledge();
  p.workerOf(refusing).notReceived();
  t.deepEqual(sentTo(taking), [1, 0], 'the refused connection went to the other worker at once');
  t.true(server[0]!.open, 'with the copy the primary kept');
  t.true(p.messages().at(-1)!.startsWith('unresponsive could not receive a connection'));
  p.workerOf(taking).acknowledge();
  p.handoff.place(server[2]!, head, 'v1', undefined);
  t.deepEqual(sentTo(refusing), [0], 'it gets nothing new for handoffTimeoutMs');
  t.deepEqual(sentTo(taking), [1, 0, 2]);
  p.workerOf(taking).acknowledge();
  await new Promise((resolve) => setTimeout(resolve, 60));
  p.handoff.place(server[3]!, head, 'v1', undefined);
  t.deepEqual(sentTo(refusing), [0, 3], 'then it is tried again');
  p.workerOf(refusing).acknowledge();
  t.false(server[3]!.open, 'and once it takes one');
  t.is(p.types().at(-1), 'recovered', 'it is back');
  t.is(p.handoff.waiting, 0);
  t.is(p.handoff.counters.unavailable, 0);
});

test('when the only worker of a version cannot receive its connection, that one and those queued behind it fall back to the default at once', async (t) => {
  const p = primary(t, { handoffTimeoutMs: 10_000 });
  const [v1, v2] = p.readyVersions('v1', 'v2');
  const { server, handles } = await socketPairs(t, maxHandles + 2);
  const sentTo = (slot: WorkerSlot) => p.workerOf(slot).connections.map((handle) => handles.indexOf(handle));
  for (const connection of server) p.handoff.place(connection, head, 'v2', undefined);
  t.deepEqual(sentTo(v2!), range(0, maxHandles), 'a window in flight, two queued behind it');
  p.workerOf(v2!).notReceived();
  t.deepEqual(sentTo(v1!), [0, maxHandles, maxHandles + 1], 'the refused one went to the default at once, and the queued ones after it');
  for (let answer = 1; answer < maxHandles; answer++) p.workerOf(v2!).notReceived();
  p.workerOf(v1!).acknowledge();
  p.workerOf(v1!).acknowledge();
  t.deepEqual(sentTo(v1!), [0, maxHandles, maxHandles + 1, ...range(1, maxHandles)], 'the others follow as their refusals come (v1 has its own window)');
  t.deepEqual(sentTo(v2!), range(0, maxHandles), 'nothing more went to the worker that could not receive');
  t.is(p.types().filter((type) => type === 'unresponsive').length, 1);
  t.is(p.handoff.counters.fallbacks, maxHandles + 2);
  t.is(p.handoff.counters.unavailable, 0);
});

test('when a worker dies mid-handoff, its queued connections go elsewhere at once, and those it had not acknowledged once its channel has closed', async (t) => {
  const p = primary(t);
  const [v1, v2] = p.readyVersions('v1', 'v2');
  const { server, handles } = await socketPairs(t, maxHandles + 2);
  const sentTo = (slot: WorkerSlot) => p.workerOf(slot).connections.map((handle) => handles.indexOf(handle));
  for (const connection of server) p.handoff.place(connection, head, 'v2', undefined);
  const dead = p.workerOf(v2!);
  dead.exit(null, 'SIGKILL', { channelOpen: true });
  t.deepEqual(sentTo(v1!), [maxHandles, maxHandles + 1], 'the queued ones never left: they go to v1 at once');
  dead.acknowledge();  // An answer it wrote before it died, read after the exit was seen.
  t.false(server[0]!.open, 'that one its app had: the copy here is closed');
  t.true(server.slice(1).every((connection) => connection.open), 'the others wait for its channel to close');
  dead.closeChannel();
  for (let answer = 0; answer < 3; answer++) p.workerOf(v1!).acknowledge();
  t.deepEqual(sentTo(v1!), [maxHandles, maxHandles + 1, ...range(1, maxHandles)], 'then they go to v1, with the copies kept here');
  t.true(server.slice(2, maxHandles).every((connection) => connection.open), 'each open here until v1 takes it');
  t.is(p.handoff.counters.unavailable, 0);
});

test('an answer read after a stuck worker\'s death closes that connection and says nothing of a recovery', async (t) => {
  const p = primary(t, { handoffTimeoutMs: 20 });
  const [v1, v2] = p.readyVersions('v1', 'v2');
  const { server, handles } = await socketPairs(t, 2);
  for (const connection of server) p.handoff.place(connection, head, 'v2', undefined);
  await new Promise<void>((resolve) => p.events.on('event', (event) => event.type === 'unresponsive' && resolve()));
  const dead = p.workerOf(v2!);
  dead.exit(null, 'SIGKILL', { channelOpen: true });
  dead.acknowledge();
  t.false(server[0]!.open, 'the one it took is closed here');
  dead.closeChannel();
  t.deepEqual(p.workerOf(v1!).connections.map((handle) => handles.indexOf(handle)), [1], 'the other is placed again');
  t.false(p.types().includes('recovered'));
});

test('when a dead worker\'s channel stays open, its unacknowledged connections are closed after handoffTimeoutMs, never served twice', async (t) => {
  const p = primary(t, { handoffTimeoutMs: 30 });
  const [v1, v2] = p.readyVersions('v1', 'v2');
  const { server, client } = await socketPairs(t, 2);
  for (const connection of server) p.handoff.place(connection, head, 'v2', undefined);
  const clientClosed = new Promise<void>((resolve) => client[1]!.once('close', () => resolve()).resume());
  p.workerOf(v2!).exit(null, 'SIGKILL', { channelOpen: true });
  await clientClosed;
  t.false(server[0]!.open);
  t.deepEqual(p.workerOf(v1!).connections, [], 'nothing went to v1');
  p.workerOf(v2!).closeChannel();
  t.deepEqual(p.workerOf(v1!).connections, [], 'nor after the channel closed');
});

test('past maxQueuedHandoffs on every worker of a version, a connection gets 503 with Retry-After', async (t) => {
  const p = primary(t, { maxQueuedHandoffs: 1 }, { v1: { entry: 'a.js' } });
  p.readyVersions('v1');
  const { server, client } = await socketPairs(t, maxHandles + 2);
  for (const connection of server) p.handoff.place(connection, head, 'v1', undefined);
  t.is(p.handoff.waiting, maxHandles + 1, 'a window in flight and one queued');
  const answer = await answerOf(client[maxHandles + 1]!);
  t.regex(answer, /^HTTP\/1\.1 503 [^]*retry-after: 1\r\n[^]*every worker of "v1" is at its in-flight limit/);
});

test('with maxQueuedHandoffs 0 a worker still takes its window of connections; the one past it gets 503', async (t) => {
  const p = primary(t, { maxQueuedHandoffs: 0 }, { v1: { entry: 'a.js' } });
  const [v1] = p.readyVersions('v1');
  const { server, client } = await socketPairs(t, maxHandles + 1);
  for (const connection of server) p.handoff.place(connection, head, 'v1', undefined);
  t.is(p.workerOf(v1!).connections.length, maxHandles);
  t.is(p.handoff.counters.unavailable, 1);
  const answer = await answerOf(client[maxHandles]!);
  t.regex(answer, /^HTTP\/1\.1 503 /);
});

test('drain sends drain, and kills a worker still busy after drainTimeoutMs', async (t) => {
  const p = primary(t, { drainTimeoutMs: 30 });
  const [slot] = p.readyVersions('v1');
  const worker = p.workerOf(slot!);
  await p.lifecycle.drain(slot!);
  t.true(worker.sent.some((entry) => entry.message.kind === 'drain'));
  t.deepEqual(worker.signals, ['SIGKILL']);
  t.is(slot!.state.kind, 'stopped');
  t.deepEqual(p.lifecycle.slots, []);
  t.true(p.messages().includes('stopped still busy after 30 ms: killing it'));
});

test('a starting worker is stopped with SIGTERM (its runtime may not hear a message yet); one being killed is only waited for', async (t) => {
  const p = primary(t, { drainTimeoutMs: 10_000 });
  void p.lifecycle.addVersion('v1');
  const [starting] = p.lifecycle.pool('v1');
  const stopping = p.lifecycle.drain(starting!);
  t.deepEqual(p.workerOf(starting!).signals, ['SIGTERM']);
  t.false(p.workerOf(starting!).sent.some((entry) => entry.message.kind === 'drain'));
  t.is(p.messages().at(-1), 'draining stopping before it was ready');
  p.workerOf(starting!).exit(null, 'SIGTERM');
  await stopping;

  const [ready] = p.readyVersions('v2');
  p.lifecycle.kill(ready!, { type: 'failed', message: 'memory over the hard limit: killing it' });
  const drained = p.lifecycle.drain(ready!);  // A replacement taking its place before the kill has landed.
  t.is(p.messages().at(-1), 'draining stopping: it is being killed already');
  t.false(p.workerOf(ready!).sent.some((entry) => entry.message.kind === 'drain'), 'nothing to drain in it');
  await drained;
  t.is(ready!.state.kind, 'stopped');
  t.true(p.messages().includes('stopped stopped (signal SIGKILL)'));
});

test('two rolling replacements of one version at once (a memory recycle during a reload) never take each other\'s workers', async (t) => {
  const p = primary(t, {}, { v1: { entry: 'a.js', workers: 2 } });
  void p.lifecycle.addVersion('v1');
  const [old1, old2] = p.lifecycle.pool('v1');
  p.ready(old1!);
  p.ready(old2!);
  const reload = p.replacements.replaceVersion('v1', 'reload requested');
  const reloadWorkers = p.lifecycle.slots.filter((slot) => slot.state.kind === 'starting');
  const recycle = p.replacements.replaceWorker(old1!, 'memory');
  const recycleWorker = p.lifecycle.slots.find((slot) => slot.state.kind === 'starting' && !reloadWorkers.includes(slot))!;
  // The recycle's worker and one of the reload's become ready: only the recycle is complete.
  p.ready(reloadWorkers[0]!);
  p.ready(recycleWorker);
  t.is(await recycle, undefined);
  t.deepEqual(p.lifecycle.pool('v1').map((slot) => slot.id), [recycleWorker.id, old2!.id]);
  t.is(reloadWorkers[0]!.state.kind, 'ready', "the reload's ready worker was left to the reload");
  p.ready(reloadWorkers[1]!);
  t.is(await reload, undefined);
  t.deepEqual(p.lifecycle.pool('v1').map((slot) => slot.id), reloadWorkers.map((slot) => slot.id));
  await p.lifecycle.until(() => (p.lifecycle.slots.every((slot) => slot.state.kind === 'ready' || slot.state.kind === 'draining') ? true : undefined));
  const running = p.lifecycle.slots.filter((slot) => slot.state.kind === 'ready').map((slot) => slot.id);
  t.deepEqual(running.sort(), reloadWorkers.map((slot) => slot.id).sort(), 'no worker runs outside the pool');
});

test('only the moves of the state diagram are allowed', (t) => {
  t.true(canTransition('ready', 'unresponsive'));
  t.false(canTransition('draining', 'ready'));
  t.false(canTransition('stopped', 'ready'));
  t.false(canTransition('restarting', 'ready'));
});

test('the relay\'s limits from the config reach every worker with its settings', (t) => {
  const p = primary(t, { relayMaxIdlePerTarget: 3, relayIdleTimeoutMs: 200 });
  const workers = p.readyVersions('v1', 'v2');
  for (const slot of workers) {
    const settings = p.workerOf(slot).sent.flatMap((entry) => (entry.message.kind === 'settings' ? [entry.message.settings] : [])).at(-1);
    t.deepEqual([settings?.relayMaxIdlePerTarget, settings?.relayIdleTimeoutMs], [3, 200], slot.id);
  }
  const defaults = primary(t).lifecycle.settings();
  t.deepEqual([defaults.relayMaxIdlePerTarget, defaults.relayIdleTimeoutMs], [64, 500], 'the documented defaults when absent');
});

test('a connection placed for its peer\'s sake goes to the leading version marked routeFirst, keeps the mark when handed back, and goes by its first request when that version cannot take it', async (t) => {
  const p = primary(t, {}, { v1: { entry: 'a.js', workers: 2 }, v2: { entry: 'b.js' }, v3: { entry: 'c.js' } });
  void p.lifecycle.addVersion('v1');
  const [a, b] = [...p.lifecycle.pool('v1')];
  p.ready(a!);
  p.ready(b!);
  const [v2] = p.readyVersions('v2');
  void p.lifecycle.addVersion('v3');  // Starting, and never ready here.
  const { server, handles } = await socketPairs(t, 3);
  const sentWith = (slot: WorkerSlot, handle: unknown) => p.workerOf(slot).sent.find((entry) => entry.handle === handle)?.message;

  p.handoff.place(server[0]!, head, 'v2', undefined, { owner: 'v1' });
  const [taker, other] = sentWith(a!, handles[0]) ? [a!, b!] : [b!, a!];
  t.like(sentWith(taker, handles[0]), { kind: 'connection', routeFirst: true });
  p.workerOf(taker).acknowledge();
  // A worker that cannot take a connection hands it back (as a handle of its own: another one stands for it here).
  p.workerOf(taker).emit('message', { kind: 'refused', bytes: head.toString('base64'), routeFirst: true }, handles[2]);
  t.like(sentWith(other, handles[2]), { kind: 'connection', routeFirst: true }, 'handed back, it keeps the mark');

  p.handoff.place(server[1]!, head, 'v2', undefined, { owner: 'v3' });
  const byFirst = sentWith(v2!, handles[1]);
  t.like(byFirst, { kind: 'connection' });
  t.false(byFirst !== undefined && 'routeFirst' in byFirst, 'v3 has no ready worker: it goes to v2, its first request\'s version, which serves it');
  t.is(p.handoff.counters.unavailable, 0);
  p.workerOf(other).acknowledge();
  p.workerOf(v2!).acknowledge();
  t.is(p.handoff.waiting, 0);
});
