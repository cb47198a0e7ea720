import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { fixture, get, makeConfig, runCli, sleep, startCluster, token } from './helpers/cluster.js';

/** Sends raw bytes on a new connection; resolves with everything the server sent before it closed. */
function exchange(port: number, bytes: Buffer | string, { end = false } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (chunk) => { text += chunk.toString('latin1'); });
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
    socket.setTimeout(20_000, () => socket.destroy(new Error('no close within 20 s')));
    socket.write(bytes);
    if (end) socket.end();
  });
}

const run = (args: string[], cwd = process.cwd()) => runCli(args, { cwd, timeoutMs: 20_000 });

test('malformed heads get 400 or 431 and are closed; non-HTTP bytes are closed unanswered', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {} }));
  t.regex(await exchange(cluster.port, `GET / HTTP/1.1\r\nX-Big: ${'a'.repeat(17_000)}\r\n\r\n`), /^HTTP\/1\.1 431 /);
  t.regex(await exchange(cluster.port, `GET / HTTP/1.1\r\nX-Big: ${'a'.repeat(17_000)}`), /^HTTP\/1\.1 431 /);
  t.regex(await exchange(cluster.port, 'GET /\r\n\r\n'), /^HTTP\/1\.1 400 /);
  t.regex(await exchange(cluster.port, 'GET / HTTP/1.1\r\nno colon here\r\n\r\n'), /^HTTP\/1\.1 400 /);
  t.regex(await exchange(cluster.port, 'GET / HTTP/9.9\r\nHost: a\r\n\r\n'), /^HTTP\/1\.1 400 /);
  // The start of a TLS ClientHello.
  t.is(await exchange(cluster.port, Buffer.from('16030100f4010000f00303', 'hex')), '');
  const status = await cluster.status();
  t.like(status.router.refused, { 0: 1, 400: 3, 431: 2 });
  t.is((await get(cluster.url('/'))).status, 200, 'still serving');
});

test('a connection that sends no complete head in time gets 408 (slowloris)', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {} }, {}, { headTimeoutMs: 300 }));
  const socket = net.connect(cluster.port, '127.0.0.1');
  let text = '';
  socket.on('data', (chunk) => { text += chunk; });
  socket.write('GET / HTTP/1.1\r\n');
  // Keep trickling bytes: the deadline is absolute, not reset by activity.
  const drip = setInterval(() => socket.write('X-A: b\r\n'), 50);
  await new Promise((resolve) => socket.on('close', resolve));
  clearInterval(drip);
  t.regex(text, /^HTTP\/1\.1 408 /);
});

test('connections waiting for their head each get the whole headTimeoutMs from when they came', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {} }, {}, { headTimeoutMs: 1500 }));
  const first = await idle(cluster.port, '127.0.0.1');
  await sleep(750);
  const second = await idle(cluster.port, '127.0.0.1');
  await first.closed;
  t.regex(first.received(), /^HTTP\/1\.1 408 /);
  t.false(second.socket.closed, 'the younger one still waits when the oldest is turned away');
  await second.closed;
  t.regex(second.received(), /^HTTP\/1\.1 408 /, 'and is turned away in its turn');
  t.is((await get(cluster.url('/'))).status, 200);
});

/** Opens a connection from `localAddress` that sends `bytes` and then waits; collects what it is sent. */
function idle(port: number, localAddress: string, bytes = 'GET / HTTP/1.1\r\n'): Promise<{ socket: net.Socket; received: () => string; closed: Promise<unknown> }> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = net.connect({ port, host: '127.0.0.1', localAddress }, () => resolve({ socket, received: () => text, closed }));
    const closed = new Promise((done) => socket.once('close', done));
    socket.on('data', (chunk) => { text += chunk.toString('latin1'); });
    socket.on('error', reject);
    socket.write(bytes);
  });
}

test('connections waiting for a head are capped per address and in all; at the cap the oldest of the biggest holder makes room', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {} }, {}, { maxPendingConnections: 5, maxPendingPerSource: 3 }));
  const first = await Promise.all([1, 2, 3].map(() => idle(cluster.port, '127.0.0.1')));
  t.teardown(() => first.forEach(({ socket }) => socket.destroy()));
  await cluster.waitForStatus((status) => status.router.pending === 3);
  t.regex(await exchange(cluster.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n'), /^HTTP\/1\.1 503 [^]*more than 3 connections from one address waiting/);
  const second = await Promise.all([1, 2].map(() => idle(cluster.port, '127.0.0.2')));
  t.teardown(() => second.forEach(({ socket }) => socket.destroy()));
  await cluster.waitForStatus((status) => status.router.pending === 5);

  const newcomer = await new Promise<string>((resolve, reject) => {
    const socket = net.connect({ port: cluster.port, host: '127.0.0.1', localAddress: '127.0.0.3' });
    let text = '';
    socket.on('data', (chunk) => { text += chunk; });
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
    socket.end('GET /who HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  });
  t.regex(newcomer, /^HTTP\/1\.1 200 /, 'a newcomer at the cap is served');
  await first[0]!.closed;
  t.regex(first[0]!.received(), /^HTTP\/1\.1 408 [^]*closed to make room/, 'the oldest connection of the address holding the most was shed');
  t.like((await cluster.status()).router, { pendingShed: 1, pendingSourceRefused: 1 });

  for (const { socket } of [...first, ...second]) socket.destroy();
  await cluster.waitForStatus((status) => status.router.pending === 0);
  t.is((await get(cluster.url('/'))).status, 200);
});

test('an empty line before the request line is skipped; a head with bare LF line ends gets 400 at once', async (t) => {
  // A head timeout far past the test's own: a 408 here would mean the primary waited instead of answering.
  const cluster = await startCluster(t, makeConfig({ v1: {}, v2: {} }, { rules: [{ query: 'version' }] }, { headTimeoutMs: 600_000 }));
  const skipped = await exchange(cluster.port, '\r\nGET /who?version=v2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  t.regex(skipped, /^HTTP\/1\.1 200 /);
  t.regex(skipped, /"version":"v2"/);
  t.regex(await exchange(cluster.port, 'GET /who HTTP/1.1\nHost: a\n'), /^HTTP\/1\.1 400 /);
  t.regex(await exchange(cluster.port, 'GET /who HTTP/1.1\r\nHost: a\n\n'), /^HTTP\/1\.1 400 /);
  t.is((await cluster.status()).router.refused['400'], 2);
});

test('a version whose entry is missing or throws at load gets an error event naming it; the others keep serving', async (t) => {
  const missing = path.join(os.tmpdir(), 'graycluster-no-such-app.js');
  const cluster = await startCluster(t, makeConfig(
    { good: {}, gone: { entry: missing }, broken: { entry: fixture('throws-at-load.mjs') } },
    { rules: [{ query: 'version' }] },
  ), { waitReady: false });
  await cluster.waitForOutput(new RegExp(`error\\s+\\[gone worker gone\\.1 pid \\d+\\] failed to load ${missing.replaceAll('.', '\\.')}: .*Cannot find module`));
  await cluster.waitForOutput(/error\s+\[broken worker broken\.1 pid \d+\] failed to load .*throws-at-load\.mjs: Error: this version is broken at load/);
  await cluster.waitForStatus((status) => status.versions.good?.ready === 1);
  t.is((await get(cluster.url('/who?version=good'))).body.version, 'good');
  t.is((await get(cluster.url('/who?version=broken'))).body.version, 'good', 'falls back to the default');
});

test('a worker that never becomes ready counts as a failed start', async (t) => {
  const cluster = await startCluster(t, makeConfig({ stuck: { entry: fixture('never-listens.mjs') } }, {}, { readyTimeoutMs: 1000 }), { waitReady: false });
  t.truthy(await cluster.waitForOutput(/failed\s+\[stuck worker stuck\.1 pid \d+\] not ready within 1000 ms: killing it/));
  t.truthy(await cluster.waitForOutput(/crashed\s+\[stuck worker stuck\.1 pid \d+\] failed to start \(signal SIGKILL\); restarting at once/));
  t.is((await get(cluster.url('/'))).status, 503, 'a version with no ready worker gets 503');
});

test('unknown commands and flags are usage errors with exit code 2', async (t) => {
  const unknownCommand = await run(['frobnicate']);
  t.is(unknownCommand.code, 2);
  t.regex(unknownCommand.stderr, /unknown command "frobnicate"/);
  t.regex(unknownCommand.stderr, /Usage: graycluster <command>/);
  const unknownTopic = await run(['help', 'frobnicate']);
  t.is(unknownTopic.code, 2, 'help of an unknown command is as wrong as the command');
  t.is(unknownTopic.stderr, unknownCommand.stderr);
  t.is(unknownTopic.stdout, '');
  const topic = await run(['help', 'status']);
  t.is(topic.code, 0);
  t.regex(topic.stdout, /^Usage: graycluster status/);
  const unknownFlag = await run(['start', '--prot', '80']);
  t.is(unknownFlag.code, 2);
  t.regex(unknownFlag.stderr, /--prot/);
  t.regex(unknownFlag.stderr, /Usage: graycluster start/);
  const badPort = await run(['start', '--port', 'eighty']);
  t.is(badPort.code, 2);
  t.regex(badPort.stderr, /--port must be a port number/);
  const emptyTarget = await run(['logs', '']);
  t.is(emptyTarget.code, 2);
  t.regex(emptyTarget.stderr, /the version or worker to show is empty/);
  const noSubcommand = await run(['canary', '--config', 'graycluster.json']);
  t.is(noSubcommand.code, 2);
  t.regex(noSubcommand.stderr, /canary needs a command first \(start, status, pause, resume, abort\), not "--config"/);
  const negativeCount = await run(['scale', 'v1', '-3']);
  t.is(negativeCount.code, 2);
  t.regex(negativeCount.stderr, /^graycluster: -3: no value here can be negative/);
  const negativeFlag = await run(['logs', 'v1', '--lines', '-5']);
  t.is(negativeFlag.code, 2);
  t.regex(negativeFlag.stderr, /^graycluster: --lines -5: no value here can be negative/);
});

test('an empty flag value or argument is a usage error naming it, before anything is read, written or asked', async (t) => {
  // An unset shell variable: graycluster status --config "$CONFIG". Run in an empty folder: nothing may land there.
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-test-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  const cases: Array<[string[], string]> = [
    [['status', '--config', ''], '--config is empty'],
    [['start', '--config', ''], '--config is empty'],
    [['split-clients', '--output', ''], '--output is empty'],
    [['logs', 'v1', '--url', ''], '--url is empty'],
    [['weights', 'v1=1', '-c', ''], '--config is empty'],
    [['init', ''], 'the folder is empty'],
    [['restart', ''], 'the worker id is empty'],
    [['heap-snapshot', ''], 'the worker id is empty'],
    [['inspect', ''], 'the worker id is empty'],
    [['reload', ''], 'the version to reload is empty'],
    [['scale', 'v1', ''], 'the worker count is empty'],
    [['canary', 'start', ''], 'the version to roll out is empty'],
  ];
  for (const [args, message] of cases) {
    const result = await run(args, folder);
    const what = args.map((arg) => arg || '""').join(' ');
    t.is(result.code, 2, `${what}: ${result.stderr}`);
    t.true(result.stderr.startsWith(`graycluster: ${message} ("")`), `${what}: ${result.stderr}`);
    t.regex(result.stderr, /\n\nUsage: graycluster /, what);
  }
  t.deepEqual(readdirSync(folder), [], 'init "" wrote nothing into the current folder');
});

test('an invalid config exits 1 naming the bad key and leaves the file untouched', async (t) => {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-test-'));
  const cases: Array<[string, RegExp]> = [
    ['{ "versions": {', /invalid JSON at line 1, column 16: /],
    ['{\n  "versions": {\n    "v1": { "entry": "a.js" }\n    "v2": 1\n  }\n}\n', /invalid JSON at line 4, column 5: Expected ',' or '}' after property value\n/],
    [JSON.stringify({ versions: { v1: { entry: 'a.js', workers: 0 } }, routing: { default: 'v1' } }), /versions\.v1\.workers must be >= 1/],
    [JSON.stringify({ versions: { v1: { entry: 'a.js', entyr: 'b' } }, routing: { default: 'v1' } }), /versions\.v1\.entyr is not a known key/],
    [JSON.stringify({ versions: { v1: { entry: 'a.js' } }, routing: { default: 'v9' } }), /routing\.default names unknown version "v9"/],
    [JSON.stringify({ versions: { toString: { entry: 'a.js' } }, routing: { default: 'toString' } }), /versions\.toString is not a usable version name: every JavaScript object has a property "toString"/],
    [JSON.stringify({ versions: { v1: { entry: 'a.js' }, constructor: { entry: 'a.js' } }, routing: { default: 'v1' } }), /versions\.constructor is not a usable version name/],
    [JSON.stringify({ versions: { v1: { entry: 'a.js' } }, routing: { default: 'v1', weights: { v1: 1, v3: 1 } } }), /routing\.weights\.v3 names unknown version "v3"/],
    [JSON.stringify({ versions: { v1: { entry: 'a.js', maxMemoryHardMB: 0.5 } }, routing: { default: 'v1' } }), /versions\.v1\.maxMemoryHardMB must be >= 32/],
    [JSON.stringify({ versions: { v1: { entry: 'a.js', maxMemoryMB: 2 } }, routing: { default: 'v1' } }), /versions\.v1\.maxMemoryMB must be >= 32/],
    [JSON.stringify({ versions: { v1: { entry: 'a.js' } }, routing: { default: 'v1' }, server: { drainTimeoutMs: 1e10, statsIntervalMs: 3e9 } }), /server\.drainTimeoutMs must be <= 2147483647; server\.statsIntervalMs must be <= 2147483647/],
    [JSON.stringify({ versions: { v1: { entry: 'a.js' } }, routing: { default: 'v1' }, server: { relayMaxIdlePerTarget: -1 } }), /server\.relayMaxIdlePerTarget must be >= 0/],
    [JSON.stringify({ versions: { v1: { entry: 'a.js' } }, routing: { default: 'v1' }, server: { relayIdleTimeoutMs: 1000 } }), /server\.relayIdleTimeoutMs must be <= 600/],
    [JSON.stringify({ versions: { v1: { entry: 'a.js' } }, routing: { default: 'v1', sticky: { cookie: 'gc' }, versionCookie: 'gc' } }), /routing\.versionCookie must not be the sticky cookie's name/],
    [JSON.stringify({ versions: { v1: { entry: 'a.js' } }, routing: { default: 'v1', versionCookie: 'a b' } }), /routing\.versionCookie must match pattern/],
    [JSON.stringify({ versions: { v1: { entry: 'a.js' } }, routing: { default: 'v1' }, logs: { format: 'xml' } }), /logs\.format must be equal to one of the allowed values \("text", "json"\)/],
    [JSON.stringify({ versions: { v1: { entry: 'a.js' }, vé: { entry: 'a.js' } }, routing: { default: 'v1' } }), /versions: "vé" is not a usable version name \(letters, digits, .\.., ._. or .-., not all digits, at most 64 characters\)/],
    [JSON.stringify({ versions: { v1: { entry: 'a.js' } }, routing: { default: 'v1' }, dashboard: { token: 'aaaa bbbb cccc dddd' } }), /dashboard\.token is not a usable API token \(at least 16 characters, no spaces or other whitespace/],
    [JSON.stringify({ versions: { v1: { entry: 'a.js' } }, routing: { default: 'v1', sticky: { key: 'bogus' } } }), /routing\.sticky\.key "bogus" is not a usable sticky key \("ip", "cookie:NAME" or "header:NAME"\)/],
    [JSON.stringify({ versions: { v1: { entry: 'a.js' } }, routing: { default: 'v1', sticky: { key: 'cookie:uid' }, versionCookie: 'uid' } }), /routing\.versionCookie must not be the cookie routing\.sticky\.key reads \("uid"\)/],
  ];
  for (const [text, message] of cases) {
    const file = path.join(folder, 'graycluster.json');
    writeFileSync(file, text);
    const result = await run(['start', '--config', file, '--port', '0', '--dashboard-port', '0']);
    t.is(result.code, 1, text);
    t.regex(result.stderr, message);
    t.is(readFileSync(file, 'utf8'), text, 'file unchanged');
  }
  const absent = await run(['start', '--config', path.join(folder, 'absent.json')]);
  t.is(absent.code, 1);
  t.regex(absent.stderr, /config file not found/);
});

test('a token with whitespace in $GRAYCLUSTER_TOKEN is refused at start naming it, not accepted to fail every request', async (t) => {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-test-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  const file = path.join(folder, 'graycluster.json');
  writeFileSync(file, JSON.stringify({ versions: { v1: { entry: 'a.js' } }, routing: { default: 'v1' } }));
  const result = await runCli(['start', '--config', file, '--port', '0', '--dashboard-port', '0'], { env: { GRAYCLUSTER_TOKEN: 'aaaa bbbb cccc dddd' }, timeoutMs: 20_000 });
  t.is(result.code, 1);
  t.regex(result.stderr, /dashboard\.token \(given by \$GRAYCLUSTER_TOKEN\) is not a usable API token \(at least 16 characters, no spaces or other whitespace/);
  t.notRegex(result.stderr, /aaaa/, 'the token is not printed');
  const empty = await runCli(['start', '--config', file, '--port', '0', '--dashboard-port', '0'], { env: { GRAYCLUSTER_TOKEN: '' }, timeoutMs: 20_000 });
  t.is(empty.code, 2);
  t.regex(empty.stderr, /^graycluster: GRAYCLUSTER_TOKEN is set but empty/);
});

test('weights past the documented range are refused naming the key, at load and by graycluster weights', async (t) => {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-test-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  const file = path.join(folder, 'graycluster.json');
  const withWeights = (weights: Record<string, number>) => JSON.stringify({ versions: { v1: { entry: 'a.js' }, v2: { entry: 'a.js' } }, routing: { default: 'v1', weights } });
  for (const [weights, message] of [
    [{ v1: 1e308, v2: 1e308 }, /routing\.weights\.v1 must be <= 1000000/],
    [{ v1: 1, v2: 1e-320 }, /routing\.weights\.v2 must be integer/],
  ] as const) {
    writeFileSync(file, withWeights(weights));
    const result = await run(['start', '--config', file, '--port', '0', '--dashboard-port', '0']);
    t.is(result.code, 1);
    t.regex(result.stderr, message);
  }
  writeFileSync(path.join(folder, 'a.js'), '');
  writeFileSync(file, withWeights({ v1: 90, v2: 10 }));
  for (const [argument, key] of [['v2=1e308', 'v2'], ['v1=1e-320', 'v1'], ['v2=1000001', 'v2'], ['v2=0.5', 'v2']]) {
    const result = await run(['weights', argument!, '--config', file]);
    t.is(result.code, 1, argument);
    t.regex(result.stderr, new RegExp(`routing\\.weights\\.${key} must be a whole number from 0 to 1000000`));
  }
  t.is(readFileSync(file, 'utf8'), withWeights({ v1: 90, v2: 10 }), 'file unchanged');
});

test('canary start: a step set alone takes a deadline that fits it; a key a flag set is refused naming the flag', async (t) => {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-test-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  writeFileSync(path.join(folder, 'a.js'), '');
  const file = path.join(folder, 'graycluster.json');
  writeFileSync(file, JSON.stringify({ versions: { v1: { entry: 'a.js' }, v2: { entry: 'a.js' } }, routing: { default: 'v1' } }));
  for (const interval of ['1h', '2s']) {
    const fine = await run(['canary', 'start', 'v2', '--interval', interval, '--config', file, '--dry-run']);
    t.is(fine.code, 0, fine.stderr);
  }
  const refused = await run(['canary', 'start', 'v2', '--interval', '1h', '--progress-deadline', '30m', '--config', file, '--dry-run']);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /rollout\.progressDeadlineMs \(given by --progress-deadline\) \(1800000\) must not be shorter than rollout\.stepMs \(given by --interval\) \(3600000\)/);
  const steps = await run(['canary', 'start', 'v2', '--steps', '50,25', '--config', file, '--dry-run']);
  t.is(steps.code, 1);
  t.regex(steps.stderr, /rollout\.steps \(given by --steps\) must be strictly increasing/);
  const huge = await run(['canary', 'start', 'v2', '--min-requests', '99999999999999999999', '--config', file, '--dry-run']);
  t.is(huge.code, 1);
  t.regex(huge.stderr, /rollout\.minRequests \(given by --min-requests\) must be a whole number from 1 to 1000000/);
});

test('--dry-run checks an edit as the edit itself does: what the schema refuses is refused naming the key, and nothing is written', async (t) => {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-test-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  writeFileSync(path.join(folder, 'a.js'), '');
  const file = path.join(folder, 'graycluster.json');
  const text = JSON.stringify({ versions: { v1: { entry: 'a.js' }, v2: { entry: 'a.js' } }, routing: { default: 'v1' } });
  writeFileSync(file, text);
  for (const [key, value, message] of [
    ['versions.v2.port', '70000', /versions\.v2\.port.* must be <= 65535/],
    ['versions.v2.workers', '0', /versions\.v2\.workers.* must be >= 1/],
    ['versions.v2.entyr', '"b.js"', /versions\.v2\.entyr is not a known key/],
  ] as const) {
    for (const dryRun of [['--dry-run'], []]) {
      const result = await run(['set', key, value, '--config', file, ...dryRun]);
      t.is(result.code, 1, `${key} ${dryRun.join('')}`);
      t.regex(result.stderr, message);
    }
  }
  const fine = await run(['set', 'versions.v2.workers', '3', '--config', file, '--dry-run']);
  t.is(fine.code, 0, fine.stderr);
  t.regex(fine.stdout, /^would change:/);
  t.is(readFileSync(file, 'utf8'), text, 'file unchanged');
});

test('split-clients prints the nginx split of the config\'s weights; a config nginx cannot split by exits 1 naming the key', async (t) => {
  const bundled = await run(['split-clients', '--config', 'config/graycluster.json']);
  t.is(bundled.code, 0, bundled.stderr);
  t.regex(bundled.stdout, /^map \$cookie_uid \$graycluster_key \{ "" \$cookie_gc_uid; default \$cookie_uid; \}$/m);
  t.regex(bundled.stdout, /^split_clients "\$\{graycluster_key\}" \$graycluster_pool_split \{ 90% graycluster_v1; \* graycluster_v2; \}$/m);
  t.regex(bundled.stdout, /^map "\$\{graycluster_key\}" \$graycluster_pool \{ "" graycluster_any; default \$graycluster_pool_split; \}$/m);
  for (const upstream of ['graycluster_v1', 'graycluster_v2', 'graycluster_any']) {
    t.regex(bundled.stdout, new RegExp(`^upstream ${upstream} \\{ server 127\\.0\\.0\\.1:8000; keepalive 32; \\}$`, 'm'));
  }

  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-test-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  writeFileSync(path.join(folder, 'a.js'), '');
  const file = path.join(folder, 'graycluster.json');
  const versions = { v1: { entry: 'a.js' }, v2: { entry: 'a.js' } };
  for (const [routing, message] of [
    [{ default: 'v1' }, /routing\.weights is not set/],
    [{ default: 'v1', weights: { v1: 1, v2: 1 }, sticky: { key: 'cookie:my-uid' } }, /routing\.sticky\.key "cookie:my-uid": nginx has no variable/],
    [{ default: 'v1', weights: { v1: 1, v2: 1 }, sticky: { key: 'header:x_user' } }, /routing\.sticky\.key "header:x_user": nginx reads only headers named/],
    [{ default: 'v1', weights: { v1: 1, v2: 1 }, sticky: { key: 'header:x-user', cookie: 'gc-uid' } }, /routing\.sticky\.cookie "gc-uid": nginx has no variable/],
  ] as const) {
    writeFileSync(file, JSON.stringify({ versions, routing }));
    const result = await run(['split-clients', '--config', file]);
    t.is(result.code, 1, JSON.stringify(routing));
    t.regex(result.stderr, message);
    t.is(result.stdout, '');
  }
  // server.port 0 leaves nginx no port: --port (or $GRAYCLUSTER_PORT) names the one start was given.
  writeFileSync(file, JSON.stringify({ server: { port: 0 }, versions, routing: { default: 'v1', weights: { v1: 1, v2: 1 } } }));
  const unknownPort = await run(['split-clients', '--config', file]);
  t.is(unknownPort.code, 1);
  t.regex(unknownPort.stderr, /server\.port is 0 .*give the one it serves on with --port/);
  const given = await run(['split-clients', '--config', file, '--port', '8123']);
  t.is(given.code, 0, given.stderr);
  t.regex(given.stdout, /^upstream graycluster_v1 \{ server 127\.0\.0\.1:8123; keepalive 32; \}$/m);
  const bad = await run(['split-clients', '--config', file, '--port', 'http']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--port must be a port number from 0 to 65535, not "http"/);
  writeFileSync(file, JSON.stringify({ versions: { v1: { entry: 'a.js' }, any: { entry: 'a.js' } }, routing: { default: 'v1', weights: { v1: 1, any: 1 } } }));
  const clash = await run(['split-clients', '--config', file]);
  t.is(clash.code, 1);
  t.regex(clash.stderr, /versions\.any: its upstream block would be graycluster_any, the name of the block for requests without a key/);
});

test('help is complete for every command, and init writes a starter config that validates', async (t) => {
  const help = await run(['--help']);
  t.is(help.code, 0);
  for (const command of ['start', 'status', 'init', 'split-clients']) {
    t.regex(help.stdout, new RegExp(`^  ${command} `, 'm'));
    const commandHelp = await run([command, '--help']);
    t.is(commandHelp.code, 0);
    t.regex(commandHelp.stdout, new RegExp(`^Usage: graycluster ${command}`));
  }
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-test-'));
  const init = await run(['init', folder]);
  t.is(init.code, 0);
  const again = await run(['init', folder]);
  t.is(again.code, 1);
  t.regex(again.stderr, /already exists/);
  // A file given where a folder goes, or a folder that cannot be made (under /proc Node's own mkdir would spin
  // forever): one line naming it, exit 1.
  for (const [target, code] of [[path.join(folder, 'graycluster.json'), 'EEXIST'], ['/proc/graycluster-init', 'ENOENT']] as const) {
    const failed = await run(['init', target]);
    t.is(failed.code, 1, target);
    t.regex(failed.stderr, new RegExp(`^graycluster: cannot create the folder ${target}: ${code} \\(init takes a folder`));
  }
  // The starter config must validate: point its entries at a real app and start it.
  const file = path.join(folder, 'graycluster.json');
  const config = JSON.parse(readFileSync(file, 'utf8'));
  writeFileSync(path.join(folder, 'server.js'), readFileSync(fixture('app.mjs'), 'utf8').replace("from 'ws'", `from '${path.join(process.cwd(), 'node_modules/ws/wrapper.mjs')}'`));
  writeFileSync(path.join(folder, 'package.json'), '{"type":"module"}');
  for (const version of Object.values<{ entry: string }>(config.versions)) version.entry = path.resolve(folder, version.entry);
  config.server.port = 0;
  config.dashboard.port = 0;
  config.dashboard.token = token;
  writeFileSync(file, JSON.stringify(config));
  const cluster = await startCluster(t, config);
  t.is((await get(cluster.url('/?version=v2'))).headers['x-graycluster-version'], 'v2');
});
