/** The outcome of an operator's command, the same for the CLI and the dashboard. */
export type ControlResult =
  | { ok: true; changes: string[]; file?: string; inspector?: InspectorAddress }
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
  /** Writes a heap snapshot of a live worker to `diagnostics.folder`; `file` is its path. 409 while one is written. */
  heapSnapshot(workerId: string): Promise<ControlResult>;
  /** Opens a live worker's inspector on a loopback port (`inspector` is its address), or closes it. */
  inspect(workerId: string, open: boolean): Promise<ControlResult>;
}

/** Where an opened inspector listens: the ws:// URL, and the address to paste into Chrome. */
export interface InspectorAddress {
  url: string;
  devtools: string;
}

export type RolloutAction = 'pause' | 'resume' | 'abort';
