/**
 * The primary's side of the contract with each worker process: the env it is forked with, the settings every
 * worker is sent, and how the primary answers what the process does (one small handler per message kind, its
 * app listening, its exit and restart with backoff). Lifecycle wires them to its processes; a state change
 * still happens only in `Lifecycle.transition`.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import type { ResolvedConfig, VersionConfig } from '../config/types.js';
import type { ToPrimary, WorkerSettings } from '../ipc/messages.js';
import { encodeWorkerEnv } from '../ipc/worker-env.js';
import type { TcpHandle } from '../shared/node-internals.js';
import { runningNow } from '../shared/stalls.js';
import type { BackoffPolicy } from './backoff.js';
import { ClientConnection } from './client-connection.js';
import type { EventLog, LifecycleEvent } from './events.js';
import type { WorkerProcess } from './worker-process.js';
import type { WorkerSlot } from './worker-slot.js';
import { afterFailure, processOf, type WorkerState } from './worker-state.js';

/** An event about one worker, before the lifecycle adds its version, id and pid. */
export type Happening = Omit<LifecycleEvent, 'time' | 'version' | 'workerId' | 'pid'>;

/** Where every worker's app believes it listens, and the private folder for their forward sockets. */
export interface WorkerPlace {
  publicHost: string;
  publicPort: number;
  runDir: string;
}

/** The env a worker of `version` is forked with, as slot `slot`. */
export function workerEnv(slot: WorkerSlot, version: VersionConfig, server: ResolvedConfig['server'], place: WorkerPlace): Record<string, string | undefined> {
  return encodeWorkerEnv({
    version: version.name,
    workerId: slot.id,
    entry: version.entry,
    maxInFlight: version.maxInFlight,
    runDir: place.runDir,
    port: place.publicPort,
    host: place.publicHost,
    statsIntervalMs: server.statsIntervalMs,
    versionPort: version.port,
  }, version.env);
}

/** What every worker needs to route the later requests on its connections. */
export function workerSettings(config: ResolvedConfig, live: Iterable<WorkerSlot>, serving: string[], sharedLeading: string | null = null): WorkerSettings {
  const forwardPaths: Record<string, string[]> = Object.create(null) as Record<string, string[]>;  // Keyed by version name.
  for (const slot of live) {
    if (slot.state.kind === 'ready' && slot.forwardPath) (forwardPaths[slot.version] ??= []).push(slot.forwardPath);
  }
  return {
    routing: config.routing,
    versions: [...config.versions.keys()],
    serving,
    forwardPaths,
    versionHeader: config.server.versionHeader,
    forwardMaxPending: config.server.forwardMaxPending,
    relayMaxIdlePerTarget: config.server.relayMaxIdlePerTarget,
    relayIdleTimeoutMs: config.server.relayIdleTimeoutMs,
    headTimeoutMs: config.server.headTimeoutMs,
    maxPendingConnections: config.server.maxPendingConnections,
    maxPendingPerSource: config.server.maxPendingPerSource,
    trustProxy: config.server.trustProxy,
    sharedLeading,
  };
}

/** Sends `settings` to every slot whose process is connected. */
export function sendSettings(slots: Iterable<WorkerSlot>, settings: WorkerSettings): void {
  for (const slot of slots) {
    const process = processOf(slot.state);
    if (process?.isConnected()) process.send({ kind: 'settings', settings });
  }
}

/** What the handlers may do: every state change goes through `transition`. */
export interface WorkerProcessContext {
  readonly events: EventLog;
  readonly backoff: BackoffPolicy;
  runDir(): string;
  /** True once the lifecycle stops: an exit is then final. */
  closed(): boolean;
  transition(slot: WorkerSlot, next: WorkerState, happening?: Happening): void;
  /** Forks a crashed pool member's slot again. */
  restart(slot: WorkerSlot): void;
  refused(slot: WorkerSlot, client: ClientConnection, bytes: Buffer, assignCookie: string | undefined, routeFirst: boolean): void;
  sharedPeer(address: string): void;
  unpooledPeer(address: string): void;
}

/** One handler per message kind, called with the process that sent it while that process is the slot's. */
export type WorkerMessageHandlers = {
  [K in ToPrimary['kind']]: (slot: WorkerSlot, process: WorkerProcess, message: Extract<ToPrimary, { kind: K }>, handle?: TcpHandle) => void
};

/** How the primary answers what a worker process does: its messages, its app listening, its exit. */
export interface WorkerProcessHandlers {
  messages: WorkerMessageHandlers;
  ready(slot: WorkerSlot, process: WorkerProcess): void;
  exit(slot: WorkerSlot, process: WorkerProcess, code: number | null, signal: string | null): void;
}

export function workerProcessHandlers(context: WorkerProcessContext): WorkerProcessHandlers {
  const ready = (slot: WorkerSlot, process: WorkerProcess): void => {
    const state = slot.state;
    if (state.kind !== 'starting' || state.process !== process) return;
    const readyAt = Date.now();
    slot.lastReportAt = runningNow();
    context.transition(slot, { kind: 'ready', process, owner: state.owner, startedAt: state.startedAt, readyAt },
      { type: 'ready', message: `ready in ${readyAt - state.startedAt} ms` });
  };

  const exit = (slot: WorkerSlot, process: WorkerProcess, code: number | null, signal: string | null): void => {
    const state = slot.state;
    if (!('process' in state) || state.process !== process) return;
    if (slot.forwardPath) rmSync(slot.forwardPath, { force: true });
    slot.forwardPath = undefined;
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    slot.exitReason = how;
    slot.resetProcessFigures();
    const wasReady = state.kind === 'ready' || state.kind === 'unresponsive';
    const failedHow = `${wasReady ? 'crashed' : 'failed to start'} (${how})`;
    if (state.kind === 'draining' || context.closed()) {
      context.transition(slot, { kind: 'stopped' }, { type: 'stopped', message: `stopped (${how})` });
      return;
    }
    if (state.owner.kind === 'replacement') {
      context.transition(slot, { kind: 'stopped' }, { type: 'crashed', message: failedHow });
      return;
    }
    const next = afterFailure(slot.failures, wasReady ? Date.now() - state.readyAt : undefined, context.backoff);
    slot.failures = next.failures;
    slot.restarts++;
    const timer = setTimeout(() => {
      context.events.record({ type: 'restarting', version: slot.version, workerId: slot.id, message: `restart ${slot.restarts}${next.delayMs > 0 ? ` after ${next.delayMs} ms` : ''}` });
      context.restart(slot);
    }, next.delayMs);
    context.transition(slot, { kind: next.kind, delayMs: next.delayMs, timer },
      { type: 'crashed', message: `${failedHow}; restarting ${next.delayMs > 0 ? `in ${next.delayMs} ms` : 'at once'}` });
  };

  const messages: WorkerMessageHandlers = {
    listening: (slot, process, message) => {
      // The primary removes this file when the worker dies: accept only a path inside our own run folder.
      if (path.dirname(message.forwardPath) === context.runDir()) slot.forwardPath = message.forwardPath;
      ready(slot, process);
    },
    stats: (slot, _process, message) => {
      slot.noteReport(message.stats);
      const state = slot.state;
      if (state.kind === 'unresponsive') {
        context.transition(slot, { kind: 'ready', process: state.process, owner: state.owner, startedAt: state.startedAt, readyAt: state.readyAt },
          { type: 'recovered', message: 'heartbeat is back' });
      }
    },
    load: (slot, _process, message) => {
      slot.stats.inFlight = message.inFlight;
    },
    refused: (slot, _process, message, handle) => {
      if (handle) context.refused(slot, new ClientConnection(handle), Buffer.from(message.bytes, 'base64'), message.assignCookie, message.routeFirst === true);
    },
    'shared-peer': (_slot, _process, message) => {
      if (typeof message.address === 'string' && message.address !== '') context.sharedPeer(message.address);
    },
    'unpooled-peer': (_slot, _process, message) => {
      if (typeof message.address === 'string' && message.address !== '') context.unpooledPeer(message.address);
    },
    'version-port': (slot, _process, message) => {
      slot.versionPort = { listening: message.listening === true, error: typeof message.error === 'string' ? message.error : null };
    },
    diagnosed: () => {},  // Heard by the request that asked for it (diagnostics.ts).
    fatal: (slot, process, message) => {
      context.events.record({ type: 'error', version: slot.version, workerId: slot.id, pid: process.pid, message: message.message });
    },
  };
  return { messages, ready, exit };
}
