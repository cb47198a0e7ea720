import type { Worker } from 'node:cluster';
import type { Socket } from 'node:net';
import { internalCommand, internalMessageEvent, stopReading } from '../shared/node-internals.js';
import type { Envelope, ToPrimary, ToWorker } from './messages.js';

/** The only code that sends or receives graycluster's IPC messages, in either direction. */

type Handler<T> = (message: T, socket: Socket | undefined) => void;

function isOurs(message: unknown): message is Envelope<{ kind: string }> {
  return typeof message === 'object' && message !== null && (message as { cmd?: unknown }).cmd === internalCommand;
}

/** Sends to a worker; `done` hears whether the message (and socket) left this process. */
export function sendToWorker(worker: Worker, message: ToWorker, socket?: Socket, done?: (error: Error | null) => void): void {
  const envelope = { cmd: internalCommand, ...message };
  const callback = (error: Error | null) => done?.(error);
  if (!worker.isConnected()) {
    callback(new Error('worker is disconnected'));
    return;
  }
  if (socket) {
    stopReading(socket);
    worker.send(envelope, socket, { keepOpen: false }, callback);
  }
  else worker.send(envelope, undefined, undefined, callback);
}

/** Listens to one worker's messages to us; the app's own `process.send` messages arrive on 'message' instead. */
export function onWorkerMessage(worker: Worker, handler: Handler<ToPrimary>): void {
  worker.process.on(internalMessageEvent, (message: unknown, socket?: Socket) => {
    if (socket) stopReading(socket);  // A socket handed back: it is only passed on, never read here.
    if (isOurs(message)) handler(message as unknown as ToPrimary, socket);
  });
}

/** Sends from a worker to the primary. Returns false when the channel is gone. */
export function sendToPrimary(message: ToPrimary, socket?: Socket, done: (error: Error | null) => void = () => {}): boolean {
  if (!process.send || !process.connected) return false;
  const envelope = { cmd: internalCommand, ...message };
  if (socket) {
    stopReading(socket);
    process.send(envelope, socket, { keepOpen: false }, done);
  }
  else process.send(envelope, undefined, undefined, done);
  return true;
}

/** Listens to the primary's messages in a worker. */
export function onPrimaryMessage(handler: Handler<ToWorker>): void {
  process.on(internalMessageEvent as 'message', (message: unknown, socket?: unknown) => {
    if (isOurs(message)) handler(message as unknown as ToWorker, socket as Socket | undefined);
  });
}
