import cluster, { type Worker } from 'node:cluster';
import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { isOurs, messageBytes, onWorkerMessage, sendToWorker, sentBytes } from '../ipc/channel.js';
import { HandleWindow } from '../ipc/handle-window.js';
import type { ToPrimary, ToWorker } from '../ipc/messages.js';
import { answerHandlesUngated, onHandleAnswer, releaseHandleGate, watchSends, type TcpHandle } from '../shared/node-internals.js';

/** What a worker process tells the primary. */
export interface WorkerProcessEvents {
  /** One of graycluster's own messages, with the handle it carries (a connection handed back). */
  message: [message: ToPrimary, handle: TcpHandle | undefined];
  /** The app's own `process.send('ready')`, as in the seed's child.js. */
  'app-ready': [];
  /** The process now holds the oldest connection it was sent and had not answered for (answers come in order). */
  acknowledged: [];
  /** The oldest connection it had not answered for reached it without its socket (it has no file descriptor free). */
  'not-received': [];
  exit: [code: number | null, signal: string | null];
  /** Its channel has closed: every message it wrote, every acknowledgement among them, has arrived before this. */
  'channel-closed': [];
}

/**
 * The port the lifecycle and the handoff use to talk to one worker process. The real one wraps a
 * cluster.Worker and the IPC channel; unit tests use a fake.
 */
export interface WorkerProcess extends EventEmitter<WorkerProcessEvents> {
  readonly pid: number | undefined;
  /** The app's output, piped to the primary (primary/logs/capture.ts reads it); absent for a fake. */
  readonly stdout?: Readable | null;
  readonly stderr?: Readable | null;
  /** False once its channel has closed ('channel-closed'). */
  isConnected(): boolean;
  /**
   * Whether a connection may be sent now, beside those it has not answered for yet (ipc/handle-window.ts); when
   * false it waits for an answer. One sent while none is unanswered always may.
   */
  admits(message: ToWorker): boolean;
  /** `done` hears whether the message (and handle) left this process; this process's copy of the handle stays open. */
  send(message: ToWorker, handle?: TcpHandle, done?: (error: Error | null) => void): void;
  kill(signal?: NodeJS.Signals): void;
}

/** How one worker's node process is started, beside its environment (the version's `VersionLaunch`). */
export interface WorkerLaunch {
  /** Node flags, after the supervisor's own (which workers inherit, as under node:cluster). */
  nodeArgs: string[];
  /** The app's arguments. */
  args: string[];
  /** Null: the supervisor's working folder. */
  cwd: string | null;
}

/** Starts one worker process with this environment, node flags, arguments and working folder. */
export type ForkWorker = (env: Record<string, string | undefined>, launch: WorkerLaunch) => WorkerProcess;

const runtimePath = fileURLToPath(new URL('../worker/runtime.js', import.meta.url));

class ClusterWorkerProcess extends EventEmitter<WorkerProcessEvents> implements WorkerProcess {
  readonly #window = new HandleWindow();

  constructor(private readonly worker: Worker) {
    super();
    answerHandlesUngated(worker.process);
    watchSends(worker.process, (message, carriesHandle) => this.#window.wrote(sentBytes(message, carriesHandle), carriesHandle, isOurs(message)));
    worker.on('message', (message: unknown) => {
      if (message === 'ready') this.emit('app-ready');
    });
    worker.on('error', () => {});  // The channel broke; 'exit' follows and says what happened.
    worker.on('exit', (code, signal) => this.emit('exit', code, signal));
    worker.on('disconnect', () => this.emit('channel-closed'));
    onWorkerMessage(worker, (message, handle) => this.emit('message', message, handle));
    onHandleAnswer(worker.process, (received) => {
      if (this.#window.answered()) this.emit(received ? 'acknowledged' : 'not-received');
    });
  }

  get pid(): number | undefined {
    return this.worker.process.pid;
  }

  get stdout(): Readable | null {
    return this.worker.process.stdout;
  }

  get stderr(): Readable | null {
    return this.worker.process.stderr;
  }

  isConnected(): boolean {
    return this.worker.isConnected();
  }

  admits(message: ToWorker): boolean {
    return this.#window.admits(messageBytes(message, true));
  }

  send(message: ToWorker, handle?: TcpHandle, done?: (error: Error | null) => void): void {
    sendToWorker(this.worker, message, handle, done);
    if (handle && this.#window.mayFollow()) releaseHandleGate(this.worker.process);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.worker.process.kill(signal);
  }
}

/** Forks real workers running the graycluster runtime (which loads the version's app). */
export function clusterFork(): ForkWorker {
  // A worker listens through the cluster only on its version's own port (the app's listen is taken over; see
  // worker/intercept.ts), and there its connections must not pass through the primary: with SCHED_NONE the primary
  // binds the port once and every worker listening on it accepts from that one socket itself. Set before the first
  // fork, which fixes it. (A port an app's worker listens on besides $PORT is shared the same way.)
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  return (env, launch) => {
    // cluster.fork takes only an env: it forks with cluster.settings, which setupPrimary sets (synchronously) for
    // this fork. The runtime is the script; `args` follow it, and the runtime puts the entry in its place.
    // stdout and stderr come to the primary through pipes, to be prefixed, kept and rotated (primary/logs/);
    // stdin stays the supervisor's, as before.
    cluster.setupPrimary({
      stdio: ['inherit', 'pipe', 'pipe', 'ipc'],
      exec: runtimePath,
      execArgv: [...process.execArgv, ...launch.nodeArgs],
      args: launch.args,
      cwd: launch.cwd ?? undefined,
    });
    return new ClusterWorkerProcess(cluster.fork(env));
  };
}
