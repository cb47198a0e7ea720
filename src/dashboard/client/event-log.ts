// The event log: newest first, at most maxEvents long.
import type { LifecycleEvent } from '@server/primary/events.js';
import { byId, make } from './dom.js';
import { clockTime } from './format.js';
import { maxEvents, state } from './state.js';

function eventItem(event: LifecycleEvent): HTMLLIElement {
  const where = [event.version, event.workerId && `worker ${event.workerId}`, event.pid && `pid ${event.pid}`].filter(Boolean).join(' ');
  const item = make('li', {},
    make('time', { dateTime: new Date(event.time).toISOString(), textContent: clockTime(event.time) }),
    make('span', { className: 'type', textContent: event.type }),
    make('span', { className: 'where-what', textContent: `${where ? `[${where}] ` : ''}${event.message}` }));
  item.dataset.type = event.type;
  return item;
}

/** Draws the whole log again (after a snapshot). */
export function renderEvents(): void {
  byId('events').replaceChildren(...state.events.toReversed().map(eventItem));
}

/** Puts one new event on top, dropping the oldest past maxEvents. */
export function addEvent(event: LifecycleEvent): void {
  state.events.push(event);
  const list = byId('events');
  list.prepend(eventItem(event));
  while (state.events.length > maxEvents) {
    state.events.shift();
    list.lastElementChild?.remove();
  }
}
