import type { Readable } from 'node:stream';
import type { LogFileConfig, LogsConfig } from '../../config/types.js';
import { formatFileLine, formatWorkerLine } from './format.js';
import { LineSplitter } from './line-splitter.js';
import { RotatingLogFile } from './log-file.js';
import { LogStore } from './store.js';
import type { LogLine, LogStream } from './types.js';

/** A worker process's output pipes (null: not piped, as for a fake in unit tests). */
export interface WorkerOutput {
  readonly stdout?: Readable | null;
  readonly stderr?: Readable | null;
}

/** Where the primary prints: its stdout, whose backlog (`writableLength`) tells how far its reader is behind. */
export type Terminal = Pick<NodeJS.WriteStream, 'write' | 'writableLength'>;

export interface CaptureOptions {
  logs: LogsConfig;
  /** The version's log file as the config says now (null: none); read for every batch of lines. */
  logFileOf: (version: string) => LogFileConfig | null;
  terminal: Terminal;
  /** Prints one of graycluster's own lines (a drop notice). */
  say: (line: string) => void;
}

/** How long `close` waits for the last output of exited workers before it closes the files anyway. */
const closeWaitMs = 2000;

/**
 * Reads every worker's stdout and stderr, always, as fast as they come: a pipe left unread would hold the app
 * back (or fill its own memory) instead of ours. Each line is kept in the store, printed on the primary's stdout
 * and written to its version's log file; a destination that is too far behind (its backlog past the configured
 * cap) misses the line, which is counted as dropped and announced at most once per `dropNoticeIntervalMs`.
 */
export class LogCapture {
  readonly store: LogStore;
  readonly #files = new Map<string, RotatingLogFile>();
  readonly #attachedByVersion = new Map<string, number>();
  readonly #reading = new Set<Promise<void>>();
  /** Per worker: lines dropped since the last notice, and where. */
  readonly #unannounced = new Map<string, { count: number; where: Set<string> }>();
  #noticeTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: CaptureOptions) {
    this.store = new LogStore(options.logs);
  }

  /** Starts reading one process of worker `id`. */
  attach(id: string, version: string, output: WorkerOutput): void {
    const streams = ([['stdout', output.stdout], ['stderr', output.stderr]] as const).filter((entry): entry is [LogStream, Readable] => Boolean(entry[1]));
    if (streams.length === 0) return;
    this.store.attach(id, version);
    this.#attachedByVersion.set(version, (this.#attachedByVersion.get(version) ?? 0) + 1);
    const ended = Promise.all(streams.map(([stream, readable]) => this.#read(id, version, stream, readable))).then(() => this.#detach(id, version));
    this.#reading.add(ended);
    void ended.finally(() => this.#reading.delete(ended));
  }

  /** Waits (briefly) for exited workers' last lines, writes what the log files still hold, and closes them. */
  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(this.#reading), new Promise((resolve) => { timer = setTimeout(resolve, closeWaitMs); })]);
    clearTimeout(timer);
    this.#announce();
    clearTimeout(this.#noticeTimer);
    await Promise.all([...this.#files.values()].map((file) => file.close()));
    this.#files.clear();
  }

  #read(id: string, version: string, stream: LogStream, readable: Readable): Promise<void> {
    const splitter = new LineSplitter(this.options.logs.maxLineBytes);
    const deliver = (messages: string[]) => {
      const time = Date.now();
      this.#deliver(messages.map((message) => ({ time, worker: id, version, stream, message })));
    };
    readable.on('data', (chunk: Buffer) => deliver(splitter.push(chunk).map((line) => line.message)));
    readable.on('error', () => {});  // The worker died mid-write: 'close' follows.
    return new Promise((resolve) => readable.once('close', () => {
      deliver(splitter.end().map((line) => line.message));
      resolve();
    }));
  }

  #deliver(lines: LogLine[]): void {
    if (lines.length === 0) return;
    const { logs, terminal } = this.options;
    for (const line of lines) this.store.add(line);
    const worker = lines[0]!.worker;
    // A line missed by both the terminal and the file is one line dropped, counted once.
    const terminalBehind = terminal.writableLength > logs.maxStdoutBacklogBytes;
    if (!terminalBehind) terminal.write(lines.map((line) => `${formatWorkerLine(line, logs.format)}\n`).join(''));
    const file = this.#fileOf(lines[0]!.version);
    let refusedByFile = 0;
    if (file) for (const line of lines) if (!file.write(`${formatFileLine(line, logs.format)}\n`, worker, terminalBehind)) refusedByFile++;
    const where = [terminalBehind ? 'stdout' : '', refusedByFile > 0 ? file!.config.path : ''].filter(Boolean);
    if (where.length > 0) this.#dropped(worker, terminalBehind ? lines.length : refusedByFile, where);
  }

  /** The version's log file as the config says now: opened on its first line, replaced when its settings change. */
  #fileOf(version: string): RotatingLogFile | undefined {
    const wanted = this.options.logFileOf(version);
    const current = this.#files.get(version);
    if (current && wanted && sameFile(current.config, wanted)) return current;
    if (current) {
      void current.close();
      this.#files.delete(version);
    }
    if (!wanted) return undefined;
    const file = new RotatingLogFile(wanted, this.options.logs.maxFileBacklogBytes, (worker, count, error) => {
      this.#dropped(worker, count, [`${wanted.path} (${error.message})`]);
    });
    this.#files.set(version, file);
    return file;
  }

  #detach(id: string, version: string): void {
    this.store.detach(id);
    const left = (this.#attachedByVersion.get(version) ?? 1) - 1;
    if (left > 0) {
      this.#attachedByVersion.set(version, left);
      return;
    }
    this.#attachedByVersion.delete(version);
    const file = this.#files.get(version);
    this.#files.delete(version);
    void file?.close();  // Opened again if the version gets workers again.
  }

  #dropped(worker: string, count: number, where: string[]): void {
    this.store.countDropped(worker, count);
    const entry = this.#unannounced.get(worker) ?? { count: 0, where: new Set<string>() };
    entry.count += count;
    for (const destination of where) entry.where.add(destination);
    this.#unannounced.set(worker, entry);
    if (this.#noticeTimer === undefined) this.#announce();
  }

  /** Announces the drops since the last notice; if there were any, the next notice waits for the interval. */
  #announce(): void {
    this.#noticeTimer = undefined;
    if (this.#unannounced.size === 0) return;
    for (const [worker, { count, where }] of this.#unannounced) {
      this.options.say(`graycluster: dropped ${count} ${count === 1 ? 'line' : 'lines'} of ${worker}: ${[...where].join(' and ')} could not keep up`);
    }
    this.#unannounced.clear();
    this.#noticeTimer = setTimeout(() => this.#announce(), this.options.logs.dropNoticeIntervalMs);
    this.#noticeTimer.unref();
  }
}

function sameFile(a: LogFileConfig, b: LogFileConfig): boolean {
  return a.path === b.path && a.maxBytes === b.maxBytes && a.keep === b.keep;
}
