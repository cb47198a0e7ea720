import { EventEmitter } from 'node:events';

export type EventType =
  | 'started' | 'ready' | 'crashed' | 'restarting' | 'failed' | 'crashloop' | 'recovered'
  | 'draining' | 'stopped' | 'error' | 'shutdown' | 'config' | 'unresponsive'
  /** A progressive rollout moved (began, advanced, paused, resumed, promoted, rolled back, aborted). */
  | 'rollout';

/** One lifecycle event: a line in the log, an entry in the status API and the dashboard's feed. */
export interface LifecycleEvent {
  time: number;
  type: EventType;
  message: string;
  version?: string;
  workerId?: string;
  pid?: number;
}

/** A bounded log of recent events that also tells listeners of each new one. */
export class EventLog extends EventEmitter<{ event: [LifecycleEvent] }> {
  readonly #recent: LifecycleEvent[] = [];
  constructor(readonly capacity = 500) {
    super();
  }

  record(event: Omit<LifecycleEvent, 'time'>): LifecycleEvent {
    const entry = { time: Date.now(), ...event };
    this.#recent.push(entry);
    if (this.#recent.length > this.capacity) this.#recent.shift();
    this.emit('event', entry);
    return entry;
  }

  recent(): LifecycleEvent[] {
    return [...this.#recent];
  }
}

/** Prints each event as one line: time, type, where, what. */
export function formatEvent(event: LifecycleEvent): string {
  const where = [event.version, event.workerId && `worker ${event.workerId}`, event.pid && `pid ${event.pid}`]
    .filter(Boolean).join(' ');
  return `${new Date(event.time).toISOString()} ${event.type.padEnd(10)} ${where ? `[${where}] ` : ''}${event.message}`;
}

