// What the page knows: the latest status and rates, the event log and the charts' points, as the feed sent them.
import type { ChartPoint, Rates } from '@server/dashboard/history.js';
import type { LiveStatus } from '@server/dashboard/messages.js';
import type { LifecycleEvent } from '@server/primary/events.js';

/** The event log keeps this many; older ones leave the page. */
export const maxEvents = 300;

export const state = {
  status: undefined as LiveStatus | undefined,
  rates: undefined as Rates | undefined,
  events: [] as LifecycleEvent[],
  points: [] as ChartPoint[],
  historyMs: 5 * 60_000,
};
