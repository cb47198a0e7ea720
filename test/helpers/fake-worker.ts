import { EventEmitter } from 'node:events';
import net, { type Socket } from 'node:net';
import type { ExecutionContext } from 'ava';
import { messageBytes } from '../../src/ipc/channel.js';
import { HandleWindow } from '../../src/ipc/handle-window.js';
import type { ToWorker } from '../../src/ipc/messages.js';
import { ClientConnection } from '../../src/primary/client-connection.js';
import type { ForkWorker, WorkerProcess, WorkerProcessEvents } from '../../src/primary/worker-process.js';
import { acceptBareHandles, type TcpHandle } from '../../src/shared/node-internals.js';

let nextPid = 100_000;

/**
 * A worker process that does only what the test tells it: become ready, report, acknowledge, crash, exit. Its
 * channel keeps the real window of connections sent and not answered.
 */
export class FakeWorker extends EventEmitter<WorkerProcessEvents> implements WorkerProcess {
  readonly pid = nextPid++;
  connected = true;
  exited = false;
  readonly window = new HandleWindow();
  readonly sent: Array<{ message: ToWorker; handle: TcpHandle | undefined }> = [];
  readonly signals: string[] = [];

  constructor(readonly env: Record<string, string | undefined>) {
    super();
  }

  isConnected(): boolean {
    return this.connected;
  }

  admits(message: ToWorker): boolean {
    return this.window.admits(messageBytes(message, true));
  }

  send(message: ToWorker, handle?: TcpHandle, done?: (error: Error | null) => void): void {
    if (!this.connected) {
      done?.(new Error('worker is disconnected'));
      return;
    }
    this.window.wrote(messageBytes(message, handle !== undefined), handle !== undefined);
    this.sent.push({ message, handle });
    done?.(null);
  }

  /** Handles of the connections it was sent, in order. */
  get connections(): TcpHandle[] {
    return this.sent.filter((entry) => entry.message.kind === 'connection').map((entry) => entry.handle!);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.signals.push(signal);
    if (signal === 'SIGKILL') setImmediate(() => this.exit(null, 'SIGKILL'));
  }

  listening(forwardPath: string): void {
    this.emit('message', { kind: 'listening', forwardPath }, undefined);
  }

  /** Answers the oldest connection not answered yet: it holds it now. */
  acknowledge(): void {
    this.window.answered();
    this.emit('acknowledged');
  }

  /** Answers the oldest connection not answered yet as Node's NODE_HANDLE_NACK does: it came without its socket. */
  notReceived(): void {
    this.window.answered();
    this.emit('not-received');
  }

  /**
   * Exits. Its channel closes with it unless `channelOpen`: then it closes at `closeChannel()`, as a real channel
   * may close after the exit is seen, with answers still to read.
   */
  exit(code: number | null, signal: string | null = null, { channelOpen = false } = {}): void {
    if (this.exited) return;
    this.exited = true;
    if (!channelOpen) this.connected = false;
    this.emit('exit', code, signal);
    if (!channelOpen) this.emit('channel-closed');
  }

  closeChannel(): void {
    if (!this.connected) return;
    this.connected = false;
    this.emit('channel-closed');
  }
}

/** A fork that makes fake workers and remembers them, newest last. */
export function fakeFork(): { fork: ForkWorker; workers: FakeWorker[]; last(): FakeWorker } {
  const workers: FakeWorker[] = [];
  return {
    workers,
    fork: (env) => {
      const worker = new FakeWorker(env);
      workers.push(worker);
      return worker;
    },
    last: () => workers.at(-1)!,
  };
}

/**
 * Real loopback connections, accepted as the router accepts them (bare handles, for the handoff to hold), with
 * each one's handle (`handles[i]`, to compare with what a worker was sent) and client socket; closed at the end.
 */
export async function socketPairs(t: ExecutionContext, count: number): Promise<{ server: ClientConnection[]; handles: TcpHandle[]; client: Socket[] }> {
  const accepted: ClientConnection[] = [];
  const handles: TcpHandle[] = [];
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  acceptBareHandles(server, (handle) => {
    handles.push(handle);
    accepted.push(new ClientConnection(handle));
  });
  const port = (server.address() as net.AddressInfo).port;
  const client = await Promise.all(Array.from({ length: count }, () => new Promise<Socket>((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.on('error', () => {});
  })));
  while (accepted.length < count) await new Promise((resolve) => setImmediate(resolve));
  t.teardown(() => {
    for (const connection of accepted) connection.close();
    for (const socket of client) socket.destroy();
    server.close();
  });
  return { server: accepted, handles, client };
}
