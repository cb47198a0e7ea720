/**
 * Every private Node.js API graycluster relies on, in one place. Each is needed because Node offers no public
 * way to do the same thing; test/node-internals.test.ts checks each one, so a Node upgrade that changes one
 * fails that test by name instead of breaking handoffs in subtle ways.
 */
import type { ChildProcess } from 'node:child_process';
import http, { type ServerResponse } from 'node:http';
import net, { type Server, type Socket } from 'node:net';

/**
 * Messages whose `cmd` starts with "NODE_" are delivered as 'internalMessage' instead of 'message'
 * (lib/internal/child_process.js), so an app's own `process.on('message')` never sees ours.
 */
export const internalMessageEvent = 'internalMessage';
export const internalCommand = 'NODE_GRAYCLUSTER';

/**
 * A connected TCP socket's handle (Node's tcp_wrap `TCP`) with no net.Socket around it, as node:cluster's
 * round-robin primary holds and passes connections. Opaque outside this module.
 */
export type TcpHandle = { readonly tcpHandleBrand: never };

interface TcpHandleInternals {
  onread: (arrayBuffer: ArrayBuffer) => void;
  readStart(): number;
  readStop(): number;
  getpeername(out: { address?: string }): number;
  close(callback?: () => void): void;
}

interface StreamWrapBinding {
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
}

let streamWrap: StreamWrapBinding | undefined;
const ignoreRead = () => {};

/**
 * Replaces a listening server's accept callback (`server._handle.onconnection`, which net.Server sets to build a
 * net.Socket): `accept` gets each new connection's bare handle instead, and net.Server keeps no count of it.
 * Accept errors (EMFILE, say) are dropped, as the kernel keeps the connection queued for the next try.
 */
export function acceptBareHandles(server: Server, accept: (handle: TcpHandle) => void): void {
  const listening = (server as unknown as { _handle?: { onconnection?: unknown } | null })._handle;
  if (typeof listening?.onconnection !== 'function') throw new Error('Node internal changed: a listening net.Server has no _handle.onconnection');
  listening.onconnection = (status: number, handle: TcpHandle | undefined) => {
    if (status === 0 && handle !== undefined) accept(handle);
  };
}

/**
 * Starts a bare handle reading: `onData` gets each chunk, `onEnd` the end of the stream (EOF or an error), as
 * lib/net.js's onStreamRead reads them (the byte count and offset come in the `streamBaseState` array of the
 * stream_wrap binding, reached through `process.binding`, which Node still allows for it). Returns false when
 * reading could not start (the connection is already gone).
 */
export function readBareHandle(handle: TcpHandle, onData: (chunk: Buffer) => void, onEnd: () => void): boolean {
  const internals = handle as unknown as TcpHandleInternals;
  const { streamBaseState, kReadBytesOrError, kArrayBufferOffset } = streamWrap ??= (process as unknown as { binding(name: string): StreamWrapBinding }).binding('stream_wrap');
  internals.onread = (arrayBuffer) => {
    const read = streamBaseState[kReadBytesOrError]!;
    if (read > 0) onData(Buffer.from(arrayBuffer, streamBaseState[kArrayBufferOffset], read));
    else if (read < 0) onEnd();
  };
  return internals.readStart() === 0;
}

/**
 * Stops a bare handle reading: whatever the client sends next stays in the kernel for the process the handle
 * goes to.
 */
export function stopReadingBareHandle(handle: TcpHandle): void {
  const internals = handle as unknown as TcpHandleInternals;
  internals.readStop();
  internals.onread = ignoreRead;  // Node asserts a function (child_process sets a no-op too).
}

/** The peer's address of a bare handle (getpeername), undefined when it is gone. */
export function bareHandlePeerAddress(handle: TcpHandle): string | undefined {
  const out: { address?: string } = {};
  return (handle as unknown as TcpHandleInternals).getpeername(out) === 0 ? out.address : undefined;
}

/** Closes this process's copy of a bare handle (a process it was sent to keeps its own). */
export function closeBareHandle(handle: TcpHandle): void {
  (handle as unknown as TcpHandleInternals).close();
}

/** What net.Server keeps of the options it was created with (lib/net.js), which its onconnection applies. */
interface ServerSocketOptions {
  allowHalfOpen: boolean;
  pauseOnConnect: boolean;
  highWaterMark: number;
  noDelay: boolean;
  keepAlive: boolean;
  keepAliveInitialDelay: number;
}

/**
 * A net.Socket around a bare handle (the undocumented `handle` option), reading; the socket owns the handle from
 * then on. With `server`, built as that server's own `onconnection` (lib/net.js) would build it for a connection
 * it accepted: the same options (an http.Server asks for `allowHalfOpen`, and may set `highWaterMark`), Nagle off
 * (an http.Server's default `noDelay`) and TCP keep-alive as the server asks. Without, as child_process builds one
 * for a received socket (the primary's own answers: one write, then the end, so Nagle never holds one back).
 */
export function socketOverBareHandle(handle: TcpHandle, server?: Server): Socket {
  if (server === undefined) return new net.Socket({ handle, readable: true, writable: true } as net.SocketConstructorOpts);
  const asked = server as unknown as ServerSocketOptions;
  const socket = new net.Socket({
    handle,
    allowHalfOpen: asked.allowHalfOpen,
    pauseOnCreate: asked.pauseOnConnect,
    readable: true,
    writable: true,
    readableHighWaterMark: asked.highWaterMark,
    writableHighWaterMark: asked.highWaterMark,
  } as net.SocketConstructorOpts);
  if (asked.noDelay) socket.setNoDelay(true);
  // The server keeps the delay in seconds, as the handle takes it; setKeepAlive takes milliseconds.
  if (asked.keepAlive) socket.setKeepAlive(true, asked.keepAliveInitialDelay * 1000);
  return socket;
}

/**
 * A bare handle as `send` accepts it: child_process passes a `TCP` handle as "net.Native" (as node:cluster's
 * round-robin sends connections), and the receiver's 'internalMessage' listener gets the bare handle. Unlike a
 * net.Socket, the sender's copy stays open (it is not kept in `_pendingMessage`): the sender closes it.
 */
export function bareHandleToSend(handle: TcpHandle): Socket {
  return handle as unknown as Socket;
}

/**
 * Calls `listener` each time a child process answers a handle it was sent: true when it holds the socket (Node's
 * NODE_HANDLE_ACK), false when the message came without its handle (NODE_HANDLE_NACK: the child could not receive
 * the descriptor, typically because it has used up its own). Both arrive as an 'internalMessage' after Node's own
 * listener has acted on them; for a bare handle Node neither resends after a NACK nor closes our copy. A send's
 * callback only says the message was written; this says whether the child got the socket.
 */
export function onHandleAnswer(child: ChildProcess, listener: (received: boolean) => void): void {
  child.on(internalMessageEvent as 'message', (message: unknown) => {
    const command = (message as { cmd?: unknown } | null)?.cmd;
    if (command === 'NODE_HANDLE_ACK') listener(true);
    else if (command === 'NODE_HANDLE_NACK') listener(false);
  });
}

interface HandleGate {
  /** Node's gate (lib/internal/child_process.js): null when a handle may be sent; else messages wait here for the ACK. */
  _handleQueue: unknown[] | null;
}

/**
 * Lets more than one handle be on its way to `child` at once (see ipc/handle-window.ts for when that is safe). Node
 * queues every message sent after a handle until the child's NODE_HANDLE_ACK (`_handleQueue`), and on each ACK or
 * NACK asserts that queue exists before flushing it. This listener, put before Node's own, gives Node an empty
 * queue to flush when an answer comes for a handle whose gate `releaseHandleGate` lifted.
 */
export function answerHandlesUngated(child: ChildProcess): void {
  const gate = child as unknown as HandleGate;
  if (!('_handleQueue' in gate)) throw new Error('Node internal changed: a child process with a channel has no _handleQueue');
  child.prependListener(internalMessageEvent as 'message', (message: unknown) => {
    const command = (message as { cmd?: unknown } | null)?.cmd;
    if ((command === 'NODE_HANDLE_ACK' || command === 'NODE_HANDLE_NACK') && gate._handleQueue === null) gate._handleQueue = [];
  });
}

/**
 * Calls `onSend` for each message sent to `child`, before Node writes it: graycluster's and those of Node's cluster
 * module, which sends through the same `send` (it hands a worker the shared socket of each port the worker listens on
 * through the cluster that way). Node writes messages with handles in the order `send` is called, and the child answers
 * them in that order, so a listener can tell whose each answer is.
 */
export function watchSends(child: ChildProcess, onSend: (message: unknown, carriesHandle: boolean) => void): void {
  const send = child.send as (...args: unknown[]) => boolean;
  if (typeof send !== 'function') throw new Error('Node internal changed: a child process with a channel has no send');
  child.send = function (this: ChildProcess, ...args: unknown[]): boolean {
    const [message, handle] = args;
    onSend(message, handle !== undefined && handle !== null && typeof handle === 'object');
    return Reflect.apply(send, this, args);
  } as ChildProcess['send'];
}

/**
 * Lifts the gate Node closed when it wrote a handle to `child`, so the next message (handle or not) is written at
 * once instead of after the ACK. Call right after each send with a handle, on a child set up with
 * `answerHandlesUngated`. A gate with messages already waiting behind it stays closed: Node sends those in order.
 */
export function releaseHandleGate(child: ChildProcess): void {
  const gate = child as unknown as HandleGate;
  if (gate._handleQueue?.length === 0) gate._handleQueue = null;
}

let channelHandle: { writeQueueSize: number } | undefined;

/**
 * Bytes this process has queued on its channel to the parent and not yet handed to the kernel (0: everything it
 * sent, Node's own NODE_HANDLE_ACKs included, is written). It is the raw channel's `writeQueueSize`, which
 * child_process keeps under its `kChannelHandle` symbol (`process.channel` is only a wrapper without it). 0 in a
 * process without a channel.
 */
export function channelBytesQueued(): number {
  if (channelHandle === undefined) {
    if (!process.channel) return 0;
    const symbol = Object.getOwnPropertySymbols(process).find((candidate) => candidate.description === 'kChannelHandle');
    const handle = symbol && (process as unknown as Record<symbol, unknown>)[symbol];
    if (typeof (handle as { writeQueueSize?: unknown } | undefined)?.writeQueueSize !== 'number') {
      throw new Error('Node internal changed: the process has a channel but no kChannelHandle with a writeQueueSize');
    }
    channelHandle = handle as { writeQueueSize: number };
  }
  return channelHandle.writeQueueSize;
}

/**
 * Gives a server a connection it did not accept itself, with net's own bookkeeping (`_connections`, and the
 * socket's `server`/`_server`), as net.Server's onconnection does, so the app's `server.close()` and
 * `getConnections()` behave.
 */
export function adoptConnection(server: Server, socket: Socket): void {
  Object.assign(socket, { server, _server: server });
  (server as unknown as { _connections: number })._connections++;
}

/** Where net.Socket keeps its peer's address once asked (lib/net.js `_getpeername`). */
export interface PeerName {
  address: string | undefined;
  family: string | undefined;
  port: number | undefined;
}

interface PeerSlot {
  _peername?: PeerName | undefined;
}

/**
 * Gives a socket, empty, the slot where net.Socket keeps its peer's address: `_getpeername` asks the kernel on
 * the first read of `remoteAddress`, `remotePort` or `remoteFamily` and keeps the answer in `_peername`, a
 * property the socket did not have before. Made at once for every connection the app gets, it is there whether
 * or not anyone asks, and whether the kernel answers or reportPeer sets it: the sockets keep one hidden class
 * (one more per way of getting there would make Node's net and HTTP code generic for all of them).
 */
export function reservePeerSlot(socket: Socket): void {
  const slot = socket as unknown as PeerSlot;
  if (!('_peername' in slot)) slot._peername = undefined;
}

/** Makes a socket report `peer` as its `remoteAddress`, `remotePort` and `remoteFamily`, which read `_peername`. */
export function reportPeer(socket: Socket, peer: PeerName): void {
  (socket as unknown as PeerSlot)._peername = peer;
}

interface ResponseInternals {
  _header: string | null;
  _headerSent: boolean;
  chunkedEncoding: boolean;
  _last: boolean;
  shouldKeepAlive: boolean;
  maxRequestsOnConnectionReached?: boolean;
}

/**
 * True when Node would keep the client's connection open after this response, as `_storeHeader` decides
 * (lib/_http_outgoing.js): the request allowed it (`shouldKeepAlive`, set from the request by lib/_http_server.js)
 * and the server's `maxRequestsPerSocket` is not reached. Read by the relay, which writes the head itself.
 */
export function responseMayKeepAlive(res: ServerResponse): boolean {
  const internals = res as unknown as ResponseInternals;
  return internals.shouldKeepAlive && internals.maxRequestsOnConnectionReached !== true;
}

/**
 * Makes `head` (a complete response head, status line to blank line, latin1) the response's head, as if
 * `writeHead` had stored it: Node sends `_header` before the first body bytes once the response's turn on the
 * connection comes, so pipelined responses stay in order. `chunkedEncoding` off: body bytes written next are sent
 * as they are (a chunked body's framing is already in them). `_last` makes the server close the connection after
 * this response, as `_storeHeader` does for `Connection: close` (lib/_http_server.js resOnFinish). There is no
 * public way to send a head written elsewhere byte for byte; the relay needs one to pass a response on without
 * parsing it.
 */
export function adoptResponseHead(res: ServerResponse, status: number, head: string, closeAfter: boolean): void {
  const internals = res as unknown as ResponseInternals;
  // As writeHead sets them, and in its order (the reason phrase first): a response of another shape would make
  // every function that handles responses see two, and slow the answers the app writes too.
  const lineEnd = head.indexOf('\r\n');
  res.statusMessage = lineEnd > 13 ? head.slice(13, lineEnd) : '';
  res.statusCode = status;
  internals._header = head;
  internals._headerSent = false;
  internals.chunkedEncoding = false;
  if (closeAfter) internals._last = true;
}

/**
 * Gives an HTTP server a connection whose request heads may be up to `extra` bytes longer than the server allows
 * its own clients. Node's HTTP server reads `server.maxHeaderSize` (the `maxHeaderSize` option it was created with;
 * unset: the process's limit, `http.maxHeaderSize`) once, when its 'connection' listener sets the connection's
 * parser up (lib/_http_server.js connectionListenerInternal), so the limit is raised around that call only.
 */
export function emitConnectionWithHeaderRoom(server: http.Server, socket: Socket, extra: number): void {
  const limited = server as http.Server & { maxHeaderSize?: number };
  const own = limited.maxHeaderSize;
  limited.maxHeaderSize = (own || http.maxHeaderSize) + extra;
  try {
    server.emit('connection', socket);
  } finally {
    limited.maxHeaderSize = own;
  }
}
