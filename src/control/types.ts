/** The outcome of an operator's command, the same for the CLI and the dashboard. */
export type ControlResult =
  | { ok: true; changes: string[] }
  | { ok: false; status: number; error: string };

/**
 * The operator's moves on a running supervisor. Every one goes through the config file (written atomically),
 * so the file stays the single source of truth; the dashboard and the CLI both call these.
 */
export interface Controls {
  setWeights(weights: Record<string, number>): Promise<ControlResult>;
  promote(version: string): Promise<ControlResult>;
  rollback(): Promise<ControlResult>;
  restartWorker(workerId: string): Promise<ControlResult>;
  reload(version?: string): Promise<ControlResult>;
  /** Pauses, resumes or aborts (back to the baseline now) the progressive rollout in the config file. */
  rollout(action: RolloutAction): Promise<ControlResult>;
}

export type RolloutAction = 'pause' | 'resume' | 'abort';
