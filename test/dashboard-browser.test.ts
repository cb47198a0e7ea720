import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import type { Page } from 'playwright-core';
import { freePort, get, makeConfig, root, startCluster, token } from './helpers/cluster.js';
import { eventually, openPage, sharedBrowser } from './dashboard-helpers.js';

/** Where the screenshots go (docs/dashboard.png is a copy of one). */
const screenshots = path.join(root, 'test-results');

const browser = sharedBrowser();

const cell = (page: Page, workerId: string, field: string) => page.locator(`#workers tr[data-worker="${workerId}"] [data-field="${field}"]`);

async function inFlightOnPage(page: Page): Promise<number> {
  const cells = await page.locator('#workers [data-field="inFlight"]').allTextContents();
  return cells.reduce((sum, text) => sum + Number(text), 0);
}

test('the page shows each worker\'s memory, in-flight requests rising and falling, and a kill -9 in the event log', async (t) => {
  const cluster = await startCluster(t, makeConfig(
    { v1: { workers: 2 }, v2: {} },
    { weights: { v1: 70, v2: 30 }, sticky: { key: 'header:x-user' } },
    { statsIntervalMs: 100 },
    { feedIntervalMs: 200 },
  ));
  const { page, errors } = await openPage(browser(), t, `http://127.0.0.1:${cluster.dashboardPort}/?token=${token}`);

  // The token left the address bar for this tab's session storage.
  await page.waitForFunction("!location.search.includes('token')");
  t.is(new URL(page.url()).search, '');
  t.is(await page.evaluate("sessionStorage.getItem('graycluster.token')"), token);
  await page.locator('#connection[data-state="live"]').waitFor();

  // Every worker, with its memory and CPU (a percent once the primary has read /proc twice).
  for (const id of ['v1.1', 'v1.2', 'v2.1']) {
    const rss = await eventually(async () => /^(\d+\.\d) MB$/.exec((await cell(page, id, 'rss').textContent()) ?? '')?.[1], `${id} shows its rss`);
    t.true(Number(rss) > 1, `${id} rss ${rss} MB`);
    t.regex((await cell(page, id, 'heapUsed').textContent())!, /^\d+\.\d MB$/);
    await eventually(async () => /^\d+(\.\d)?%$/.test((await cell(page, id, 'cpu').textContent()) ?? ''), `${id} shows its CPU`);
  }
  t.is(await inFlightOnPage(page), 0);
  t.is(await page.locator('#workers thead th').nth(3).textContent(), 'CPU');

  // In flight rises while slow requests run, and falls after.
  const slow = Array.from({ length: 6 }, (_, index) => get(cluster.url('/slow?ms=3000'), { 'x-user': `user-${index}` }));
  await eventually(async () => (await inFlightOnPage(page)) >= 3, 'in-flight requests show on the page');
  const answers = await Promise.all(slow);
  t.true(answers.every((answer) => answer.status === 200));
  await eventually(async () => (await inFlightOnPage(page)) === 0, 'in-flight falls back to 0');
  await Promise.all(Array.from({ length: 30 }, (_, index) => get(cluster.url(`/who?n=${index}`), { 'x-user': `user-${index}` })));

  // A worker killed with SIGKILL: its crash and restart show in the event log, and its row gets a new pid.
  const pid = Number(await cell(page, 'v1.1', 'pid').textContent());
  process.kill(pid, 'SIGKILL');
  const crashed = page.locator('#events li[data-type="crashed"]', { hasText: `pid ${pid}]` });
  await crashed.waitFor();
  t.regex((await crashed.textContent())!, /signal SIGKILL/);
  await eventually(async () => Number(await cell(page, 'v1.1', 'pid').textContent()) !== pid && (await cell(page, 'v1.1', 'state').textContent()) === 'ready', 'v1.1 is back with a new pid');
  const newPid = Number(await cell(page, 'v1.1', 'pid').textContent());
  await page.locator('#events li[data-type="ready"]', { hasText: `worker v1.1 pid ${newPid}]` }).waitFor();
  t.is(await cell(page, 'v1.1', 'restarts').textContent(), '1');

  await page.waitForTimeout(1500);  // A couple more chart points for the picture.
  mkdirSync(screenshots, { recursive: true });
  await page.screenshot({ path: path.join(screenshots, 'dashboard.png'), fullPage: true });

  // On a phone: nothing wider than the screen (tables become cards).
  await page.setViewportSize({ width: 390, height: 844 });
  t.true(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth'), 'no horizontal scrolling at 390 px');
  await page.screenshot({ path: path.join(screenshots, 'dashboard-phone.png'), fullPage: true });
  t.deepEqual(errors, []);
});

test('moving a weight on the page changes where new requests go; the versions table shows a version\'s own port', async (t) => {
  const v2Port = await freePort();
  const cluster = await startCluster(t, makeConfig({ v1: {}, v2: { port: v2Port } }, { weights: { v1: 100, v2: 0 }, sticky: { key: 'header:x-user' } }));
  const users = Array.from({ length: 20 }, (_, index) => `user-${index}`);
  const versions = async () => new Set((await Promise.all(users.map((user) => get(cluster.url('/who'), { 'x-user': user })))).map((answer) => answer.body.version));
  t.deepEqual([...await versions()], ['v1']);

  const { page, errors } = await openPage(browser(), t, `http://127.0.0.1:${cluster.dashboardPort}/?token=${token}`);
  await page.locator('input[data-weight="v2"]').waitFor();
  t.is(await page.locator('#versions tr[data-key="v2"] [data-field="port"]').textContent(), String(v2Port));
  t.is(await page.locator('#versions tr[data-key="v1"] [data-field="port"]').textContent(), '–');
  await page.fill('input[data-weight="v1"]', '0');
  await page.fill('input[data-weight="v2"]', '100');
  await page.click('#apply-weights');
  await page.locator('#control-result[data-ok]:not([data-ok=""])').waitFor();
  t.is(await page.locator('#control-result').getAttribute('data-ok'), 'true', (await page.locator('#control-result').textContent())!);

  await eventually(async () => {
    const now = await versions();
    return now.size === 1 && now.has('v2');
  }, 'new requests go to v2');
  // Through the same path as the CLI: the config file says so too.
  t.like(JSON.parse(readFileSync(cluster.configFile, 'utf8')).routing.weights, { v1: 0, v2: 100 });
  t.deepEqual(errors, []);
});

test('a worker\'s row takes a heap snapshot and opens and closes its inspector', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {} }));
  const { page, errors } = await openPage(browser(), t, `http://127.0.0.1:${cluster.dashboardPort}/?token=${token}`);
  const row = page.locator('#workers tr[data-worker="v1.1"]');
  const result = page.locator('#control-result');
  const answered = async (button: string) => {
    await row.getByRole('button', { name: button, exact: true }).click();
    await page.locator('#control-result[data-ok]:not([data-ok=""])').waitFor();
    t.is(await result.getAttribute('data-ok'), 'true', (await result.textContent())!);
    return (await result.textContent())!;
  };

  const [, file] = /^wrote a heap snapshot of v1\.1 to (.+\.heapsnapshot)$/.exec(await answered('Heap snapshot')) ?? [];
  t.truthy(file);
  t.true(Array.isArray(JSON.parse(readFileSync(file!, 'utf8')).nodes));
  const [, inspectorHost] = /listens at ws:\/\/(127\.0\.0\.1:\d+)\/.+; open in Chrome: devtools:\/\/devtools\/bundled\/js_app\.html\?/.exec(await answered('Inspect')) ?? [];
  t.truthy(inspectorHost);
  t.is((await get(`http://${inspectorHost}/json/version`)).status, 200);
  t.regex(await answered('Close inspector'), new RegExp(`^closed the inspector of v1\\.1 \\(ws://${inspectorHost!.replaceAll('.', '\\.')}/.+\\)$`));
  await eventually(() => get(`http://${inspectorHost}/json/version`).then(() => false, () => true), 'the inspector port stops answering');
  t.deepEqual(errors, []);
});

test('without a token the page asks for one, and says so when it is refused', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {} }));
  const { page } = await openPage(browser(), t, `http://127.0.0.1:${cluster.dashboardPort}/`, { viewport: { width: 800, height: 600 } });
  await page.locator('#login').waitFor();
  t.true(await page.locator('#dashboard').isHidden());
  await page.fill('#token-input', 'not-the-token-0123456789');
  await page.click('#login button');
  await page.locator('#login-error', { hasText: 'refused' }).waitFor();
  await page.fill('#token-input', token);
  await page.click('#login button');
  await page.locator('#workers tr[data-worker="v1.1"]').waitFor();
  t.true(await page.locator('#login').isHidden());
});
