import { readRunStates, type RunState } from '../primary/state-file.js';
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
  if (!state) throw new NotRunningError(`no supervisor is running with ${file} (start one with: graycluster start --config ${file})`);
  if (running.length > 1) {
    const choices = running.map((each) => `  --url ${dashboardUrl(each)}   (pid ${each.pid})`).join('\n');
    throw new NotRunningError(`${running.length} supervisors are running with ${file}: name one with --url\n${choices}`);
  }
  return { url: dashboardUrl(state), token: token ?? state.dashboard.token };
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
