import { readRunState } from '../primary/state-file.js';
import { processAlive } from '../shared/process-alive.js';
import { configPath } from './options.js';

/** The help lines of the options every command that calls a running supervisor's API takes. */
export const remoteCommon = `  -c, --config <file>   Config file the supervisor was started with (default $GRAYCLUSTER_CONFIG or ./graycluster.json)
      --url <url>       Dashboard address of a supervisor elsewhere, e.g. http://127.0.0.1:9000
      --token <token>   API token (default $GRAYCLUSTER_TOKEN)
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

/** The supervisor started with the config file (found by its run-state file), or the one --url names. */
export function apiTarget(values: { config?: string; url?: string; token?: string }): ApiTarget {
  const token = values.token ?? process.env.GRAYCLUSTER_TOKEN;
  if (values.url !== undefined) return { url: values.url, token };
  const file = configPath(values.config);
  const state = readRunState(file);
  if (!state || !processAlive(state.pid)) throw new NotRunningError(`no supervisor is running with ${file} (start one with: graycluster start --config ${file})`);
  const host = state.dashboard.host === '0.0.0.0' ? '127.0.0.1' : state.dashboard.host === '::' ? '::1' : state.dashboard.host;
  return { url: `http://${host.includes(':') ? `[${host}]` : host}:${state.dashboard.port}`, token: token ?? state.dashboard.token };
}

/** Calls the API; resolves with the parsed JSON body, or throws with the server's message. */
export async function callApi<T>(target: ApiTarget, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(new URL(path, target.url), {
      method,
      headers: { authorization: `Bearer ${target.token ?? ''}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(120_000),
    });
  } catch (error) {
    throw new NotRunningError(`cannot reach ${target.url}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  if (!response.ok) {
    const message = typeof parsed === 'object' && parsed !== null && 'error' in parsed ? String((parsed as { error: unknown }).error) : text.trim();
    throw new NotRunningError(`${target.url}${path} answered ${response.status}: ${message}`);
  }
  return parsed as T;
}
