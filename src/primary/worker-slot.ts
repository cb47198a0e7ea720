import type { CpuReading } from '../shared/procfs.js';
import { runningNow } from '../shared/stalls.js';
import { statusClasses, type WorkerStats } from '../ipc/messages.js';
import { processOf, publicState, type WorkerState, type WorkerView } from './worker-state.js';
import type { WorkerProcess } from './worker-process.js';

export function emptyStats(): WorkerStats {
  return {
    rss: 0, heapUsed: 0, heapTotal: 0, inFlight: 0, connections: 0, requests: 0,
    statusClasses: Object.fromEntries(statusClasses.map((name) => [name, 0])) as WorkerStats['statusClasses'],
    shed: 0, forwarded: 0, forwardShed: 0, pendingTurnedAway: 0, latencyBuckets: [], latencySumMs: 0, eventLoopDelayMs: 0,
  };
}

const stateOf = new WeakMap<WorkerSlot, WorkerState>();

/** Sets a slot's state. Only `Lifecycle.transition` calls this: it checks, records and announces the move. */
export function setSlotState(slot: WorkerSlot, state: WorkerState): void {
  stateOf.set(slot, state);
}

/**
 * One place in a version's pool, inside the primary. Its process comes and goes (crash, restart); the slot
 * and its id stay. Its state is changed by the lifecycle alone; what others see of it is `view()`.
 */
export class WorkerSlot {
  /** Restarts after a crash or a failed start. */
  restarts = 0;
  /** Failures since the slot was last healthy; drives the backoff and crashloop. */
  failures = 0;
  stats = emptyStats();
  /** Connections handed over since the last stats report, so the load estimate is never a second stale. */
  handoffsSinceReport = 0;
  /** When it last reported (its heartbeat), as runningNow(). */
  lastReportAt = 0;
  /** Resident memory as the primary reads it from /proc: known even when the worker's event loop is stuck. */
  sampledRss: number | undefined;
  /** The last CPU-time reading from /proc, and the percent of a core used since the one before. */
  sampledCpu: CpuReading | undefined;
  cpuPercent: number | undefined;
  forwardPath: string | undefined;
  /** Whether its process listens on the version's own port, as it last said (undefined: it has said nothing). */
  versionPort: { listening: boolean; error: string | null } | undefined;
  /** How its last process ended, e.g. "exit code 1". */
  exitReason: string | undefined;

  constructor(readonly id: string, readonly version: string) {
    stateOf.set(this, { kind: 'stopped' });
  }

  get state(): WorkerState {
    return stateOf.get(this)!;  // Set in the constructor and only ever replaced.
  }

  get process(): WorkerProcess | undefined {
    return processOf(this.state);
  }

  get rss(): number {
    return this.sampledRss ?? this.stats.rss;
  }

  /** Connections it holds plus those on their way: what "least loaded" compares. */
  get load(): number {
    return this.stats.connections + this.handoffsSinceReport;
  }

  /** Forgets the figures of its process: at a fork, and when the process ends (a worker without one has none). */
  resetProcessFigures(): void {
    this.stats = emptyStats();
    this.handoffsSinceReport = 0;
    this.sampledRss = undefined;
    this.sampledCpu = undefined;
    this.cpuPercent = undefined;
    this.versionPort = undefined;
    this.lastReportAt = runningNow();
  }

  noteReport(stats: WorkerStats): void {
    this.stats = stats;
    this.handoffsSinceReport = 0;
    this.lastReportAt = runningNow();
  }

  view(): WorkerView {
    const state = this.state;
    return {
      id: this.id,
      version: this.version,
      pid: this.process?.pid,
      state: publicState(state),
      unresponsive: state.kind === 'unresponsive',
      restarts: this.restarts,
      startedAt: 'startedAt' in state ? state.startedAt : undefined,
      rss: this.rss,
      cpuPercent: this.cpuPercent ?? null,
      cpuSeconds: this.sampledCpu?.seconds ?? null,
      versionPort: this.versionPort,
      stats: { ...this.stats },
    };
  }
}
