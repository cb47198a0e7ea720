/**
 * The worker lifecycle as data: every state a worker slot can be in, what each carries, and which moves
 * between them are allowed. No I/O here; `lifecycle.ts` performs the moves through one transition function.
 *
 *   stopped ─fork─▶ starting ─ready─▶ ready ⇄ unresponsive
 *                      │                │          │
 *                      └──── exit ──────┴──────────┴─▶ restarting | crashloop ─timer─▶ starting
 *   starting | ready | unresponsive ─drain─▶ draining ─exit─▶ stopped
 */
import type { WorkerStats } from '../ipc/messages.js';
import type { Deadline } from '../shared/stalls.js';
import type { BackoffPolicy } from './backoff.js';
import { restartDelay } from './backoff.js';
import type { WorkerProcess } from './worker-process.js';

/** Who a running worker belongs to: its version's pool, or the rolling replacement that forked it. */
export type Owner = { kind: 'pool' } | { kind: 'replacement'; replacement: symbol };

export const poolOwner: Owner = { kind: 'pool' };

export type WorkerState =
  | { kind: 'starting'; process: WorkerProcess; owner: Owner; startedAt: number; readyTimer: Deadline }
  | { kind: 'ready'; process: WorkerProcess; owner: Owner; startedAt: number; readyAt: number }
  /** Ready, but its heartbeat stopped (event loop blocked): gets no new connections. */
  | { kind: 'unresponsive'; process: WorkerProcess; owner: Owner; startedAt: number; readyAt: number; since: number }
  | { kind: 'draining'; process: WorkerProcess; startedAt: number; killTimer: Deadline }
  /** Waiting out its backoff after a crash; `crashloop` once it failed `crashloopAfter` times in a row. */
  | { kind: 'restarting'; delayMs: number; timer: NodeJS.Timeout }
  | { kind: 'crashloop'; delayMs: number; timer: NodeJS.Timeout }
  | { kind: 'stopped' };

export type WorkerStateKind = WorkerState['kind'];

/** The moves the lifecycle may make; anything else is a bug, and `transition` throws on it. */
export const allowedTransitions: Readonly<Record<WorkerStateKind, readonly WorkerStateKind[]>> = {
  stopped: ['starting'],
  starting: ['ready', 'draining', 'restarting', 'crashloop', 'stopped'],
  ready: ['ready', 'unresponsive', 'draining', 'restarting', 'crashloop', 'stopped'],
  unresponsive: ['ready', 'draining', 'restarting', 'crashloop', 'stopped'],
  draining: ['stopped'],
  restarting: ['starting', 'stopped'],
  crashloop: ['starting', 'stopped'],
};

export function canTransition(from: WorkerStateKind, to: WorkerStateKind): boolean {
  return allowedTransitions[from].includes(to);
}

/** Stops whatever timer a state carries, as the slot leaves it. */
export function clearStateTimers(state: WorkerState): void {
  if (state.kind === 'starting') state.readyTimer.clear();
  else if (state.kind === 'draining') state.killTimer.clear();
  else if (state.kind === 'restarting' || state.kind === 'crashloop') clearTimeout(state.timer);
}

/** The process of a state that has one. */
export function processOf(state: WorkerState): WorkerProcess | undefined {
  return 'process' in state ? state.process : undefined;
}

/** What follows a crash or a failed start: restart after a backoff, in crashloop past the threshold. */
export function afterFailure(
  previousFailures: number, readyFor: number | undefined, policy: BackoffPolicy,
): { failures: number; kind: 'restarting' | 'crashloop'; delayMs: number } {
  const failures = (readyFor !== undefined && readyFor >= policy.healthyAfterMs ? 0 : previousFailures) + 1;
  return { failures, kind: failures >= policy.crashloopAfter ? 'crashloop' : 'restarting', delayMs: restartDelay(failures, policy) };
}

/** The worker states the status API reports (unchanged for users): waiting to restart shows as stopped. */
export const publicWorkerStates = ['starting', 'ready', 'draining', 'crashloop', 'stopped'] as const;
export type PublicWorkerState = (typeof publicWorkerStates)[number];
/** A version's state: ready when one of its workers is, crashloop when all of them are stuck there. */
export const versionStates = ['starting', 'ready', 'crashloop', 'stopped'] as const;
export type VersionState = (typeof versionStates)[number];

export function publicState(state: WorkerState): PublicWorkerState {
  switch (state.kind) {
    case 'unresponsive': return 'ready';
    case 'restarting': return 'stopped';
    default: return state.kind;
  }
}

/** A read-only picture of one worker, for status and the dashboard. */
export interface WorkerView {
  readonly id: string;
  readonly version: string;
  readonly pid: number | undefined;
  readonly state: PublicWorkerState;
  readonly unresponsive: boolean;
  readonly restarts: number;
  readonly startedAt: number | undefined;
  /** Resident memory, as the primary samples it, or as the worker last reported it. */
  readonly rss: number;
  /** Percent of one core over the primary's last sampling interval; null until two samples (or without /proc). */
  readonly cpuPercent: number | null;
  /** CPU time (user + system) of its current process, in seconds; null without /proc. */
  readonly cpuSeconds: number | null;
  /** Whether it listens on its version's own port, and why not; undefined until it says (or without a port). */
  readonly versionPort: { readonly listening: boolean; readonly error: string | null } | undefined;
  readonly stats: Readonly<WorkerStats>;
}
