import type { LogFormat } from '../../config/types.js';
import type { LogLine } from './types.js';

/** What marks a line in text format: `v2.1 | message` came on stdout, `v2.1 ! message` on stderr. */
const streamMarks = { stdout: '|', stderr: '!' } as const;

/** A worker's line as the primary prints it on its stdout. */
export function formatWorkerLine(line: LogLine, format: LogFormat): string {
  if (format === 'json') return JSON.stringify({ time: line.time, worker: line.worker, version: line.version, stream: line.stream, message: line.message });
  return `${line.worker} ${streamMarks[line.stream]} ${line.message}`;
}

/** A worker's line as a log file holds it: in text format, with its time in front (the terminal's lines have none). */
export function formatFileLine(line: LogLine, format: LogFormat): string {
  return format === 'json' ? formatWorkerLine(line, format) : `${new Date(line.time).toISOString()} ${formatWorkerLine(line, format)}`;
}

/**
 * One of graycluster's own lines (lifecycle events, "serving …"): as it is in text format, and in JSON format an
 * object shaped like a worker's line with `worker` and `version` null and `stream` "graycluster", so a log
 * shipper reading the primary's stdout sees nothing but JSON.
 */
export function formatOwnLine(message: string, format: LogFormat, time = Date.now()): string {
  return format === 'json' ? JSON.stringify({ time, worker: null, version: null, stream: 'graycluster', message }) : message;
}
