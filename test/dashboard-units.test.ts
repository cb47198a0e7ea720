import type { IncomingMessage } from 'node:http';
import test from 'ava';
import { dashboardDefaults } from '../src/config/types.js';
import type { ControlResult, Controls } from '../src/control/types.js';
import { parseControl } from '../src/dashboard/api.js';
import { isForeignOrigin, upgradeHasToken } from '../src/dashboard/auth.js';
import { History, quantile, ratesOf, type Sample, type WorkerSample } from '../src/dashboard/history.js';
import { renderMetrics } from '../src/dashboard/metrics.js';
import { latencyBoundsMs } from '../src/ipc/messages.js';
import type { Status, WorkerStatus } from '../src/primary/status.js';
import { parseExposition } from './dashboard-helpers.js';

const request = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

test('the dashboard binds loopback unless configured otherwise, and its limits have defaults', (t) => {
  t.is(dashboardDefaults.host, '127.0.0.1');
  t.false(dashboardDefaults.metricsPublic);
  t.is(dashboardDefaults.feedIntervalMs, 500);
  t.true(dashboardDefaults.maxClients > 0 && dashboardDefaults.maxBufferedBytes > 0 && dashboardDefaults.pingIntervalMs > 0);
});

test('quantile interpolates inside the bucket and says null for no requests', (t) => {
  const counts = new Array<number>(latencyBoundsMs.length + 1).fill(0);
  t.is(quantile(0.5, counts), null);
  counts[2] = 10;  // All in (10, 25] ms.
  t.is(quantile(0.5, counts), 17.5);
  t.is(quantile(1, counts), 25);
  counts[latencyBoundsMs.length] = 1000;  // Mostly over the last bound: "at least" the last bound.
  t.is(quantile(0.99, counts), latencyBoundsMs[latencyBoundsMs.length - 1]!);
});

function worker(overrides: Partial<WorkerSample> = {}): WorkerSample {
  return { version: 'v1', pid: 100, startedAt: 0, rss: 1, heapUsed: 1, inFlight: 0, requests: 0, cpuPercent: null, latencyBuckets: [], ...overrides };
}

test('rates compare with the sample a window ago, count a restarted worker from its new start, and give version shares', (t) => {
  const buckets = (fast: number, slow: number) => [fast, 0, 0, 0, 0, slow, 0, 0, 0, 0, 0, 0];
  const samples: Sample[] = [
    { time: 0, workers: { a: worker({ requests: 100, latencyBuckets: buckets(100, 0) }), b: worker({ version: 'v2', pid: 200, requests: 50 }) } },
    { time: 10_000, workers: { a: worker({ requests: 200, latencyBuckets: buckets(200, 0) }), b: worker({ version: 'v2', pid: 200, requests: 60 }) } },
  ];
  const current: Sample = {
    time: 20_000,
    workers: {
      a: worker({ requests: 400, latencyBuckets: buckets(200, 200) }),
      // b crashed and came back at 15 s with a new pid: its counters started over.
      b: worker({ version: 'v2', pid: 201, startedAt: 15_000, requests: 50 }),
    },
  };
  const rates = ratesOf(samples, current, 10_000);
  t.is(rates.workers.a!.requestsPerSecond, 20);
  t.is(rates.workers.a!.p50Ms, 175);  // The 200 new requests all fell in (100, 250] ms: halfway, interpolated.
  t.is(rates.workers.b!.requestsPerSecond, 10);
  t.is(rates.versions.v1!.share, 20 / 30);
  t.is(rates.versions.v2!.share, 10 / 30);
});

test('the history keeps one sample per interval and forgets what is older than historyMs', (t) => {
  const history = new History(10_000, 1000);
  for (let time = 0; time <= 60_000; time += 250) history.add({ time, workers: { a: worker() } });
  t.true(history.samples.length <= history.capacity);
  t.true(history.samples.length >= 10);
  t.true(history.samples[0]!.time >= 50_000);
  t.deepEqual(Object.keys(history.chart().at(-1)!.workers), ['a']);
});

test('the token is accepted as a bearer header or as the base64url subprotocol, and nothing else', (t) => {
  const secret = 'sécret-token-0123456789';
  t.true(upgradeHasToken(request({ authorization: `Bearer ${secret}` }), secret));
  const protocol = `graycluster, graycluster.token.${Buffer.from(secret).toString('base64url')}`;
  t.true(upgradeHasToken(request({ 'sec-websocket-protocol': protocol }), secret));
  t.false(upgradeHasToken(request({ 'sec-websocket-protocol': 'graycluster.token.d3Jvbmc' }), secret));
  t.false(upgradeHasToken(request({ 'sec-websocket-protocol': 'graycluster' }), secret));
  t.false(upgradeHasToken(request({}), secret));
});

test('an Origin naming another host is foreign; no Origin (a script) and the same host are not', (t) => {
  t.false(isForeignOrigin(request({ host: '127.0.0.1:9000' })));
  t.false(isForeignOrigin(request({ host: '127.0.0.1:9000', origin: 'http://127.0.0.1:9000' })));
  t.false(isForeignOrigin(request({ host: 'Example.com', origin: 'http://example.com:80' })));
  t.true(isForeignOrigin(request({ host: '127.0.0.1:9000', origin: 'http://evil.example' })));
  t.true(isForeignOrigin(request({ host: '127.0.0.1:9000', origin: 'http://127.0.0.1:9001' })));
  t.true(isForeignOrigin(request({ host: '127.0.0.1:9000', origin: 'null' })));
  t.true(isForeignOrigin(request({ host: '127.0.0.1:9000', origin: 'file://127.0.0.1:9000' })));
});

test('control requests: each endpoint calls its Controls method; bad input is a 400 naming the field', async (t) => {
  const calls: string[] = [];
  const record = (name: string) => async (...args: unknown[]): Promise<ControlResult> => {
    calls.push(`${name}(${args.map((arg) => JSON.stringify(arg)).join(',')})`);
    return { ok: true, changes: [] };
  };
  const controls: Controls = { setWeights: record('setWeights'), promote: record('promote'), rollback: record('rollback'), restartWorker: record('restartWorker'), reload: record('reload'), rollout: record('rollout'),
    heapSnapshot: record('heapSnapshot'), inspect: record('inspect') };
  const call = async (path: string, body: unknown) => {
    const parsed = parseControl(path, body);
    if (typeof parsed !== 'function') return parsed;
    return parsed(controls);
  };
  await call('/api/weights', { weights: { v1: 90, v2: 10 } });
  await call('/api/promote', { version: 'v2' });
  await call('/api/rollback', {});
  await call('/api/reload', {});
  await call('/api/reload', { version: 'v2' });
  await call('/api/workers/v1.2/restart', {});
  await call('/api/rollout/pause', {});
  await call('/api/rollout/resume', {});
  await call('/api/rollout/abort', {});
  await call('/api/workers/v1.2/heap-snapshot', {});
  await call('/api/workers/v1.2/inspect', {});
  await call('/api/workers/v1.2/inspect', { close: true });
  t.deepEqual(calls, ['setWeights({"v1":90,"v2":10})', 'promote("v2")', 'rollback()', 'reload()', 'reload("v2")', 'restartWorker("v1.2")', 'rollout("pause")', 'rollout("resume")', 'rollout("abort")',
    'heapSnapshot("v1.2")', 'inspect("v1.2",true)', 'inspect("v1.2",false)']);

  t.like(await call('/api/weights', { weights: { v1: -1 } }), { status: 400, error: 'weights.v1 must be a whole number from 0 to 1000000, not -1' });
  t.like(await call('/api/weights', { weights: { v1: '5' } }), { status: 400, error: 'weights.v1 must be a whole number from 0 to 1000000, not "5"' });
  t.like(await call('/api/weights', { weights: { v1: 1e308 } }), { status: 400, error: 'weights.v1 must be a whole number from 0 to 1000000, not 1e+308' });
  t.like(await call('/api/weights', { weight: { v1: 5 } }), { status: 400 });
  t.regex((await call('/api/weights', {}) as { error: string }).error, /^weights must be an object/);
  t.regex((await call('/api/promote', {}) as { error: string }).error, /^version must be/);
  t.regex((await call('/api/reload', { version: 3 }) as { error: string }).error, /^version must be/);
  t.like(await call('/api/promote', ['v2']), { status: 400, error: 'the body must be a JSON object' });
  t.like(await call('/api/promote', { version: 'v2', extra: true }), { status: 400, error: 'unknown field "extra": this endpoint takes version' });
  t.like(await call('/api/rollback', { anything: 1 }), { status: 400, error: 'unknown field "anything": this endpoint takes an empty body, {}' });
  t.like(await call('/api/workers/v1.2/inspect', { clsoe: true }), { status: 400, error: 'unknown field "clsoe": this endpoint takes close' });
  t.like(await call('/api/rollout/pause', { reason: 'x' }), { status: 400 });
  t.like(await call('/api/shutdown', {}), { status: 404 });
  t.like(await call('/api/rollout/start', {}), { status: 404 });
  t.like(await call('/api/rollout/abort', 'now'), { status: 400, error: 'the body must be a JSON object' });
  t.like(await call('/api/workers/v1.2/inspect', { close: 'yes' }), { status: 400, error: 'close must be true or false, or left out' });
  t.like(await call('/api/workers/v1.2/heap-dump', {}), { status: 404 });
  t.is(calls.length, 12);
});

function status(workers: Array<Partial<WorkerStatus> & { id: string; version: string }>, rollout: Status['rollout'] = null): Status {
  return {
    pid: 1,
    uptimeMs: 5000,
    server: { host: '127.0.0.1', port: 8000 },
    versions: {
      v1: { state: 'ready', configured: 1, ready: 1, entry: 'v1.js', weight: 90, port: null, portListening: 0, portError: null },
      v2: { state: 'crashloop', configured: 1, ready: 0, entry: 'v2.js', weight: 10, port: 8002, portListening: 0, portError: null },
    },
    workers: workers.map((worker) => ({
      pid: 10, state: 'ready', rss: 50e6, cpuPercent: 12.5, cpuSeconds: 3.25, heapUsed: 5e6, inFlight: 2, connections: 3, requests: 7, restarts: 0, uptimeMs: 4000,
      shed: 0, forwarded: 1, forwardShed: 0, pendingTurnedAway: 0, eventLoopDelayMs: 1.5, statusClasses: { '1xx': 0, '2xx': 6, '3xx': 0, '4xx': 1, '5xx': 0 },
      unresponsive: false, latencyBuckets: [], latencySumMs: 0, logLinesDropped: 0,
      ...worker,
    }) as WorkerStatus),
    routing: { default: 'v1', weights: { v1: 90, v2: 10 } },
    rollout,
    router: { handedOff: 7, fallbacks: 0, sharedPeers: 0, sharedPlacements: 0, sharedLeading: null, refused: { 503: 2 }, pendingShed: 4, pendingSourceRefused: 5, pending: 0 },
    configError: null,
    configAppliedAt: 1764230066157,
    events: [],
  };
}

test('metrics render as Prometheus text: per worker, per version, a cumulative latency histogram', (t) => {
  const buckets = [1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4];
  const text = renderMetrics({
    status: status([
      { id: 'v1.1', version: 'v1', latencyBuckets: buckets, latencySumMs: 9000, logLinesDropped: 12 },
      { id: 'v2.1', version: 'v2', state: 'crashloop', restarts: 5, pid: null, cpuPercent: null, cpuSeconds: null },
    ]),
    feed: { clients: 1, framesSkipped: 3, clientsTerminated: 0, clientsRefused: 0 },
  });
  const families = parseExposition(text);
  const value = (name: string, labels: Record<string, string> = {}) =>
    families.get(name)?.samples.find((sample) => Object.entries(labels).every(([key, expected]) => sample.labels[key] === expected))?.value;
  t.is(families.get('graycluster_worker_rss_bytes')!.type, 'gauge');
  t.is(value('graycluster_worker_rss_bytes', { worker: 'v1.1', version: 'v1' }), 50e6);
  t.is(value('graycluster_worker_requests_total', { worker: 'v1.1', class: '4xx' }), 1);
  t.is(families.get('graycluster_worker_cpu_seconds_total')!.type, 'counter');
  t.is(value('graycluster_worker_cpu_seconds_total', { worker: 'v1.1', version: 'v1' }), 3.25);
  t.is(value('graycluster_worker_cpu_percent', { worker: 'v1.1', version: 'v1' }), 12.5);
  // A worker not measured (no process) has no CPU sample rather than a zero.
  t.is(value('graycluster_worker_cpu_seconds_total', { worker: 'v2.1' }), undefined);
  t.is(value('graycluster_worker_restarts_total', { worker: 'v2.1' }), 5);
  t.is(families.get('graycluster_worker_log_lines_dropped_total')!.type, 'counter');
  t.is(value('graycluster_worker_log_lines_dropped_total', { worker: 'v1.1', version: 'v1' }), 12);
  t.is(value('graycluster_version_state', { version: 'v2', state: 'crashloop' }), 1);
  t.is(value('graycluster_version_weight', { version: 'v2' }), 10);
  t.is(value('graycluster_router_refused_total', { status: '503' }), 2);
  t.is(value('graycluster_router_pending_shed_total'), 4);
  t.is(value('graycluster_router_pending_source_refused_total'), 5);
  t.is(value('graycluster_dashboard_frames_skipped_total'), 3);
  t.is(value('graycluster_config_applied_timestamp_seconds'), 1764230066.157);
  const histogram = families.get('graycluster_worker_request_duration_seconds')!;
  t.is(histogram.type, 'histogram');
  t.deepEqual(histogram.samples.filter((sample) => sample.name.endsWith('_bucket')).map((sample) => [sample.labels.le, sample.value]).slice(0, 3), [['0.005', 1], ['0.01', 3], ['0.025', 3]]);
  t.is(value('graycluster_worker_request_duration_seconds', { le: '+Inf' }), 7);
  t.is(histogram.samples.find((sample) => sample.name.endsWith('_count'))!.value, 7);
  t.is(histogram.samples.find((sample) => sample.name.endsWith('_sum'))!.value, 9);
});

test('a rollout shows in the metrics as its state, step, step count and weight; without one the families are empty', (t) => {
  const feed = { clients: 0, framesSkipped: 0, clientsTerminated: 0, clientsRefused: 0 };
  const rollout: Status['rollout'] = {
    version: 'v2', baseline: 'v1', state: 'paused', step: 1, weight: 25, steps: [5, 25, 50, 100], stepMs: 60_000,
    stepStartedAt: 1, timeInStepMs: 4000, reason: 'paused by the operator', verdict: null, window: null, gates: [],
  };
  const families = parseExposition(renderMetrics({ status: status([{ id: 'v1.1', version: 'v1' }], rollout), feed }));
  const samples = (name: string) => families.get(name)!.samples.map((sample) => [sample.labels, sample.value]);
  t.deepEqual(samples('graycluster_rollout_state'), ['running', 'paused', 'promoted', 'rolled_back', 'aborted']
    .map((state) => [{ version: 'v2', baseline: 'v1', state }, state === 'paused' ? 1 : 0]));
  t.deepEqual(samples('graycluster_rollout_step'), [[{ version: 'v2', baseline: 'v1' }, 1]]);
  t.deepEqual(samples('graycluster_rollout_steps'), [[{ version: 'v2', baseline: 'v1' }, 4]]);
  t.deepEqual(samples('graycluster_rollout_weight'), [[{ version: 'v2', baseline: 'v1' }, 25]]);
  const none = parseExposition(renderMetrics({ status: status([{ id: 'v1.1', version: 'v1' }]), feed }));
  t.is(none.get('graycluster_rollout_state')!.type, 'gauge');
  t.deepEqual(none.get('graycluster_rollout_weight')!.samples, []);
});

test('label values are escaped', (t) => {
  const text = renderMetrics({ status: status([{ id: 'a"b\\c\nd', version: 'v1' }]), feed: { clients: 0, framesSkipped: 0, clientsTerminated: 0, clientsRefused: 0 } });
  t.true(text.includes('worker="a\\"b\\\\c\\nd"'));
  const families = parseExposition(text);
  t.is(families.get('graycluster_worker_in_flight_requests')!.samples[0]!.labels.worker, 'a"b\\c\nd');
});
