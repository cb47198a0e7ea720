import type { Socket } from 'node:net';
import {
  bareHandlePeerAddress, closeBareHandle, readBareHandle, socketOverBareHandle, stopReadingBareHandle,
  type TcpHandle,
} from '../shared/node-internals.js';

/**
 * A client connection in the primary, held as its bare TCP handle: the primary reads the head of its first
 * request and passes the handle on, so no net.Socket (nor its stream machinery) is built per connection. One is
 * built only when the primary answers the client itself (`toSocket`).
 */
export class ClientConnection {
  #handle: TcpHandle | undefined;
  #remoteAddress: string | undefined | null = null;

  constructor(handle: TcpHandle) {
    this.#handle = handle;
  }

  /** The client's address as the kernel has it; undefined once the connection is gone. */
  get remoteAddress(): string | undefined {
    if (this.#remoteAddress === null) this.#remoteAddress = this.#handle && bareHandlePeerAddress(this.#handle);
    return this.#remoteAddress;
  }

  /** True while this process holds the connection (it was neither closed nor turned into a socket). */
  get open(): boolean {
    return this.#handle !== undefined;
  }

  /** The handle, to send to a worker; this process keeps its copy open until `close()`. */
  get handle(): TcpHandle | undefined {
    return this.#handle;
  }

  /** Reads until `stopReading()`; at the client's end (or a reset) the connection is closed, then `onClose` runs. */
  read(onData: (chunk: Buffer) => void, onClose: () => void): void {
    const handle = this.#handle;
    const ended = () => {
      this.close();
      onClose();
    };
    if (handle === undefined || !readBareHandle(handle, onData, ended)) ended();
  }

  /** Whatever the client sends next stays in the kernel, for the worker the handle goes to. */
  stopReading(): void {
    if (this.#handle !== undefined) stopReadingBareHandle(this.#handle);
  }

  /** Closes this process's copy of the connection (a worker it was sent to keeps its own). */
  close(): void {
    const handle = this.#handle;
    if (handle === undefined) return;
    this.#handle = undefined;
    stopReadingBareHandle(handle);
    closeBareHandle(handle);
  }

  /** A net.Socket over the connection, to answer the client here; undefined when it is gone. */
  toSocket(): Socket | undefined {
    const handle = this.#handle;
    if (handle === undefined) return undefined;
    this.#handle = undefined;
    stopReadingBareHandle(handle);
    return socketOverBareHandle(handle);
  }
}
