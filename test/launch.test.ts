import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { fixture, get, makeConfig, root, startCluster, temporaryFolder, waitFor } from './helpers/cluster.js';

/** A temp folder of the test's own, removed at its end. */
function folderFor(t: ExecutionContext, files: Record<string, string> = {}): string {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-launch-'));
  t.teardown(temporaryFolder(folder));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(folder, name)), { recursive: true });
    writeFileSync(path.join(folder, name), text);
  }
  return folder;
}

/** The file a package's `bin` names (the one npm would link into node_modules/.bin), as the package says. */
function binOf(name: string): string {
  const folder = path.join(root, 'node_modules', name);
  const { bin } = JSON.parse(readFileSync(path.join(folder, 'package.json'), 'utf8')) as { bin: string | Record<string, string> };
  return path.join(folder, typeof bin === 'string' ? bin : bin[name]!);
}

test('nodeArgs, args and cwd reach the worker: node flags, the app\'s argv and its working folder', async (t) => {
  const appFolder = folderFor(t, { 'note.txt': 'read from the working folder' });
  const config = makeConfig({ v1: { entry: fixture('launch-report.mjs') } });
  Object.assign(config.versions.v1!, {
    nodeArgs: ['--max-old-space-size=96', '--enable-source-maps'],
    args: ['--mode', 'report', 'two words'],
    cwd: appFolder,
  });
  const cluster = await startCluster(t, config);
  const { body } = await get(cluster.url('/'));
  t.deepEqual(body.execArgv, ['--max-old-space-size=96', '--enable-source-maps']);
  t.deepEqual(body.argv, [process.execPath, fixture('launch-report.mjs'), '--mode', 'report', 'two words']);
  t.is(body.cwd, appFolder);
  t.is(body.note, 'read from the working folder');
  t.true(body.heapLimitMB < 200, `heap limit ${body.heapLimitMB} MB`);
});

test('a change of args replaces the version\'s workers, which then see the new argv', async (t) => {
  const config = makeConfig({ v1: { entry: fixture('launch-report.mjs') } });
  Object.assign(config.versions.v1!, { args: ['first'] });
  const cluster = await startCluster(t, config);
  const before = (await get(cluster.url('/'))).body;
  t.deepEqual(before.argv.slice(2), ['first']);

  Object.assign(config.versions.v1!, { args: ['second'], cwd: '.' });
  writeFileSync(cluster.configFile, JSON.stringify(config, null, 2));
  const after = await waitFor(async () => {
    const { body } = await get(cluster.url('/'));
    return body.pid !== before.pid ? body : undefined;
  }, { what: 'a new worker' });
  t.deepEqual(after.argv.slice(2), ['second']);
  t.is(after.cwd, path.dirname(cluster.configFile));
  t.regex(cluster.output(), /replace v1's workers, rolling \(args \["first"\] → \["second"\], cwd /);
});

test('json-server runs from its bin file with args and cwd, no wrapper: it serves the db.json and public folder of its cwd', async (t) => {
  const appFolder = folderFor(t, {
    'db.json': JSON.stringify({ posts: [{ id: 1, title: 'from the release folder' }] }),
    'public/index.html': '<h1>release folder</h1>',
  });
  const config = makeConfig({ api: { entry: binOf('json-server') } });
  // Its port flag does not matter: graycluster takes the app's first TCP listen.
  Object.assign(config.versions.api!, { args: ['db.json', '--port', '0', '--quiet'], cwd: appFolder });
  const cluster = await startCluster(t, config);
  const post = await get(cluster.url('/posts/1'));
  t.is(post.status, 200);
  t.deepEqual(post.body, { id: 1, title: 'from the release folder' });
  t.is(post.headers['x-graycluster-version'], 'api');
  const page = await get(cluster.url('/'));
  t.is(page.text, '<h1>release folder</h1>');
});

test('http-server runs from its bin file with args and cwd, no wrapper: it serves the folder its args name, relative to cwd', async (t) => {
  const appFolder = folderFor(t, { 'site/hello.txt': 'hello from site' });
  const config = makeConfig({ files: { entry: binOf('http-server') } });
  Object.assign(config.versions.files!, { args: ['site', '-c-1', '--silent'], cwd: appFolder });
  const cluster = await startCluster(t, config);
  const file = await get(cluster.url('/hello.txt'));
  t.is(file.status, 200);
  t.is(file.text, 'hello from site');
  t.is((await get(cluster.url('/missing.txt'))).status, 404);
});
