/**
 * One test per private Node API in src/shared/node-internals.ts. Each fails with a message naming the internal,
 * so a Node upgrade that changes one says which, instead of breaking handoffs in subtle ways.
 */
import { execFile, fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import {
  acceptBareHandles, adoptConnection, adoptResponseHead, bareHandlePeerAddress, bareHandleToSend, closeBareHandle, emitConnectionWithHeaderRoom, internalCommand,
  internalMessageEvent, onHandleAnswer, readBareHandle, responseMayKeepAlive, socketOverBareHandle,
  stopReadingBareHandle, type TcpHandle,
} from '../src/shared/node-internals.js';
import { isOurs, sentBytes } from '../src/ipc/channel.js';
import { HandleWindow } from '../src/ipc/handle-window.js';
import { answerHandlesUngated, releaseHandleGate, watchSends } from '../src/shared/node-internals.js';
import { fixture, waitFor } from './helpers/cluster.js';

type Message = { cmd?: string; kind?: string; [key: string]: unknown };

/** Forks the bare fixture child and resolves once it said it is ready (on the internal channel). */
async function child(t: ExecutionContext, maxFiles?: number): Promise<{ process: ChildProcess; next(kind: string): Promise<Message>; appMessages: unknown[] }> {
  // util-linux's prlimit runs node with a low file descriptor limit, so that the child can use all of them up.
  const limit = maxFiles === undefined ? {} : { execPath: 'prlimit', execArgv: [`--nofile=${maxFiles}:${maxFiles}`, process.execPath] };
  const forked = fork(fixture('internals-child.cjs'), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...limit });
  t.teardown(() => forked.kill('SIGKILL'));
  const appMessages: unknown[] = [];
  forked.on('message', (message) => appMessages.push(message));
  const next = (kind: string) => new Promise<Message>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no internal message "${kind}" from the child within 10 s`)), 10_000);
    const listener = (message: Message) => {
      if (message?.kind !== kind) return;
      clearTimeout(timer);
      forked.off(internalMessageEvent, listener);
      resolve(message);
    };
    forked.on(internalMessageEvent, listener);
  });
  await next('ready');
  return { process: forked, next, appMessages };
}

/** A connected pair of TCP sockets on loopback: the accepted one and the client. */
async function socketPair(t: ExecutionContext): Promise<{ accepted: net.Socket; client: net.Socket }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const pair = { accepted: await accepted, client };
  server.close();
  t.teardown(() => {
    pair.accepted.destroy();
    client.destroy();
  });
  return pair;
}

const closed = (socket: net.Socket, what: string) => new Promise<void>((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(what)), 10_000);
  socket.once('close', () => {
    clearTimeout(timer);
    resolve();
  });
  socket.resume();
});

test(`"${internalCommand}" messages arrive as '${internalMessageEvent}' in both directions, never as 'message'`, async (t) => {
  const { process: forked, next, appMessages } = await child(t);
  t.deepEqual(appMessages.filter((message) => (message as Message)?.cmd === internalCommand), [],
    `Node internal changed: messages whose cmd starts with "NODE_" reach 'message' instead of '${internalMessageEvent}' (lib/internal/child_process.js)`);
  forked.send({ cmd: internalCommand, kind: 'echo' });
  const echoed = await next('echoed');
  t.is(echoed.seenOnMessage, 0, `Node internal changed: the child saw our "NODE_" message on 'message'`);
  t.true(appMessages.includes('a message of the app'), 'the app\'s own messages still arrive on \'message\'');
});

/** A server on loopback whose connections arrive as bare handles (acceptBareHandles), and a client connected to it. */
async function bareConnection(t: ExecutionContext): Promise<{ handle: TcpHandle; client: net.Socket; server: net.Server; connections: () => number }> {
  const server = net.createServer();
  let connectionEvents = 0;
  server.on('connection', () => connectionEvents++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<TcpHandle>((resolve) => acceptBareHandles(server, resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => {});
  const handle = await accepted;
  t.teardown(() => {
    client.destroy();
    server.close();
  });
  return { handle, client, server, connections: () => connectionEvents };
}

test('server._handle.onconnection, replaced, gives each new connection as a bare TCP handle, with no net.Socket', async (t) => {
  const { handle, client, connections } = await bareConnection(t);
  t.is((handle as unknown as object).constructor.name, 'TCP', 'Node internal changed: server._handle.onconnection no longer gets a tcp_wrap TCP handle (used by acceptBareHandles)');
  t.is(connections(), 0, "Node internal changed: net.Server still emitted 'connection' with its onconnection replaced");
  t.is(bareHandlePeerAddress(handle), '127.0.0.1', 'Node internal changed: handle.getpeername no longer fills in the address (used by bareHandlePeerAddress)');
  closeBareHandle(handle);
  await closed(client, 'Node internal changed: handle.close() did not close the connection (used by closeBareHandle)');
  t.pass();
});

test("a bare handle's onread with streamBaseState gives each chunk read and then the end, as lib/net.js reads them", async (t) => {
  const { handle, client } = await bareConnection(t);
  const chunks: string[] = [];
  const ended = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Node internal changed: no end through handle.onread after the client closed; read ${JSON.stringify(chunks)} (used by readBareHandle)`)), 10_000);
    t.true(readBareHandle(handle, (chunk) => chunks.push(chunk.toString('latin1')), () => {
      clearTimeout(timer);
      resolve();
    }), 'Node internal changed: handle.readStart() failed on an open connection');
  });
  client.end('GET / HTTP/1.1\r\n\r\n');
  await ended;
  t.is(chunks.join(''), 'GET / HTTP/1.1\r\n\r\n', "Node internal changed: streamBaseState's kReadBytesOrError / kArrayBufferOffset no longer locate the bytes handle.onread got (used by readBareHandle)");
  closeBareHandle(handle);
});

test('a bare handle sent to a child arrives bare (net.Native) with the bytes left by readStop, and the sender keeps its copy until it closes it', async (t) => {
  const { process: forked, next } = await child(t);
  const { handle, client } = await bareConnection(t);
  readBareHandle(handle, () => t.fail('read here after stopReadingBareHandle'), () => {});
  stopReadingBareHandle(handle);
  await new Promise<void>((resolve) => client.write('bytes sent before the handoff', () => resolve()));
  const acknowledged = new Promise<boolean>((resolve) => onHandleAnswer(forked, resolve));
  const answered = new Promise<string>((resolve) => client.once('data', (chunk) => resolve(chunk.toString())));
  forked.send({ cmd: internalCommand, kind: 'read-bare', length: 28 }, bareHandleToSend(handle));
  const read = await next('read');
  t.is(read.received, 'TCP', 'Node internal changed: a TCP handle sent with send() no longer arrives bare (net.Native) (used by bareHandleToSend)');
  t.is(read.data, 'bytes sent before the handoff', 'Node internal changed: handle.readStop did not leave the bytes to the receiver (used by stopReadingBareHandle)');
  t.true(await acknowledged);
  t.is(bareHandlePeerAddress(handle), '127.0.0.1', "Node internal changed: the sender's copy of a bare handle was closed when sent (the handoff closes it itself, on the child's acknowledgement)");
  closeBareHandle(handle);
  t.is(await answered, 'answered by the child', 'the child answers on the connection after the sender closed its copy');
});

test("net.Socket's handle option builds a working socket around a bare handle", async (t) => {
  const { handle, client } = await bareConnection(t);
  const socket = socketOverBareHandle(handle);
  t.teardown(() => socket.destroy());
  const echoed = new Promise<string>((resolve) => client.once('data', (chunk) => resolve(chunk.toString())));
  socket.once('data', (chunk) => socket.write(`echo: ${chunk.toString()}`));
  client.write('hello');
  t.is(await echoed, 'echo: hello', 'Node internal changed: new net.Socket({ handle }) does not read and write through the handle (used by socketOverBareHandle)');
  t.is(socket.remoteAddress, '127.0.0.1');
});

test("NODE_HANDLE_ACK arrives as an internal message once the child holds a sent bare handle, and not before", async (t) => {
  const { process: forked } = await child(t);
  const { handle } = await bareConnection(t);
  let acknowledged = 0;
  onHandleAnswer(forked, (received) => {
    if (received) acknowledged++;
  });
  forked.kill('SIGSTOP');
  forked.send({ cmd: internalCommand, kind: 'keep' }, bareHandleToSend(handle));
  await new Promise((resolve) => setTimeout(resolve, 200));  // A stopped child cannot answer, however long we wait.
  t.is(acknowledged, 0, 'Node internal changed: NODE_HANDLE_ACK came from a child that cannot have taken the socket');
  const heard = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("Node internal changed: no NODE_HANDLE_ACK 'internalMessage' after the child took a socket (used by onHandleAnswer)")), 10_000);
    onHandleAnswer(forked, () => {
      clearTimeout(timer);
      resolve();
    });
  });
  forked.kill('SIGCONT');
  await heard;
  t.is(acknowledged, 1);
});

test('NODE_HANDLE_NACK arrives as an internal message when the child cannot receive a sent bare handle, whose copy stays open here', async (t) => {
  const { process: forked, next } = await child(t, 64);
  const { handle } = await bareConnection(t);
  forked.send({ cmd: internalCommand, kind: 'exhaust' });
  const exhausted = await next('exhausted');
  t.is(exhausted.code, 'EMFILE');
  const answer = () => new Promise<boolean>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("Node internal changed: no NODE_HANDLE_ACK or NODE_HANDLE_NACK 'internalMessage' within 10 s (used by onHandleAnswer)")), 10_000);
    onHandleAnswer(forked, (received) => {
      clearTimeout(timer);
      resolve(received);
    });
  });
  const refused = answer();
  forked.send({ cmd: internalCommand, kind: 'keep' }, bareHandleToSend(handle));
  t.false(await refused, 'Node internal changed: a child with no file descriptor free no longer answers NODE_HANDLE_NACK');
  t.is(bareHandlePeerAddress(handle), '127.0.0.1', "Node internal changed: the sender's copy of a bare handle was closed after a NACK (the handoff places the connection elsewhere)");
  forked.send({ cmd: internalCommand, kind: 'release' });
  await next('released');
  const taken = answer();
  forked.send({ cmd: internalCommand, kind: 'keep' }, bareHandleToSend(handle));
  t.true(await taken, 'Node internal changed: after a NACK the channel no longer carries handles (Node flushes its handle queue on NACK as on ACK)');
  closeBareHandle(handle);
});

test("with Node's handle gate lifted within the handle window, many connections in flight at once each reach the child with their own message, and answers to another sender's handles are told apart", async (t) => {
  const { process: forked } = await child(t);
  answerHandlesUngated(forked);
  const window = new HandleWindow();
  watchSends(forked, (message, carriesHandle) => window.wrote(sentBytes(message, carriesHandle), carriesHandle, isOurs(message)));
  let acknowledged = 0;
  let othersAnswered = 0;
  onHandleAnswer(forked, (received) => {
    if (!window.answered()) othersAnswered++;
    else if (received) acknowledged++;
  });
  const count = 150;
  const others = 5;
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const handles: TcpHandle[] = [];
  acceptBareHandles(server, (handle) => handles.push(handle));
  const clients = await Promise.all(Array.from({ length: count + others }, () => new Promise<net.Socket>((resolve) => {
    const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1', () => resolve(socket));
  })));
  t.teardown(() => {
    for (const socket of clients) socket.destroy();
    server.close();
  });
  while (handles.length < count + others) await new Promise((resolve) => setImmediate(resolve));
  const ports = new Map<number, number>();
  const replies = new Map<number, unknown>();
  const allAnswered = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${replies.size} of ${count} connections answered within 20 s`)), 20_000);
    forked.on(internalMessageEvent, (message: Message) => {
      if (message?.kind !== 'peer') return;
      replies.set(message.id as number, message.port);
      if (replies.size === count) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  // Mostly small messages, as a connection's head is; every 20th is larger than the window's bytes (it goes alone);
  // every 30th message carries no handle but 63 KB, as a large settings message would; in the last 50, every 10th is
  // followed by a handle of another sender's (as node:cluster sends a worker the socket of a port it shares with it).
  let mostInFlight = 0;
  for (let id = 0; id < count; id++) {
    const message = { cmd: internalCommand, kind: 'peer', id, padding: 'x'.repeat(id % 20 === 19 ? 24_000 : (id * 137) % 2000) };
    while (!window.admits(sentBytes(message, true))) await new Promise((resolve) => setImmediate(resolve));
    if (id % 30 === 29) {
      forked.send({ cmd: internalCommand, kind: 'noise', padding: 'y'.repeat(63_000) });
      while (!window.admits(sentBytes(message, true))) await new Promise((resolve) => setImmediate(resolve));
    }
    const peer: { port?: number } = {};  // The connection's client port, as the child will read it.
    (handles[id] as unknown as { getpeername(out: { port?: number }): number }).getpeername(peer);
    ports.set(id, peer.port!);
    const gate = forked as unknown as { _handleQueue: unknown[] | null };
    const gateOpen = gate._handleQueue === null;  // Else closed behind the other sender's handle: ours waits in it.
    forked.send(message, bareHandleToSend(handles[id]!));
    if (window.mayFollow()) {
      releaseHandleGate(forked);
      if (gateOpen) t.is(gate._handleQueue, null, "Node internal changed: the child process's _handleQueue is not an empty array after a send with a handle (used by releaseHandleGate)");
    }
    if (id >= count - others * 10 && id % 10 === 9) forked.send({ cmd: 'NODE_CLUSTER', act: 'newconn', seq: id }, bareHandleToSend(handles[count + (id - 9) % (others * 10) / 10]!));
    mostInFlight = Math.max(mostInFlight, window.unanswered);
  }
  await allAnswered;
  await waitFor(() => othersAnswered === others && window.unanswered === 0, { what: 'every handle answered' });
  for (const handle of handles) closeBareHandle(handle);
  t.true(mostInFlight > 1, 'several connections were in flight at once');
  t.deepEqual([...replies.entries()].filter(([id, port]) => port !== ports.get(id)), [], 'every message came with its own connection');
  t.is(acknowledged, count, 'each one of ours acknowledged, none refused');
  t.is(othersAnswered, others, 'and the other sender\'s answers told apart');
});

test("the channel's writeQueueSize (under child_process's kChannelHandle) says what a child has not yet written to its parent", async (t) => {
  const { process: forked, next } = await child(t);
  forked.send({ cmd: internalCommand, kind: 'queued', module: new URL('../src/shared/node-internals.js', import.meta.url).href });
  const report = await next('queued');
  t.is(report.idle, 0, 'Node internal changed: an idle channel reports bytes queued (used by channelBytesQueued)');
  t.true((report.afterBulk as number) > 0, 'Node internal changed: a 4 MB message just sent left nothing queued on the channel (used by channelBytesQueued)');
  t.is(report.drained, 0);
});

test('net.Server._connections and socket.server/_server let an adopted connection hold server.close() until it ends', async (t) => {
  const server = http.createServer((_req, res) => res.end('ok'));
  const { accepted, client } = await socketPair(t);
  adoptConnection(server, accepted);
  server.emit('connection', accepted);
  const count = await new Promise<number>((resolve, reject) => server.getConnections((error, value) => (error ? reject(error) : resolve(value))));
  t.is(count, 1, 'Node internal changed: net.Server._connections no longer counts connections (used by adoptConnection)');
  let serverClosed = false;
  const closing = new Promise<void>((resolve) => server.close(() => {
    serverClosed = true;
    resolve();
  }));
  client.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
  await new Promise<void>((resolve) => client.once('data', () => resolve()));
  t.false(serverClosed, 'Node internal changed: server.close() finished while an adopted connection was open');
  client.destroy();
  await closing;
  t.true(serverClosed, 'Node internal changed: a closing adopted socket no longer releases server.close() through socket._server');
});

/** A server on loopback running `handler`; resolves with a raw client connected to it. */
async function rawServer(t: ExecutionContext, handler: http.RequestListener, configure: (server: http.Server) => void = () => {}): Promise<net.Socket> {
  const server = http.createServer(handler);
  configure(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  t.teardown(() => {
    client.destroy();
    server.closeAllConnections();
    server.close();
  });
  return client;
}

const everything = (client: net.Socket) => new Promise<string>((resolve, reject) => {
  let text = '';
  const timer = setTimeout(() => reject(new Error(`the server did not close the connection within 10 s; got ${JSON.stringify(text)}`)), 10_000);
  client.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  client.once('close', () => {
    clearTimeout(timer);
    resolve(text);
  });
});

test('res._header/_headerSent/chunkedEncoding/_last: a head written elsewhere goes out verbatim, pipelined answers stay in order, _last closes', async (t) => {
  const heads = ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Order: first\r\nConnection: keep-alive\r\n\r\n', 'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n'];
  let seen = 0;
  const client = await rawServer(t, (_req, res) => {
    const index = seen++;
    // The first answer comes after the second: Node must still send them in request order.
    setTimeout(() => {
      adoptResponseHead(res, index === 0 ? 200 : 201, heads[index]!, index === 1);
      if (index === 0) {
        res.write(Buffer.from('he'));
        res.end(Buffer.from('llo'));
      } else {
        res.end(Buffer.from('3\r\nabc\r\n0\r\n\r\n'));
      }
    }, index === 0 ? 100 : 0);
  });
  const received = everything(client);
  client.write('GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n');
  t.is(await received, `${heads[0]}hello${heads[1]}3\r\nabc\r\n0\r\n\r\n`,
    'Node internal changed: a ServerResponse no longer sends res._header verbatim (with _headerSent false and chunkedEncoding off) before its body, in pipeline order, or no longer closes after it when _last is set (used by adoptResponseHead)');
});

test('a response with an adopted head has the hidden class of one the app writes, and its reason phrase', async (t) => {
  // Run with V8's natives syntax, to ask V8 itself whether the two responses share a hidden class.
  const internals = pathToFileURL(path.resolve(import.meta.dirname, '../src/shared/node-internals.js')).href;
  const script = `
    import http from 'node:http';
    const { adoptResponseHead } = await import(${JSON.stringify(internals)});
    const responses = [];
    const server = http.createServer((req, res) => {
      responses.push(res);
      if (req.url === '/app') {
        res.setHeader('content-type', 'text/plain');
        res.end('by the app');
      } else {
        adoptResponseHead(res, 404, 'HTTP/1.1 404 Not Here\\r\\ncontent-length: 7\\r\\n\\r\\n', false);
        res.end(Buffer.from('adopted'));
      }
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const agent = new http.Agent({ keepAlive: true });
    for (const url of ['/app', '/adopted']) {
      await new Promise((resolve, reject) => http.get({ port: server.address().port, path: url, agent }, (reply) => reply.resume().on('end', resolve)).on('error', reject));
    }
    agent.destroy();
    server.close();
    console.log(JSON.stringify({ sameHiddenClass: %HaveSameMap(responses[0], responses[1]), statusMessage: responses[1].statusMessage }));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', script], { timeout: 30_000 });
  t.deepEqual(JSON.parse(stdout), { sameHiddenClass: true, statusMessage: 'Not Here' },
    'Node internal changed: writeHead no longer adds statusMessage then statusCode to a response (mirrored by adoptResponseHead)');
});

test('res.shouldKeepAlive and res.maxRequestsOnConnectionReached say whether Node would keep the connection open', async (t) => {
  const answers: boolean[] = [];
  const answer: http.RequestListener = (_req, res) => {
    answers.push(responseMayKeepAlive(res));
    res.end('ok');
  };
  const keepAlive = await rawServer(t, answer);
  const closed = everything(keepAlive);
  keepAlive.write('GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  await closed;
  const limited = await rawServer(t, answer, (server) => (server.maxRequestsPerSocket = 1));
  const limitedAnswered = new Promise((resolve) => limited.once('data', resolve));
  limited.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
  await limitedAnswered;
  t.deepEqual(answers, [true, false, false],
    'Node internal changed: res.shouldKeepAlive (from the request\'s Connection) or res.maxRequestsOnConnectionReached (server.maxRequestsPerSocket) no longer tell whether the connection stays open (used by responseMayKeepAlive)');
});

test("server.maxHeaderSize, read as a 'connection' sets its parser up, gives one connection room for a longer head", async (t) => {
  const server = http.createServer((_req, res) => res.end('ok'));
  t.teardown(() => server.close());
  const statusOf = async (room: number | undefined) => {
    const { accepted, client } = await socketPair(t);
    if (room === undefined) server.emit('connection', accepted);
    else emitConnectionWithHeaderRoom(server, accepted, room);
    client.end(`GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(http.maxHeaderSize + 20)}\r\n\r\n`);
    const answer: Buffer[] = [];
    for await (const chunk of client) answer.push(chunk as Buffer);
    return Buffer.concat(answer).toString('latin1').split(' ')[1];
  };
  t.is(await statusOf(undefined), '431', 'past the limit without room');
  t.is(await statusOf(200), '200', 'within the limit and its room');
  t.is((server as http.Server & { maxHeaderSize?: number }).maxHeaderSize, undefined, 'the server\'s own setting is back');
  t.is(await statusOf(undefined), '431', 'the next connection without room is held to the limit again');
});
