/**
 * Load from `wrk` (https://github.com/wg/wrk), when it is installed: a C client whose own CPU is a fraction of
 * autocannon's, so that on a small machine the server's cost shows in requests/s. The scenarios use it when
 * `wrkPath()` finds it and fall back to autocannon (lib/load.js) otherwise; the result has the same fields as
 * runLoad's, so a report does not care which client produced it (it says which, through `client`).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findExecutable, temporaryFolder } from './toolkit.js';

/** Where wrk is: $WRK, else the first `wrk` on $PATH, else null. */
export const wrkPath = () => findExecutable('wrk', { envVariable: 'WRK' });

const quote = (value) => `"${String(value).replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;

/**
 * The Lua script given to `wrk -s`: picks each request's path (at random among `paths`, so that no connection
 * keeps one version by accident of the order connections take requests in), sets `x-user` to a fresh random
 * user per request when `randomUser`, or the headers of one of `users` (header sets) picked at random, and prints
 * one JSON line at the end that runWrk parses.
 */
function script({ paths, randomUser, users }) {
  return `-- Written by bench/lib/wrk.js.
local paths = { ${paths.map(quote).join(', ')} }
local users = { ${(users ?? []).map((user) => `{ ${Object.entries(user).map(([name, value]) => `[${quote(name)}] = ${quote(value)}`).join(', ')} }`).join(',\n  ')} }
local headers = {}

function init(args)
  -- wrk.format uses the table it is given instead of wrk.headers: keep the -H headers (connection: close).
  for name, value in pairs(wrk.headers) do headers[name] = value end
  -- Every thread its own sequence: wrk's threads start with the same seed otherwise.
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
end

function request()
  ${randomUser ? 'headers["x-user"] = "user-" .. math.random(1, 2147483647) .. "-" .. math.random(1, 2147483647)' : ''}
  ${users ? 'for name, value in pairs(users[math.random(#users)]) do headers[name] = value end' : ''}
  return wrk.format(nil, paths[math.random(#paths)], headers)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"durationUs":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p99":%d,"max":%d,"mean":%f,"clientCpu":%f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, latency.mean, os.clock()))
end
`;
}

/**
 * Runs wrk against `url` for `durationSeconds` with `connections` open connections on `threads` threads.
 * `paths`: request targets picked at random per request (default: the URL's own); `randomUser`: a new random
 * `x-user` header on every request; `users`: header sets, one picked at random per request (returning users);
 * `headers`: sent on every request (`connection: close` makes wrk open a new connection per request). Resolves
 * with runLoad's fields plus clientCpu (wrk's own CPU seconds).
 */
export async function runWrk({ url, paths, connections, durationSeconds, threads = 1, timeoutSeconds = 10, headers = {}, randomUser = false, users, wrk = wrkPath() }) {
  if (!wrk) throw new Error('wrk is not installed');
  const folder = mkdtempSync(path.join(os.tmpdir(), 'graycluster-wrk-'));
  const removeFolder = temporaryFolder(folder);
  try {
    const scriptFile = path.join(folder, 'load.lua');
    const { pathname, search } = new URL(url);
    writeFileSync(scriptFile, script({ paths: paths ?? [`${pathname}${search}`], randomUser, users }));
    const args = [
      '-t', String(threads), '-c', String(Math.max(connections, threads)), '-d', `${durationSeconds}s`, '--timeout', `${timeoutSeconds}s`,
      '-s', scriptFile, ...Object.entries(headers).flatMap(([name, value]) => ['-H', `${name}: ${value}`]), url,
    ];
    const started = performance.now();
    const output = await new Promise((resolve, reject) => {
      const child = spawn(wrk, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      child.stdout.on('data', (chunk) => { text += chunk; });
      child.stderr.on('data', (chunk) => { text += chunk; });
      // wrk stops by itself after the duration; this only guards against a hang.
      const guard = setTimeout(() => child.kill('SIGKILL'), (durationSeconds + timeoutSeconds + 10) * 1000);
      child.once('error', (error) => { clearTimeout(guard); reject(error); });
      // 'close', not 'exit': 'exit' can come before the last of wrk's output has been read, which left the text
      // empty ("wrk printed no summary") once in many runs.
      child.once('close', (code, signal) => {
        clearTimeout(guard);
        if (code === 0) resolve(text);
        else reject(new Error(`wrk exited with ${signal ?? code}:\n${text}`));
      });
    });
    const line = output.split('\n').find((candidate) => candidate.startsWith('{"requests"'));
    if (!line) throw new Error(`wrk printed no summary:\n${output}`);
    const summary = JSON.parse(line);
    const seconds = summary.durationUs / 1e6;
    return {
      seconds: (performance.now() - started) / 1000,
      completed: summary.requests,
      // wrk counts answers other than 2xx/3xx as status errors; every answer the bench expects is a 200.
      ok: summary.requests - summary.status,
      statuses: {},
      timeouts: summary.timeout,
      connectionErrors: summary.connect + summary.read + summary.write,
      requestsPerSecond: summary.requests / seconds,
      latency: { p50: summary.p50 / 1000, p99: summary.p99 / 1000, max: summary.max / 1000, mean: summary.mean / 1000 },
      clientCpu: summary.clientCpu,
      command: `wrk ${args.map((arg) => (arg === scriptFile ? '<script>' : /\s/.test(arg) ? `'${arg}'` : arg)).join(' ')}`,
    };
  } finally {
    removeFolder();
  }
}
