import http from 'node:http';
import type { ControlResult } from '../control/types.js';
import type { LogsAnswer } from '../dashboard/messages.js';
import { readAllRunStates, readRunStates, type RunState } from '../primary/state-file.js';
import type { Status } from '../primary/status.js';
import { displayPath } from '../shared/display-path.js';
import { isRecord } from '../shared/is-record.js';
import { configPath } from './options.js';

/** The help lines of the options every command that calls a running supervisor's API takes. */
export const remoteCommon = `  -c, --config <file>   Config file the supervisor was started with (default $GRAYCLUSTER_CONFIG or ./graycluster.json)
      --url <url>       Dashboard address of a supervisor elsewhere, or of one of several running
                        the config file, e.g. http://127.0.0.1:9000
      --token <token>   API token (default $GRAYCLUSTER_TOKEN, else the run-state file's)
  -h, --help            Show this help`;

/** The parseArgs options matching `remoteCommon`. */
export const remoteOptions = {
  config: { type: 'string', short: 'c' },
  url: { type: 'string' },
  token: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Where a running supervisor's API is, and its token. */
export interface ApiTarget {
  url: string;
  token: string | undefined;
}

export class NotRunningError extends Error {
  override name = 'NotRunningError';
}

/** The dashboard address of a supervisor, as this machine reaches it. */
function dashboardUrl(state: RunState): string {
  const host = state.dashboard.host === '0.0.0.0' ? '127.0.0.1' : state.dashboard.host === '::' ? '::1' : state.dashboard.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${state.dashboard.port}`;
}

/**
 * The supervisor started with the config file (found by its run-state file), or the one --url names. Several
 * supervisors may run one config file (a fleet on one host): then --url picks one, and its token is taken from
 * its run-state file when neither --token nor $GRAYCLUSTER_TOKEN gives one.
 */
export function apiTarget(values: { config?: string; url?: string; token?: string }): ApiTarget {
  const token = values.token ?? process.env.GRAYCLUSTER_TOKEN;
  const file = configPath(values.config);
  if (values.url !== undefined) {
    if (!URL.canParse(values.url)) throw new NotRunningError(`--url must be a dashboard address such as http://127.0.0.1:9000, not "${values.url}"`);
    if (token !== undefined) return { url: values.url, token };
    const named = new URL(values.url).host;
    return { url: values.url, token: readRunStates(file).find((state) => new URL(dashboardUrl(state)).host === named)?.dashboard.token };
  }
  const running = readRunStates(file);
  const [state] = running;
  if (!state) throw new NotRunningError(notRunning(file));
  if (running.length > 1) {
    const choices = running.map((each) => `  --url ${dashboardUrl(each)}   (pid ${each.pid})`).join('\n');
    throw new NotRunningError(`${running.length} supervisors are running with ${file}: name one with --url\n${choices}`);
  }
  return { url: dashboardUrl(state), token: token ?? state.dashboard.token };
}

/** Why no supervisor was found for `file`, naming those that run with other config files (a missed --config). */
function notRunning(file: string): string {
  const elsewhere = supervisorsElsewhere();
  return elsewhere === undefined ? `no supervisor is running with ${file} (start one with: graycluster start --config ${file})` : `no supervisor is running with ${file}; ${elsewhere}`;
}

/** The supervisors running now with any config file, each with the --config that reaches it; undefined if none. */
export function supervisorsElsewhere(): string | undefined {
  const others = readAllRunStates();
  if (others.length === 0) return undefined;
  const choices = others.map((each) => `  --config ${displayPath(each.config)}   (pid ${each.pid})`).join('\n');
  return `${others.length === 1 ? 'one runs' : `${others.length} run`} with another config file: name it with --config\n${choices}`;
}

async function send(target: ApiTarget, method: 'GET' | 'POST', path: string, body: unknown, signal: AbortSignal): Promise<Response> {
  try {
    return await fetch(new URL(path, target.url), {
      method,
      headers: { authorization: `Bearer ${target.token ?? ''}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (error) {
    throw new NotRunningError(`cannot reach ${target.url}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** What an answer of the API must look like to be used: another server at the address answers something else. */
export type Shape<T> = (value: unknown) => value is T;

/** GET /api/status. */
export const isStatus: Shape<Status> = (value): value is Status =>
  isRecord(value) && isRecord(value.versions) && Array.isArray(value.workers) && isRecord(value.routing) && isRecord(value.server);

/** GET /api/logs. */
export const isLogsAnswer: Shape<LogsAnswer> = (value): value is LogsAnswer => isRecord(value) && Array.isArray(value.lines);

/** POST to a control endpoint (reload, restart, heap-snapshot, …). */
export const isControlResult: Shape<ControlResult> = (value): value is ControlResult =>
  isRecord(value) && (value.ok === true ? Array.isArray(value.changes) : value.ok === false && typeof value.error === 'string');

/** The error for an answer that is not the API's, with the start of what it was. */
function notADashboard(target: ApiTarget, method: string, path: string, status: number, contentType: string | null, text: string): NotRunningError {
  const type = contentType?.split(';')[0]?.trim();
  const excerpt = text.replace(/\s+/g, ' ').trim();
  const shown = excerpt === '' ? 'an empty body' : excerpt.length > 80 ? `${excerpt.slice(0, 80)}…` : excerpt;
  return new NotRunningError(`${target.url} is not a graycluster dashboard (${method} ${path} answered ${status}${type ? ` ${type}` : ''}: ${shown})`);
}

/**
 * The error for an answer that is not 2xx: the API's refusal (its JSON `error`, or its line of plain text), or,
 * for anything else (an HTML page, JSON without `error`), that another server answered.
 */
function refusal(target: ApiTarget, method: string, path: string, status: number, contentType: string | null, text: string): NotRunningError {
  const type = contentType?.split(';')[0]?.trim();
  if (type === 'text/plain') return new NotRunningError(`${target.url}${path} answered ${status}: ${text.trim()}`);
  if (type === 'application/json') {
    try {
      const parsed: unknown = JSON.parse(text);
      if (isRecord(parsed) && typeof parsed.error === 'string') return new NotRunningError(`${target.url}${path} answered ${status}: ${parsed.error}`);
    } catch {}
  }
  return notADashboard(target, method, path, status, contentType, text);
}

/** Calls the API; resolves with the parsed JSON body, or throws with the server's message, or when it is not `shape`. */
export async function callApi<T>(target: ApiTarget, shape: Shape<T>, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const response = await send(target, method, path, body, AbortSignal.timeout(120_000));
  const text = await response.text();
  const contentType = response.headers.get('content-type');
  if (!response.ok) throw refusal(target, method, path, response.status, contentType, text);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {}
  if (!shape(parsed)) throw notADashboard(target, method, path, response.status, contentType, text);
  return parsed;
}

/**
 * GETs an endpoint that streams (`/api/logs?follow=1`); resolves with its body once the answer's head is in,
 * throws as callApi does when it is refused. It streams until the server ends it or `signal` aborts.
 */
/**
 * Opens a stream from the API (`logs --follow`). Through node:http, not fetch: fetch (undici) ends a body that
 * brings nothing for 300 s ("terminated"), and a followed service may write nothing for longer.
 */
export function streamApi(target: ApiTarget, path: string, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
  return new Promise((resolve, reject) => {
    const request = http.get(new URL(path, target.url), { headers: { authorization: `Bearer ${target.token ?? ''}` }, signal }, (response) => {
      const status = response.statusCode ?? 0;
      const contentType = response.headers['content-type'] ?? null;
      const ok = status >= 200 && status < 300;
      if (ok && contentType?.startsWith('application/x-ndjson')) {
        resolve(response);
        return;
      }
      // A refusal is read whole; another server's answer only far enough to show its start (it may never end).
      let text = '';
      const answered = () => reject(ok ? notADashboard(target, 'GET', path, status, contentType, text) : refusal(target, 'GET', path, status, contentType, text));
      response.setEncoding('utf8').on('data', (chunk: string) => {
        text += chunk;
        if (ok && text.length > 100) {
          response.destroy();
          answered();
        }
      });
      response.on('end', answered);
      response.on('error', (error) => reject(new NotRunningError(`cannot reach ${target.url}: ${error.message}`)));
    });
    request.on('error', (error) => reject(new NotRunningError(`cannot reach ${target.url}: ${error.message}`)));
  });
}
