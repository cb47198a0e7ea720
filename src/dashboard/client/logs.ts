// The logs panel: one worker's recent lines, then its new ones as they come (GET /api/logs?follow=1, read as a
// stream of JSON lines), at most maxLogRows in the page. One worker at a time; reopened after a lost connection.
import type { LogStreamItem } from '@server/dashboard/messages.js';
import { byId, make, pill } from './dom.js';
import { clockTime } from './format.js';
import { bearer } from './session.js';

/** Lines the panel keeps; older ones leave the page. */
export const maxLogRows = 500;
/** Recent lines asked for when the panel opens. */
const recentLines = 200;
const retryMs = 2000;

/** The panel's stream now: aborted when the panel closes or shows another worker. */
let following: AbortController | undefined;

function showState(text: string, kind: string): void {
  byId('logs-state').replaceChildren(pill(text, kind));
}

function row(item: LogStreamItem): HTMLLIElement {
  if ('message' in item) {
    const line = make('li', {},
      make('time', { dateTime: new Date(item.time).toISOString(), textContent: clockTime(item.time) }),
      make('span', { className: 'message', textContent: item.message }));
    line.dataset.stream = item.stream;
    return line;
  }
  const note = make('li', { className: 'note', textContent: 'missed' in item ? `… ${item.missed} lines not shown: this page fell behind` : `— ${item.end}` });
  note.dataset.note = 'missed' in item ? 'missed' : 'end';
  return note;
}

/** Adds rows at the bottom, dropping the oldest past maxLogRows; follows the bottom unless scrolled away from it. */
function append(items: LogStreamItem[]): void {
  const list = byId('log-lines');
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 8;
  list.append(...items.map(row));
  while (list.childElementCount > maxLogRows) list.firstElementChild?.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
}

/** A refusal by the server: worth retrying only when it is full (503). */
class Refused extends Error {
  constructor(readonly status: number, message: string) {
    super(`${status}: ${message}`);
  }
}

async function stream(workerId: string, abort: AbortController): Promise<void> {
  const query = new URLSearchParams({ target: workerId, lines: String(recentLines), follow: '1' });
  const response = await fetch(`/api/logs?${query}`, { headers: bearer(), signal: abort.signal });
  if (!response.ok || !response.body) {
    const text = await response.text();
    let error = text.trim();
    try {
      error = (JSON.parse(text) as { error: string }).error;
    } catch {}
    throw new Refused(response.status, error);
  }
  showState('live', 'live');
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let pending = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    pending += decoder.decode(value, { stream: true });
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    append(lines.map((line) => JSON.parse(line) as LogStreamItem));
  }
}

/** Shows `workerId`'s lines in the panel, following new ones; replaces the worker shown before. */
export function openLogs(workerId: string): void {
  following?.abort();
  const abort = new AbortController();
  following = abort;
  byId('logs-section').hidden = false;
  byId('logs-target').textContent = workerId;
  byId('logs-error').textContent = '';
  byId('log-lines').replaceChildren();
  showState('connecting…', 'connecting');
  stream(workerId, abort).then(() => {
    if (!abort.signal.aborted) showState('ended', 'stopped');
  }, (error: Error) => {
    if (abort.signal.aborted) return;
    byId('logs-error').textContent = error.message;
    if (error instanceof Refused && error.status !== 503) {
      showState('closed', 'stopped');
      return;
    }
    showState('reconnecting…', 'reconnecting');
    setTimeout(() => {
      if (following === abort) openLogs(workerId);
    }, retryMs);
  });
}

export function closeLogs(): void {
  following?.abort();
  following = undefined;
  byId('logs-section').hidden = true;
  byId('log-lines').replaceChildren();
}

/** The Logs button of a worker's row. */
export function logsButton(workerId: string): HTMLButtonElement {
  const button = make('button', { type: 'button', textContent: 'Logs', title: `Show what ${workerId} writes to stdout and stderr` });
  button.addEventListener('click', () => openLogs(workerId));
  return button;
}

export function wireLogs(): void {
  byId('logs-close').addEventListener('click', closeLogs);
}
