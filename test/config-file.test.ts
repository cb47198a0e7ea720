import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { editedText } from '../src/config/file-format.js';
import { bin, get, makeConfig, request, startCluster, token } from './helpers/cluster.js';

const run = async (...args: string[]) =>
  (await promisify(execFile)(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 30_000 })).stdout;
const modeOf = (file: string) => statSync(file).mode & 0o777;

test('an edit by the CLI or the dashboard keeps the config file\'s mode (it holds the token)', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {}, v2: {} }, { weights: { v1: 90, v2: 10 } }));
  chmodSync(cluster.configFile, 0o640);
  await run('weights', 'v1=80', 'v2=20', '--config', cluster.configFile);
  t.is(JSON.parse(readFileSync(cluster.configFile, 'utf8')).routing.weights.v2, 20);
  t.is(modeOf(cluster.configFile).toString(8), '640', 'after a CLI edit');

  const reply = await request(`http://127.0.0.1:${cluster.dashboardPort}/api/weights`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ weights: { v2: 30 } }),
  });
  t.is(reply.status, 200, reply.text);
  t.is(JSON.parse(readFileSync(cluster.configFile, 'utf8')).routing.weights.v2, 30);
  t.is(modeOf(cluster.configFile).toString(8), '640', 'after a dashboard edit');

  chmodSync(cluster.configFile, 0o600);
  await run('set', 'routing.sticky.cookie', '"gc"', '--config', cluster.configFile);
  t.is(modeOf(cluster.configFile).toString(8), '600', 'after graycluster set');
});

test('graycluster init writes a config only its owner can read', async (t) => {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-test-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  await run('init', folder);
  t.is(modeOf(path.join(folder, 'graycluster.json')).toString(8), '600');
});

test('a config file that goes missing, becomes a folder or cannot be read is reported; the last good config keeps serving', async (t) => {
  // As root every file is readable: run the supervisor as an ordinary user so that chmod 000 means something.
  const user = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : undefined;
  const cluster = await startCluster(t, makeConfig({ v1: {} }), { user });
  const good = readFileSync(cluster.configFile);
  const reported = async (pattern: RegExp) => {
    await cluster.waitForOutput(new RegExp(`config\\s+rejected, the last good config keeps serving: .*${pattern.source}`));
    const status = await cluster.waitForStatus((current) => pattern.test(current.configError ?? ''));
    t.regex(status.configError!, pattern);
    t.is((await get(cluster.url('/who'))).status, 200, 'still serving');
    restore();
    await cluster.waitForStatus((current) => current.configError === null);
  };
  const restore = () => {
    rmSync(cluster.configFile, { recursive: true, force: true });
    writeFileSync(cluster.configFile, good);
    if (user) chownSync(cluster.configFile, user.uid, user.gid);
  };

  rmSync(cluster.configFile);
  await reported(/config file not found/);
  rmSync(cluster.configFile);
  mkdirSync(cluster.configFile);
  await reported(/EISDIR/);
  chmodSync(cluster.configFile, 0o000);
  await reported(/EACCES/);
});

test('configAppliedAt in the status moves when a change of the file is applied, not when a bad file is rejected', async (t) => {
  const config = makeConfig({ v1: {}, v2: {} }, { weights: { v1: 90, v2: 10 } });
  const cluster = await startCluster(t, config);
  const { configAppliedAt: atStart } = await cluster.status();

  writeFileSync(cluster.configFile, '{ "versions": ');
  const rejected = await cluster.waitForStatus((status) => status.configError !== null);
  t.is(rejected.configAppliedAt, atStart, 'a rejected file applied nothing');

  writeFileSync(cluster.configFile, JSON.stringify({ ...config, routing: { ...config.routing, weights: { v1: 80, v2: 20 } } }));
  const writtenAt = statSync(cluster.configFile).mtimeMs;
  const applied = await cluster.waitForStatus((status) => status.routing.weights?.v2 === 20 && status.configError === null);
  t.true(applied.configAppliedAt >= writtenAt, `applied at ${applied.configAppliedAt}, after the file was written at ${writtenAt}`);
});

test('an edit rewrites only the values it changes, in the file\'s own indentation and line endings', async (t) => {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-test-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  writeFileSync(path.join(folder, 'app.js'), 'require("node:http").createServer((req, res) => res.end("x")).listen(3000);\n');
  const file = path.join(folder, 'graycluster.json');
  const layout = [
    '{',
    '\t"server": { "host": "127.0.0.1", "port": 18080 },',
    '\t"versions": {',
    '\t\t"v1": { "entry": "./app.js", "workers": 1 },',
    '\t\t"v2": { "entry": "./app.js", "workers": 1 }',
    '\t},',
    '\t"routing": { "default": "v1", "weights": { "v1": 90, "v2": 10 }, "sticky": { "key": "header:x-user" } }',
    '}',
    '',
  ];
  const original = layout.join('\r\n');
  writeFileSync(file, original);

  await run('weights', 'v1=80', 'v2=20', '--config', file);
  t.is(readFileSync(file, 'utf8'), original.replace('"v1": 90, "v2": 10', '"v1": 80, "v2": 20'), 'two numbers changed, nothing else');

  await run('set', 'routing.sticky', '{"key":"cookie:uid"}', '--config', file);
  t.is(readFileSync(file, 'utf8'), original.replace('"v1": 90, "v2": 10', '"v1": 80, "v2": 20').replace('header:x-user', 'cookie:uid'));

  await run('deploy', 'v3', '--entry', path.join(folder, 'app.js'), '--config', file);
  const added = readFileSync(file, 'utf8');
  t.deepEqual(JSON.parse(added).versions.v3, { entry: './app.js' });
  t.false(/[^\r]\n/.test(added), 'CRLF line endings kept');
  t.true(added.includes('\r\n\t\t"v3": {\r\n\t\t\t"entry": "./app.js"\r\n\t\t}'), `the new version indented with tabs:\n${added}`);
  t.true(added.startsWith(layout.slice(0, 4).join('\r\n')), 'the lines before it untouched');
});

test('editedText keeps a file\'s layout where it can, and writes the file whole where it cannot', (t) => {
  const fourSpaces = '{\n    "a": 1,\n    "list": [1, 2],\n    "b": { "c": true }\n}\n';
  t.is(editedText(fourSpaces, { a: 2, list: [1, 2], b: { c: true } }), fourSpaces.replace('"a": 1', '"a": 2'));
  t.is(editedText(fourSpaces, { a: 1, list: [3], b: { c: true } }), fourSpaces.replace('[1, 2]', '[\n        3\n    ]'));
  t.is(editedText(fourSpaces, { a: 1, list: [1, 2] }), '{\n    "a": 1,\n    "list": [1, 2]\n}\n', 'a key removed');
  t.is(editedText(fourSpaces, { a: 1, list: [1, 2], b: { c: true }, d: 'x' }), '{\n    "a": 1,\n    "list": [1, 2],\n    "b": {\n        "c": true\n    },\n    "d": "x"\n}\n', 'a key added: the one before it spread over lines, as documented');
  t.is(editedText('{ "a": 1', { a: 2 }), '{\n  "a": 2\n}\n', 'text that is not JSON (changed by hand meanwhile): written whole');
  t.is(editedText('{"a":1}', { a: 2 }), '{"a":2}', 'a file on one line stays on one line');
});

test('a port the file changes where start was given one is reported as having no effect', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {} }), { args: ['--port', '0'] });
  const raw = JSON.parse(readFileSync(cluster.configFile, 'utf8'));
  raw.server.port = 65001;
  writeFileSync(cluster.configFile, JSON.stringify(raw, null, 2));
  t.truthy(await cluster.waitForOutput(/server\.port changed in the file \(0 → 65001\) and has no effect: start was given --port or \$GRAYCLUSTER_PORT, which wins over it/));
  t.is((await get(cluster.url('/'))).status, 200, 'still serving on the port start was given');
});
