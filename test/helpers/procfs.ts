// Memory of a running process, for tests and the bench: the product's own VmRSS reader, so there is one.
import { residentBytes } from '../../src/shared/procfs.js';

export { residentBytes };

/** Resident memory of a process in bytes; throws if it is gone (or /proc is not there). */
export function rssOf(pid: number): number {
  const bytes = residentBytes(pid);
  if (bytes === undefined) throw new Error(`no rss for pid ${pid}: the process is gone`);
  return bytes;
}

export interface RssSample {
  /** Milliseconds since sampling started. */
  at: number;
  bytes: number;
}

/** Samples a process's rss every `intervalMs` from now; `stop()` takes one last sample and returns them all. */
export function sampleRss(pid: number, intervalMs = 200) {
  const started = performance.now();
  const samples: RssSample[] = [];
  const take = () => {
    const bytes = residentBytes(pid);
    if (bytes !== undefined) samples.push({ at: performance.now() - started, bytes });
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    samples,
    /** The latest sample: what the process holds now. */
    latest: () => samples.at(-1)?.bytes,
    /** The highest sample from index `from` on. */
    peak: (from = 0) => Math.max(...samples.slice(from).map((sample) => sample.bytes)),
    stop(): RssSample[] {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}
