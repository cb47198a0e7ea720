import type { ServerResponse } from 'node:http';
import type { LogLine, WorkerLogs } from '../primary/logs/types.js';
import type { LogStreamItem } from './messages.js';

/** Lines given when `lines=` is left out. */
export const defaultLogLines = 100;
/** Most lines one request may ask for (`lines=`). */
export const maxLogLines = 10_000;
/** What a count of lines must be, as error messages say it. */
export const logLinesRule = `a whole number from 0 to ${maxLogLines}`;

/** Whether `lines` is a count of lines one may ask for (`logLinesRule`). */
export function isLogLineCount(lines: number): boolean {
  return Number.isInteger(lines) && lines >= 0 && lines <= maxLogLines;
}

/** A count of lines written as text (`lines=`, `--lines`), or undefined when it is not one (`logLinesRule`). */
export function parseLogLines(text: string): number | undefined {
  return /^\d+$/.test(text) && isLogLineCount(Number(text)) ? Number(text) : undefined;
}
/** How long a stop waits for each follower's last bytes to leave before its connection is cut. */
const endGraceMs = 1000;

/** What `GET /api/logs?target=…&lines=…&follow=…` asks for, checked. */
export interface LogQuery {
  /** A version name or a worker id; undefined: every worker. */
  target: string | undefined;
  lines: number;
  follow: boolean;
}

/** Why a query cannot be answered: 400 names the bad parameter, 404 an unknown target. */
export interface LogRejection {
  status: 400 | 404;
  error: string;
}

const parameters = ['target', 'lines', 'follow'];

/** Checks the query of `GET /api/logs`; `knows` says whether a target is a version or worker with lines kept. */
export function parseLogQuery(query: URLSearchParams, knows: (target: string) => boolean): LogQuery | LogRejection {
  for (const name of new Set(query.keys())) {
    if (!parameters.includes(name)) return { status: 400, error: `unknown parameter "${name}": GET /api/logs takes ${parameters.join(', ')}` };
    if (query.getAll(name).length > 1) return { status: 400, error: `${name} is given more than once` };
  }
  const target = query.get('target') ?? undefined;
  if (target === '') return { status: 400, error: 'target must be a version name or a worker id (such as v2 or v2.1), or left out for every worker' };
  const linesText = query.get('lines') ?? String(defaultLogLines);
  const lines = parseLogLines(linesText);
  if (lines === undefined) return { status: 400, error: `lines must be ${logLinesRule}, not "${linesText}"` };
  const follow = query.get('follow') ?? '0';
  if (!['0', '1', 'true', 'false'].includes(follow)) return { status: 400, error: `follow must be 1 or 0 (or true or false), not "${follow}"` };
  if (target !== undefined && !knows(target)) return { status: 404, error: `no version or worker "${target}" (ids as graycluster status shows them, e.g. v2 or v2.1)` };
  return { target, lines, follow: follow === '1' || follow === 'true' };
}

export interface LogFollowLimits {
  maxLogFollowers: number;
  maxLogBufferedBytes: number;
}

export interface LogFollowCounters {
  /** Follow requests answered 503 because maxLogFollowers were following. */
  followersRefused: number;
  /** Lines not sent to a follower that had more than maxLogBufferedBytes unsent. */
  linesMissed: number;
}

const ndjson = (item: LogStreamItem) => `${JSON.stringify(item)}\n`;

/**
 * The readers following workers' output. Whatever a reader does, the primary holds at most about
 * maxLogBufferedBytes (plus the recent lines it asked for) for it: a reader that does not keep up misses lines,
 * and is told how many once it has caught up.
 */
export class LogFollowers {
  readonly counters: LogFollowCounters = { followersRefused: 0, linesMissed: 0 };
  /** Each follower's response, with what stops following for it. */
  readonly #followers = new Map<ServerResponse, () => void>();
  #closing: string | undefined;

  constructor(private readonly logs: WorkerLogs, private readonly limits: LogFollowLimits) {}

  get size(): number {
    return this.#followers.size;
  }

  get full(): boolean {
    return this.#followers.size >= this.limits.maxLogFollowers;
  }

  /** Answers `res` with the recent lines of `query`, then each new one, until the client goes away or `close`. */
  follow(res: ServerResponse, query: LogQuery, headers: Record<string, string>): void {
    res.writeHead(200, { ...headers, 'content-type': 'application/x-ndjson; charset=utf-8', 'x-accel-buffering': 'no' });
    if (this.#closing !== undefined) {
      res.end(ndjson({ time: Date.now(), end: this.#closing }));
      return;
    }
    res.flushHeaders();  // The client learns it is following before any line comes.
    // recent() and follow() in one tick: no line is both, and none falls between them.
    const recent = this.logs.recent(query.target, query.lines);
    if (recent.length > 0) res.write(recent.map(ndjson).join(''));
    let missed = 0;
    const sendMissed = () => {
      if (missed === 0) return;
      res.write(ndjson({ time: Date.now(), missed }));
      missed = 0;
    };
    const unfollow = this.logs.follow(query.target, (line: LogLine) => {
      if (res.writableLength >= this.limits.maxLogBufferedBytes) {
        missed++;
        this.counters.linesMissed++;
        return;
      }
      sendMissed();
      res.write(ndjson(line));
    });
    // Past the limit (at least 64 KiB, above the socket's 16 KiB high-water mark) the last write returned false,
    // so 'drain' comes once the reader has caught up.
    res.on('drain', sendMissed);
    const stop = () => {
      unfollow();
      res.off('drain', sendMissed);
      this.#followers.delete(res);
    };
    res.once('close', stop);
    this.#followers.set(res, stop);
  }

  /** Counts a follow request refused for want of room (the caller answers it). */
  refused(): void {
    this.counters.followersRefused++;
  }

  /** Ends every follower with an `end` item; resolves once their last bytes left, or after a short grace. */
  async close(reason = 'graycluster is stopping'): Promise<void> {
    this.#closing = reason;
    const ended = [...this.#followers].map(([res, stop]) => {
      stop();
      const closed = new Promise<void>((resolve) => {
        if (res.writableFinished || res.destroyed) return resolve();
        res.once('finish', resolve).once('close', resolve);
      });
      res.end(ndjson({ time: Date.now(), end: reason }));
      return closed;
    });
    if (ended.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(ended), new Promise((resolve) => { timer = setTimeout(resolve, endGraceMs); })]);
    clearTimeout(timer);
  }
}
