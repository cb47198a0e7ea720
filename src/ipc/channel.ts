import type { Worker } from 'node:cluster';
import { bareHandleToSend, internalCommand, internalMessageEvent, type TcpHandle } from '../shared/node-internals.js';
import type { Envelope, ToPrimary, ToWorker } from './messages.js';

/**
 * The only code that sends or receives graycluster's IPC messages, in either direction. A connection travels as
 * its bare TCP handle (as node:cluster's round-robin sends them): the receiver builds a net.Socket if it needs
 * one, and the sender's copy stays open until the sender closes it.
 */

type Handler<T> = (message: T, handle: TcpHandle | undefined) => void;

function isOurs(message: unknown): message is Envelope<{ kind: string }> {
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

/** Listens to the primary's messages in a worker. */
export function onPrimaryMessage(handler: Handler<ToWorker>): void {
  process.on(internalMessageEvent as 'message', (message: unknown, handle?: unknown) => {
    if (isOurs(message)) handler(message as unknown as ToWorker, handle as TcpHandle | undefined);
  });
}
