import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { ConfigError, loadConfig, resolveConfig } from '../src/config/load.js';
import type { ConfigFile, RolloutConfig, RolloutOptions } from '../src/config/types.js';
import { versionForHash } from '../src/routing/decide.js';
import { gateDefaults, manualRoutingChange, rolloutRouting } from '../src/config/rollout.js';

const file = (rollout?: RolloutOptions, routing: ConfigFile['routing'] = { default: 'v1' }): ConfigFile => ({
  versions: { v1: { entry: './a.js' }, v2: { entry: './b.js' }, v3: { entry: './c.js' } },
  routing,
  ...(rollout ? { rollout } : {}),
});
const resolve = (raw: ConfigFile) => resolveConfig('/srv/graycluster.json', raw);
const rolloutOf = (options: RolloutOptions, routing?: ConfigFile['routing']): RolloutConfig => resolve(file(options, routing)).rollout!;

test('no rollout key: no rollout', (t) => {
  t.is(resolve(file()).rollout, null);
});

test('a rollout names only its canary; every other setting takes its default', (t) => {
  t.deepEqual(rolloutOf({ version: 'v2' }), {
    version: 'v2',
    baseline: 'v1',
    steps: [5, 25, 50, 100],
    stepMs: 60_000,
    checkIntervalMs: 5000,
    minRequests: 100,
    progressDeadlineMs: 600_000,
    keepCanaryOnRollback: true,
    gates: gateDefaults,
    status: { state: 'running', step: 0, stepStartedAt: null, reason: 'declared in the config file' },
  });
});

test('a step set alone brings the defaults bounded by it along: the deadline is at least the step, the check at most', (t) => {
  t.like(rolloutOf({ version: 'v2', stepMs: 3_600_000 }), { stepMs: 3_600_000, progressDeadlineMs: 3_600_000, checkIntervalMs: 5000 });
  t.like(rolloutOf({ version: 'v2', stepMs: 2000 }), { stepMs: 2000, progressDeadlineMs: 600_000, checkIntervalMs: 2000 });
  t.like(rolloutOf({ version: 'v2', stepMs: 3_600_000, progressDeadlineMs: null }), { progressDeadlineMs: null });
  t.like(rolloutOf({ version: 'v2', stepMs: 3_600_000, progressDeadlineMs: 7_200_000 }), { progressDeadlineMs: 7_200_000 });
  t.throws(() => rolloutOf({ version: 'v2', stepMs: 3_600_000, progressDeadlineMs: 600_000 }), { message: /rollout\.progressDeadlineMs \(600000\) must not be shorter than rollout\.stepMs \(3600000\)/ });
});

test('a gate can be tuned key by key, switched off with false, or kept with true', (t) => {
  const { gates } = rolloutOf({ version: 'v2', gates: { errors: { maxRate: 0.1 }, latency: false, memory: true } });
  t.deepEqual(gates.errors, { significance: 0.001, maxRate: 0.1 });
  t.is(gates.latency, null);
  t.deepEqual(gates.memory, gateDefaults.memory);
});

const rejected: Array<[string, RolloutOptions, RegExp]> = [
  ['an unknown version', { version: 'v9' }, /rollout\.version names unknown version "v9" \(known: v1, v2, v3\)/],
  ['an unknown baseline', { version: 'v2', baseline: 'v7' }, /rollout\.baseline names unknown version "v7"/],
  ['a baseline equal to the canary', { version: 'v1' }, /rollout\.baseline must differ from rollout\.version \("v1"\)/],
  ['steps not increasing', { version: 'v2', steps: [5, 50, 25] }, /rollout\.steps must be strictly increasing: 25 comes after 50/],
  ['a repeated step', { version: 'v2', steps: [5, 5] }, /rollout\.steps must be strictly increasing/],
  ['a step over 100', { version: 'v2', steps: [5, 150] }, /rollout\.steps\[1\] must be a whole number from 1 to 100, not 150/],
  ['a step of 0', { version: 'v2', steps: [0, 50] }, /rollout\.steps\[0\] must be a whole number from 1 to 100, not 0/],
  ['a fractional step', { version: 'v2', steps: [2.5] }, /rollout\.steps\[0\] must be a whole number/],
  ['no steps', { version: 'v2', steps: [] }, /rollout\.steps must list 1 to 20 weights/],
  ['a significance over 0.5', { version: 'v2', gates: { errors: { significance: 2 } } }, /rollout\.gates\.errors\.significance must be a number above 0 up to 0\.5, not 2/],
  ['a p99 ratio under 1', { version: 'v2', gates: { latency: { maxP99Ratio: 0.5 } } }, /rollout\.gates\.latency\.maxP99Ratio must be a number from 1 to 1000, not 0\.5/],
  ['a negative restart allowance', { version: 'v2', gates: { restarts: { max: -1 } } }, /rollout\.gates\.restarts\.max must be a whole number from 0/],
  ['an unknown gate', { version: 'v2', gates: { cpu: {} } as never }, /rollout\.gates\.cpu is not a known gate/],
  ['an unknown gate key', { version: 'v2', gates: { errors: { maxRat: 1 } } as never }, /rollout\.gates\.errors\.maxRat is not a known key/],
  ['a step shorter than a second', { version: 'v2', stepMs: 10 }, /rollout\.stepMs must be a whole number from 1000 to 604800000, not 10/],
  ['a step longer than a week', { version: 'v2', stepMs: 1e12, progressDeadlineMs: null }, /rollout\.stepMs must be a whole number from 1000 to 604800000, not 1000000000000/],
  ['a check interval longer than the step', { version: 'v2', stepMs: 1000, checkIntervalMs: 5000 }, /rollout\.checkIntervalMs \(5000\) must not be longer than rollout\.stepMs/],
  ['a progress deadline shorter than a step', { version: 'v2', stepMs: 60_000, progressDeadlineMs: 5000 }, /rollout\.progressDeadlineMs \(5000\) must not be shorter than rollout\.stepMs \(60000\)/],
  ['a progress deadline shorter than the default step', { version: 'v2', progressDeadlineMs: 5000 }, /rollout\.progressDeadlineMs \(5000\) must not be shorter than rollout\.stepMs \(60000, its default\)/],
  ['a check interval longer than the default step', { version: 'v2', checkIntervalMs: 90_000 }, /rollout\.checkIntervalMs \(90000\) must not be longer than rollout\.stepMs \(60000, its default\)/],
  ['no minimum of requests', { version: 'v2', minRequests: 0 }, /rollout\.minRequests must be a whole number from 1 to 1000000, not 0/],
  ['more requests than a step can reach', { version: 'v2', minRequests: 1e20 }, /rollout\.minRequests must be a whole number from 1 to 1000000, not 100000000000000000000/],
  ['an unknown state', { version: 'v2', status: { state: 'sleeping' as never, step: 0, stepStartedAt: 1 } }, /rollout\.status\.state must be one of running, paused, promoted, rolled_back, aborted/],
  ['a step past the last', { version: 'v2', steps: [10, 20], status: { state: 'running', step: 2, stepStartedAt: 1 } }, /rollout\.status\.step is 2, past the last step \(2 steps\)/],
];
for (const [what, options, message] of rejected) {
  test(`a rollout with ${what} is rejected with a message naming the key`, (t) => {
    const error = t.throws(() => resolve(file(options)), { instanceOf: ConfigError });
    t.regex(error.message, /^\/srv\/graycluster\.json: /);
    t.regex(error.message, message);
  });
}

test('a finished rollout is a record: it may name a version that is gone', (t) => {
  const raw = file({ version: 'v9', status: { state: 'rolled_back', step: 1, stepStartedAt: 5, reason: 'x' } });
  t.is(resolve(raw).rollout!.status.state, 'rolled_back');
});

test('the schema check of a real file names the rollout key too', (t) => {
  const folder = mkdtempSync(path.join(tmpdir(), 'graycluster-rollout-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  const config = path.join(folder, 'graycluster.json');
  writeFileSync(path.join(folder, 'a.js'), '');
  const write = (rollout: unknown) => writeFileSync(config, JSON.stringify({ ...file(), rollout }));
  write({ version: 'v2', gates: { errors: { significance: 2 }, latency: { bogus: 1 } } });
  t.throws(() => loadConfig(config), { message: /rollout\.gates\.errors\.significance must be <= 0\.5; rollout\.gates\.latency\.bogus is not a known key/ });
  write({ version: 'v2', minRequests: 1e20, stepMs: 1e12 });
  t.throws(() => loadConfig(config), { message: /rollout\.stepMs must be <= 604800000; rollout\.minRequests must be <= 1000000/ });
  write({ version: 'v2', steps: [5, 500] });
  t.throws(() => loadConfig(config), { message: /rollout\.steps\.1 must be <= 100/ });
  write({ version: 'v2', steps: [50, 25], gates: { errors: false } });
  t.throws(() => loadConfig(config), { message: /rollout\.steps must be strictly increasing/ });
});

test('during a step the canary has its weight, the baseline the rest, every other version none', (t) => {
  const rollout = rolloutOf({ version: 'v2', status: { state: 'running', step: 1, stepStartedAt: 1 } });
  const routing = rolloutRouting({ default: 'v1', weights: { v3: 10, v1: 90 } }, rollout);
  t.deepEqual(routing, { default: 'v1', weights: { v3: 0, v1: 75, v2: 25 } });
  const promoted = rolloutRouting(routing, { ...rollout, status: { ...rollout.status, state: 'promoted' } });
  t.deepEqual(promoted, { default: 'v2', weights: { v3: 0, v1: 0, v2: 100 } });
  const rolledBack = rolloutRouting(routing, { ...rollout, status: { ...rollout.status, state: 'rolled_back' } });
  t.deepEqual(rolledBack, { default: 'v1', weights: { v3: 0, v1: 100, v2: 0 } });
});

test('as steps grow, the canary only gains sticky hashes: no user who reached it leaves it', (t) => {
  const steps = [1, 5, 10, 25, 33, 50, 75, 99];
  // The canary listed before or after the baseline, and with a zeroed third version anywhere.
  const orders: Array<Record<string, number>> = [{ v1: 0, v2: 0 }, { v2: 0, v1: 0 }, { v3: 5, v2: 0, v1: 95 }, { v2: 0, v3: 1, v1: 99 }];
  // 10,000 hash values spread evenly over the range: each step's share shows to a hundredth of a percent.
  const hashes = Array.from({ length: 10_000 }, (_, index) => Math.floor((index * 2 ** 32) / 10_000));
  for (const weights of orders) {
    let previous = new Set<number>();
    steps.forEach((_, step) => {
      const rollout = rolloutOf({ version: 'v2', steps, status: { state: 'running', step, stepStartedAt: 1 } });
      const routing = resolve({ ...file(), routing: rolloutRouting({ default: 'v1', weights }, rollout) }).routing;
      const canary = new Set(hashes.filter((hash) => versionForHash(hash, routing.weights) === 'v2'));
      t.true(Math.abs(canary.size - steps[step]! * 100) <= 1, `weights ${JSON.stringify(weights)}, step ${step}: ${canary.size} of 10,000`);
      t.true([...previous].every((hash) => canary.has(hash)), `weights ${JSON.stringify(weights)}, step ${step}`);
      previous = canary;
    });
  }
});

test("a change by hand to a running rollout's routing is noticed; the step's own routing is not", (t) => {
  const rollout = rolloutOf({ version: 'v2', status: { state: 'running', step: 0, stepStartedAt: 1 } });
  const own = rolloutRouting({ default: 'v1', weights: { v1: 100 } }, rollout);
  t.is(manualRoutingChange(own, rollout), null);
  t.is(manualRoutingChange({ ...own, weights: { v1: 50, v2: 50 } }, rollout), 'routing.weights set to v1=50 v2=50 by hand');
  t.is(manualRoutingChange({ ...own, weights: { v1: 95, v2: 5, v3: 1 } }, rollout), 'routing.weights set to v1=95 v2=5 v3=1 by hand');
  t.is(manualRoutingChange({ ...own, default: 'v2' }, rollout), 'routing.default set to v2 by hand');
  // Not begun yet, or paused: nothing to compare with.
  t.is(manualRoutingChange({ default: 'v1' }, { ...rollout, status: { ...rollout.status, stepStartedAt: null } }), null);
  t.is(manualRoutingChange({ default: 'v1' }, { ...rollout, status: { ...rollout.status, state: 'paused' } }), null);
});
