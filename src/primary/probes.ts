import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { VersionState } from './worker-state.js';

/** A probe's answer: 200 with "ok", or 503 with a short reason. */
export interface ProbeVerdict {
  ok: boolean;
  reason: string;
}

/** Alive while the primary's event loop has not been stuck `limitMs` or more in the recent window. */
export function liveness(recentDelayMs: number, limitMs: number): ProbeVerdict {
  return recentDelayMs >= limitMs
    ? { ok: false, reason: `event loop stalled ${Math.round(recentDelayMs)} ms (health.maxEventLoopDelayMs ${limitMs})` }
    : { ok: true, reason: 'ok' };
}

export interface ReadinessFacts {
  stopping: boolean;
  /** The state of routing.default's version. */
  defaultState: VersionState;
  /** The config file on disk is refused whole (a version whose new workers failed keeps its old ones: not this). */
  configRejected: boolean;
}

/**
 * Ready to take traffic: not stopping, routing.default has a ready worker and the config file on disk was not refused.
 * A version whose new workers did not start (a canary's bad build) keeps its old ones and leaves this alone: a bad
 * canary must not take every pod of a shared config out of its Service.
 * The reasons name no version, path or figure: the probe listener has no token and exposes nothing else.
 */
export function readiness({ stopping, defaultState, configRejected }: ReadinessFacts): ProbeVerdict {
  if (stopping) return { ok: false, reason: 'stopping' };
  if (defaultState !== 'ready') return { ok: false, reason: `no ready worker of the default version (${defaultState})` };
  if (configRejected) return { ok: false, reason: 'config file rejected; serving the last good config' };
  return { ok: true, reason: 'ok' };
}

/** How often the delay window moves on: a stall shows in /livez for one to two of these. */
const windowMs = 5000;

/**
 * The primary's longest event-loop stall of the last few seconds, from Node's own delay histogram (two windows:
 * the one filling and the one before it, so a stall does not vanish the moment a window closes).
 */
export class EventLoopWatch {
  readonly #histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });
  #previousMaxMs = 0;
  #timer: NodeJS.Timeout | undefined;

  start(): void {
    this.#histogram.enable();
    this.#timer = setInterval(() => {
      this.#previousMaxMs = this.#histogram.max / 1e6;
      this.#histogram.reset();
    }, windowMs);
    this.#timer.unref();
  }

  /** The longest stall seen in the last one to two windows, in ms. */
  get recentMaxMs(): number {
    return Math.max(this.#histogram.max / 1e6, this.#previousMaxMs);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#histogram.disable();
  }
}
