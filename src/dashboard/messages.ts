import type { LifecycleEvent } from '../primary/events.js';
import type { LogLine } from '../primary/logs/types.js';
import type { Status, WorkerStatus } from '../primary/status.js';
import type { ChartPoint, Rates } from './history.js';

/** The WebSocket subprotocol the page speaks; the server picks it and never echoes the token's. */
export const feedProtocol = 'graycluster';
/** A browser cannot set headers on a WebSocket, so it offers the token as a second subprotocol:
 * `graycluster.token.<base64url of the token's UTF-8 bytes>`. */
export const tokenProtocolPrefix = 'graycluster.token.';

/** A worker as the page sees it: the status fields, and those the supervisor may add (shown when present). */
export type WorkerView = WorkerStatus & { unresponsive?: boolean };

/** A status without its event list: events travel as their own messages. */
export type LiveStatus = Omit<Status, 'events'> & { workers: WorkerView[] };

/** Server → page over /ws. The page sends nothing. */
export type FeedMessage =
  /** On connect, and to a client that missed updates: everything, including the charts' history. */
  | { type: 'snapshot'; time: number; status: LiveStatus; events: LifecycleEvent[]; rates: Rates; history: ChartPoint[]; historyMs: number }
  /** Every feedIntervalMs. */
  | { type: 'update'; time: number; status: LiveStatus; rates: Rates }
  /** Once a second: a point for the charts. */
  | { type: 'sample'; point: ChartPoint }
  /** As it happens. */
  | { type: 'event'; event: LifecycleEvent };

/** `GET /api/logs` (without `follow=1`): the selected workers' recent lines, oldest first. */
export interface LogsAnswer {
  lines: LogLine[];
}

/**
 * `GET /api/logs?follow=1` answers newline-delimited JSON (`application/x-ndjson`), one of these per line: the
 * recent lines first, then every new line as the primary reads it, until the client goes away or graycluster
 * stops. A line has `message`; the two others are told apart by their key.
 */
export type LogStreamItem =
  | LogLine
  /** This reader was more than `dashboard.maxLogBufferedBytes` behind: this many lines were not sent to it. */
  | { time: number; missed: number }
  /** The last item: graycluster is stopping. */
  | { time: number; end: string };
