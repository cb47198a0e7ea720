import type { ConfigFile, RolloutConfig, RolloutGates, RolloutOptions, RolloutState } from './types.js';

export const rolloutStates: readonly RolloutState[] = ['running', 'paused', 'promoted', 'rolled_back', 'aborted'];

/** States a rollout never leaves: only a new `canary start` replaces it. */
export const finishedStates: ReadonlySet<RolloutState> = new Set(['promoted', 'rolled_back', 'aborted']);

export const rolloutDefaults = {
  steps: [5, 25, 50, 100],
  stepMs: 60_000,
  /** Or stepMs, when that is shorter: the gates judge at least once a step. */
  checkIntervalMs: 5000,
  minRequests: 100,
  /**
   * Flagger's progressDeadlineSeconds: a step that cannot be judged for this long pauses instead of waiting forever.
   * Or stepMs, when that is longer: a deadline never cuts a step short.
   */
  progressDeadlineMs: 600_000 as number | null,
  keepCanaryOnRollback: true,
};

/**
 * The largest values that still let a rollout act (the schema's maximums, checked here too for edits): a step of at
 * most a week, and a number of requests a step can reach (a huge one would never be judged).
 */
export const rolloutLimits = { stepMs: 604_800_000, minRequests: 1_000_000 };

/** Every gate on, with thresholds that a handful of noisy requests cannot cross (see gates.ts). */
export const gateDefaults: { [Gate in keyof RolloutGates]-?: NonNullable<RolloutGates[Gate]> } = {
  errors: { significance: 0.001, maxRate: 0.05 },
  latency: { significance: 0.001, maxP99Ratio: 2, maxProbabilitySlower: 0.64 },
  restarts: { max: 0 },
  memory: { maxMB: null, maxGrowthMBPerMinute: 30 },
  eventLoop: { maxDelayMs: 200 },
};

/** Allowed range of each gate setting: [lowest, highest, lowest excluded, whole numbers only]. */
const gateRanges: Record<string, [number, number, boolean, boolean]> = {
  'errors.significance': [0, 0.5, true, false],
  'errors.maxRate': [0, 1, true, false],
  'latency.significance': [0, 0.5, true, false],
  'latency.maxP99Ratio': [1, 1000, false, false],
  'latency.maxProbabilitySlower': [0.5, 1, true, false],
  'restarts.max': [0, 1_000_000, false, true],
  'memory.maxMB': [0, 1_048_576, true, false],
  'memory.maxGrowthMBPerMinute': [0, 1_048_576, true, false],
  'eventLoop.maxDelayMs': [0, 600_000, true, false],
};

/** progressDeadlineMs when the rollout does not set it: the default, or stepMs when that is longer. */
export function defaultProgressDeadline(stepMs: number): number | null {
  return rolloutDefaults.progressDeadlineMs === null ? null : Math.max(rolloutDefaults.progressDeadlineMs, stepMs);
}

/** Reports a bad key of the config file; never returns. */
export type Fail = (key: string, message: string) => never;

/**
 * Validates the file's `rollout` and fills in its defaults; null when there is none. Checks what the schema
 * cannot (versions named, steps increasing, status within the steps) and, because an edit is resolved before
 * the schema sees it, the ranges too. A finished rollout may name a version that is gone: it is a record.
 */
export function resolveRollout(raw: ConfigFile, fail: Fail): RolloutConfig | null {
  const options = raw.rollout;
  if (options === undefined) return null;
  if (typeof options !== 'object' || options === null) fail('rollout', 'must be an object');
  const status = resolveStatus(options, fail);
  const finished = finishedStates.has(status.state);
  const known = Object.keys(raw.versions);
  const baseline = options.baseline ?? raw.routing.default;
  if (!finished) {
    for (const [key, version] of [['rollout.version', options.version], ['rollout.baseline', baseline]] as const) {
      if (typeof version !== 'string' || !known.includes(version)) fail(key, `names unknown version "${version}" (known: ${known.join(', ')})`);
    }
    if (baseline === options.version) {
      fail('rollout.baseline', `must differ from rollout.version ("${baseline}"); it defaults to routing.default`);
    }
  }
  const steps = options.steps ?? rolloutDefaults.steps;
  if (!Array.isArray(steps) || steps.length === 0 || steps.length > 20) fail('rollout.steps', 'must list 1 to 20 weights of the canary, e.g. [5, 25, 50, 100]');
  let previous: number | undefined;
  for (const [index, weight] of steps.entries()) {
    if (!Number.isInteger(weight) || weight < 1 || weight > 100) fail(`rollout.steps[${index}]`, `must be a whole number from 1 to 100, not ${weight}`);
    if (previous !== undefined && weight <= previous) fail('rollout.steps', `must be strictly increasing: ${weight} comes after ${previous}`);
    previous = weight;
  }
  if (status.step >= steps.length) fail('rollout.status.step', `is ${status.step}, past the last step (${steps.length} steps)`);
  const stepMs = whole(options.stepMs ?? rolloutDefaults.stepMs, 'rollout.stepMs', 1000, fail, rolloutLimits.stepMs);
  // The defaults of the two keys bounded by stepMs follow it, so that a step set alone (`canary start --interval 1h`)
  // never contradicts a default the user did not choose.
  const checkIntervalMs = options.checkIntervalMs === undefined
    ? Math.min(rolloutDefaults.checkIntervalMs, stepMs)
    : whole(options.checkIntervalMs, 'rollout.checkIntervalMs', 100, fail);
  // Checks against stepMs hold on its resolved value, and say when it is the default.
  const step = `rollout.stepMs (${stepMs}${options.stepMs === undefined ? ', its default' : ''})`;
  if (checkIntervalMs > stepMs) fail('rollout.checkIntervalMs', `(${checkIntervalMs}) must not be longer than ${step}`);
  const deadline = options.progressDeadlineMs === undefined ? defaultProgressDeadline(stepMs) : options.progressDeadlineMs;
  if (deadline !== null) {
    if (typeof deadline !== 'number' || !Number.isInteger(deadline) || deadline < 1000) fail('rollout.progressDeadlineMs', `must be a whole number >= 1000, or null for no deadline, not ${JSON.stringify(deadline)}`);
    if (deadline < stepMs) fail('rollout.progressDeadlineMs', `(${deadline}) must not be shorter than ${step}, or null for no deadline`);
  }
  const keep = options.keepCanaryOnRollback ?? rolloutDefaults.keepCanaryOnRollback;
  if (typeof keep !== 'boolean') fail('rollout.keepCanaryOnRollback', 'must be true or false');
  return {
    version: options.version,
    baseline,
    steps: [...steps],
    stepMs,
    checkIntervalMs,
    minRequests: whole(options.minRequests ?? rolloutDefaults.minRequests, 'rollout.minRequests', 1, fail, rolloutLimits.minRequests),
    progressDeadlineMs: deadline,
    keepCanaryOnRollback: keep,
    gates: resolveGates(options.gates ?? {}, fail),
    status,
  };
}

function resolveStatus(options: RolloutOptions, fail: Fail): RolloutConfig['status'] {
  const status = options.status;
  if (status === undefined) return { state: 'running', step: 0, stepStartedAt: null, reason: 'declared in the config file' };
  if (!rolloutStates.includes(status.state)) fail('rollout.status.state', `must be one of ${rolloutStates.join(', ')}, not "${status.state}"`);
  const step = whole(status.step, 'rollout.status.step', 0, fail);
  if (typeof status.stepStartedAt !== 'number' || !(status.stepStartedAt >= 0)) fail('rollout.status.stepStartedAt', 'must be a time in ms since the epoch');
  return { state: status.state, step, stepStartedAt: status.stepStartedAt, reason: status.reason ?? '' };
}

function resolveGates(gates: NonNullable<RolloutOptions['gates']>, fail: Fail): RolloutGates {
  if (typeof gates !== 'object' || gates === null) fail('rollout.gates', 'must be an object');
  for (const name of Object.keys(gates)) {
    if (!(name in gateDefaults)) fail(`rollout.gates.${name}`, `is not a known gate (known: ${Object.keys(gateDefaults).join(', ')})`);
  }
  const resolved = {} as Record<string, Record<string, number | null> | null>;
  for (const [name, defaults] of Object.entries(gateDefaults)) {
    const given = (gates as Record<string, unknown>)[name];
    if (given === false) {
      resolved[name] = null;
      continue;
    }
    if (given !== undefined && given !== true && (typeof given !== 'object' || given === null || Array.isArray(given))) {
      fail(`rollout.gates.${name}`, 'must be an object of thresholds, true for the defaults, or false to switch the gate off');
    }
    const gate: Record<string, number | null> = { ...defaults, ...(given === true ? {} : given as object | undefined) };
    for (const [key, value] of Object.entries(gate)) {
      const range = gateRanges[`${name}.${key}`];
      if (!range) fail(`rollout.gates.${name}.${key}`, `is not a known key (known: ${Object.keys(defaults).join(', ')})`);
      if (value === null && name === 'memory' && key === 'maxMB') continue;
      const [lowest, highest, lowestExcluded, wholeOnly] = range;
      if (typeof value !== 'number' || !Number.isFinite(value) || value > highest || (lowestExcluded ? value <= lowest : value < lowest)
        || (wholeOnly && !Number.isInteger(value))) {
        const kind = wholeOnly ? 'a whole number' : 'a number';
        fail(`rollout.gates.${name}.${key}`, `must be ${kind} ${lowestExcluded ? 'above' : 'from'} ${lowest} ${lowestExcluded ? 'up ' : ''}to ${highest}, not ${JSON.stringify(value)}`);
      }
    }
    resolved[name] = gate;
  }
  return resolved as unknown as RolloutGates;
}

function whole(value: unknown, key: string, lowest: number, fail: Fail, highest?: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < lowest || (highest !== undefined && value > highest)) {
    fail(key, `must be a whole number ${highest === undefined ? `>= ${lowest}` : `from ${lowest} to ${highest}`}, not ${JSON.stringify(value)}`);
  }
  return value as number;
}

/** The canary's weight now: its current step's; 0 after a rollback or abort, 100 once promoted. */
export function canaryWeight(rollout: RolloutConfig): number {
  if (rollout.status.state === 'promoted') return 100;
  if (rollout.status.state === 'rolled_back' || rollout.status.state === 'aborted') return 0;
  return stepWeight(rollout);
}

/** The canary's weight at the rollout's current step (`status.step`), whatever its state. */
export function stepWeight(rollout: RolloutConfig): number {
  const weight = rollout.steps[rollout.status.step];
  if (weight === undefined) throw new Error(`rollout.status.step ${rollout.status.step} is past the last of ${rollout.steps.length} steps`);
  return weight;
}

/**
 * The routing a rollout wants: the canary at its step's weight and the baseline at the rest, every other
 * weighted version at 0; promoted, the canary is the default with all the weight (as `promote` does). Rules
 * are left alone. Only two versions carry weight, so the canary owns one end of the sticky hash range and
 * its share only grows as steps grow: whoever reached the canary stays on it (see test/rollout-config).
 */
export function rolloutRouting(routing: ConfigFile['routing'], rollout: RolloutConfig): WeightedRouting {
  return routingWithCanary(routing, rollout.version, rollout.baseline, canaryWeight(rollout), rollout.status.state === 'promoted');
}

/** Routing that weighs versions: what a rollout writes. */
export type WeightedRouting = ConfigFile['routing'] & { weights: Record<string, number> };

/** The canary at `weight`, the baseline at the rest, every other weighted version at 0; promoted, also the default. */
export function routingWithCanary(
  routing: ConfigFile['routing'], canary: string, baseline: string, weight: number, promoted = false,
): WeightedRouting {
  const weights: Record<string, number> = {};
  for (const name of Object.keys(routing.weights ?? {})) weights[name] = 0;
  weights[baseline] = 100 - weight;
  weights[canary] = weight;
  return { ...routing, default: promoted ? canary : routing.default, weights };
}

/**
 * What an operator changed by hand in a running rollout's routing (weights, or the default by a promote or
 * rollback), in words; null when the file still routes as the step wants. A change by hand pauses the rollout.
 */
export function manualRoutingChange(routing: ConfigFile['routing'], rollout: RolloutConfig): string | null {
  if (rollout.status.state !== 'running' || rollout.status.stepStartedAt === null) return null;
  if (routing.default === rollout.version) return `routing.default set to ${rollout.version} by hand`;
  const wanted = rolloutRouting(routing, rollout).weights;
  const names = new Set([...Object.keys(wanted), ...Object.keys(routing.weights ?? {})]);
  const differs = [...names].some((name) => (routing.weights?.[name] ?? 0) !== (wanted[name] ?? 0));
  if (!differs) return null;
  const written = Object.entries(routing.weights ?? {}).map(([name, weight]) => `${name}=${weight}`).join(' ') || 'none';
  return `routing.weights set to ${written} by hand`;
}
