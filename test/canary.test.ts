// Progressive delivery on real processes: promotion, waiting for samples, a restart mid-rollout, changes by
// hand, the CLI and API controls, and bad rollout configs. Serial: most run a load of their own.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { Status } from '../src/primary/status.js';
import { fixture, get, root, startCluster, token, type Cluster } from './helpers/cluster.js';
import { canaryConfig, cli, fileOf, users, usersLoad, versionsOfUsers, waitForRollout } from './helpers/canary.js';
import { parseExposition } from './dashboard-helpers.js';

const rolloutEvents = async (cluster: Cluster) => (await cluster.status()).events.filter((event) => event.type === 'rollout').map((event) => event.message);

const post = async (cluster: Cluster, path: string) => {
  const response = await fetch(`http://127.0.0.1:${cluster.dashboardPort}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
  return { status: response.status, body: await response.json() as { ok: boolean; error?: string } };
};

test.serial('a healthy canary started with the CLI is promoted through every step to routing.default', async (t) => {
  const cluster = await startCluster(t, canaryConfig({}, null));
  const load = usersLoad(cluster);
  try {
    const started = await cli(['canary', 'start', 'v2', '--steps', '10,30,60,100', '--interval', '2s', '--check-every', '250ms', '--min-requests', '50',
      '--event-loop', 'maxDelayMs=5000', '--config', cluster.configFile]);
    t.is(started.code, 0, started.stderr);
    t.regex(started.stdout, /weights v1=90 v2=10/);
    const seen = new Set<number>();
    const rollout = await waitForRollout(cluster, (rollout) => {
      seen.add(rollout.step);
      return rollout.state !== 'running';
    }, 45_000);
    t.like(rollout, { state: 'promoted', weight: 100, step: 2 });
    t.deepEqual([...seen].sort(), [0, 1, 2]);
    const events = await rolloutEvents(cluster);
    t.true(events.includes('rollout of v2 started at step 1 of 4 (10 %), baseline v1'), events.join('\n'));
    t.true(events.some((message) => /^rollout of v2 advances to step 2 of 4 \(30 %\): step 1 of 4 \(10 %\) passed: all 5 gates pass over \d+ s/.test(message)), events.join('\n'));
    t.true(events.some((message) => message.startsWith('rollout of v2 advances to step 3 of 4 (60 %)')), events.join('\n'));
    t.true(events.some((message) => message.startsWith('v2 promoted to routing.default: step 3 of 4 (60 %) passed: all 5 gates pass')), events.join('\n'));
  } finally {
    await load.stop();
  }
  t.like(fileOf(cluster), { routing: { default: 'v2', weights: { v1: 0, v2: 100 } }, rollout: { status: { state: 'promoted', step: 2 } } });
  t.deepEqual([...(await versionsOfUsers(cluster)).keys()], ['v2']);

  const metrics = parseExposition(await (await fetch(`http://127.0.0.1:${cluster.dashboardPort}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text());
  const sample = (name: string, state?: string) => metrics.get(name)!.samples.find((each) => state === undefined || each.labels.state === state)!;
  t.like(sample('graycluster_rollout_state', 'promoted'), { labels: { version: 'v2', baseline: 'v1' }, value: 1 });
  t.is(sample('graycluster_rollout_state', 'running').value, 0);
  t.is(sample('graycluster_rollout_step').value, 2);
  t.is(sample('graycluster_rollout_weight').value, 100);

  const status = await cli(['canary', 'status', '--config', cluster.configFile]);
  t.is(status.code, 0, status.stderr);
  t.regex(status.stdout, /^rollout of v2 against v1: promoted, 100 % to v2, after step 3 of 4\nsteps: 10 % → 30 % → \[60 %\] → 100 %\nverdict: step 3 of 4 \(60 %\) passed/);
});

test.serial('a canary that gets too few requests waits instead of advancing, then pauses at its progress deadline, saying why', async (t) => {
  const cluster = await startCluster(t, canaryConfig({}, { stepMs: 1500, minRequests: 100_000, progressDeadlineMs: 4000 }));
  const load = usersLoad(cluster, 2);
  try {
    const waiting = await waitForRollout(cluster, (rollout) => rollout.verdict === 'waiting');
    t.regex(waiting.reason, /^step 1 of 4 \(10 %\): 5xx: waiting for 100,000 requests on each version \([\d,]+ on v2, [\d,]+ on v1\)/);
    const paused = await waitForRollout(cluster, (rollout) => rollout.state !== 'running');
    t.like(paused, { state: 'paused', step: 0, weight: 10 });
    // Paused after 4 s, more than twice the step's 1.5 s: it waited instead of advancing.
    t.regex(paused.reason, /^no verdict after [4-9] s \(progress deadline 4 s\): 5xx: waiting for 100,000 requests on each version/);
    const events = await rolloutEvents(cluster);
    t.false(events.some((message) => message.includes('advances')), events.join('\n'));
    t.true(events.some((message) => message.startsWith('rollout of v2 paused at step 1 of 4 (10 %): no verdict after')), events.join('\n'));
    t.like(fileOf(cluster), { routing: { weights: { v1: 90, v2: 10 } }, rollout: { status: { state: 'paused', step: 0 } } });
  } finally {
    await load.stop();
  }
});

test.serial('a restart of graycluster mid-rollout resumes at the same step, from the file', async (t) => {
  const first = await startCluster(t, canaryConfig({}, {}));
  const load = usersLoad(first);
  await waitForRollout(first, (rollout) => rollout.step === 1).finally(() => load.stop());
  first.process.kill('SIGTERM');
  await new Promise((resolve) => first.process.once('exit', resolve));
  const saved = fileOf(first);
  await first.stop();
  t.like(saved.rollout.status, { state: 'running' });
  const step = saved.rollout.status.step as number;
  t.true(step >= 1 && step <= 2, `stopped at step ${step}`);

  const second = await startCluster(t, saved);
  const resumed = (await second.status()).rollout!;
  t.like(resumed, { state: 'running', step, stepStartedAt: saved.rollout.status.stepStartedAt, weight: saved.rollout.steps[step] });
  const where = `step ${step + 1} of 4 (${saved.rollout.steps[step]} %)`;
  await second.waitForOutput(new RegExp(`rollout of v2 resumes at ${where.replace(/[()]/g, '\\$&')}, as the config file says`));
  const secondLoad = usersLoad(second);
  try {
    t.is((await waitForRollout(second, (rollout) => rollout.state !== 'running', 45_000)).state, 'promoted');
  } finally {
    await secondLoad.stop();
  }
});

test.serial('a manual weights mid-rollout pauses it; resume, pause and abort work from the CLI and the API alike', async (t) => {
  const cluster = await startCluster(t, canaryConfig({}, { stepMs: 60_000 }));
  await waitForRollout(cluster, (rollout) => rollout.stepStartedAt !== null && rollout.weight === 10);
  const weights = await cli(['weights', 'v1=50', 'v2=50', '--config', cluster.configFile]);
  t.is(weights.code, 0, weights.stderr);
  const paused = await waitForRollout(cluster, (rollout) => rollout.state !== 'running');
  t.like(paused, { state: 'paused', step: 0, reason: 'routing.weights set to v1=50 v2=50 by hand: rollout paused' });
  t.true((await rolloutEvents(cluster)).includes('rollout of v2 paused at step 1 of 4 (10 %): routing.weights set to v1=50 v2=50 by hand'));
  t.like(fileOf(cluster).routing.weights, { v1: 50, v2: 50 });

  // The API resumes: the step's weights again.
  t.like(await post(cluster, '/api/rollout/resume'), { status: 200, body: { ok: true } });
  t.like((await cluster.status()).rollout, { state: 'running', step: 0 });  // Its reason may already be the next tick's.
  t.like(fileOf(cluster).routing.weights, { v1: 90, v2: 10 });
  t.like(await post(cluster, '/api/rollout/resume'), { status: 400, body: { ok: false, error: 'the rollout of v2 is not paused' } });

  // The CLI pauses; the controller records it.
  const pause = await cli(['canary', 'pause', '--config', cluster.configFile]);
  t.is(pause.code, 0, pause.stderr);
  await waitForRollout(cluster, (rollout) => rollout.state === 'paused' && rollout.reason === 'paused by the operator');
  await cluster.waitForOutput(/rollout of v2 paused at step 1 of 4 \(10 %\): paused by the operator/);
  const json = await cli(['canary', 'status', '--json', '--config', cluster.configFile]);
  t.like(JSON.parse(json.stdout), { version: 'v2', baseline: 'v1', state: 'paused', step: 0, weight: 10, steps: [10, 30, 60, 100] });

  // The API aborts: all traffic to the baseline; a second abort is refused, naming why.
  t.like(await post(cluster, '/api/rollout/abort'), { status: 200, body: { ok: true } });
  t.like((await cluster.status()).rollout, { state: 'aborted', weight: 0, reason: 'aborted by the operator' });
  t.like(fileOf(cluster).routing.weights, { v1: 100, v2: 0 });
  t.deepEqual([...(await versionsOfUsers(cluster)).keys()], ['v1']);
  t.like(await post(cluster, '/api/rollout/abort'), { status: 400, body: { error: 'no rollout in progress: the rollout of v2 was aborted' } });
  const again = await cli(['canary', 'abort', '--config', cluster.configFile]);
  t.is(again.code, 1);
  t.is(again.stderr, 'graycluster: no rollout in progress: the rollout of v2 was aborted\n');
});

test.serial('a bad rollout config is rejected with a message naming the key, and the last good config keeps serving', async (t) => {
  const config = canaryConfig({}, null);
  const cluster = await startCluster(t, config);
  const bad: Array<[object, RegExp]> = [
    [{ version: 'v9' }, /rollout\.version names unknown version "v9" \(known: v1, v2\)/],
    [{ version: 'v2', steps: [10, 50, 30] }, /rollout\.steps must be strictly increasing: 30 comes after 50/],
    [{ version: 'v2', gates: { errors: { maxRate: 2 } } }, /rollout\.gates\.errors\.maxRate must be <= 1/],
  ];
  for (const [rollout, message] of bad) {
    writeFileSync(cluster.configFile, JSON.stringify({ ...config, rollout }, null, 2));
    const status = await cluster.waitForStatus((status: Status) => status.configError !== null && message.test(status.configError));
    t.is(status.rollout, null);
    t.like(status.routing, { default: 'v1' });
    t.is((await get(cluster.url('/'), { 'x-user': users[0]! })).body.version, 'v1');
  }
  writeFileSync(cluster.configFile, JSON.stringify(config, null, 2));
  await cluster.waitForStatus((status) => status.configError === null);

  const refused: Array<[string[], RegExp]> = [
    [['v9'], /^graycluster: rollout\.version names unknown version "v9" \(known: v1, v2\)\n$/],
    [['v2', '--steps', '50,25'], /^graycluster: .*rollout\.steps \(given by --steps\) must be strictly increasing: 25 comes after 50\n$/],
    [['v2', '--errors', 'maxRate=2'], /^graycluster: .*rollout\.gates\.errors\.maxRate \(given by --errors\) must be a number above 0 up to 1, not 2\n$/],
    [['v2', '--interval', '60'], /^graycluster: --interval must be a duration with its unit \(ms, s, m or h\) such as 60s, 5m or 1h, not "60"\n/],
    // Past a timer's 2^31-1 ms the supervisor would check the gates at once, over and over.
    [['v2', '--interval', '1000h', '--check-every', '1000h', '--progress-deadline', 'off'], /^graycluster: --interval must be at most 576h \(24 days\), not "1000h"\n/],
    [['v2', '--check-every', '2147483648ms'], /^graycluster: --check-every must be at most 576h \(24 days\), not "2147483648ms"\n/],
    [['v2', '--progress-deadline', `${'9'.repeat(400)}h`], /^graycluster: --progress-deadline must be at most 576h \(24 days\), not "9+h"\n/],
  ];
  for (const [args, message] of refused) {
    const result = await cli(['canary', 'start', ...args, '--config', cluster.configFile]);
    t.not(result.code, 0);
    t.regex(result.stderr, message);
  }
  t.is(fileOf(cluster).rollout, undefined);
  t.is((await cluster.status()).rollout, null);
});

test.serial('two supervisors sharing one config file run one rollout: each step is taken once, neither takes the other\'s write for a manual edit, both end promoted', async (t) => {
  const first = await startCluster(t, canaryConfig({}, null), { name: 'first' });
  const second = await startCluster(t, first.configFile, { name: 'second' });
  const loads = [usersLoad(first, 2), usersLoad(second, 2)];
  try {
    const started = await cli(['canary', 'start', 'v2', '--steps', '10,50,100', '--interval', '2s', '--check-every', '250ms', '--min-requests', '30',
      '--event-loop', 'maxDelayMs=5000', '--config', first.configFile]);
    t.is(started.code, 0, started.stderr);
    t.regex(started.stdout, /the 2 supervisors running with it/);
    for (const cluster of [first, second]) t.like(await waitForRollout(cluster, (rollout) => rollout.state !== 'running', 45_000), { state: 'promoted', weight: 100 });
  } finally {
    await Promise.all(loads.map((load) => load.stop()));
  }
  const events = [...await rolloutEvents(first), ...await rolloutEvents(second)];
  t.false(events.some((message) => /paused|rolled back|aborted/.test(message)), events.join('\n'));
  // Whichever judged first wrote each transition; the other one adopted it from the file ("running at step 2 …").
  t.is(events.filter((message) => message.startsWith('rollout of v2 advances to step 2 of 3')).length, 1, events.join('\n'));
  t.is(events.filter((message) => message.startsWith('v2 promoted to routing.default')).length, 1, events.join('\n'));
  t.like(fileOf(first), { routing: { default: 'v2', weights: { v1: 0, v2: 100 } }, rollout: { status: { state: 'promoted', step: 1 } } });
});

test.serial('a rollout of a version whose new build did not start pauses at once, saying so, instead of judging the build before', async (t) => {
  const cluster = await startCluster(t, canaryConfig({}, null));
  const deployed = await cli(['deploy', 'v2', '--entry', fixture('throws-at-load.mjs'), '--config', cluster.configFile]);
  t.is(deployed.code, 0, deployed.stderr);
  await cluster.waitForStatus((status) => /versions\.v2: /.test(status.configError ?? ''), 30_000);
  const load = usersLoad(cluster);
  try {
    const started = await cli(['canary', 'start', 'v2', '--steps', '10,50,100', '--interval', '2s', '--check-every', '250ms', '--min-requests', '5', '--config', cluster.configFile]);
    t.is(started.code, 0, started.stderr);
    const rollout = await waitForRollout(cluster, (current) => current.state !== 'running', 45_000);
    t.like(rollout, { state: 'paused', step: 0 });
    t.regex(rollout.reason, /^v2's new workers did not start \(.+\), so what serves it is its build before; fix it, then resume$/);
    t.true((await rolloutEvents(cluster)).some((message) => message.startsWith('rollout of v2 paused at step 1 of 3 (10 %): v2\'s new workers did not start')));
  } finally {
    await load.stop();
  }
  t.like(fileOf(cluster), { routing: { default: 'v1' }, rollout: { status: { state: 'paused' } } });
});

/** A gate setting's rule in the schema: a number with a range, or one of a number and null. */
interface SettingRule { minimum?: number; exclusiveMinimum?: number; maximum?: number; oneOf?: SettingRule[]; type?: string }

test('canary start takes every key the schema knows for each gate on that gate\'s flag, and its --help example as written', async (t) => {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-test-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  const file = path.join(folder, 'graycluster.json');
  const config = JSON.stringify(canaryConfig({}, null), null, 2);
  const schema = JSON.parse(readFileSync(path.join(root, 'config/graycluster.schema.json'), 'utf8'));
  const gates = schema.properties.rollout.properties.gates.properties as Record<string, { properties: Record<string, SettingRule> }>;
  t.true(Object.keys(gates).length >= 5);
  for (const [gate, { properties }] of Object.entries(gates)) {
    // A value in the key's range: its maximum, else just above its lowest.
    const settings = Object.fromEntries(Object.entries(properties).map(([key, rule]) => {
      const number = rule.oneOf?.find((each) => each.type === 'number') ?? rule;
      return [key, number.maximum ?? number.minimum ?? (number.exclusiveMinimum ?? 0) + 1];
    }));
    const flag = `--${gate.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
    const given = Object.entries(settings).map(([key, value]) => `${key}=${value}`).join(',');
    writeFileSync(file, config);
    const result = await cli(['canary', 'start', 'v2', flag, given, '--config', file]);
    t.is(result.code, 0, `${flag} ${given}: ${result.stderr}`);
    t.deepEqual(JSON.parse(readFileSync(file, 'utf8')).rollout.gates[gate], settings, `${flag} ${given}`);
  }
  const help = await cli(['canary', 'start', '--help']);
  const [, example = ''] = /^Example: graycluster (.+)$/m.exec(help.stdout) ?? [];
  t.is(example, 'canary start v2 --steps 10,50,100 --interval 2m --latency maxP99Ratio=1.5');
  writeFileSync(file, config);
  const run = await cli([...example.split(' '), '--config', file]);
  t.is(run.code, 0, run.stderr);
  t.like(JSON.parse(readFileSync(file, 'utf8')).rollout, { version: 'v2', steps: [10, 50, 100], stepMs: 120_000, gates: { latency: { maxP99Ratio: 1.5 } } });
});
