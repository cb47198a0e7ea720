/**
 * The tests a rollout's gates use, as pure functions of counts. All are one-sided: the only question a gate
 * asks is "is the canary worse?", never "is it different?".
 */

/** A p-value at or below this is written `p < 0.001`. */
const smallestShownP = 0.001;

const logFactorialTable: number[] = [0];
for (let n = 1, sum = 0; n < 256; n++) logFactorialTable.push(sum += Math.log(n));

/** ln(n!), exact by summation below 256, Stirling's series above (error < 1e-15 there). */
export function logFactorial(n: number): number {
  const exact = logFactorialTable[n];
  if (exact !== undefined) return exact;
  const inverse = 1 / n;
  const inverseSquared = inverse * inverse;
  return n * Math.log(n) - n + 0.5 * Math.log(2 * Math.PI * n)
    + inverse * (1 / 12 - inverseSquared * (1 / 360 - inverseSquared / 1260));
}

/**
 * Sums a unimodal distribution's upper tail P(X >= from) from its log-probability and the ratio of neighbouring
 * terms, walking away from the mode so that every loop stops once its terms no longer count: at most a few
 * standard deviations of terms, however many requests were counted.
 */
function upperTail(
  from: number, low: number, high: number, mode: number, logProbability: (x: number) => number,
  ratioUp: (x: number) => number, ratioDown: (x: number) => number,
): number {
  if (from <= low) return 1;
  if (from > high) return 0;
  const walk = (start: number, end: number, direction: 1 | -1, ratio: (x: number) => number) => {
    let term = Math.exp(logProbability(start));
    let sum = 0;
    for (let x = start; ; x += direction) {
      sum += term;
      if (x === end || term <= sum * 1e-17) return sum;
      term *= ratio(x);
    }
  };
  if (from > mode) return Math.min(1, walk(from, high, 1, ratioUp));
  return Math.max(0, 1 - walk(from - 1, low, -1, ratioDown));
}

/**
 * Fisher's exact test, one-sided: the probability, given both versions' totals, that the canary would have
 * drawn at least `canaryErrors` of all the errors if errors fell on requests at random (the hypergeometric
 * upper tail). Exact at every sample size, so no rule of thumb about expected counts is needed for it to be
 * honest; what a small sample lacks is power, which the gates' `minRequests` supplies.
 */
export function fisherExactGreater(canaryErrors: number, canaryRequests: number, baselineErrors: number, baselineRequests: number): number {
  const total = canaryRequests + baselineRequests;
  const errors = canaryErrors + baselineErrors;
  const drawn = canaryRequests;
  const successes = total - errors;
  const low = Math.max(0, drawn - successes);
  const high = Math.min(errors, drawn);
  const constant = logFactorial(errors) + logFactorial(successes) + logFactorial(drawn) + logFactorial(total - drawn) - logFactorial(total);
  const logProbability = (x: number) => constant - logFactorial(x) - logFactorial(errors - x) - logFactorial(drawn - x) - logFactorial(successes - drawn + x);
  const mode = Math.floor(((drawn + 1) * (errors + 1)) / (total + 2));
  return upperTail(
    canaryErrors, low, high, mode, logProbability,
    (x) => ((errors - x) * (drawn - x)) / ((x + 1) * (successes - drawn + x + 1)),
    (x) => (x * (successes - drawn + x)) / ((errors - x + 1) * (drawn - x + 1)),
  );
}

/** P(X >= k) for X ~ Binomial(n, p), exact. */
export function binomialGreater(k: number, n: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n || p <= 0) return 0;
  if (p >= 1) return 1;
  const logProbability = (x: number) => logFactorial(n) - logFactorial(x) - logFactorial(n - x) + x * Math.log(p) + (n - x) * Math.log1p(-p);
  const odds = p / (1 - p);
  return upperTail(
    k, 0, n, Math.floor((n + 1) * p), logProbability,
    (x) => ((n - x) / (x + 1)) * odds,
    (x) => (x / (n - x + 1)) / odds,
  );
}

/**
 * The standard normal upper tail Q(z) = P(Z > z), from the complementary error function of Numerical Recipes
 * (2nd ed., §6.2, `erfcc`): a Chebyshev fit with fractional error below 1.2e-7 everywhere, so small p-values
 * keep their digits.
 */
export function normalUpperTail(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * x);
  const erfc = t * Math.exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
    + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return z >= 0 ? erfc / 2 : 1 - erfc / 2;
}

export interface MannWhitneyResult {
  /** U of the canary: pairs (canary, baseline) where the canary's request was slower, ties counting half. */
  u: number;
  /** U / (n1·n2): the chance that a canary request is slower than a baseline one, ties counting half; 0.5 = alike. */
  probabilitySlower: number;
  z: number;
  /** One-sided: the canary's latencies are stochastically larger. 1 when there is nothing to compare. */
  pValue: number;
}

/**
 * The Mann-Whitney U test on two histograms with the same bucket bounds (as Kayenta's classifier runs it on
 * raw samples). Every request in a bucket ties with every other request in it, so U counts half for each such
 * pair, and the variance takes the tie correction: σ² = n1·n2/12 · ((N+1) − Σ(t³−t)/(N(N−1))). The p-value is
 * the normal approximation with a continuity correction of 0.5 (as R's wilcox.test and SciPy do by default).
 */
export function mannWhitneyGreater(canary: readonly number[], baseline: readonly number[]): MannWhitneyResult {
  const n1 = sum(canary);
  const n2 = sum(baseline);
  if (n1 === 0 || n2 === 0) return { u: 0, probabilitySlower: 0.5, z: 0, pValue: 1 };
  let u = 0;
  let baselineBelow = 0;
  let ties = 0;
  for (let bucket = 0; bucket < Math.max(canary.length, baseline.length); bucket++) {
    const inCanary = canary[bucket] ?? 0;
    const inBaseline = baseline[bucket] ?? 0;
    u += inCanary * (baselineBelow + inBaseline / 2);
    baselineBelow += inBaseline;
    const tied = inCanary + inBaseline;
    ties += tied * tied * tied - tied;
  }
  const n = n1 + n2;
  const variance = ((n1 * n2) / 12) * (n + 1 - ties / (n * (n - 1)));
  const probabilitySlower = u / (n1 * n2);
  if (variance <= 0) return { u, probabilitySlower, z: 0, pValue: 1 };
  const z = (u - (n1 * n2) / 2 - 0.5) / Math.sqrt(variance);
  return { u, probabilitySlower, z, pValue: normalUpperTail(z) };
}

/**
 * A quantile of a histogram, interpolated linearly inside its bucket as Prometheus's histogram_quantile does
 * (the first bucket starts at 0). A quantile in the +Inf bucket is the last finite bound: a floor, which the
 * report marks with "≥". Null for an empty histogram.
 */
export function histogramQuantile(quantile: number, counts: readonly number[], bounds: readonly number[]): number | null {
  const total = sum(counts);
  if (total === 0) return null;
  const rank = quantile * total;
  const highestBound = bounds.at(-1) ?? null;
  let below = 0;
  for (const [bucket, count] of counts.entries()) {
    if (count > 0 && below + count >= rank) {
      const upper = bounds[bucket];
      if (upper === undefined) return highestBound;  // The +Inf bucket.
      const lower = bounds[bucket - 1] ?? 0;
      return lower + (upper - lower) * ((rank - below) / count);
    }
    below += count;
  }
  return highestBound;
}

/** `p < 0.001` or `p = 0.042`: two significant digits are all a verdict needs. */
export function formatP(p: number): string {
  return p < smallestShownP ? `p < ${smallestShownP}` : `p = ${Number(p.toPrecision(2))}`;
}

export function sum(values: readonly number[]): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}
