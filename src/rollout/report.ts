import type { RolloutConfig, RolloutState } from '../config/types.js';
import { canaryWeight } from '../config/rollout.js';
import type { TickResult } from './controller.js';
import type { GateVerdict, Verdict } from './gates.js';

/** The `rollout` object of GET /api/status (null there when the file has no rollout). */
export interface RolloutReport {
  version: string;
  baseline: string;
  state: RolloutState;
  /** 0-based index into `steps`. */
  step: number;
  /** The canary's weight now: its step's, 100 once promoted, 0 once rolled back or aborted. */
  weight: number;
  steps: number[];
  stepMs: number;
  /** When the step (or the last resume) began, ms since the epoch; null before a declared rollout begins. */
  stepStartedAt: number | null;
  timeInStepMs: number | null;
  /** The last verdict in words: the controller's latest while running, else the reason of the last transition. */
  reason: string;
  /** The current window's overall verdict; null when none was judged yet (or the rollout is not running). */
  verdict: Verdict | null;
  window: { fromMs: number; toMs: number; canaryRequests: number; baselineRequests: number } | null;
  /** Each gate switched on, with its figures for both versions over the current window. */
  gates: GateVerdict[];
}

/** Builds the report from the file's rollout and the controller's last tick (null before its first). */
export function rolloutReport(rollout: RolloutConfig | null, last: TickResult | null, now: number): RolloutReport | null {
  if (!rollout) return null;
  const { state, step, stepStartedAt, reason } = rollout.status;
  const live = state === 'running' && last !== null;
  const judgement = live ? last.judgement : null;
  return {
    version: rollout.version,
    baseline: rollout.baseline,
    state,
    step,
    weight: canaryWeight(rollout),
    steps: [...rollout.steps],
    stepMs: rollout.stepMs,
    stepStartedAt,
    timeInStepMs: stepStartedAt === null ? null : Math.max(0, now - stepStartedAt),
    reason: live ? last.reason : reason,
    verdict: judgement?.verdict ?? null,
    window: judgement?.window ?? null,
    gates: judgement?.gates ?? [],
  };
}
