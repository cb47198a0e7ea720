import test from 'ava';
import {
  binomialGreater, fisherExactGreater, formatP, histogramQuantile, logFactorial, mannWhitneyGreater, normalUpperTail,
} from '../src/rollout/statistics.js';

/** Relative closeness, for p-values that span many orders of magnitude. */
const near = (actual: number, expected: number, relative = 1e-6) =>
  Math.abs(actual - expected) <= relative * Math.abs(expected);

test('ln(n!) is exact for small n and matches the sum of logs across the switch to Stirling', (t) => {
  t.is(logFactorial(0), 0);
  t.true(near(logFactorial(5), Math.log(120), 1e-15));
  let byHand = 0;
  for (let n = 1; n <= 1000; n++) byHand += Math.log(n);
  t.true(near(logFactorial(1000), byHand, 1e-13));
  t.true(near(logFactorial(256), logFactorial(255) + Math.log(256), 1e-15));
});

test("Fisher's exact test: the lady tasting tea (Fisher 1935), 3 of 4 right, one-sided p = 17/70", (t) => {
  // Tables [[3,1],[1,3]]: P(X >= 3) = (C(4,3)·C(4,1) + C(4,4)·C(4,0)) / C(8,4) = (16 + 1) / 70.
  t.true(near(fisherExactGreater(3, 4, 1, 4), 17 / 70, 1e-12));
});

test("Fisher's exact test on tiny samples never reaches significance", (t) => {
  t.is(fisherExactGreater(0, 0, 0, 0), 1);
  t.is(fisherExactGreater(0, 0, 5, 100), 1);
  t.is(fisherExactGreater(0, 1, 0, 1), 1);
  // One error among 2 requests, one each: the chance it fell on the canary is 1/2.
  t.true(near(fisherExactGreater(1, 1, 0, 1), 1 / 2, 1e-12));
  // One error among 24 requests, 12 each: 12/24 again.
  t.true(near(fisherExactGreater(1, 12, 0, 12), 1 / 2, 1e-12));
  // The canary's one error in 12 vs a baseline clean over 7,340: the chance it lands in the canary's 12 of 7,352.
  t.true(near(fisherExactGreater(1, 12, 0, 7340), 12 / 7352, 1e-9));
});

test("Fisher's exact test on large samples agrees with SciPy 1.17's fisher_exact(alternative='greater')", (t) => {
  t.true(near(fisherExactGreater(41, 1000, 20, 10_000), 9.848322193342013e-29));
  t.true(near(fisherExactGreater(33, 812, 15, 7340), 1.2227918650306232e-22));
  // The same 3 % on both sides: no evidence either way.
  t.true(near(fisherExactGreater(300, 10_000, 3000, 100_000), 0.5091195821227855));
  // So small that it underflows to 0, as in SciPy.
  t.is(fisherExactGreater(1200, 50_000, 1000, 950_000), 0);
  // A canary with fewer errors than its share: the upper tail is nearly all of it.
  t.true(fisherExactGreater(0, 1000, 100, 1000) > 0.999);
});

test('binomial upper tail: by hand for 12 requests, SciPy 1.17 binom.sf for 1,000', (t) => {
  // P(X >= 2 | 12, 0.01) = 1 − 0.99^12 − 12·0.01·0.99^11.
  t.true(near(binomialGreater(2, 12, 0.01), 1 - 0.99 ** 12 - 12 * 0.01 * 0.99 ** 11, 1e-10));
  t.true(near(binomialGreater(60, 1000, 0.05), 0.08673217838486103));
  t.is(binomialGreater(0, 12, 0.01), 1);
  t.is(binomialGreater(13, 12, 0.5), 0);
  t.is(binomialGreater(1, 12, 0), 0);
});

test('normal upper tail matches the table: 1.645 → 0.05, 1.96 → 0.025, 3.09 → 0.001', (t) => {
  t.true(near(normalUpperTail(1.96), 2.49978951e-2, 2e-7));
  t.true(near(normalUpperTail(1.645), 4.99849055e-2, 2e-7));
  t.true(near(normalUpperTail(3.09), 1.00078248e-3, 2e-7));
  t.true(near(normalUpperTail(5), 2.86651572e-7, 2e-7));
  t.true(near(normalUpperTail(0), 0.5, 2e-7));
  t.true(near(normalUpperTail(-1), 0.841344746, 2e-7));
});

test('Mann-Whitney with ties: the ClickHouse mannWhitneyUTest example, U = 223, two-sided p = 0.5427 (SciPy agrees)', (t) => {
  const left = [310, 195, 530, 155, 530, 245, 385, 450, 465, 545, 170, 180, 125, 180, 230, 75, 430, 480, 495, 295];
  const right = [116, 171, 176, 421, 111, 326, 481, 111, 346, 441, 261, 411, 206, 521, 456, 446, 296, 51, 426, 261];
  // Each distinct value is a bucket, so equal values tie exactly as in a histogram.
  const bounds = [...new Set([...left, ...right])].sort((a, b) => a - b);
  const histogram = (values: number[]) => bounds.map((bound) => values.filter((value) => value === bound).length);
  const result = mannWhitneyGreater(histogram(left), histogram(right));
  t.is(result.u, 223);
  t.true(near(result.pValue, 0.2713479887144741, 1e-6));
  t.true(near(2 * result.pValue, 0.5426959774289482, 1e-6));
  t.true(mannWhitneyGreater(histogram(right), histogram(left)).pValue > 0.5);
});

test('Mann-Whitney: ten canary requests all a bucket above ten baseline ones, worked by hand', (t) => {
  // U = 100; ties Σ(t³−t) = 2·(1000−10) = 1980; σ² = 100/12 · (21 − 1980/380) = 131.58; z = (100 − 50 − 0.5)/11.471.
  const result = mannWhitneyGreater([0, 0, 10], [10, 0, 0]);
  t.is(result.u, 100);
  t.is(result.probabilitySlower, 1);
  t.true(near(result.z, 49.5 / Math.sqrt((100 / 12) * (21 - 1980 / 380)), 1e-12));
  t.true(near(result.pValue, 7.968955844033122e-6, 1e-6));
});

test('Mann-Whitney decides nothing on empty or identical histograms', (t) => {
  t.is(mannWhitneyGreater([], [5, 5]).pValue, 1);
  t.is(mannWhitneyGreater([0, 0], [0, 0]).pValue, 1);
  t.is(mannWhitneyGreater([1], [1]).pValue, 1);
  const same = mannWhitneyGreater([0, 3, 9, 1], [0, 30, 90, 10]);
  t.is(same.probabilitySlower, 0.5);
  t.true(same.pValue > 0.5);
});

test('p99 is interpolated inside its bucket like Prometheus histogram_quantile; +Inf gives the last bound', (t) => {
  const bounds = [5, 10, 25];
  t.is(histogramQuantile(0.99, [0, 0, 0, 0], bounds), null);
  // 100 requests, 98 under 5 ms, 2 in (10, 25]: the 99th sits halfway into (10, 25].
  t.is(histogramQuantile(0.99, [98, 0, 2, 0], bounds), 17.5);
  t.is(histogramQuantile(0.5, [100, 0, 0, 0], bounds), 2.5);
  t.is(histogramQuantile(0.99, [0, 0, 0, 7], bounds), 25);
});

test('p-values are shown with two significant digits, or as p < 0.001', (t) => {
  t.is(formatP(0.0004), 'p < 0.001');
  t.is(formatP(0.04213), 'p = 0.042');
  t.is(formatP(1), 'p = 1');
});
