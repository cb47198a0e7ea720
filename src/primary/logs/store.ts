import type { LogsConfig } from '../../config/types.js';
import { Ring, type Sequenced } from './ring.js';
import type { LogLine, WorkerLogs } from './types.js';

interface WorkerRecord {
  version: string;
  ring: Ring<LogLine>;
  /** Lines that missed a destination (stdout, log file) because it could not keep up. */
  dropped: number;
  /** Processes of this worker id whose output is still being read (a restart attaches the next one). */
  attached: number;
}

interface Follower {
  selector: string | undefined;
  listener: (line: LogLine) => void;
}

/**
 * The recent lines of every worker (one bounded ring each), its dropped-line count, and the live followers: the
 * `WorkerLogs` that the API, `graycluster logs` and the dashboard read. A worker's record outlives its process:
 * a restarted worker keeps its id and its lines; one whose output has ended for good stays readable until
 * `keepExitedWorkers` others have ended after it.
 */
export class LogStore implements WorkerLogs {
  readonly #workers = new Map<string, WorkerRecord>();
  /** Ids of workers with no process attached, the longest gone first. */
  readonly #exited = new Set<string>();
  readonly #followers = new Set<Follower>();
  #sequence = 0;

  constructor(private readonly limits: Pick<LogsConfig, 'ringLines' | 'ringBytes' | 'keepExitedWorkers'>) {}

  /** A process of worker `id` starts writing. */
  attach(id: string, version: string): void {
    const record = this.#workers.get(id) ?? { version, ring: new Ring<LogLine>(this.limits.ringLines, this.limits.ringBytes), dropped: 0, attached: 0 };
    record.attached++;
    this.#workers.set(id, record);
    this.#exited.delete(id);
  }

  /** A process of worker `id` wrote its last line; past `keepExitedWorkers`, the longest-gone worker is forgotten. */
  detach(id: string): void {
    const record = this.#workers.get(id);
    if (!record || --record.attached > 0) return;
    this.#exited.add(id);
    for (const gone of this.#exited) {
      if (this.#exited.size <= this.limits.keepExitedWorkers) break;
      this.#exited.delete(gone);
      this.#workers.delete(gone);
    }
  }

  /** Keeps `line` in its worker's ring and hands it to the followers that selected it. */
  add(line: LogLine): void {
    const record = this.#workers.get(line.worker);
    if (!record) return;
    record.ring.push({ sequence: this.#sequence++, bytes: Buffer.byteLength(line.message), item: line });
    for (const follower of this.#followers) {
      if (!selects(follower.selector, line.worker, line.version)) continue;
      try {
        follower.listener(line);
      } catch {}  // A follower's failure is its own: the capture and the other followers go on.
    }
  }

  /** `count` more lines of worker `id` missed a destination. */
  countDropped(id: string, count = 1): void {
    const record = this.#workers.get(id);
    if (record) record.dropped += count;
  }

  knows(selector: string): boolean {
    for (const [id, record] of this.#workers) if (selects(selector, id, record.version)) return true;
    return false;
  }

  recent(selector: string | undefined, lines: number): LogLine[] {
    if (lines <= 0) return [];
    const selected: Array<Sequenced<LogLine>> = [];
    for (const [id, record] of this.#workers) if (selects(selector, id, record.version)) selected.push(...record.ring.last(lines));
    return selected.sort((a, b) => a.sequence - b.sequence).slice(-lines).map((entry) => entry.item);
  }

  follow(selector: string | undefined, listener: (line: LogLine) => void): () => void {
    const follower = { selector, listener };
    this.#followers.add(follower);
    return () => this.#followers.delete(follower);
  }

  dropped(): Record<string, number> {
    return Object.fromEntries([...this.#workers].map(([id, record]) => [id, record.dropped]));
  }
}

function selects(selector: string | undefined, worker: string, version: string): boolean {
  return selector === undefined || selector === worker || selector === version;
}
