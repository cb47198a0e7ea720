import type { ConfigFile, RolloutConfig } from '../config/types.js';
import { manualRoutingChange } from '../config/rollout.js';
import { advanceRollout, beginRollout, pauseRollout, promoteRollout, rollBackRollout, type RolloutEdit } from './edits.js';
import { duration } from './format.js';
import { judgeWindow, type Judgement } from './gates.js';
import { measureWindow, type Snapshot } from './window.js';

/**
 * What the controller remembers between ticks: the snapshot its window starts from, for one step of one run.
 * It lives in memory only, so after a restart of graycluster the step resumes with a fresh window: counters
 * restarted with the workers, and a step is promoted only on `stepMs` of evidence.
 */
export interface ControllerMemory {
  /** The step (and its start) the window belongs to; when the file's differs, the window starts again. */
  key: string;
  windowStart: Snapshot;
}

export interface TickInput {
  /** The rollout as the config file says now (ResolvedConfig.rollout). */
  rollout: RolloutConfig | null;
  /** The file's routing as written (ResolvedConfig.raw.routing), to notice a change by hand. */
  routing: ConfigFile['routing'];
  /** Every worker now (the `workers` of /api/status). */
  snapshot: Snapshot;
  memory: ControllerMemory | null;
}

export type TickAction = 'idle' | 'begin' | 'wait' | 'advance' | 'promote' | 'roll-back' | 'pause';

export interface TickResult {
  action: TickAction;
  /** The verdict in words: why it waits, advances, rolls back. */
  reason: string;
  /** Apply with updateConfigFile; a RolloutError 'conflict' from it means the file moved first: skip. */
  edit: RolloutEdit | null;
  /** A line for the events log when something happened; null while it only waits. */
  event: string | null;
  /** The gates' judgement of the current window, null before there is one. */
  judgement: Judgement | null;
  /** Pass to the next tick. */
  memory: ControllerMemory | null;
}

/**
 * One evaluation of a rollout, as a pure function of the file and the workers' counters now: the controller
 * in the primary calls it every `checkIntervalMs`. A running rollout rolls back at once on a failed gate,
 * waits while gates lack samples (pausing at `progressDeadlineMs`) or the step's time is not up, and advances (or, after the last step that
 * has a baseline to compare with, promotes) when every gate passed over `stepMs` of fresh evidence.
 */
export function tick({ rollout, routing, snapshot, memory }: TickInput): TickResult {
  const now = snapshot.at;
  const result = (action: TickAction, reason: string, extra: Partial<TickResult> = {}): TickResult => ({
    action, reason, edit: null, event: null, judgement: null, memory: null, ...extra,
  });
  if (!rollout) return result('idle', 'no rollout');
  const { state, step, stepStartedAt } = rollout.status;
  if (state !== 'running') return result('idle', rollout.status.reason ? `${state.replace('_', ' ')}: ${rollout.status.reason}` : state.replace('_', ' '));
  const where = `step ${step + 1} of ${rollout.steps.length} (${rollout.steps[step]} %)`;
  if (stepStartedAt === null) {
    return result('begin', `${where}: begins`, { edit: beginRollout(now), event: `rollout of ${rollout.version} begins at ${where}` });
  }
  const manual = manualRoutingChange(routing, rollout);
  if (manual) {
    const reason = `${manual}: rollout paused`;
    return result('pause', reason, { edit: pauseRollout(now, reason, step), event: `rollout of ${rollout.version} paused at ${where}: ${manual}` });
  }
  if (rollout.steps[step] === 100) return promote(rollout, now, `${where}: nothing left to compare with`, result);

  const key = `${step}@${stepStartedAt}`;
  if (memory?.key !== key) {
    return result('wait', `${where}: window starts`, { memory: { key, windowStart: snapshot } });
  }
  const judgement = judgeWindow(measureWindow(memory.windowStart, snapshot, rollout.version, rollout.baseline), rollout);
  if (judgement.verdict === 'fail') {
    return result('roll-back', judgement.reason, {
      judgement, edit: rollBackRollout(step, now, judgement.reason),
      event: `rollout of ${rollout.version} rolled back at ${where}: ${judgement.reason}`,
    });
  }
  if (judgement.verdict === 'waiting') {
    const waited = now - memory.windowStart.at;
    if (rollout.progressDeadlineMs !== null && waited >= rollout.progressDeadlineMs) {
      // Too little traffic says nothing about the canary: neither advance nor roll back, ask a person.
      const reason = `no verdict after ${duration(waited)} (progress deadline ${duration(rollout.progressDeadlineMs)}): ${judgement.reason}`;
      return result('pause', `${where}: ${reason}`, {
        judgement, edit: pauseRollout(now, reason, step), event: `rollout of ${rollout.version} paused at ${where}: ${reason}`,
      });
    }
    return result('wait', `${where}: ${judgement.reason}`, { judgement, memory });
  }
  const left = rollout.stepMs - (now - memory.windowStart.at);
  if (left > 0) return result('wait', `${where}: ${duration(left)} left; ${judgement.reason}`, { judgement, memory });
  const lastJudged = step === rollout.steps.length - 1 || rollout.steps[step + 1] === 100;
  if (lastJudged) return promote(rollout, now, `${where} passed: ${judgement.reason}`, result, judgement);
  const next = `step ${step + 2} of ${rollout.steps.length} (${rollout.steps[step + 1]} %)`;
  return result('advance', `${where} passed: ${judgement.reason}`, {
    judgement, edit: advanceRollout(step, now, `${where} passed: ${judgement.reason}`),
    event: `rollout of ${rollout.version} advances to ${next}: ${where} passed: ${judgement.reason}`,
  });
}

function promote(
  rollout: RolloutConfig, now: number, reason: string,
  result: (action: TickAction, reason: string, extra?: Partial<TickResult>) => TickResult, judgement: Judgement | null = null,
): TickResult {
  return result('promote', reason, {
    judgement, edit: promoteRollout(rollout.status.step, now, reason),
    event: `${rollout.version} promoted to routing.default: ${reason}`,
  });
}
