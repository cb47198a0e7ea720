import { EventEmitter } from 'node:events';
import net, { type Socket } from 'node:net';
import type { ExecutionContext } from 'ava';
import type { ToWorker } from '../../src/ipc/messages.js';
import type { ForkWorker, WorkerProcess, WorkerProcessEvents } from '../../src/primary/worker-process.js';

let nextPid = 100_000;

/** A worker process that does only what the test tells it: become ready, report, acknowledge, crash, exit. */
export class FakeWorker extends EventEmitter<WorkerProcessEvents> implements WorkerProcess {
  readonly pid = nextPid++;
  connected = true;
  readonly sent: Array<{ message: ToWorker; socket: Socket | undefined }> = [];
  readonly signals: string[] = [];
  closedUnacknowledged = 0;

  constructor(readonly env: Record<string, string | undefined>) {
    super();
  }

  isConnected(): boolean {
    return this.connected;
  }

  send(message: ToWorker, socket?: Socket, done?: (error: Error | null) => void): void {
    if (!this.connected) {
      done?.(new Error('worker is disconnected'));
      return;
    }
    this.sent.push({ message, socket });
    done?.(null);
  }

  /** Connections it was sent, in order. */
  get connections(): Socket[] {
    return this.sent.filter((entry) => entry.message.kind === 'connection').map((entry) => entry.socket!);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.signals.push(signal);
    if (signal === 'SIGKILL') setImmediate(() => this.exit(null, 'SIGKILL'));
  }

  closeUnacknowledged(): void {
    this.closedUnacknowledged++;
  }

  listening(forwardPath: string): void {
    this.emit('message', { kind: 'listening', forwardPath }, undefined);
  }

  acknowledge(): void {
    this.emit('acknowledged');
  }

  exit(code: number | null, signal: string | null = null): void {
    if (!this.connected) return;
    this.connected = false;
    this.emit('exit', code, signal);
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

/** Real loopback sockets (the server side of each), for the handoff to hold; closed at the end of the test. */
export async function socketPairs(t: ExecutionContext, count: number): Promise<{ server: Socket[]; client: Socket[] }> {
  const accepted: Socket[] = [];
  const server = net.createServer((socket) => accepted.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const client = await Promise.all(Array.from({ length: count }, () => new Promise<Socket>((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.on('error', () => {});
  })));
  while (accepted.length < count) await new Promise((resolve) => setImmediate(resolve));
  t.teardown(() => {
    for (const socket of [...accepted, ...client]) socket.destroy();
    server.close();
  });
  return { server: accepted, client };
}
