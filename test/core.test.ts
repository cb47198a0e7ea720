import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import test from 'ava';
import WebSocket from 'ws';
import { stickyHash, versionForHash } from '../src/routing/decide.js';
import { fixture, get, makeConfig, request, sleep, startCluster, waitFor } from './helpers/cluster.js';

const twoVersions = (routing: Record<string, unknown> = {}, server: Record<string, unknown> = {}) => makeConfig(
  { v1: { workers: 2 }, v2: {} },
  { rules: [{ query: 'version' }, { header: 'x-version' }, { cookie: 'version' }, { header: 'x-canary', equals: '1', to: 'v2' }], ...routing },
  server,
);

test.serial('each rule kind routes to its version, and the answering version is named in a header', async (t) => {
  const cluster = await startCluster(t, twoVersions());
  const cases: Array<[string, Record<string, string>, string]> = [
    ['/?version=v2', {}, 'v2'],
    ['/?version=v1', {}, 'v1'],
    ['/?version=nope', {}, 'v1'],
    ['/', { 'x-version': 'v2' }, 'v2'],
    ['/', { cookie: 'theme=dark; version=v2' }, 'v2'],
    ['/', { 'x-canary': '1' }, 'v2'],
    ['/', { 'x-canary': 'yes' }, 'v1'],
    ['/', {}, 'v1'],
  ];
  for (const [path, headers, expected] of cases) {
    const reply = await get(cluster.url(path), headers);
    t.is(reply.body.version, expected, `${path} ${JSON.stringify(headers)}`);
    t.is(reply.headers['x-graycluster-version'], expected);
  }
});

test.serial('sticky weights split 10k users within 3 points and put every user on the same version after a restart', async (t) => {
  const config = twoVersions({ rules: [], weights: { v1: 80, v2: 20 }, sticky: { key: 'cookie:uid' } });
  const users = Array.from({ length: 10_000 }, (_, index) => `user-${index}`);
  const assign = async (port: number) => {
    const agent = new http.Agent({ keepAlive: false, maxSockets: 64 });
    // A 503 with Retry-After (a machine loaded by other tests can hold a handoff past its limits) is asked again, as
    // a client would; any other answer without a version shows as its status and text.
    const versionOf = async (user: string, tries = 3): Promise<string> => {
      const reply = await request(`http://127.0.0.1:${port}/who`, { headers: { cookie: `uid=${user}` }, agent });
      if (reply.status === 503 && tries > 1) {
        await sleep(1000);
        return versionOf(user, tries - 1);
      }
      return (reply.body as { version?: string }).version ?? `${reply.status} ${reply.text}`;
    };
    const versions = await Promise.all(users.map((user) => versionOf(user)));
    agent.destroy();
    return versions;
  };
  const first = await startCluster(t, config);
  const before = await assign(first.port);
  await first.stop();
  const share = before.filter((version) => version === 'v2').length / 100;
  t.true(Math.abs(share - 20) <= 3, `v2 got ${share}% of users`);

  const second = await startCluster(t, config);
  const after = await assign(second.port);
  t.deepEqual(after, before);
});

test.serial('a client without a key gets a weighted pick and a cookie that keeps it there', async (t) => {
  const cluster = await startCluster(t, twoVersions({ rules: [], weights: { v1: 50, v2: 50 }, sticky: { key: 'cookie:uid', cookie: 'gc_uid' } }));
  for (let client = 0; client < 10; client++) {
    const first = await get(cluster.url('/who'));
    const cookie = String(first.headers['set-cookie']).split(';')[0]!;
    t.regex(cookie, /^gc_uid=/);
    for (let visit = 0; visit < 3; visit++) {
      const again = await get(cluster.url('/who'), { cookie });
      t.is(again.body.version, first.body.version);
      t.is(again.headers['set-cookie'], undefined);
    }
  }
});

test.serial('clients without a key on one keep-alive connection (a proxy\'s) each get a weighted pick and a cookie of their own, relayed answers too', async (t) => {
  const weights: Array<[string, number]> = [['v1', 50], ['v2', 50]];
  const cluster = await startCluster(t, twoVersions({ rules: [], weights: Object.fromEntries(weights), sticky: { key: 'cookie:uid', cookie: 'gc_uid' } }));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const answers = [];
  for (let client = 0; client < 60; client++) {
    const reply = await request(cluster.url('/who'), { agent });
    answers.push({ version: reply.body.version as string, cookie: String(reply.headers['set-cookie']).split(';')[0]!.replace(/^gc_uid=/, '') });
  }
  t.deepEqual([...new Set(answers.map((answer) => answer.version))].sort(), ['v1', 'v2'], 'both versions answered on the one connection');
  t.is(new Set(answers.map((answer) => answer.cookie)).size, answers.length, 'every client its own cookie');
  t.deepEqual(answers.filter((answer) => versionForHash(stickyHash(answer.cookie), weights) !== answer.version), [], 'each cookie names the version that answered');
  const status = await cluster.waitForStatus((current) => current.workers.reduce((sum, worker) => sum + worker.forwarded, 0) > 0);
  t.true(status.workers.some((worker) => worker.forwarded > 0), 'some were relayed, and their answers carried the cookie');
});

test.serial('with routing.versionCookie, an answer names its version in that cookie unless the request already did', async (t) => {
  const weights: Array<[string, number]> = [['v1', 50], ['v2', 50]];
  const cluster = await startCluster(t, twoVersions({ weights: Object.fromEntries(weights), sticky: { key: 'cookie:uid' }, versionCookie: 'gc_version' }));
  const versionCookie = (reply: { headers: http.IncomingHttpHeaders }) => (reply.headers['set-cookie'] ?? []).find((cookie) => cookie.startsWith('gc_version='));
  const users = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];
  for (const user of users) {
    const own = versionForHash(stickyHash(user), weights)!;
    const other = own === 'v1' ? 'v2' : 'v1';
    const fresh = await get(cluster.url('/who'), { cookie: `uid=${user}` });
    t.is(fresh.body.version, own);
    t.is(versionCookie(fresh), `gc_version=${own}; Path=/; HttpOnly; SameSite=Lax`);
    t.is(versionCookie(await get(cluster.url('/who'), { cookie: `uid=${user}; gc_version=${own}` })), undefined, 'already named: no cookie');
    t.is(versionCookie(await get(cluster.url('/who'), { cookie: `uid=${user}; gc_version=${other}` })), `gc_version=${own}; Path=/; HttpOnly; SameSite=Lax`, 'named wrong: set right');
    // A rule names another version: the cookie follows the answer.
    const ruled = await get(cluster.url(`/who?version=${other}`), { cookie: `uid=${user}; gc_version=${own}` });
    t.is(ruled.body.version, other);
    t.is(versionCookie(ruled), `gc_version=${other}; Path=/; HttpOnly; SameSite=Lax`);
  }
  // On one keep-alive connection, users of both versions: a relayed answer names its version once, not twice.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  for (const user of users) {
    const own = versionForHash(stickyHash(user), weights)!;
    const reply = await request(cluster.url('/who'), { agent, headers: { cookie: `uid=${user}` } });
    t.is(reply.body.version, own);
    t.deepEqual((reply.headers['set-cookie'] ?? []).filter((cookie) => cookie.startsWith('gc_version=')), [`gc_version=${own}; Path=/; HttpOnly; SameSite=Lax`], user);
  }
  await cluster.waitForStatus((status) => status.workers.some((worker) => worker.forwarded > 0));  // Some were relayed.
});

test.serial('requests of different versions over one keep-alive connection are each answered by their own version', async (t) => {
  const cluster = await startCluster(t, twoVersions());
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const sockets = new Set<net.Socket>();
  agent.on('free', (socket) => sockets.add(socket));
  const sequence = ['v1', 'v2', 'v2', 'v1', 'v2', 'v1', 'v1', 'v2'];
  for (const version of sequence) {
    const reply = await request(cluster.url(`/who?version=${version}`), { agent });
    t.is(reply.body.version, version);
  }
  // A body travels both ways through the forward too.
  const payload = randomBytes(256 * 1024);
  const echoed = await request(cluster.url('/sha256?version=v2'), { method: 'POST', body: payload, agent });
  t.is(echoed.body.sha256, createHash('sha256').update(payload).digest('hex'));
  t.is(sockets.size, 1, 'every request went over the same client connection');
  // The connection was handed to a v1 worker; the five v2 requests on it were forwarded to v2.
  const status = await cluster.waitForStatus((current) => current.workers.some((worker) => worker.forwarded === 5));
  t.is(status.workers.find((worker) => worker.forwarded === 5)?.version, 'v1');
});

test.serial('pipelined requests that arrive with the head reach the worker byte-exact, each answered by its version', async (t) => {
  const cluster = await startCluster(t, twoVersions());
  const socket = net.connect(cluster.port, '127.0.0.1');
  t.teardown(() => socket.destroy());
  const body = 'x'.repeat(1000);
  socket.write(
    `POST /sha256?version=v1 HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
    'GET /who?version=v2 HTTP/1.1\r\nHost: a\r\n\r\n' +
    'GET /who?version=v1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
  );
  let text = '';
  for await (const chunk of socket) text += chunk.toString();
  const bodies = [...text.matchAll(/\r\n\r\n(\{[^\r]*?\})(?=HTTP|$)/g)].map((match) => JSON.parse(match[1]!));
  t.is(bodies.length, 3, text);
  t.is(bodies[0].sha256, createHash('sha256').update(body).digest('hex'));
  t.deepEqual(bodies.map((reply) => reply.version), ['v1', 'v2', 'v1']);
});

test.serial('a 10 MB random binary POST is echoed byte-exact', async (t) => {
  const cluster = await startCluster(t, twoVersions());
  const payload = randomBytes(10 * 1024 * 1024);
  const digest = createHash('sha256').update(payload).digest('hex');
  const hashed = await request(cluster.url('/sha256?version=v2'), { method: 'POST', body: payload });
  t.deepEqual([hashed.body.version, hashed.body.length, hashed.body.sha256], ['v2', payload.length, digest]);
  const echoed = await new Promise<Buffer>((resolve, reject) => {
    const req = http.request(cluster.url('/echo?version=v1'), { method: 'POST', agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve(Buffer.concat(chunks)));
    });
    req.on('error', reject);
    req.end(payload);
  });
  t.is(createHash('sha256').update(echoed).digest('hex'), digest);
});

test.serial('bytes read with the head, every byte value among them, reach the app exactly as the client sent them', async (t) => {
  const cluster = await startCluster(t, twoVersions());
  // One write: the primary reads the body's first bytes with the head, and they travel to the worker with it.
  const body = Buffer.from(Array.from({ length: 1024 }, (_, index) => index % 256));
  const socket = net.connect(cluster.port, '127.0.0.1');
  socket.end(Buffer.concat([
    Buffer.from(`POST /sha256?version=v2 HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`, 'latin1'),
    body,
  ]));
  let text = '';
  for await (const chunk of socket) text += (chunk as Buffer).toString('latin1');
  const reply = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
  t.deepEqual([reply.version, reply.length, reply.sha256], ['v2', body.length, createHash('sha256').update(body).digest('hex')]);
});

test.serial('connections arriving together, with heads of every size and body bytes read with them, each reach their version with their own bytes', async (t) => {
  // Many connections at once are on their way to each worker together (ipc/handle-window.ts); a large head goes alone.
  const cluster = await startCluster(t, twoVersions());
  const replies = await Promise.all(Array.from({ length: 200 }, async (_, index) => {
    const version = index % 3 === 0 ? 'v2' : 'v1';
    const body = randomBytes((index * 389) % 3000);
    const padding = 'p'.repeat((index * 1543) % 15_000);
    const socket = net.connect(cluster.port, '127.0.0.1');
    socket.end(Buffer.concat([
      Buffer.from(`POST /sha256?version=${version} HTTP/1.1\r\nHost: a\r\nX-Padding: ${padding}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`, 'latin1'),
      body,
    ]));
    let text = '';
    for await (const chunk of socket) text += (chunk as Buffer).toString('latin1');
    const reply = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
    const expected = [version, body.length, createHash('sha256').update(body).digest('hex')];
    return { index, same: JSON.stringify([reply.version, reply.length, reply.sha256]) === JSON.stringify(expected) };
  }));
  t.deepEqual(replies.filter((reply) => !reply.same).map((reply) => reply.index), []);
});

test.serial('a WebSocket upgrade is routed by the same rules and works end to end', async (t) => {
  const cluster = await startCluster(t, twoVersions());
  for (const version of ['v2', 'v1']) {
    const ws = new WebSocket(`ws://127.0.0.1:${cluster.port}/socket?version=${version}`);
    const messages: string[] = [];
    await new Promise<void>((resolve, reject) => {
      ws.on('message', (data) => {
        messages.push(String(data));
        if (messages.length === 1) ws.send('ping');
        if (messages.length === 2) resolve();
      });
      ws.on('error', reject);
    });
    ws.close();
    t.is(JSON.parse(messages[0]!).version, version);
    t.is(messages[1], 'echo:ping');
  }
});

test.serial('a worker killed with SIGKILL under load is replaced, and no new connection goes to the dead one', async (t) => {
  const cluster = await startCluster(t, twoVersions());
  const victim = (await cluster.status()).workers.find((worker) => worker.version === 'v1')!;
  let running = true;
  let crashSeen = false;
  let failures = 0;
  let failuresAfterCrashSeen = 0;
  const pids = new Set<number>();
  let answered = 0;
  const client = async () => {
    while (running) {
      const afterCrash = crashSeen;
      try {
        const reply = await get(cluster.url('/who?version=v1'));
        answered++;
        if (reply.status !== 200) throw new Error(`status ${reply.status}`);
        if (afterCrash) pids.add(reply.body.pid);
      } catch {
        failures++;
        if (afterCrash) failuresAfterCrashSeen++;
      }
    }
  };
  const clients = Array.from({ length: 4 }, client);
  await waitFor(() => answered >= 20, { what: 'the clients are being answered' });
  process.kill(victim.pid!, 'SIGKILL');
  // Connections already on their way to the worker when it died are lost with it; once the primary has seen
  // the crash, no new connection may go there.
  await cluster.waitForOutput(new RegExp(`crashed\\s+\\[v1 worker ${victim.id.replace('.', '\\.')} pid ${victim.pid}\\] crashed \\(signal SIGKILL\\)`));
  crashSeen = true;
  const status = await cluster.waitForStatus((current) => {
    const slot = current.workers.find((worker) => worker.id === victim.id)!;
    return slot.restarts === 1 && slot.state === 'ready' && slot.pid !== victim.pid;
  });
  const replacement = status.workers.find((worker) => worker.id === victim.id)!;
  await waitFor(() => pids.has(replacement.pid!), { what: 'the replacement answers a client' });
  running = false;
  await Promise.all(clients);
  t.is(failuresAfterCrashSeen, 0, `${failures} requests failed in all`);
  t.false(pids.has(victim.pid!));
  t.true(pids.has(replacement.pid!), 'the replacement serves');
});

test.serial('a version that keeps crashing goes to crashloop and its traffic falls back to the default', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: {}, v2: { entry: fixture('crash-after-start.mjs') } }, { rules: [{ query: 'version' }] }), { waitReady: false });
  await cluster.waitForStatus((current) => current.versions.v2?.state === 'crashloop' && current.versions.v1?.ready === 1, 30_000);
  const reply = await get(cluster.url('/who?version=v2'));
  t.is(reply.status, 200);
  t.is(reply.body.version, 'v1');
  await cluster.waitForOutput(/crashloop\s+\[v2\] keeps crashing: its traffic goes to "v1"/);
  const status = await cluster.status();
  t.true(status.router.fallbacks >= 1);
  // Between its processes the worker has none: no memory or CPU figure of the last one stays on show.
  const between = await cluster.waitForStatus((current) => current.workers.some((worker) => worker.version === 'v2' && worker.pid === null));
  const crashing = between.workers.find((worker) => worker.version === 'v2')!;
  t.deepEqual([crashing.rss, crashing.heapUsed, crashing.cpuPercent, crashing.cpuSeconds, crashing.inFlight], [0, 0, null, null, 0]);
});

test.serial('with the default itself crash-looping, its requests get 503 with Retry-After', async (t) => {
  const cluster = await startCluster(t, makeConfig({ v1: { entry: fixture('crash-after-start.mjs') } }), { waitReady: false });
  await cluster.waitForStatus((current) => current.versions.v1?.state === 'crashloop', 30_000);
  const reply = await get(cluster.url('/'));
  t.is(reply.status, 503);
  t.is(reply.headers['retry-after'], '1');
});

test.serial('a graceful stop lets in-flight requests finish, then exits 0', async (t) => {
  const cluster = await startCluster(t, twoVersions({}, { statsIntervalMs: 200 }));
  const slow = Array.from({ length: 6 }, (_, index) => get(cluster.url(`/slow?ms=4000&version=v${(index % 2) + 1}`)));
  await cluster.waitForStatus((current) => current.workers.reduce((sum, worker) => sum + worker.inFlight, 0) >= 6);
  const code = cluster.stop();
  const replies = await Promise.all(slow);
  t.deepEqual(replies.map((reply) => reply.status), [200, 200, 200, 200, 200, 200]);
  t.is(await code, 0);
  t.regex(cluster.output(), /graycluster: stopped/);
});

test.serial("an app written like the seed's child.js runs unchanged, and the app's own IPC listener never sees graycluster's messages", async (t) => {
  const cluster = await startCluster(t, makeConfig({ seed: { entry: fixture('seed-child.cjs') }, app: {} }, { rules: [{ query: 'version' }] }));
  const reply = await get(cluster.url('/?version=seed'));
  t.regex(reply.text, /^handled by child, pid is \d+\n$/);
  t.is(reply.headers['x-graycluster-version'], 'seed');
  for (let index = 0; index < 5; index++) await get(cluster.url('/who?version=app'));
  const messages = await get(cluster.url('/messages?version=app'));
  t.deepEqual(messages.body.messages, []);
});

test.serial('a worker stuck in a busy loop still shows its rss, is flagged unresponsive, and is restarted', async (t) => {
  const cluster = await startCluster(t, twoVersions({}, { statsIntervalMs: 200, heartbeatTimeoutMs: 1000, unresponsiveRestartMs: 3000 }));
  const victim = (await cluster.status()).workers.find((worker) => worker.version === 'v2')!;
  const blocked = get(cluster.url('/block?ms=60000&version=v2')).catch((error: Error) => error);
  const stuck = await cluster.waitForStatus((status) => status.workers.some((worker) => worker.id === victim.id && worker.unresponsive));
  t.true(stuck.workers.find((worker) => worker.id === victim.id)!.rss > 10 * 1024 * 1024, 'rss is sampled by the primary');
  await cluster.waitForOutput(new RegExp(`unresponsive\\s+\\[v2 worker ${victim.id.replace('.', '\\.')} pid ${victim.pid}\\] no heartbeat for \\d+ ms: killing it`));
  const status = await cluster.waitForStatus((current) => current.workers.some((worker) => worker.id === victim.id && worker.state === 'ready' && worker.pid !== victim.pid));
  t.is(status.workers.find((worker) => worker.id === victim.id)!.restarts, 1);
  t.true((await blocked) instanceof Error, 'the request that blocked it died with it');
  t.is((await get(cluster.url('/who?version=v2'))).body.version, 'v2');
});
