import test from 'ava';
import { fixture, get, makeConfig, startCluster, token } from './helpers/cluster.js';
import { eventually, openPage, sharedBrowser } from './dashboard-helpers.js';

const browser = sharedBrowser();

test('a worker\'s Logs button shows its recent lines, then new ones live, stderr apart, at most maxLogRows of them', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: { entry: fixture('log-writer.mjs') }, v2: { entry: fixture('log-writer.mjs') } }, { rules: [{ header: 'x-version' }] }));
  const { page, errors } = await openPage(browser(), t, `http://127.0.0.1:${cluster.dashboardPort}/?token=${token}`);
  const lines = page.locator('#log-lines li');
  const messages = () => page.locator('#log-lines .message').allTextContents();

  t.true(await page.locator('#logs-section').isHidden());
  // Lines its output lost on the way to the terminal or a log file: none here.
  await eventually(async () => (await page.locator('#workers tr[data-worker="v2.1"] [data-field="logDrops"]').textContent()) === '0', 'the Log drops column');
  await page.locator('#workers tr[data-worker="v2.1"]').getByRole('button', { name: 'Logs', exact: true }).click();
  await page.locator('#logs-state [data-state="live"]').waitFor();
  t.is(await page.locator('#logs-target').textContent(), 'v2.1');
  await eventually(async () => (await messages()).includes('v2 warming up on stderr'), 'the start-up lines');
  t.deepEqual((await messages()).sort(), ['v2 listening', 'v2 warming up on stderr']);
  t.is(await lines.filter({ hasText: 'warming up' }).getAttribute('data-stream'), 'stderr');

  // Live: lines the worker writes now show without a reload; other workers' lines do not.
  await get(cluster.url('/lines?count=3&tag=live'), { 'x-version': 'v2' });
  await get(cluster.url('/lines?count=1&tag=other'), { 'x-version': 'v1' });
  await eventually(async () => (await messages()).includes('live 3 of 3'), 'the new lines');
  t.false((await messages()).includes('other 1 of 1'));

  // Bounded: past 500 lines the oldest leave the page.
  await get(cluster.url('/lines?count=600&tag=many'), { 'x-version': 'v2' });
  await eventually(async () => (await messages()).includes('many 600 of 600'), 'the 600th line');
  t.is(await lines.count(), 500);
  t.is((await messages())[0], 'many 101 of 600');

  // Another worker replaces the panel's; Close ends it.
  await page.locator('#workers tr[data-worker="v1.1"]').getByRole('button', { name: 'Logs', exact: true }).click();
  await eventually(async () => (await messages()).includes('other 1 of 1'), 'v1.1\'s lines');
  t.false((await messages()).some((message) => message.startsWith('many')));
  await page.click('#logs-close');
  t.true(await page.locator('#logs-section').isHidden());
  t.deepEqual(errors, []);
});
