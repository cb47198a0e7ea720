// Progressive delivery on real processes under real load: each fault of the canary is caught by its gate.
// Serial: each test runs a load of its own, and the gates compare two versions on a 2-core machine.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { startCluster, type Cluster } from './helpers/cluster.js';
import { canaryConfig, fileOf, users, usersLoad, versionsOfUsers, waitForRollout } from './helpers/canary.js';

/** Rolled back with a reason, all weight on the baseline, and every user answered by it. */
async function assertRolledBack(t: import('ava').ExecutionContext, cluster: Cluster, reason: RegExp) {
  const rollout = await waitForRollout(cluster, (rollout) => rollout.state !== 'running');
  t.like(rollout, { state: 'rolled_back', step: 0, weight: 0 });
  t.regex(rollout.reason, reason);
  const events = (await cluster.status()).events.filter((event) => event.type === 'rollout').map((event) => event.message);
  t.true(events.some((message) => message.startsWith('rollout of v2 rolled back at step 1 of 4 (10 %): ') && reason.test(message.replace(/^.*?\(10 %\): /, ''))), events.join('\n'));
  t.like(fileOf(cluster), { routing: { default: 'v1', weights: { v1: 100, v2: 0 } }, rollout: { status: { state: 'rolled_back', step: 0 } } });
  const byVersion = await versionsOfUsers(cluster);
  t.deepEqual([...byVersion.keys()], ['v1'], `users left on v2: ${byVersion.get('v2')?.join(', ')}`);
  t.is(byVersion.get('v1')!.length, users.length);
  // Kept for inspection: the canary's workers still run, with no traffic. (A canary that crashes may be between a
  // crash and its restart at this moment: its worker must be ready again, not be ready at this instant.)
  await cluster.waitForStatus((status) => status.workers.some((worker) => worker.version === 'v2' && worker.state === 'ready'));
}

test.serial('a canary that answers 5xx to 10 % of requests is rolled back during its first step by the error-rate gate, and no user is left on it', async (t) => {
  const cluster = await startCluster(t, canaryConfig({ v2: { FAIL_EVERY: '10' } }, { stepMs: 60_000 }));
  const load = usersLoad(cluster);
  try {
    await assertRolledBack(t, cluster, /^5xx \d+\.\d % on v2 vs 0\.0 % on v1 over \d+ s, [\d,]+ vs [\d,]+ requests, p < 0\.001$/);
  } finally {
    await load.stop();
  }
});

test.serial('a canary whose p99 is 5× the baseline\'s is rolled back by the latency gate', async (t) => {
  const cluster = await startCluster(t, canaryConfig({ v1: { DELAY_MS: '10' }, v2: { DELAY_MS: '50' } }, { stepMs: 60_000 }));
  const load = usersLoad(cluster, 6);
  try {
    await assertRolledBack(t, cluster, /^(p99 [\d.]+ ms on v2 vs [\d.]+ ms on v1 \([\d.]+×, limit 2×\)|latency: a v2 request is slower than a v1 one)/);
  } finally {
    await load.stop();
  }
});

test.serial('a canary that crashes is rolled back by the restarts gate', async (t) => {
  const cluster = await startCluster(t, canaryConfig({ v2: { CRASH_AFTER: '15' } }, { stepMs: 60_000 }));
  const load = usersLoad(cluster);
  try {
    await assertRolledBack(t, cluster, /^\d+ restarts of v2's 1 workers vs 0 of v1's 1 over \d+ s \(allowed 0\)$/);
  } finally {
    await load.stop();
  }
});

test.serial('a 5xx burst on both versions at once does not roll the canary back: it is promoted', async (t) => {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-outage-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  const outage = path.join(folder, 'database-down');
  const cluster = await startCluster(t, canaryConfig({ v1: { FAIL_WHILE: outage }, v2: { FAIL_WHILE: outage } }, { steps: [10, 30, 100] }));
  const load = usersLoad(cluster);
  try {
    await waitForRollout(cluster, (rollout) => rollout.window !== null);
    writeFileSync(outage, '');
    // The shared outage lasts until both versions answered a good share of 503s inside the step's window.
    const fivexx = (status: Awaited<ReturnType<Cluster['status']>>, version: string) =>
      status.workers.filter((worker) => worker.version === version).reduce((sum, worker) => sum + (worker.statusClasses['5xx'] ?? 0), 0);
    await cluster.waitForStatus((status) => fivexx(status, 'v1') >= 100 && fivexx(status, 'v2') >= 10);
    rmSync(outage);
    const rollout = await waitForRollout(cluster, (rollout) => rollout.state !== 'running');
    t.is(rollout.state, 'promoted', rollout.reason);
    const report = await load.stop();
    t.true((report.unexpected[503] ?? 0) >= 110, `the load saw the outage: ${JSON.stringify(report.unexpected)}`);
    const events = (await cluster.status()).events.filter((event) => event.type === 'rollout').map((event) => event.message);
    t.false(events.some((message) => message.includes('rolled back')), events.join('\n'));
    t.like(fileOf(cluster).routing, { default: 'v2', weights: { v1: 0, v2: 100 } });
  } finally {
    await load.stop();
  }
});
