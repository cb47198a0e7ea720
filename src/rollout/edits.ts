import type { ConfigFile, RolloutConfig, RolloutOptions, RolloutState } from '../config/types.js';
import { finishedStates, resolveRollout, routingWithCanary, stepWeight } from '../config/rollout.js';
import { EditError } from '../config/edits.js';

/**
 * A rollout's transitions as pure edits of the config file's contents, the same shape as config/edits.ts's
 * `Edit`, so the controller, the CLI and the dashboard all apply them through updateConfigFile: under the
 * file's lock, to the file as it is now, validated before it is written. Each edit checks the state it
 * starts from against that file and throws RolloutError when it no longer applies.
 */
export type RolloutEdit = (config: ConfigFile) => void;

/**
 * `conflict`: the file moved on since the controller looked (someone paused or aborted first): skip quietly.
 * `invalid`: the request makes no sense in the rollout's state: tell whoever asked.
 */
export class RolloutError extends EditError {
  override name = 'RolloutError';
}

/** Everything `canary start` may set; the rest takes its default. */
export type StartOptions = Omit<RolloutOptions, 'status'>;

/** Starts a rollout at its first step, replacing a finished one; refused while one is running or paused. */
export function startRollout(options: StartOptions, now: number): RolloutEdit {
  return (config) => {
    const current = config.rollout?.status?.state;
    if (config.rollout && (current === undefined || !finishedStates.has(current))) {
      throw new RolloutError(`a rollout of ${config.rollout.version} is ${current ?? 'declared'}; abort it first`, 'invalid');
    }
    const baseline = options.baseline ?? config.routing.default;
    config.rollout = { ...options, baseline, status: { state: 'running', step: 0, stepStartedAt: now, reason: 'started' } };
    writeStepRouting(config, read(config));
  };
}

/** Writes the status of a rollout declared in the file by hand (it has none yet), and its first step's routing. */
export function beginRollout(now: number): RolloutEdit {
  return (config) => {
    if (config.rollout?.status !== undefined) throw new RolloutError('the rollout has begun already', 'conflict');
    setStatus(config, 'running', 0, now, 'declared in the config file');
    writeStepRouting(config, read(config));
  };
}

/** The controller's move to the next step; `fromStep` is the step it judged. */
export function advanceRollout(fromStep: number, now: number, reason: string): RolloutEdit {
  return (config) => {
    expectRunningAt(config, fromStep);
    setStatus(config, 'running', fromStep + 1, now, reason);
    writeStepRouting(config, read(config));
  };
}

/** Promotion, as `promote` does: the canary becomes routing.default with all the weight. */
export function promoteRollout(fromStep: number, now: number, reason: string): RolloutEdit {
  return (config) => {
    const rollout = expectRunningAt(config, fromStep);
    setStatus(config, 'promoted', fromStep, now, reason);
    config.routing = routingWithCanary(config.routing, rollout.version, rollout.baseline, 100, true);
  };
}

/** The controller's rollback on a failed gate at `fromStep`: all traffic to the baseline at once. */
export function rollBackRollout(fromStep: number, now: number, reason: string): RolloutEdit {
  return (config) => {
    const rollout = expectRunningAt(config, fromStep);
    endWithBaseline(config, rollout, 'rolled_back', now, reason);
  };
}

/** `canary abort`: back to the baseline now, from a running or paused rollout. */
export function abortRollout(now: number, reason = 'aborted by the operator'): RolloutEdit {
  return (config) => {
    const rollout = inProgress(config);
    endWithBaseline(config, rollout, 'aborted', now, reason);
  };
}

/**
 * `canary pause`, or the controller noticing a change by hand or a step past its progress deadline: stays at
 * the step, routing as it is. With `atStep` (the controller's), a file that has moved on is a conflict.
 */
export function pauseRollout(now: number, reason = 'paused by the operator', atStep?: number): RolloutEdit {
  return (config) => {
    if (atStep !== undefined) expectRunningAt(config, atStep);
    const rollout = inProgress(config);
    if (rollout.status.state === 'paused') throw new RolloutError(`the rollout of ${rollout.version} is already paused`, 'invalid');
    setStatus(config, 'paused', rollout.status.step, rollout.status.stepStartedAt ?? now, reason);
  };
}

/** `canary resume`: the step's routing again (a change by hand is undone) and a fresh window of evidence. */
export function resumeRollout(now: number): RolloutEdit {
  return (config) => {
    const rollout = inProgress(config);
    if (rollout.status.state !== 'paused') throw new RolloutError(`the rollout of ${rollout.version} is not paused`, 'invalid');
    setStatus(config, 'running', rollout.status.step, now, 'resumed by the operator');
    writeStepRouting(config, read(config));
  };
}

function read(config: ConfigFile): RolloutConfig {
  const rollout = resolveRollout(config, (key, message) => {
    throw new RolloutError(`${key} ${message}`, 'invalid');
  });
  if (!rollout) throw new RolloutError('no rollout in the config file', 'invalid');
  return rollout;
}

function inProgress(config: ConfigFile): RolloutConfig {
  const rollout = read(config);
  if (finishedStates.has(rollout.status.state)) {
    throw new RolloutError(`no rollout in progress: the rollout of ${rollout.version} was ${rollout.status.state.replace('_', ' ')}`, 'invalid');
  }
  return rollout;
}

function expectRunningAt(config: ConfigFile, step: number): RolloutConfig {
  const rollout = config.rollout ? read(config) : undefined;
  if (rollout?.status.state !== 'running' || rollout.status.step !== step || rollout.status.stepStartedAt === null) {
    throw new RolloutError(`the rollout is no longer running at step ${step}`, 'conflict');
  }
  return rollout;
}

function setStatus(config: ConfigFile, state: RolloutState, step: number, stepStartedAt: number, reason: string): void {
  if (!config.rollout) throw new RolloutError('no rollout in the config file', 'invalid');
  config.rollout = { ...config.rollout, status: { state, step, stepStartedAt, reason } };
}

function writeStepRouting(config: ConfigFile, rollout: RolloutConfig): void {
  config.routing = routingWithCanary(config.routing, rollout.version, rollout.baseline, stepWeight(rollout));
}

/**
 * All weight to the baseline. Unless told to keep the canary for inspection, its version leaves the file (so
 * its workers drain), except when a rule routes to it: the operator's rules are theirs to change.
 */
function endWithBaseline(config: ConfigFile, rollout: RolloutConfig, state: 'rolled_back' | 'aborted', now: number, reason: string): void {
  config.routing = routingWithCanary(config.routing, rollout.version, rollout.baseline, 0);
  let why = reason;
  if (!rollout.keepCanaryOnRollback) {
    if ((config.routing.rules ?? []).some((rule) => rule.to === rollout.version)) {
      why += `; ${rollout.version} kept: a routing rule routes to it`;
    } else {
      delete config.versions[rollout.version];
      if (config.routing.weights) delete config.routing.weights[rollout.version];
    }
  }
  setStatus(config, state, rollout.status.step, rollout.status.stepStartedAt ?? now, why);
}
