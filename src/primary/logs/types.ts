/** Which of a worker's output streams a line came from. */
export type LogStream = 'stdout' | 'stderr';

/** One line a worker wrote, as the primary keeps it and as `GET /api/logs` and `graycluster logs` give it. */
export interface LogLine {
  /** When the primary read it, in ms since the epoch. */
  time: number;
  /** The worker's id, e.g. `v2.1`. */
  worker: string;
  version: string;
  stream: LogStream;
  /** The line without its newline, as valid UTF-8 text (see the capture for partial, long and binary output). */
  message: string;
}

/**
 * The primary's memory of its workers' output: a bounded ring of recent lines per worker (kept for a while after
 * the worker exits, so a crash's last words can still be read), and live lines for followers.
 *
 * A selector is a version name (`v2`: all its workers), a worker id (`v2.1`), or undefined (every worker).
 */
export interface WorkerLogs {
  /** Whether the selector names a version or a worker the primary knows (or still keeps lines of). */
  knows(selector: string): boolean;
  /** The last `lines` lines of the selected workers, oldest first, merged by time. */
  recent(selector: string | undefined, lines: number): LogLine[];
  /**
   * Calls `listener` with every new line of the selected workers, synchronously as the primary reads it, until
   * the returned function is called. A listener must not block: a slow consumer buffers (boundedly) on its side.
   */
  follow(selector: string | undefined, listener: (line: LogLine) => void): () => void;
  /** Per worker id: lines written but not delivered somewhere (terminal, log file) because it could not keep up. */
  dropped(): Record<string, number>;
}
