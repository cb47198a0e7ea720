import test from 'ava';
import { resolveConfig } from '../src/config/load.js';
import type { RolloutConfig, RolloutOptions } from '../src/config/types.js';
import { latencyBoundsMs } from '../src/ipc/messages.js';
import { judgeWindow, type GateName, type Judgement } from '../src/rollout/gates.js';
import { measureWindow, type VersionWindow, type Window, type WorkerSample } from '../src/rollout/window.js';

const rollout = (options: Partial<RolloutOptions> = {}): RolloutConfig => resolveConfig('/srv/graycluster.json', {
  versions: { v1: { entry: './a.js' }, v2: { entry: './b.js' } },
  routing: { default: 'v1' },
  rollout: { version: 'v2', ...options },
}).rollout!;

const MB = 1024 * 1024;

/** A histogram with `count` requests in the bucket whose upper bound is `boundMs` (Infinity for the last). */
const latencies = (...entries: Array<[boundMs: number, count: number]>) => {
  const buckets = new Array<number>(latencyBoundsMs.length + 1).fill(0);
  for (const [bound, count] of entries) {
    const index = bound === Infinity ? latencyBoundsMs.length : latencyBoundsMs.indexOf(bound);
    if (index === -1) throw new Error(`no bucket bound ${bound}`);
    buckets[index]! += count;
  }
  return buckets;
};

const side = (requests: number, errors: number, extra: Partial<VersionWindow> = {}): VersionWindow => ({
  requests, errors, latencyBuckets: latencies([10, requests]), restarts: 0, workers: 2, maxRssBytes: 60 * MB,
  rssGrowthBytes: 0, maxEventLoopDelayMs: 2, ...extra,
});

const window = (canary: VersionWindow, baseline: VersionWindow, seconds = 30): Window => ({ fromMs: 1_000_000, toMs: 1_000_000 + seconds * 1000, canary, baseline });

const gate = (judgement: Judgement, name: GateName) => judgement.gates.find((verdict) => verdict.gate === name)!;

test('a window sums each version\'s counter differences over its workers', (t) => {
  const worker = (id: string, version: string, requests: number, errors: number, fast: number, slow: number): WorkerSample => ({
    id, version, restarts: 0, rss: 50 * MB, eventLoopDelayMs: 1, requests,
    statusClasses: { '2xx': requests - errors, '5xx': errors }, latencyBuckets: latencies([5, fast], [1000, slow]),
  });
  const start = { at: 1000, workers: [worker('1', 'v1', 100, 1, 100, 0), worker('2', 'v1', 50, 0, 50, 0), worker('3', 'v2', 10, 0, 10, 0), worker('4', 'v3', 5, 5, 5, 0)] };
  const end = { at: 31_000, workers: [worker('1', 'v1', 300, 2, 290, 10), worker('2', 'v1', 150, 0, 150, 0), worker('3', 'v2', 40, 3, 20, 20), worker('4', 'v3', 99, 99, 99, 0)] };
  const measured = measureWindow(start, end, 'v2', 'v1');
  t.is(measured.fromMs, 1000);
  t.is(measured.toMs, 31_000);
  t.like(measured.baseline, { requests: 300, errors: 1, workers: 2, restarts: 0, rssGrowthBytes: 0 });
  t.deepEqual(measured.baseline.latencyBuckets, latencies([5, 290], [1000, 10]));
  t.like(measured.canary, { requests: 30, errors: 3, workers: 1 });
  t.deepEqual(measured.canary.latencyBuckets, latencies([5, 10], [1000, 20]));
});

test('a worker that restarted in its slot counts what it has now, and its restart; counters never go negative', (t) => {
  const sample = (restarts: number, requests: number, pid: number, rss: number): WorkerSample => ({
    id: '7', version: 'v2', pid, restarts, rss, eventLoopDelayMs: 3, requests, statusClasses: { '5xx': requests }, latencyBuckets: latencies([5, requests]),
  });
  const restarted = measureWindow({ at: 0, workers: [sample(0, 500, 11, 90 * MB)] }, { at: 10_000, workers: [sample(1, 20, 12, 40 * MB)] }, 'v2', 'v1');
  t.like(restarted.canary, { requests: 20, errors: 20, restarts: 1, rssGrowthBytes: null, maxRssBytes: 40 * MB });
  // A new process in the slot (a different pid) with counters that happen to be higher is still new.
  const replaced = measureWindow({ at: 0, workers: [sample(0, 5, 11, 50 * MB)] }, { at: 10_000, workers: [sample(0, 8, 12, 50 * MB)] }, 'v2', 'v1');
  t.like(replaced.canary, { requests: 8, restarts: 0 });
  // A worker that appeared in the window counts everything, one that went counts nothing; empty buckets are fine.
  const appeared = measureWindow({ at: 0, workers: [{ ...sample(0, 5, 11, 1), id: 'gone' }] }, { at: 1, workers: [{ ...sample(2, 9, 13, 1), latencyBuckets: [] }] }, 'v2', 'v1');
  t.like(appeared.canary, { requests: 9, restarts: 2, workers: 1 });
  t.is(appeared.canary.latencyBuckets.length, latencyBoundsMs.length + 1);
  t.deepEqual(appeared.baseline, { ...appeared.baseline, requests: 0, workers: 0 });
});

test('a canary answering 5xx to 4 % of requests fails the error gate, with the numbers in words', (t) => {
  const judgement = judgeWindow(window(side(812, 33), side(7340, 15)), rollout());
  t.is(judgement.verdict, 'fail');
  t.is(gate(judgement, 'errors').verdict, 'fail');
  t.is(judgement.reason, '5xx 4.1 % on v2 vs 0.2 % on v1 over 30 s, 812 vs 7,340 requests, p < 0.001');
  t.like(gate(judgement, 'errors'), { canary: { requests: 812, errors: 33 }, baseline: { requests: 7340, errors: 15 } });
});

test('0, 1 or 12 requests never decide, even all answered 5xx: the gates wait', (t) => {
  for (const requests of [0, 1, 12]) {
    const judgement = judgeWindow(window(side(requests, requests), side(7340, 0)), rollout());
    t.is(judgement.verdict, 'waiting', `${requests} requests`);
    t.is(gate(judgement, 'errors').verdict, 'waiting');
    t.is(gate(judgement, 'latency').verdict, 'waiting');
    t.regex(judgement.reason, new RegExp(`^5xx: waiting for 100 requests on each version \\(${requests} on v2, 7,340 on v1\\); latency: waiting`));
  }
  // The baseline needs its share too.
  t.is(judgeWindow(window(side(500, 0), side(40, 0)), rollout()).verdict, 'waiting');
});

test('a 5xx burst on both versions at once does not count against the canary', (t) => {
  const judgement = judgeWindow(window(side(900, 280), side(9000, 2790)), rollout());
  t.is(gate(judgement, 'errors').verdict, 'pass');
  t.is(judgement.verdict, 'pass');
  t.regex(judgement.reason, /^all 5 gates pass over 30 s, 900 vs 9,000 requests$/);
});

test('a canary significantly over the 5xx ceiling fails even when not significantly worse than a baseline just under it', (t) => {
  const judgement = judgeWindow(window(side(10_000, 600), side(1000, 49)), rollout());
  t.is(gate(judgement, 'errors').verdict, 'fail');
  t.regex(gate(judgement, 'errors').reason, /^5xx 6\.0 % on v2 vs 4\.9 % on v1 over 30 s, 10,000 vs 1,000 requests: over the 5\.0 % ceiling, p < 0\.001$/);
  // A handful over the ceiling is noise.
  t.is(gate(judgeWindow(window(side(150, 9), side(1000, 49)), rollout()), 'errors').verdict, 'pass');
});

test('a canary far slower fails the latency gate: by its p99 when its tail is slow, by Mann-Whitney when all of it is', (t) => {
  const baseline = side(7340, 0, { latencyBuckets: latencies([10, 7340]) });
  const slowTail = side(812, 0, { latencyBuckets: latencies([10, 771], [50, 41]) });
  const byP99 = judgeWindow(window(slowTail, baseline), rollout());
  t.is(gate(byP99, 'latency').verdict, 'fail');
  t.is(byP99.reason, 'p99 45 ms on v2 vs 9.9 ms on v1 (4.5×, limit 2×) over 30 s, 812 vs 7,340 requests, p < 0.001');
  // Every request 5× slower: the p99 evidence is 12 requests over the limit, too few; the distributions differ beyond doubt.
  const allSlow = side(812, 0, { latencyBuckets: latencies([50, 800], [250, 12]) });
  const byRanks = judgeWindow(window(allSlow, side(7340, 0, { latencyBuckets: latencies([10, 7260], [50, 80]) })), rollout());
  t.is(gate(byRanks, 'latency').verdict, 'fail');
  t.regex(byRanks.reason, /^latency: a v2 request is slower than a v1 one 99\.5 % of the time \(limit 64\.0 %\)/);
  t.true(gate(byRanks, 'latency').canary.p99Ms! > 5 * gate(byRanks, 'latency').baseline.p99Ms!);
});

test('a slow tail of a few requests does not fail the p99 comparison; a tail of 5 % does', (t) => {
  const baseline = side(7340, 0, { latencyBuckets: latencies([10, 7340]) });
  const fewSlow = side(400, 0, { latencyBuckets: latencies([10, 397], [1000, 3]) });
  t.is(gate(judgeWindow(window(fewSlow, baseline), rollout()), 'latency').verdict, 'pass');
  const manySlow = side(400, 0, { latencyBuckets: latencies([10, 380], [1000, 20]) });
  t.is(gate(judgeWindow(window(manySlow, baseline), rollout()), 'latency').verdict, 'fail');
});

test('a whole distribution shifted up fails the Mann-Whitney test; the same shape passes', (t) => {
  const baseline = side(2000, 0, { latencyBuckets: latencies([5, 1000], [10, 990], [25, 10]) });
  const shifted = side(500, 0, { latencyBuckets: latencies([5, 50], [10, 445], [25, 5]) });
  const judgement = judgeWindow(window(shifted, baseline), rollout());
  t.is(gate(judgement, 'latency').verdict, 'fail');
  t.regex(judgement.reason, /^latency: a v2 request is slower than a v1 one 70\.0 % of the time \(limit 64\.0 %\) over 30 s, 500 vs 2,000 requests, Mann-Whitney p < 0\.001$/);
  const alike = side(500, 0, { latencyBuckets: latencies([5, 250], [10, 248], [25, 2]) });
  t.is(gate(judgeWindow(window(alike, baseline), rollout()), 'latency').verdict, 'pass');
});

test('a canary worker that restarted fails the restarts gate, unless the baseline restarted as often', (t) => {
  const crashed = judgeWindow(window(side(0, 0, { restarts: 1 }), side(7340, 0)), rollout());
  t.is(crashed.verdict, 'fail');
  t.is(crashed.reason, "1 restarts of v2's 2 workers vs 0 of v1's 2 over 30 s (allowed 0)");
  t.is(gate(judgeWindow(window(side(500, 0, { restarts: 1 }), side(7340, 0, { restarts: 3 })), rollout()), 'restarts').verdict, 'pass');
  t.is(gate(judgeWindow(window(side(500, 0, { restarts: 2 }), side(7340, 0)), rollout({ gates: { restarts: { max: 2 } } })), 'restarts').verdict, 'pass');
});

test('rss over its ceiling fails; growth faster than the baseline\'s fails, but only over 30 s or more', (t) => {
  const big = side(500, 0, { maxRssBytes: 700 * MB });
  t.is(gate(judgeWindow(window(big, side(7340, 0)), rollout()), 'memory').verdict, 'pass');
  const capped = judgeWindow(window(big, side(7340, 0)), rollout({ gates: { memory: { maxMB: 512 } } }));
  t.is(capped.reason, 'rss 700 MB on v2 vs 60 MB on v1 (largest worker): over the 512 MB ceiling');
  const leaking = side(500, 0, { rssGrowthBytes: 40 * MB });
  const growing = judgeWindow(window(leaking, side(7340, 0, { rssGrowthBytes: 2 * MB }), 60), rollout());
  t.is(growing.reason, 'rss grows 40.0 MB/min per v2 worker vs 2.0 on v1 over 60 s (allowed 30 MB/min more)');
  t.is(gate(judgeWindow(window(leaking, side(7340, 0), 20), rollout()), 'memory').verdict, 'pass');
  t.regex(gate(judgeWindow(window(leaking, side(7340, 0), 20), rollout()), 'memory').reason, /growth not judged under 30 s$/);
});

test('event-loop delay over its limit fails, unless the baseline\'s is as slow', (t) => {
  const blocked = judgeWindow(window(side(500, 0, { maxEventLoopDelayMs: 450 }), side(7340, 0, { maxEventLoopDelayMs: 12 })), rollout());
  t.is(blocked.reason, 'event-loop delay 450 ms on v2 vs 12 ms on v1 (slowest worker, p99): over 200 ms');
  t.is(judgeWindow(window(side(500, 0, { maxEventLoopDelayMs: 450 }), side(7340, 0, { maxEventLoopDelayMs: 500 })), rollout()).verdict, 'pass');
});

test('a gate switched off is not judged; several failures are all named', (t) => {
  const bad = window(side(812, 33, { restarts: 2 }), side(7340, 15));
  const judgement = judgeWindow(bad, rollout());
  t.deepEqual(judgement.gates.filter((verdict) => verdict.verdict === 'fail').map((verdict) => verdict.gate), ['errors', 'restarts']);
  t.regex(judgement.reason, /^5xx 4\.1 % .*; 2 restarts of v2's/);
  const off = judgeWindow(bad, rollout({ gates: { errors: false, restarts: false } }));
  t.deepEqual(off.gates.map((verdict) => verdict.gate), ['latency', 'memory', 'eventLoop']);
  t.is(off.verdict, 'pass');
  const none = judgeWindow(bad, rollout({ gates: { errors: false, latency: false, restarts: false, memory: false, eventLoop: false } }));
  t.is(none.reason, 'no gates switched on over 30 s, 812 vs 7,340 requests');
});
