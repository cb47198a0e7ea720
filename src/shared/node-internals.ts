/**
 * Every private Node.js API graycluster relies on, in one place. Each is needed because Node offers no public
 * way to do the same thing; test/node-internals.test.ts checks each one, so a Node upgrade that changes one
 * fails that test by name instead of breaking handoffs in subtle ways.
 */
import type { ChildProcess } from 'node:child_process';
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
