import { mkdirSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { root, startCluster, token } from './helpers/cluster.js';
import { canaryConfig, fileOf, usersLoad, versionsOfUsers } from './helpers/canary.js';
import { eventually, openPage, sharedBrowser } from './dashboard-helpers.js';

const browser = sharedBrowser();

test('the rollout panel shows the steps live, each gate\'s figures, and its abort button rolls back to the baseline', async (t) => {
  const config = canaryConfig({}, { steps: [10, 30, 60, 100], stepMs: 2000 });
  const cluster = await startCluster(t, { ...config, dashboard: { ...config.dashboard, feedIntervalMs: 200 } });
  const load = usersLoad(cluster);
  t.teardown(() => load.stop());
  const { page, errors } = await openPage(browser(), t, `http://127.0.0.1:${cluster.dashboardPort}/?token=${token}`, { acceptDialogs: true });

  const panel = page.locator('#rollout-section');
  await panel.waitFor();
  t.is(await page.locator('#rollout-title').textContent(), 'of v2 against v1');
  t.deepEqual(await page.locator('#rollout-steps li').allTextContents(), ['10 %', '30 %', '60 %', '100 %']);
  await page.locator('#rollout-steps li[data-state="current"]', { hasText: '10 %' }).waitFor();
  t.is(await page.locator('#rollout-state').textContent(), 'running');

  // Each gate shows its verdict and both versions' figures, once a window is judged.
  const errorsRow = page.locator('#rollout-gates tr[data-key="errors"]');
  await errorsRow.waitFor();
  t.regex((await errorsRow.locator('[data-field="verdict"]').textContent())!, /^(pass|waiting)$/);
  t.regex((await errorsRow.locator('[data-field="canary"]').textContent())!, /^[\d,]+ requests, [\d,]+ errors, 5xx /);
  t.regex((await errorsRow.locator('[data-field="baseline"]').textContent())!, /^[\d,]+ requests, [\d,]+ errors, 5xx /);
  t.deepEqual(await page.locator('#rollout-gates tbody tr').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-key'))), ['errors', 'latency', 'restarts', 'memory', 'eventLoop']);
  t.regex((await page.locator('#rollout-time').textContent())!, /^step 1 of 4: \d+s in step \(at least 2s\), 10 % of users on v2$/);

  // Live: the next step lights up as the controller advances.
  await page.locator('#rollout-steps li[data-state="current"]', { hasText: '30 %' }).waitFor({ timeout: 20_000 });
  t.is(await page.locator('#rollout-steps li[data-state="done"]').count(), 1);
  mkdirSync(path.join(root, 'test-results'), { recursive: true });
  await panel.screenshot({ path: path.join(root, 'test-results', 'dashboard-rollout.png') });

  t.true(await page.locator('#rollout-resume').isDisabled());
  await page.click('#rollout-abort');
  await page.locator('#rollout-result[data-ok="true"]').waitFor();
  await page.locator('#rollout-state', { hasText: 'aborted' }).waitFor();
  t.is(await page.locator('#rollout-steps li[data-state="stopped"]').count(), 1);
  t.true(await page.locator('#rollout-abort').isDisabled());
  t.like(fileOf(cluster), { routing: { weights: { v1: 100, v2: 0 } }, rollout: { status: { state: 'aborted', reason: 'aborted by the operator' } } });
  await load.stop();
  t.deepEqual([...(await versionsOfUsers(cluster)).keys()], ['v1']);
  await eventually(async () => (await page.locator('#events li[data-type="rollout"]', { hasText: 'aborted' }).count()) > 0, 'the abort shows in the event log');
  t.deepEqual(errors, []);
});
