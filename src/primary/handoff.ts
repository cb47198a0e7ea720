// Over 300 lines on purpose: every path a connection can take between its routing decision and a worker holding it
// (sent, answered, refused, overdue, its worker dead, waiting for one to start) is read together, in one owner.
import type { ResolvedConfig } from '../config/types.js';
import type { ToWorker } from '../ipc/messages.js';
import { retryAfterSeconds } from '../shared/answers.js';
import { Deadline, ranSince, runningNow } from '../shared/stalls.js';
import { pickWorker, type Candidate } from './balancer.js';
import type { ClientConnection } from './client-connection.js';
import type { EventLog } from './events.js';
import type { Lifecycle } from './lifecycle.js';
import { refuse } from './respond.js';
import type { WorkerProcess } from './worker-process.js';
import type { WorkerSlot } from './worker-slot.js';
import { processOf, type WorkerState } from './worker-state.js';

/** A connection whose version is decided, on its way to a worker. */
interface Connection {
  /** Held open here until the worker it is sent to acknowledges it. */
  client: ClientConnection;
  /** Everything read of it so far: it goes to the worker with the handle. */
  bytes: Buffer;
  version: string;
  assignCookie: string | undefined;
  /** Its first request is routed by the worker (it goes to `version` for its peer's sake: shared-peers.ts). */
  routeFirst: boolean;
  /** With routeFirst from the router: the version of its first request, to go to if `version` cannot take it. */
  firstVersion: string | undefined;
  /** Workers that already failed to take it (most connections have none). */
  excluded?: WorkerSlot[];
  /** While no worker of its version (nor of routing.default) is ready yet: since when it waits (runningNow()). */
  waitingSince?: number;
  /** What goes to the worker with the handle, built once. */
  message?: ToWorker;
}

export interface PlaceOptions {
  /** A worker that already failed to take the connection. */
  exclude?: WorkerSlot | undefined;
  /** The version to place it with instead of its first request's (shared-peers.ts). */
  owner?: string | undefined;
  /** Its first request is routed by the worker (it was placed for an owner before, and handed back). */
  routeFirst?: boolean | undefined;
}

/**
 * One worker process's side of the handoff: the connections sent and not answered yet (as many as its channel's
 * window admits, ipc/handle-window.ts), and a bounded queue behind them.
 */
interface Lane {
  slot: WorkerSlot;
  process: WorkerProcess;
  /** Oldest first: the worker answers in the order it was sent them. `sentAt`: runningNow() when sent. */
  inFlight: InFlight[];
  /** The one timer that checks the oldest connection in flight against handoffTimeoutMs (see #watchOverdue). */
  overdueCheck: NodeJS.Timeout | undefined;
  queue: Connection[];
  /** A connection it was sent was not acknowledged within handoffTimeoutMs: it gets nothing new until it is. */
  overdue: boolean;
  /**
   * Until when it gets nothing new because the last connection sent reached it without its socket (it has no
   * file descriptor free); 0 when it takes connections. After that time the next connection tries it again.
   */
  refusingUntil: number;
}

interface InFlight {
  connection: Connection;
  sentAt: number;
}

export interface HandoffCounters {
  /** Connections handed to a worker. */
  handedOff: number;
  /** Connections sent to routing.default because their version had no worker able to take them. */
  fallbacks: number;
  /** Connections answered 503 here, for want of a worker. */
  unavailable: number;
}

/**
 * Owns every connection from the moment its version is decided until a worker holds it: pick → send →
 * acknowledged, or refused / failed / timed out → placed elsewhere, falling back to routing.default, or
 * answered 503. Node sends a worker one handle at a time and queues the rest itself, forgetting them when the
 * worker dies; here each worker has a few connections unacknowledged at most (its channel's window, so that a
 * busy worker takes them in batches) and a bounded queue we control (`server.maxQueuedHandoffs`), so nothing of
 * one worker's trouble spills onto another version. A connection goes
 * as its bare handle, and the primary's copy stays open until the worker acknowledges it (Node closes a bare
 * handle's copy for no one), so one that never arrives can still be placed elsewhere or closed.
 */
export class Handoff {
  readonly #lanes = new Map<WorkerProcess, Lane>();
  readonly #cursor = new Map<string, number>();
  /**
   * Connections that came while neither their version nor routing.default had a ready worker, but one was
   * starting (graycluster itself starting, or a worker restarting): they wait for it, as a listen queue would,
   * bounded in number (maxQueuedHandoffs) and time (headTimeoutMs), instead of an instant 503.
   */
  readonly #waitingForReady: Array<{ connection: Connection; deadline: Deadline }> = [];
  readonly counters: HandoffCounters = { handedOff: 0, fallbacks: 0, unavailable: 0 };

  constructor(
    private readonly lifecycle: Lifecycle,
    private readonly config: () => ResolvedConfig,
    private readonly events: EventLog,
  ) {
    lifecycle.on('transition', (_slot, from, to) => this.#onTransition(from, to));
    lifecycle.on('refused', (slot, client, bytes, assignCookie, routeFirst) => {
      this.place(client, bytes, slot.version, assignCookie, { exclude: slot, routeFirst });
    });
  }

  /** Connections sent and not yet acknowledged, or queued behind one. */
  get waiting(): number {
    let count = 0;
    for (const lane of this.#lanes.values()) count += lane.queue.length + lane.inFlight.length;
    return count + this.#waitingForReady.length;
  }

  /**
   * Hands a connection to the least-loaded worker of `version` able to take it, or of routing.default when
   * `version` has none; answers 503 when neither can. With `owner` (a version its peer's requests mostly need:
   * shared-peers.ts) it goes to a worker of that version instead, which routes its first request itself, and by
   * `version` when none of `owner` can take it.
   */
  place(client: ClientConnection, bytes: Buffer, version: string, assignCookie: string | undefined, options: PlaceOptions = {}): void {
    const { exclude, owner, routeFirst = false } = options;
    const forOwner = owner !== undefined && owner !== version;
    this.#place({
      client, bytes, version: forOwner ? owner : version, assignCookie, routeFirst: forOwner || routeFirst,
      firstVersion: forOwner ? version : undefined, excluded: exclude ? [exclude] : undefined,
    });
  }

  #place(connection: Connection): void {
    if (!connection.client.open) return;  // The client left while it waited.
    const fallback = this.config().routing.default;
    let target = connection.version;
    let pick = this.#pick(target, connection);
    if (!pick.lane && connection.firstVersion !== undefined) {
      // The version its peer's requests mostly need cannot take it now: it goes by its first request after all.
      this.#place({ ...connection, version: connection.firstVersion, routeFirst: false, firstVersion: undefined, message: undefined });
      return;
    }
    if (!pick.lane && pick.why === 'unavailable' && target !== fallback) {
      const second = this.#pick(fallback, connection);
      if (second.lane || second.why === 'saturated') {
        target = fallback;
        pick = second;
        if (second.lane) this.counters.fallbacks++;
      }
    }
    if (!pick.lane && pick.why === 'unavailable' && this.#starting(connection.version, fallback) && this.#waitForReady(connection)) return;
    if (!pick.lane) {
      this.counters.unavailable++;
      const reason = pick.why === 'saturated' ? `every worker of "${target}" is at its in-flight limit` : `no worker of "${target}" is ready`;
      refuse(connection.client, 503, reason, { 'retry-after': String(retryAfterSeconds) });
      return;
    }
    if (pick.lane.queue.length === 0 && pick.lane.process.admits(this.#messageOf(connection))) {
      this.#send(pick.lane, connection);
    } else {
      pick.lane.queue.push(connection);
    }
  }

  #pick(version: string, connection: Connection): { lane: Lane; why?: undefined } | { lane: undefined; why: 'saturated' | 'unavailable' } {
    const pool = this.lifecycle.pool(version);
    const { maxQueuedHandoffs } = this.config().server;
    const lanes = pool.map((slot) => this.#laneOf(slot));
    const now = Date.now();
    const candidates: Candidate[] = pool.map((slot, index) => {
      const lane = lanes[index];
      const waiting = lane ? lane.queue.length + lane.inFlight.length : 0;
      return {
        pickable: lane !== undefined && !lane.overdue && lane.refusingUntil <= now && connection.excluded?.includes(slot) !== true && lane.process.isConnected(),
        inFlight: slot.stats.inFlight,
        load: slot.load + waiting,
        hasRoom: lane === undefined || lane.queue.length < maxQueuedHandoffs || (lane.queue.length === 0 && lane.process.admits(this.#messageOf(connection))),
      };
    });
    const start = this.#cursor.get(version) ?? 0;
    this.#cursor.set(version, pool.length === 0 ? 0 : (start + 1) % pool.length);
    const maxInFlight = this.config().versions.get(version)?.maxInFlight ?? Infinity;
    const result = pickWorker(candidates, maxInFlight, start);
    if (result.index === undefined) return { lane: undefined, why: result.why };
    const lane = lanes[result.index];
    return lane === undefined ? { lane: undefined, why: 'unavailable' } : { lane };
  }

  /** The lane of a worker that may take new connections now (ready, with a live process). */
  #laneOf(slot: WorkerSlot): Lane | undefined {
    const state = slot.state;
    if (state.kind !== 'ready') return undefined;
    let lane = this.#lanes.get(state.process);
    if (!lane) {
      lane = { slot, process: state.process, inFlight: [], overdueCheck: undefined, queue: [], overdue: false, refusingUntil: 0 };
      const created = lane;
      state.process.on('acknowledged', () => this.#acknowledged(created));
      state.process.on('not-received', () => this.#notReceived(created));
      this.#lanes.set(state.process, lane);
    }
    return lane;
  }

  #send(lane: Lane, connection: Connection): void {
    const { slot, process } = lane;
    slot.handoffsSinceReport++;
    this.counters.handedOff++;
    const entry: InFlight = { connection, sentAt: runningNow() };
    lane.inFlight.push(entry);
    this.#watchOverdue(lane);
    process.send(this.#messageOf(connection), connection.client.handle, (error) => {
      const index = lane.inFlight.indexOf(entry);
      if (!error || index === -1) return;
      // It never left (the channel closed): try another worker, then go on with this one's queue.
      lane.inFlight.splice(index, 1);
      this.#placeElsewhere(lane, entry);
      this.#sendNext(lane);
    });
  }

  #messageOf(connection: Connection): ToWorker {
    if (connection.message) return connection.message;
    const message: ToWorker = { kind: 'connection', bytes: connection.bytes.toString('base64') };
    if (connection.assignCookie !== undefined) message.assignCookie = connection.assignCookie;
    if (connection.routeFirst) message.routeFirst = true;
    return connection.message = message;
  }

  /** A connection in flight never reached the worker: another one takes it, with the copy this process kept. */
  #placeElsewhere(lane: Lane, inFlight: InFlight): void {
    (inFlight.connection.excluded ??= []).push(lane.slot);
    this.#place(inFlight.connection);
  }

  #acknowledged(lane: Lane): void {
    const taken = lane.inFlight.shift();
    if (!taken) return;
    taken.connection.client.close();  // The worker holds its own copy now.
    if (this.#lanes.get(lane.process) !== lane) return;  // An answer read after its death: nothing more to do.
    if (lane.overdue || lane.refusingUntil > 0) {
      lane.overdue = false;
      lane.refusingUntil = 0;
      this.#record(lane, 'recovered', 'took its connection: it gets new ones again');
      this.#watchOverdue(lane);
    }
    this.#sendNext(lane);
  }

  /**
   * The connection in flight reached the worker without its socket: the worker is out of file descriptors. It
   * goes to another worker at once (the copy here is still open), and the worker gets nothing new for
   * handoffTimeoutMs, after which a connection tries it again.
   */
  #notReceived(lane: Lane): void {
    const refused = lane.inFlight.shift();
    if (!refused) return;
    if (this.#lanes.get(lane.process) !== lane) {
      this.#placeElsewhere(lane, refused);  // An answer read after its death.
      return;
    }
    const { handoffTimeoutMs } = this.config().server;
    if (lane.refusingUntil === 0) {
      this.#record(lane, 'unresponsive', `could not receive a connection (no file descriptor free?): it gets no new connections for ${handoffTimeoutMs} ms at a time until it takes one`);
    }
    lane.refusingUntil = Date.now() + handoffTimeoutMs;
    this.#placeElsewhere(lane, refused);
    this.#replaceQueue(lane);
  }

  #sendNext(lane: Lane): void {
    while (this.#lanes.get(lane.process) === lane) {
      const next = lane.queue[0];
      if (next === undefined || (next.client.open && !lane.process.admits(this.#messageOf(next)))) return;
      lane.queue.shift();
      if (next.client.open) this.#send(lane, next);
    }
  }

  /**
   * Keeps one timer per lane, not one per connection sent: it fires when the oldest connection in flight will have
   * waited handoffTimeoutMs, and then finds that one overdue, or (it was answered meanwhile, or this process stalled:
   * shared/stalls.ts) waits again. An overdue lane is not watched again until it answers.
   */
  #watchOverdue(lane: Lane): void {
    const oldest = lane.inFlight[0];
    if (lane.overdueCheck !== undefined || oldest === undefined || lane.overdue) return;
    const timeoutMs = this.config().server.handoffTimeoutMs;
    lane.overdueCheck = setTimeout(() => {
      lane.overdueCheck = undefined;
      const first = lane.inFlight[0];
      if (first !== undefined && ranSince(first.sentAt) >= timeoutMs) this.#overdue(lane, timeoutMs);
      else this.#watchOverdue(lane);
    }, Math.max(0, timeoutMs - ranSince(oldest.sentAt)));
  }

  /** A connection was sent but not taken in time: no new connections until it is, and its queue goes elsewhere. */
  #overdue(lane: Lane, timeoutMs: number): void {
    if (lane.overdue) return;
    lane.overdue = true;
    this.#record(lane, 'unresponsive', `did not take a connection within ${timeoutMs} ms: no new connections until it does`);
    this.#replaceQueue(lane);
  }

  #record(lane: Lane, type: 'unresponsive' | 'recovered', message: string): void {
    this.events.record({ type, version: lane.slot.version, workerId: lane.slot.id, pid: lane.process.pid, message });
  }

  #replaceQueue(lane: Lane): void {
    const queued = lane.queue.splice(0);
    for (const connection of queued) {
      (connection.excluded ??= []).push(lane.slot);
      this.#place(connection);
    }
  }

  /**
   * The worker died with connections sent and not answered. Its app never had one of them: a worker takes a
   * connection only once its acknowledgement is written (ipc/channel.ts), and all it wrote arrives before its
   * channel closes. So once that has closed, each still unanswered is placed again, with the copy kept here. A
   * channel still open handoffTimeoutMs after the death leaves nothing certain: those are closed, never served twice.
   */
  #placeUnansweredOnceClosed(lane: Lane): void {
    clearTimeout(lane.overdueCheck);
    lane.overdueCheck = undefined;
    const settle = (certain: boolean) => {
      guard.clear();
      lane.process.off('channel-closed', closed);
      for (const entry of lane.inFlight.splice(0)) {
        if (certain) this.#placeElsewhere(lane, entry);
        else entry.connection.client.close();
      }
    };
    const closed = () => settle(true);
    const guard = new Deadline(this.config().server.handoffTimeoutMs, () => settle(false)).unref();
    if (lane.inFlight.length === 0 || !lane.process.isConnected()) settle(true);
    else lane.process.once('channel-closed', closed);
  }

  #starting(version: string, fallback: string): boolean {
    return this.lifecycle.versionState(version) === 'starting' || this.lifecycle.versionState(fallback) === 'starting';
  }

  /** Holds a connection until a worker is ready; false when too many wait already or its time is up. */
  #waitForReady(connection: Connection): boolean {
    const { maxQueuedHandoffs, headTimeoutMs } = this.config().server;
    connection.waitingSince ??= runningNow();
    const leftMs = headTimeoutMs - ranSince(connection.waitingSince);
    if (leftMs <= 0 || this.#waitingForReady.length >= maxQueuedHandoffs) return false;
    const entry = {
      connection,
      deadline: new Deadline(leftMs, () => {
        const index = this.#waitingForReady.indexOf(entry);
        if (index !== -1) this.#waitingForReady.splice(index, 1);
        this.#place(connection);  // Out of time: placed if a worker is ready after all, else answered 503.
      }),
    };
    this.#waitingForReady.push(entry);
    return true;
  }

  /** A worker became ready (or a version stopped starting): the connections waiting are placed again, in order. */
  #retryWaiting(): void {
    const waiting = this.#waitingForReady.splice(0);
    for (const { connection, deadline } of waiting) {
      deadline.clear();
      this.#place(connection);
    }
  }

  #onTransition(from: WorkerState, to: WorkerState): void {
    if (this.#waitingForReady.length > 0 && to.kind !== from.kind) queueMicrotask(() => this.#retryWaiting());
    const process = processOf(from);
    const lane = process && this.#lanes.get(process);
    if (!lane || (to.kind === 'ready' && processOf(to) === process)) return;
    if (processOf(to) !== process) {
      this.#lanes.delete(process);
      this.#placeUnansweredOnceClosed(lane);
    }
    this.#replaceQueue(lane);  // Draining or unresponsive: it takes nothing new.
  }
}
