import type { ResolvedConfig } from '../config/types.js';
import { performance } from 'node:perf_hooks';
import { cpuPercent, cpuSeconds, residentBytes } from '../shared/procfs.js';
import { ranSince, runningNow } from '../shared/stalls.js';
import type { Lifecycle } from './lifecycle.js';
import type { WorkerSlot } from './worker-slot.js';

const megabyte = 1024 * 1024;

/** The rss at which a version's worker is killed at once: maxMemoryHardMB, else twice maxMemoryMB. */
export function hardMemoryLimitMB(version: { maxMemoryMB: number | null; maxMemoryHardMB: number | null }): number | null {
  return version.maxMemoryHardMB ?? (version.maxMemoryMB === null ? null : version.maxMemoryMB * 2);
}

/** Reads the worker's CPU time and, from the reading before, the percent of a core it used in between. */
function sampleCpu(slot: WorkerSlot, pid: number): void {
  const seconds = cpuSeconds(pid);
  if (seconds === undefined) return;
  const reading = { seconds, atMs: performance.now() };
  if (slot.sampledCpu) slot.cpuPercent = cpuPercent(slot.sampledCpu, reading) ?? slot.cpuPercent;
  slot.sampledCpu = reading;
}

/**
 * Samples every worker from the primary's side, every statsIntervalMs: its rss and CPU time from /proc (known even
 * when its event loop is stuck), its heartbeat, and its memory limits. A worker over maxMemoryMB is replaced rolling
 * (`replace`); over the hard limit, or silent past unresponsiveRestartMs, it is killed.
 */
export class HealthMonitor {
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly lifecycle: Lifecycle,
    private readonly config: () => ResolvedConfig,
    private readonly replace: (slot: WorkerSlot, reason: string) => void,
  ) {
    lifecycle.on('transition', (slot, _from, to) => {
      if (to.kind !== 'ready' || to.process.pid === undefined) return;
      slot.sampledRss = residentBytes(to.process.pid) ?? slot.sampledRss;
      sampleCpu(slot, to.process.pid);
    });
  }

  start(): void {
    this.#timer = setInterval(() => this.sample(), this.config().server.statsIntervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** `now` is a runningNow() reading: silence over a stall of this process does not count (shared/stalls.ts). */
  sample(now = runningNow()): void {
    const { heartbeatTimeoutMs, unresponsiveRestartMs } = this.config().server;
    for (const slot of this.lifecycle.slots) {
      const pid = slot.process?.pid;
      if (pid === undefined) continue;
      slot.sampledRss = residentBytes(pid) ?? slot.sampledRss;
      sampleCpu(slot, pid);
      if (this.#overHardLimit(slot)) continue;
      const kind = slot.state.kind;
      if (kind !== 'ready' && kind !== 'unresponsive') continue;
      const silentMs = Math.round(ranSince(slot.lastReportAt, now));
      if (silentMs > unresponsiveRestartMs) {
        this.lifecycle.kill(slot, { type: 'unresponsive', message: `no heartbeat for ${silentMs} ms: killing it` });
        continue;
      }
      if (silentMs > heartbeatTimeoutMs) this.lifecycle.markUnresponsive(slot, silentMs);
      const limit = this.config().versions.get(slot.version)?.maxMemoryMB ?? null;
      if (kind === 'ready' && limit !== null && slot.rss > limit * megabyte) {
        this.replace(slot, `memory ${Math.round(slot.rss / megabyte)} MB over maxMemoryMB ${limit}`);
      }
    }
  }

  /** Kills a worker past its hard memory limit, whatever its state: a fast leak must not take the host down. */
  #overHardLimit(slot: WorkerSlot): boolean {
    const version = this.config().versions.get(slot.version);
    const hard = version ? hardMemoryLimitMB(version) : null;
    if (hard === null || slot.rss <= hard * megabyte) return false;
    this.lifecycle.kill(slot, { type: 'failed', message: `memory ${Math.round(slot.rss / megabyte)} MB over the hard limit of ${hard} MB: killing it` });
    return true;
  }
}
