import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { LogFileConfig } from '../../config/types.js';
import { makeFolder } from '../../shared/make-folder.js';

interface Pending {
  bytes: Buffer;
  worker: string;
  /** Already counted as dropped (it missed another destination): a failed write does not count it again. */
  counted: boolean;
}

/** Bytes written with one write call at most. */
const maxBatchBytes = 256 * 1024;

/**
 * One version's log file, written in the background and rotated by size: `app.log`, `app.log.1` (the newest
 * rotated) … `app.log.<keep>`. No file grows past `maxBytes`: a line that would take it past is written to a
 * fresh file after rotating. Lines waiting to be written are bounded by `maxBacklogBytes`: past it `write`
 * refuses them, and lines lost to a failed write are reported to `lost`, so every drop is counted.
 */
export class RotatingLogFile {
  readonly #queue: Pending[] = [];
  #backlogBytes = 0;
  #handle: FileHandle | undefined;
  #size = 0;
  #writing: Promise<void> | undefined;
  #closed = false;

  constructor(
    readonly config: LogFileConfig,
    private readonly maxBacklogBytes: number,
    private readonly lost: (worker: string, count: number, error: Error) => void,
  ) {}

  /**
   * Queues one line (with its newline) of `worker`; false: dropped, the backlog is full (or it could never fit).
   * `counted`: the line is already counted as dropped elsewhere, so losing it in a failed write is not reported.
   */
  write(line: string, worker: string, counted = false): boolean {
    if (this.#closed || this.#backlogBytes >= this.maxBacklogBytes) return false;
    const bytes = Buffer.from(line, 'utf8');
    if (bytes.length > this.config.maxBytes || this.#backlogBytes + bytes.length > this.maxBacklogBytes) return false;
    this.#queue.push({ bytes, worker, counted });
    this.#backlogBytes += bytes.length;
    this.#writing ??= this.#drain().finally(() => { this.#writing = undefined; });
    return true;
  }

  /** Writes what is queued, then closes the file; later lines are refused. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#writing) await this.#writing;
    await this.#handle?.close().catch(() => {});
    this.#handle = undefined;
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#takeBatch();
      try {
        if (!this.#handle) await this.#open();
        if (this.#size + batch.bytes > this.config.maxBytes) await this.#rotate();
        const buffer = Buffer.concat(batch.lines.map((line) => line.bytes), batch.bytes);
        let written = 0;
        while (written < buffer.length) written += (await this.#handle!.write(buffer, written)).bytesWritten;
        this.#size += buffer.length;
      } catch (error) {
        for (const [worker, count] of countByWorker(batch.lines)) this.lost(worker, count, error as Error);
        await this.#handle?.close().catch(() => {});
        this.#handle = undefined;  // Opened again for the next batch: the folder may have been removed meanwhile.
      } finally {
        this.#backlogBytes -= batch.bytes;
      }
    }
  }

  /** The queued lines that fit in one write and in the current file (or, when the first does not, a fresh one). */
  #takeBatch(): { lines: Pending[]; bytes: number } {
    const lines: Pending[] = [];
    let bytes = 0;
    const room = this.#handle && this.#size < this.config.maxBytes ? this.config.maxBytes - this.#size : this.config.maxBytes;
    for (const next of this.#queue) {
      const fits = bytes + next.bytes.length <= Math.min(maxBatchBytes, room);
      if (!fits && lines.length > 0) break;
      lines.push(next);
      bytes += next.bytes.length;
      if (!fits) break;  // The first line alone: it goes to a fresh file.
    }
    this.#queue.splice(0, lines.length);
    return { lines, bytes };
  }

  async #open(): Promise<void> {
    makeFolder(path.dirname(this.config.path));
    this.#handle = await open(this.config.path, 'a', 0o640);
    this.#size = (await this.#handle.stat()).size;
  }

  /** app.log.<keep-1> → app.log.<keep> … app.log → app.log.1, then a fresh app.log. */
  async #rotate(): Promise<void> {
    await this.#handle?.close();
    this.#handle = undefined;
    const file = this.config.path;
    if (this.config.keep === 0) {
      await rm(file, { force: true });
    } else {
      for (let index = this.config.keep - 1; index >= 1; index--) await renameIfThere(`${file}.${index}`, `${file}.${index + 1}`);
      await renameIfThere(file, `${file}.1`);
    }
    await this.#open();
  }
}

async function renameIfThere(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

function countByWorker(lines: Pending[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of lines) if (!line.counted) counts.set(line.worker, (counts.get(line.worker) ?? 0) + 1);
  return counts;
}
