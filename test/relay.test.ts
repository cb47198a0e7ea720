/**
 * The lean relay through real processes: a connection handed to v1 by its first request, then requests for v2
 * on it, answered in every way HTTP/1.1 frames a response. The app (fixtures/relay-cases.mjs) is the same file
 * for both versions and names the one that answered.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import test, { type ExecutionContext } from 'ava';
import { maxChunkLineBytes, maxChunkSizeDigits, maxResponseHeadBytes } from '../src/worker/response-framing.js';
import { fixture, makeConfig, startCluster, type Cluster } from './helpers/cluster.js';
import { RawConnection } from './helpers/raw-connection.js';

const config = makeConfig(
  { v1: { entry: fixture('relay-cases.mjs') }, v2: { entry: fixture('relay-cases.mjs') } },
  { rules: [{ query: 'version' }] },
);

// One cluster for every test in this file (ava allows no teardown in hooks: collect them for after.always).
let cluster: Cluster;
const teardowns: Array<() => unknown> = [];
test.before(async () => {
  cluster = await startCluster({ teardown: (fn: () => unknown) => teardowns.push(fn) } as unknown as ExecutionContext, config);
});
test.after.always(async () => {
  for (const teardown of teardowns) await teardown();
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  trailers: NodeJS.Dict<string>;
}

/** One request on `agent` (a single keep-alive connection); resolves with everything the answer carried. */
function send(agent: http.Agent, target: string, options: { method?: string; body?: Buffer[]; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`http://127.0.0.1:${cluster.port}${target}`, { method: options.method ?? 'GET', agent, headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), trailers: res.trailers }));
      res.on('error', reject);
    });
    req.setTimeout(20_000, () => req.destroy(new Error(`no answer to ${target} within 20 s`)));
    req.on('error', reject);
    for (const chunk of options.body ?? []) req.write(chunk);
    req.end();
  });
}

/** An agent with one keep-alive connection, already handed to v1 by its first request. */
async function connectionOnV1(t: ExecutionContext): Promise<{ agent: http.Agent; sockets: Set<unknown> }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const sockets = new Set<unknown>();
  agent.on('free', (socket) => sockets.add(socket));
  const first = await send(agent, '/?version=v1');
  if (JSON.parse(first.body.toString()).version !== 'v1') throw new Error('the first request was not answered by v1');
  return { agent, sockets };
}

test('a chunked answer with trailers comes through from the other version, and the connection goes on', async (t) => {
  const { agent, sockets } = await connectionOnV1(t);
  const answer = await send(agent, '/chunked?version=v2');
  t.is(answer.headers['transfer-encoding'], 'chunked');
  t.is(answer.body.toString(), 'v2 in chunks');
  t.deepEqual(answer.trailers, { 'x-checksum': 'sum-of-v2' });
  t.is(JSON.parse((await send(agent, '/?version=v1')).body.toString()).version, 'v1');
  t.is(sockets.size, 1, 'one client connection throughout');
});

test('HEAD, 204 and 304 from the other version carry no body, and the next request on the connection is answered', async (t) => {
  const connection = await RawConnection.connect(cluster.port);
  t.teardown(() => connection.close());
  connection.send('GET /?version=v1 HTTP/1.1\r\nHost: app\r\n\r\n');
  await connection.readResponse();
  // Raw, so that any stray body byte would show up in front of the next answer.
  connection.send('HEAD /?version=v2 HTTP/1.1\r\nHost: app\r\n\r\n');
  const head = await connection.readHead();
  t.is(head.status, 200);
  t.is(head.headers['x-app-version'], 'v2');
  for (const code of [204, 304]) {
    connection.send(`GET /status?code=${code}&version=v2 HTTP/1.1\r\nHost: app\r\n\r\n`);
    const answer = await connection.readHead();
    t.is(answer.status, code);
    t.is(answer.headers['x-app-version'], 'v2');
  }
  connection.send('GET /?version=v2 HTTP/1.1\r\nHost: app\r\n\r\n');
  const after = await connection.readResponse();
  t.is(after.status, 200, 'the next answer starts right after the bodyless ones');
  t.is(JSON.parse(after.body.toString()).version, 'v2');
});

test('a chunked upload with trailers reaches the other version whole, and 10 MB of random bytes go both ways byte-exact', async (t) => {
  const { agent } = await connectionOnV1(t);
  const parts = [randomBytes(1000), randomBytes(70_000), randomBytes(1)];
  const digest = createHash('sha256').update(Buffer.concat(parts)).digest('hex');
  const uploaded = await new Promise<Answer>((resolve, reject) => {
    const req = http.request(`http://127.0.0.1:${cluster.port}/upload?version=v2`, { method: 'POST', agent, headers: { trailer: 'x-sum' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), trailers: res.trailers }));
    });
    req.on('error', reject);
    for (const part of parts) req.write(part);
    req.addTrailers({ 'x-sum': digest });
    req.end();
  });
  const seen = JSON.parse(uploaded.body.toString());
  t.deepEqual(seen, { version: 'v2', length: 71_001, sha256: digest, trailers: { 'x-sum': digest }, chunked: 'chunked' });

  const payload = randomBytes(10 * 1024 * 1024);
  const echoed = await send(agent, '/echo?version=v2', { method: 'POST', body: [payload] });
  t.is(echoed.headers['x-app-version'], 'v2');
  t.is(createHash('sha256').update(echoed.body).digest('hex'), createHash('sha256').update(payload).digest('hex'));
});

test('an answer that ends by closing reaches the client whole, and then the client connection closes too', async (t) => {
  for (const [target, body] of [['/close-delimited?version=v2', 'v2 until the close'], ['/close-after?version=v2', 'v2']] as const) {
    const connection = await RawConnection.connect(cluster.port);
    t.teardown(() => connection.close());
    connection.send('GET /?version=v1 HTTP/1.1\r\nHost: app\r\n\r\n');
    await connection.readResponse();
    connection.send(`GET ${target} HTTP/1.1\r\nHost: app\r\n\r\n`);
    const rest = (await connection.readToEnd()).toString('latin1');
    t.regex(rest, /^HTTP\/1\.1 200 OK\r\n/, target);
    t.regex(rest, /\r\nconnection: close\r\n/i, target);
    t.true(rest.endsWith(`\r\n\r\n${body}`), `${target}: ${JSON.stringify(rest)}`);
  }
});

test('Expect: 100-continue answered by Node on both sides reaches the client as one 100 Continue', async (t) => {
  const connection = await RawConnection.connect(cluster.port);
  t.teardown(() => connection.close());
  connection.send('GET /?version=v1 HTTP/1.1\r\nHost: app\r\n\r\n');
  await connection.readResponse();
  connection.send('POST /upload?version=v2 HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
  t.is((await connection.readHead()).status, 100);
  connection.send('hello');
  const answer = await connection.readResponse();
  t.is(answer.status, 200, 'no second 100 Continue before the answer');
  t.like(JSON.parse(answer.body.toString()), { version: 'v2', length: 5 });
});

test('a client that goes away mid-answer ends the relayed request at the other version', async (t) => {
  const { agent } = await connectionOnV1(t);
  const connection = await RawConnection.connect(cluster.port);
  connection.send('GET /?version=v1 HTTP/1.1\r\nHost: app\r\n\r\n');
  await connection.readResponse();
  connection.send('GET /stream?version=v2 HTTP/1.1\r\nHost: app\r\n\r\n');
  t.is((await connection.readHead()).status, 200);
  await connection.readBytes(8);
  const streaming = JSON.parse((await send(agent, '/open-streams?version=v2')).body.toString());
  t.is(streaming.openStreams, 1, 'the answer is streaming at v2');
  connection.close();
  const deadline = Date.now() + 10_000;
  let open = 1;
  while (open !== 0 && Date.now() < deadline) open = JSON.parse((await send(agent, '/open-streams?version=v2')).body.toString()).openStreams;
  t.is(open, 0, 'v2 saw its answer closed: the relay connection was destroyed, not left mid-message');
});

test('an answer past the relay\'s framing caps: a head over 64 KiB gets 502, a chunk-size line too long or a size too large closes the connection', async (t) => {
  const { agent, sockets } = await connectionOnV1(t);
  const huge = await send(agent, `/head-of?bytes=${maxResponseHeadBytes}&version=v2`);
  t.is(huge.status, 502);
  t.regex(huge.body.toString(), new RegExp(`a response head over ${maxResponseHeadBytes} bytes`));
  t.is(JSON.parse((await send(agent, '/?version=v2')).body.toString()).version, 'v2', 'the connection goes on after a 502');
  t.is(sockets.size, 1);
  // Its head already taken, a broken answer closes the client connection (before or after that head reaches the
  // client), so it never looks complete; a timeout would be another message.
  for (const line of [`1;${'x'.repeat(maxChunkLineBytes)}`, '1'.padStart(maxChunkSizeDigits + 1, '0')]) {
    const fresh = await connectionOnV1(t);
    await t.throwsAsync(send(fresh.agent, `/raw-chunked?line=${line}&version=v2`), { message: /^(?:socket hang up|aborted)$/ }, line.slice(0, 20));
    t.is(JSON.parse((await send(fresh.agent, '/?version=v2')).body.toString()).version, 'v2', 'a new connection is served');
  }
});

test('a request head just under the size limit is answered the same relayed as in place (the relay\'s private header has room)', async (t) => {
  // The largest head v1 serves in place on a connection it holds, found by trying sizes down from past the limit.
  let padding = 16_400;
  for (; padding > 16_000; padding -= 4) {
    const { agent } = await connectionOnV1(t);
    if ((await send(agent, '/?version=v1', { headers: { 'x-pad': 'p'.repeat(padding) } })).status === 200) break;
  }
  t.true(padding > 16_000, 'v1 serves a head near the limit in place');
  const { agent, sockets } = await connectionOnV1(t);
  const relayed = await send(agent, '/?version=v2', { headers: { 'x-pad': 'p'.repeat(padding) } });
  t.is(relayed.status, 200, `a ${padding}-byte header relayed to v2`);
  t.is(JSON.parse(relayed.body.toString()).version, 'v2');
  t.is(sockets.size, 1, 'over the connection v1 holds');
  const over = await send(agent, '/?version=v2', { headers: { 'x-pad': 'p'.repeat(padding + 200) } });
  t.is(over.status, 431, 'past the limit it is refused as in place');
});
