/**
 * Every private Node.js API graycluster relies on, in one place. Each is needed because Node offers no public
 * way to do the same thing; test/node-internals.test.ts checks each one, so a Node upgrade that changes one
 * fails that test by name instead of breaking handoffs in subtle ways.
 */
import type { ChildProcess } from 'node:child_process';
import type { ServerResponse } from 'node:http';
import type { Server, Socket } from 'node:net';

/**
 * Messages whose `cmd` starts with "NODE_" are delivered as 'internalMessage' instead of 'message'
 * (lib/internal/child_process.js), so an app's own `process.on('message')` never sees ours.
 */
export const internalMessageEvent = 'internalMessage';
export const internalCommand = 'NODE_GRAYCLUSTER';

interface HandleOwner {
  _handle?: { readStop?: () => void } | null;
}

/**
 * Stops a socket's handle reading, not just the stream: once a socket is sent to another process, whatever
 * its handle still reads here is dropped, and those bytes belong to the receiver. `pause()` alone leaves the
 * handle reading into the stream's buffer.
 */
export function stopReading(socket: Socket): void {
  socket.pause();
  (socket as unknown as HandleOwner)._handle?.readStop?.();
}

/** True while the socket still holds its handle here (it was neither sent away nor closed). */
export function ownsHandle(socket: Socket): boolean {
  return Boolean((socket as unknown as HandleOwner)._handle);
}

/**
 * Closes the handle a child process has not yet acknowledged. Node sends one handle at a time and keeps the
 * one in flight in `_pendingMessage` until the child's ack; when the child dies first, nothing closes it and
 * its client hangs (lib/internal/child_process.js).
 */
export function closeUnacknowledgedHandle(child: ChildProcess): void {
  (child as unknown as { _pendingMessage?: { handle?: { close?: () => void } } | null })._pendingMessage?.handle?.close?.();
}

/**
 * Calls `listener` each time a child process acknowledges a handle it was sent (Node's NODE_HANDLE_ACK, which
 * arrives as an 'internalMessage' after Node's own listener has closed our copy of the handle). A send's callback
 * only says the message was written; this says the child holds the socket.
 */
export function onHandleAcknowledged(child: ChildProcess, listener: () => void): void {
  child.on(internalMessageEvent as 'message', (message: unknown) => {
    if ((message as { cmd?: unknown } | null)?.cmd === 'NODE_HANDLE_ACK') listener();
  });
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
  res.statusCode = status;
  internals._header = head;
  internals._headerSent = false;
  internals.chunkedEncoding = false;
  if (closeAfter) internals._last = true;
}
