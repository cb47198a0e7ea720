import { latencyBoundsMs } from '../ipc/messages.js';
import type { RolloutConfig, RolloutGates } from '../config/types.js';
import { count, duration, megabytes, milliseconds, percent } from './format.js';
import { binomialGreater, fisherExactGreater, formatP, histogramQuantile, mannWhitneyGreater, sum } from './statistics.js';
import type { VersionWindow, Window } from './window.js';

export type GateName = keyof RolloutGates;
export type Verdict = 'pass' | 'fail' | 'waiting';

/** One gate's judgement of a window, with the figures it judged for each version. */
export interface GateVerdict {
  gate: GateName;
  verdict: Verdict;
  /** One line a person reads: the numbers of both versions, and why they pass, fail or wait. */
  reason: string;
  canary: Record<string, number | null>;
  baseline: Record<string, number | null>;
  /** The test's p-value where the gate ran one. */
  pValue: number | null;
}

/** Every gate's verdict on one window: fail if any failed, else waiting if any waits, else pass. */
export interface Judgement {
  verdict: Verdict;
  reason: string;
  gates: GateVerdict[];
  window: { fromMs: number; toMs: number; canaryRequests: number; baselineRequests: number };
}

/** rss growth is not judged over a shorter window: a worker's first seconds of warming up are not a leak. */
export const minGrowthWindowMs = 30_000;

/** The share of requests a p99 leaves above it. */
const tailShare = 0.01;

interface Context {
  window: Window;
  rollout: RolloutConfig;
  /** "over 30 s" */
  over: string;
  /** "over 30 s, 812 vs 7,340 requests" */
  span: string;
  names: { canary: string; baseline: string };
}

type Judge<Gate extends GateName> = (settings: NonNullable<RolloutGates[Gate]>, context: Context) => GateVerdict;

const judges: { [Gate in GateName]: Judge<Gate> } = {
  errors({ significance, maxRate }, { window, rollout, span, names }) {
    const { canary, baseline } = window;
    const figures = (side: VersionWindow) => ({ requests: side.requests, errors: side.errors, errorRate: side.requests ? side.errors / side.requests : null });
    const base = { gate: 'errors' as const, canary: figures(canary), baseline: figures(baseline) };
    const waiting = waitingForRequests('5xx', canary.requests, baseline.requests, rollout.minRequests, names);
    if (waiting) return { ...base, verdict: 'waiting', reason: waiting, pValue: null };
    const canaryRate = canary.errors / canary.requests;
    const baselineRate = baseline.errors / baseline.requests;
    const pValue = fisherExactGreater(canary.errors, canary.requests, baseline.errors, baseline.requests);
    const rates = `5xx ${percent(canaryRate)} on ${names.canary} vs ${percent(baselineRate)} on ${names.baseline} ${span}`;
    if (pValue < significance) return { ...base, verdict: 'fail', reason: `${rates}, ${formatP(pValue)}`, pValue };
    const overCeiling = binomialGreater(canary.errors, canary.requests, maxRate);
    if (overCeiling < significance && baselineRate <= maxRate) {
      return { ...base, verdict: 'fail', reason: `${rates}: over the ${percent(maxRate)} ceiling, ${formatP(overCeiling)}`, pValue: overCeiling };
    }
    return { ...base, verdict: 'pass', reason: `${rates}, ${formatP(pValue)}`, pValue };
  },

  latency({ significance, maxP99Ratio, maxProbabilitySlower }, { window, rollout, span, names }) {
    const { canary, baseline } = window;
    const canaryTotal = sum(canary.latencyBuckets);
    const baselineTotal = sum(baseline.latencyBuckets);
    const canaryP99 = histogramQuantile(0.99, canary.latencyBuckets, latencyBoundsMs);
    const baselineP99 = histogramQuantile(0.99, baseline.latencyBuckets, latencyBoundsMs);
    const base = {
      gate: 'latency' as const,
      canary: { requests: canaryTotal, p50Ms: histogramQuantile(0.5, canary.latencyBuckets, latencyBoundsMs), p99Ms: canaryP99 },
      baseline: { requests: baselineTotal, p50Ms: histogramQuantile(0.5, baseline.latencyBuckets, latencyBoundsMs), p99Ms: baselineP99 },
    };
    const waiting = waitingForRequests('latency', canaryTotal, baselineTotal, rollout.minRequests, names);
    if (waiting || canaryP99 === null || baselineP99 === null) return { ...base, verdict: 'waiting', reason: waiting ?? 'latency: no requests yet', pValue: null };
    // Below the first bound the histogram cannot tell latencies apart, so a ratio to less than it means nothing.
    const limit = maxP99Ratio * Math.max(baselineP99, latencyBoundsMs[0]);
    const slowerThanLimit = canary.latencyBuckets.reduce((total, bucketCount, bucket) => total + ((latencyBoundsMs[bucket - 1] ?? 0) >= limit ? bucketCount : 0), 0);
    const tailP = binomialGreater(slowerThanLimit, canaryTotal, tailShare);
    const ratio = `${(canaryP99 / Math.max(baselineP99, Number.MIN_VALUE)).toFixed(1)}×`;
    const p99 = `p99 ${milliseconds(canaryP99)} on ${names.canary} vs ${milliseconds(baselineP99)} on ${names.baseline}`;
    if (canaryP99 > limit && tailP < significance) {
      return { ...base, verdict: 'fail', reason: `${p99} (${ratio}, limit ${maxP99Ratio}×) ${span}, ${formatP(tailP)}`, pValue: tailP };
    }
    const test = mannWhitneyGreater(canary.latencyBuckets, baseline.latencyBuckets);
    const slower = `a ${names.canary} request is slower than a ${names.baseline} one ${percent(test.probabilitySlower)} of the time`;
    if (test.pValue < significance && test.probabilitySlower > maxProbabilitySlower) {
      return { ...base, verdict: 'fail', reason: `latency: ${slower} (limit ${percent(maxProbabilitySlower)}) ${span}, Mann-Whitney ${formatP(test.pValue)}`, pValue: test.pValue };
    }
    return { ...base, verdict: 'pass', reason: `${p99} (${ratio}) ${span}; ${slower}, ${formatP(test.pValue)}`, pValue: test.pValue };
  },

  restarts({ max }, { window, over, names }) {
    const { canary, baseline } = window;
    const base = {
      gate: 'restarts' as const, pValue: null,
      canary: { restarts: canary.restarts, workers: canary.workers },
      baseline: { restarts: baseline.restarts, workers: baseline.workers },
    };
    const perWorker = (side: VersionWindow) => side.restarts / Math.max(side.workers, 1);
    const line = `${count(canary.restarts)} restarts of ${names.canary}'s ${count(canary.workers)} workers vs ${count(baseline.restarts)} of ${names.baseline}'s ${count(baseline.workers)} ${over}`;
    if (canary.restarts > max && perWorker(canary) > perWorker(baseline)) return { ...base, verdict: 'fail', reason: `${line} (allowed ${max})` };
    return { ...base, verdict: 'pass', reason: line };
  },

  memory({ maxMB, maxGrowthMBPerMinute }, { window, over, names }) {
    const { canary, baseline } = window;
    const minutes = (window.toMs - window.fromMs) / 60_000;
    const judged = window.toMs - window.fromMs >= minGrowthWindowMs;
    const rate = (side: VersionWindow) => (judged && side.rssGrowthBytes !== null ? side.rssGrowthBytes / 1024 / 1024 / minutes : null);
    const base = {
      gate: 'memory' as const, pValue: null,
      canary: { maxRssMB: canary.maxRssBytes / 1024 / 1024, growthMBPerMinute: rate(canary) },
      baseline: { maxRssMB: baseline.maxRssBytes / 1024 / 1024, growthMBPerMinute: rate(baseline) },
    };
    const sizes = `rss ${megabytes(canary.maxRssBytes)} on ${names.canary} vs ${megabytes(baseline.maxRssBytes)} on ${names.baseline} (largest worker)`;
    if (maxMB !== null && canary.maxRssBytes > maxMB * 1024 * 1024) return { ...base, verdict: 'fail', reason: `${sizes}: over the ${maxMB} MB ceiling` };
    const canaryRate = base.canary.growthMBPerMinute;
    if (canaryRate === null) return { ...base, verdict: 'pass', reason: `${sizes}; growth not judged under ${duration(minGrowthWindowMs)}` };
    const baselineRate = base.baseline.growthMBPerMinute ?? 0;
    const growth = `rss grows ${canaryRate.toFixed(1)} MB/min per ${names.canary} worker vs ${baselineRate.toFixed(1)} on ${names.baseline} ${over}`;
    if (canaryRate - baselineRate > maxGrowthMBPerMinute) return { ...base, verdict: 'fail', reason: `${growth} (allowed ${maxGrowthMBPerMinute} MB/min more)` };
    return { ...base, verdict: 'pass', reason: `${sizes}; ${growth}` };
  },

  eventLoop({ maxDelayMs }, { window, names }) {
    const { canary, baseline } = window;
    const base = {
      gate: 'eventLoop' as const, pValue: null,
      canary: { maxDelayMs: canary.maxEventLoopDelayMs }, baseline: { maxDelayMs: baseline.maxEventLoopDelayMs },
    };
    const line = `event-loop delay ${milliseconds(canary.maxEventLoopDelayMs)} on ${names.canary} vs ${milliseconds(baseline.maxEventLoopDelayMs)} on ${names.baseline} (slowest worker, p99)`;
    if (canary.maxEventLoopDelayMs > maxDelayMs && canary.maxEventLoopDelayMs > baseline.maxEventLoopDelayMs) {
      return { ...base, verdict: 'fail', reason: `${line}: over ${milliseconds(maxDelayMs)}` };
    }
    return { ...base, verdict: 'pass', reason: line };
  },
};

/**
 * Judges a window with every gate the rollout has switched on. The canary is compared with its baseline over
 * the same span, so a failure both share (a database down for everyone) does not count against the canary.
 */
export function judgeWindow(window: Window, rollout: RolloutConfig): Judgement {
  const names = { canary: rollout.version, baseline: rollout.baseline };
  const over = `over ${duration(window.toMs - window.fromMs)}`;
  const span = `${over}, ${count(window.canary.requests)} vs ${count(window.baseline.requests)} requests`;
  const context: Context = { window, rollout, over, span, names };
  const gates: GateVerdict[] = [];
  for (const name of Object.keys(judges) as GateName[]) {
    const settings = rollout.gates[name];
    if (settings !== null) gates.push((judges[name] as Judge<typeof name>)(settings as never, context));
  }
  const failed = gates.filter((gate) => gate.verdict === 'fail');
  const waiting = gates.filter((gate) => gate.verdict === 'waiting');
  const verdict: Verdict = failed.length > 0 ? 'fail' : waiting.length > 0 ? 'waiting' : 'pass';
  const reason = verdict === 'pass'
    ? `${gates.length === 0 ? 'no gates switched on' : `all ${gates.length} gates pass`} ${span}`
    : (failed.length > 0 ? failed : waiting).map((gate) => gate.reason).join('; ');
  return {
    verdict, reason, gates,
    window: { fromMs: window.fromMs, toMs: window.toMs, canaryRequests: window.canary.requests, baselineRequests: window.baseline.requests },
  };
}

function waitingForRequests(what: string, canary: number, baseline: number, minimum: number, names: Context['names']): string | undefined {
  if (canary >= minimum && baseline >= minimum) return undefined;
  return `${what}: waiting for ${count(minimum)} requests on each version (${count(canary)} on ${names.canary}, ${count(baseline)} on ${names.baseline})`;
}
