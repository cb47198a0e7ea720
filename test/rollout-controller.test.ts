import test from 'ava';
import { resolveConfig } from '../src/config/load.js';
import type { ConfigFile, RolloutOptions } from '../src/config/types.js';
import { latencyBoundsMs } from '../src/ipc/messages.js';
import { tick, type ControllerMemory, type TickResult } from '../src/rollout/controller.js';
import {
  abortRollout, advanceRollout, pauseRollout, resumeRollout, RolloutError, startRollout, type RolloutEdit,
} from '../src/rollout/edits.js';
import { rolloutReport } from '../src/rollout/report.js';
import type { Snapshot } from '../src/rollout/window.js';

const t0 = 1_700_000_000_000;
const base = (rollout?: RolloutOptions): ConfigFile => ({
  versions: { v1: { entry: './a.js', workers: 2 }, v2: { entry: './b.js' } },
  routing: { default: 'v1', weights: { v1: 100 } },
  ...(rollout ? { rollout } : {}),
});

/** Applies an edit as updateConfigFile does: to a copy, which must still resolve. */
const apply = (config: ConfigFile, edit: RolloutEdit): ConfigFile => {
  const next = structuredClone(config);
  edit(next);
  resolveConfig('/srv/graycluster.json', next);
  return next;
};

/** The counters of one version's single worker: cumulative, as workers report them. */
interface Counters { requests: number; errors?: number; restarts?: number }
const snapshot = (at: number, v1: Counters, v2: Counters): Snapshot => ({
  at,
  workers: (Object.entries({ v1, v2 }) as Array<[string, Counters]>).map(([version, { requests, errors = 0, restarts = 0 }]) => ({
    id: version, version, restarts, rss: 50 * 1024 * 1024, eventLoopDelayMs: 1, requests,
    statusClasses: { '2xx': requests - errors, '5xx': errors },
    latencyBuckets: latencyBoundsMs.map((_, bucket) => (bucket === 1 ? requests : 0)).concat(0),
  })),
});

/** Drives the controller the way the primary will: tick, apply the edit, remember. */
class Driver {
  memory: ControllerMemory | null = null;
  last: TickResult | null = null;
  constructor(public config: ConfigFile) {}
  tick(snap: Snapshot): TickResult {
    const resolved = resolveConfig('/srv/graycluster.json', this.config);
    this.last = tick({ rollout: resolved.rollout, routing: this.config.routing, snapshot: snap, memory: this.memory });
    this.memory = this.last.memory;
    if (this.last.edit) this.config = apply(this.config, this.last.edit);
    return this.last;
  }
  get status() { return this.config.rollout!.status!; }
}

const started = (options: Partial<RolloutOptions> = {}) => new Driver(apply(base(), startRollout({ version: 'v2', stepMs: 10_000, ...options }, t0)));

test('starting a rollout writes its status and its first step\'s weights; a second start is refused until it ends', (t) => {
  const config = apply(base(), startRollout({ version: 'v2' }, t0));
  t.deepEqual(config.rollout!.status, { state: 'running', step: 0, stepStartedAt: t0, reason: 'started' });
  t.is(config.rollout!.baseline, 'v1');
  t.deepEqual(config.routing.weights, { v1: 95, v2: 5 });
  t.throws(() => apply(config, startRollout({ version: 'v2' }, t0)), { instanceOf: RolloutError, message: 'a rollout of v2 is running; abort it first' });
  const aborted = apply(config, abortRollout(t0 + 1));
  t.notThrows(() => apply(aborted, startRollout({ version: 'v2' }, t0 + 2)));
});

test('a rollout declared by hand begins on the first tick', (t) => {
  const driver = new Driver(base({ version: 'v2' }));
  const result = driver.tick(snapshot(t0, { requests: 0 }, { requests: 0 }));
  t.is(result.action, 'begin');
  t.is(result.event, 'rollout of v2 begins at step 1 of 4 (5 %)');
  t.like(driver.status, { state: 'running', step: 0, stepStartedAt: t0 });
  t.deepEqual(driver.config.routing.weights, { v1: 95, v2: 5 });
});

test('a healthy canary advances step by step after each step\'s time, then is promoted to routing.default', (t) => {
  const driver = started();
  let at = t0;
  let v1 = 0;
  let v2 = 0;
  const actions: string[] = [];
  for (let round = 0; round < 40 && driver.status.state === 'running'; round++) {
    at += 2500;
    v1 += 400;
    v2 += 60;
    actions.push(driver.tick(snapshot(at, { requests: v1 }, { requests: v2 })).action);
  }
  t.is(driver.status.state, 'promoted');
  t.deepEqual(actions.filter((action) => action !== 'wait'), ['advance', 'advance', 'promote']);
  // Each step: one tick opens its window, four more bring 10 s of evidence.
  t.deepEqual(actions.slice(0, 5), ['wait', 'wait', 'wait', 'wait', 'advance']);
  t.is(driver.config.routing.default, 'v2');
  t.deepEqual(driver.config.routing.weights, { v1: 0, v2: 100 });
  t.regex(driver.last!.event!, /^v2 promoted to routing\.default: step 3 of 4 \(50 %\) passed: all 5 gates pass over 10 s/);
  t.is(driver.tick(snapshot(at + 2500, { requests: v1 }, { requests: v2 })).action, 'idle');
});

test('the steps\' weights are written as the rollout advances', (t) => {
  const config = apply(apply(base(), startRollout({ version: 'v2', steps: [10, 30, 60] }, t0)), advanceRollout(0, t0 + 1, 'ok'));
  t.deepEqual(config.routing.weights, { v1: 70, v2: 30 });
  t.like(config.rollout!.status, { step: 1, stepStartedAt: t0 + 1, reason: 'ok' });
});

test('a canary with too few requests waits, and says why, instead of advancing', (t) => {
  const driver = started();
  driver.tick(snapshot(t0, { requests: 0 }, { requests: 0 }));
  const result = driver.tick(snapshot(t0 + 60_000, { requests: 5000 }, { requests: 12 }));
  t.is(result.action, 'wait');
  t.is(result.reason, 'step 1 of 4 (5 %): 5xx: waiting for 100 requests on each version (12 on v2, 5,000 on v1); latency: waiting for 100 requests on each version (12 on v2, 5,000 on v1)');
  t.is(driver.status.step, 0);
});

test('a step that still lacks samples at its progress deadline pauses, saying why, instead of waiting forever', (t) => {
  const driver = started({ progressDeadlineMs: 30_000 });
  driver.tick(snapshot(t0, { requests: 0 }, { requests: 0 }));
  t.is(driver.tick(snapshot(t0 + 29_000, { requests: 5000 }, { requests: 12 })).action, 'wait');
  const result = driver.tick(snapshot(t0 + 30_000, { requests: 5000 }, { requests: 12 }));
  t.is(result.action, 'pause');
  t.regex(result.event!, /^rollout of v2 paused at step 1 of 4 \(5 %\): no verdict after 30 s \(progress deadline 30 s\): 5xx: waiting for 100 requests on each version \(12 on v2, 5,000 on v1\)/);
  t.like(driver.status, { state: 'paused', step: 0 });
  t.deepEqual(driver.config.routing.weights, { v1: 95, v2: 5 });
  const patient = started({ progressDeadlineMs: null });
  patient.tick(snapshot(t0, { requests: 0 }, { requests: 0 }));
  t.is(patient.tick(snapshot(t0 + 86_400_000, { requests: 5000 }, { requests: 12 })).action, 'wait');
});

test('a failed gate rolls back at once, before the step\'s time is up: all traffic to the baseline, the canary kept', (t) => {
  const driver = started();
  driver.tick(snapshot(t0, { requests: 0 }, { requests: 0 }));
  const result = driver.tick(snapshot(t0 + 3000, { requests: 7340, errors: 15 }, { requests: 812, errors: 81 }));
  t.is(result.action, 'roll-back');
  t.is(result.event, 'rollout of v2 rolled back at step 1 of 4 (5 %): 5xx 10.0 % on v2 vs 0.2 % on v1 over 3 s, 812 vs 7,340 requests, p < 0.001');
  t.like(driver.status, { state: 'rolled_back', step: 0 });
  t.regex(driver.status.reason!, /^5xx 10\.0 %/);
  t.deepEqual(driver.config.routing.weights, { v1: 100, v2: 0 });
  t.truthy(driver.config.versions.v2);
  t.is(driver.tick(snapshot(t0 + 6000, { requests: 9000 }, { requests: 900 })).action, 'idle');
});

test('a crashing canary is rolled back by the restarts gate, with no requests needed', (t) => {
  const driver = started();
  driver.tick(snapshot(t0, { requests: 10 }, { requests: 0 }));
  const result = driver.tick(snapshot(t0 + 1000, { requests: 20 }, { requests: 0, restarts: 1 }));
  t.is(result.action, 'roll-back');
  t.regex(result.reason, /^1 restarts of v2's 1 workers vs 0 of v1's 1 over 1 s \(allowed 0\)$/);
});

test('with keepCanaryOnRollback false, a rollback removes the canary, unless a rule routes to it', (t) => {
  const driver = started({ keepCanaryOnRollback: false });
  driver.tick(snapshot(t0, { requests: 0 }, { requests: 0 }));
  driver.tick(snapshot(t0 + 1000, { requests: 7340 }, { requests: 812, errors: 81 }));
  t.false('v2' in driver.config.versions);
  t.deepEqual(driver.config.routing.weights, { v1: 100 });
  const ruled = started({ keepCanaryOnRollback: false });
  ruled.config.routing.rules = [{ header: 'x-canary', equals: '1', to: 'v2' }];
  ruled.tick(snapshot(t0, { requests: 0 }, { requests: 0 }));
  ruled.tick(snapshot(t0 + 1000, { requests: 7340 }, { requests: 812, errors: 81 }));
  t.truthy(ruled.config.versions.v2);
  t.regex(ruled.status.reason!, /; v2 kept: a routing rule routes to it$/);
});

test('a manual weights change mid-rollout pauses it; resume restores the step\'s weights and a fresh window', (t) => {
  const driver = started();
  driver.tick(snapshot(t0, { requests: 0 }, { requests: 0 }));
  driver.config.routing.weights = { v1: 50, v2: 50 };
  const result = driver.tick(snapshot(t0 + 1000, { requests: 10 }, { requests: 10 }));
  t.is(result.action, 'pause');
  t.is(result.event, 'rollout of v2 paused at step 1 of 4 (5 %): routing.weights set to v1=50 v2=50 by hand');
  t.like(driver.status, { state: 'paused', step: 0 });
  t.deepEqual(driver.config.routing.weights, { v1: 50, v2: 50 });
  t.is(driver.tick(snapshot(t0 + 2000, { requests: 10 }, { requests: 10 })).action, 'idle');
  driver.config = apply(driver.config, resumeRollout(t0 + 3000));
  t.like(driver.status, { state: 'running', step: 0, stepStartedAt: t0 + 3000 });
  t.deepEqual(driver.config.routing.weights, { v1: 95, v2: 5 });
  t.is(driver.tick(snapshot(t0 + 4000, { requests: 20 }, { requests: 20 })).reason, 'step 1 of 4 (5 %): window starts');
});

test('a manual promote mid-rollout pauses it too', (t) => {
  const driver = started();
  driver.config.routing.default = 'v2';
  t.is(driver.tick(snapshot(t0, { requests: 0 }, { requests: 0 })).action, 'pause');
  t.regex(driver.status.reason!, /^routing\.default set to v2 by hand/);
});

test('pause, resume and abort refuse what their state does not allow, naming it', (t) => {
  const running = started().config;
  t.throws(() => apply(running, resumeRollout(t0)), { instanceOf: RolloutError, message: 'the rollout of v2 is not paused' });
  const paused = apply(running, pauseRollout(t0));
  t.like(paused.rollout!.status, { state: 'paused', reason: 'paused by the operator' });
  t.throws(() => apply(paused, pauseRollout(t0)), { message: 'the rollout of v2 is already paused' });
  const aborted = apply(paused, abortRollout(t0 + 5));
  t.like(aborted.rollout!.status, { state: 'aborted', reason: 'aborted by the operator' });
  t.deepEqual(aborted.routing.weights, { v1: 100, v2: 0 });
  for (const edit of [pauseRollout(t0), resumeRollout(t0), abortRollout(t0)]) {
    t.throws(() => apply(aborted, edit), { instanceOf: RolloutError, message: 'no rollout in progress: the rollout of v2 was aborted' });
  }
  t.throws(() => apply(base(), pauseRollout(t0)), { message: 'no rollout in the config file' });
});

test('the controller\'s edit for a step the file has left is a conflict, so a concurrent pause is never undone', (t) => {
  const paused = apply(started().config, pauseRollout(t0));
  const error = t.throws(() => apply(paused, advanceRollout(0, t0 + 1, 'ok')), { instanceOf: RolloutError });
  t.is(error.code, 'conflict');
});

test('after a restart of graycluster the rollout resumes at the same step, with a fresh window', (t) => {
  const config = base({ version: 'v2', stepMs: 10_000, status: { state: 'running', step: 2, stepStartedAt: t0, reason: 'x' } });
  config.routing.weights = { v1: 50, v2: 50 };
  const driver = new Driver(config);
  const first = driver.tick(snapshot(t0 + 600_000, { requests: 0 }, { requests: 0 }));
  t.is(first.reason, 'step 3 of 4 (50 %): window starts');
  const second = driver.tick(snapshot(t0 + 602_000, { requests: 300 }, { requests: 300 }));
  t.regex(second.reason, /^step 3 of 4 \(50 %\): 8 s left; all 5 gates pass/);
  t.is(driver.status.step, 2);
});

test('steps ending below 100 promote after the last; a step of 100 promotes on reaching it', (t) => {
  const driver = started({ steps: [10, 20] });
  driver.config = apply(driver.config, advanceRollout(0, t0 + 1, 'ok'));
  driver.tick(snapshot(t0 + 2, { requests: 0 }, { requests: 0 }));
  t.is(driver.tick(snapshot(t0 + 20_000, { requests: 1000 }, { requests: 300 })).action, 'promote');
  const whole = new Driver(base({ version: 'v2', steps: [100], status: { state: 'running', step: 0, stepStartedAt: t0 } }));
  whole.config.routing.weights = { v1: 0, v2: 100 };
  t.is(whole.tick(snapshot(t0, { requests: 0 }, { requests: 0 })).action, 'promote');
  t.is(whole.config.routing.default, 'v2');
});

test('the status report carries the step, weight, reason and each gate\'s figures for both versions', (t) => {
  const driver = started();
  t.is(rolloutReport(null, null, t0), null);
  driver.tick(snapshot(t0, { requests: 0 }, { requests: 0 }));
  driver.tick(snapshot(t0 + 4000, { requests: 2000, errors: 2 }, { requests: 150 }));
  const report = rolloutReport(resolveConfig('/srv/graycluster.json', driver.config).rollout, driver.last, t0 + 4000)!;
  t.like(report, {
    version: 'v2', baseline: 'v1', state: 'running', step: 0, weight: 5, steps: [5, 25, 50, 100], stepStartedAt: t0,
    timeInStepMs: 4000, verdict: 'pass', window: { fromMs: t0, toMs: t0 + 4000, canaryRequests: 150, baselineRequests: 2000 },
  });
  t.regex(report.reason, /^step 1 of 4 \(5 %\): 6 s left; all 5 gates pass over 4 s, 150 vs 2,000 requests$/);
  t.deepEqual(report.gates.map((gate) => gate.gate), ['errors', 'latency', 'restarts', 'memory', 'eventLoop']);
  t.like(report.gates[0], { verdict: 'pass', canary: { requests: 150, errors: 0 }, baseline: { requests: 2000, errors: 2 } });
  const rolledBack = apply(driver.config, abortRollout(t0 + 5000));
  t.like(rolloutReport(resolveConfig('/srv/graycluster.json', rolledBack).rollout, driver.last, t0 + 5000), {
    state: 'aborted', weight: 0, reason: 'aborted by the operator', verdict: null, gates: [],
  });
});
