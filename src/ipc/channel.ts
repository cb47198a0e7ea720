import type { Worker } from 'node:cluster';
import { bareHandleToSend, channelBytesQueued, internalCommand, internalMessageEvent, type TcpHandle } from '../shared/node-internals.js';
import type { Envelope, ToPrimary, ToWorker } from './messages.js';

/**
 * The only code that sends or receives graycluster's IPC messages, in either direction. A connection travels as
 * its bare TCP handle (as node:cluster's round-robin sends them): the receiver builds a net.Socket if it needs
 * one, and the sender's copy stays open until the sender closes it.
 */

type Handler<T> = (message: T, handle: TcpHandle | undefined) => void;

/** Whether a message on a channel is graycluster's (and not Node's cluster module's, say). */
export function isOurs(message: unknown): message is Envelope<{ kind: string }> {
  return typeof message === 'object' && message !== null && (message as { cmd?: unknown }).cmd === internalCommand;
}

/** Sends to a worker; `done` hears whether the message (and handle) left this process. */
export function sendToWorker(worker: Worker, message: ToWorker, handle?: TcpHandle, done?: (error: Error | null) => void): void {
  const envelope = { cmd: internalCommand, ...message };
  const callback = (error: Error | null) => done?.(error);
  if (!worker.isConnected()) {
    callback(new Error('worker is disconnected'));
    return;
  }
  worker.send(envelope, handle && bareHandleToSend(handle), undefined, callback);
}

/** What Node wraps a message that carries a handle in (lib/internal/child_process.js), a bare TCP handle's type. */
const handleEnvelope = (msg: object) => ({ cmd: 'NODE_HANDLE', type: 'net.Native', msg });
const connectionOverhead = Buffer.byteLength(JSON.stringify(handleEnvelope({ cmd: internalCommand, kind: 'connection', bytes: '' }))) + 1;
const assignCookieKey = Buffer.byteLength(',"assignCookie":');

/**
 * The bytes a message takes on a worker's channel, as Node writes it (its JSON and a newline), whoever sends it;
 * counted for ipc/handle-window.ts.
 */
export function sentBytes(message: unknown, carriesHandle: boolean): number {
  if (carriesHandle && isOurs(message) && message.kind === 'connection') return connectionBytes(message as unknown as ConnectionMessage);
  return Buffer.byteLength(JSON.stringify(carriesHandle ? handleEnvelope(message as object) : message)) + 1;
}

/** The bytes one of our messages to a worker will take on its channel (see sentBytes). */
export function messageBytes(message: ToWorker, carriesHandle: boolean): number {
  if (carriesHandle && message.kind === 'connection') return connectionBytes(message);
  return sentBytes({ cmd: internalCommand, ...message }, carriesHandle);
}

type ConnectionMessage = Extract<ToWorker, { kind: 'connection' }>;

/** A connection's message with its handle, counted without serializing it (its bytes are base64, so ASCII). */
function connectionBytes({ bytes, assignCookie }: ConnectionMessage): number {
  const cookie = assignCookie === undefined ? 0 : assignCookieKey + Buffer.byteLength(JSON.stringify(assignCookie));
  return connectionOverhead + bytes.length + cookie;
}

/** Listens to one worker's messages to us; the app's own `process.send` messages arrive on 'message' instead. */
export function onWorkerMessage(worker: Worker, handler: Handler<ToPrimary>): void {
  worker.process.on(internalMessageEvent, (message: unknown, handle?: unknown) => {
    if (isOurs(message)) handler(message as unknown as ToPrimary, handle as TcpHandle | undefined);
  });
}

/** Sends from a worker to the primary. Returns false when the channel is gone. */
export function sendToPrimary(message: ToPrimary, handle?: TcpHandle, done: (error: Error | null) => void = () => {}): boolean {
  if (!process.send || !process.connected) return false;
  process.send({ cmd: internalCommand, ...message }, handle && bareHandleToSend(handle), undefined, done);
  return true;
}

/**
 * Listens to the primary's messages in a worker. A message with a handle reaches `handler` only once Node's
 * acknowledgement of it is written to the channel: Node sends that before this message is emitted, but queues it
 * when the channel is backed up. So a worker that dies has never given the app a connection whose acknowledgement
 * the primary lacks, and the primary places those again (primary/handoff.ts).
 */
export function onPrimaryMessage(handler: Handler<ToWorker>): void {
  process.on(internalMessageEvent as 'message', (message: unknown, handle?: unknown) => {
    if (!isOurs(message)) return;
    if (handle === undefined || channelBytesQueued() === 0) handler(message as unknown as ToWorker, handle as TcpHandle | undefined);
    else whenChannelWritten(() => handler(message as unknown as ToWorker, handle as TcpHandle));
  });
}

/** Runs `then` once this process's channel has nothing left to write (checked every millisecond: this is rare). */
function whenChannelWritten(then: () => void): void {
  const check = () => {
    if (channelBytesQueued() === 0 || !process.connected) then();
    else setTimeout(check, 1);
  };
  setTimeout(check, 1);
}
