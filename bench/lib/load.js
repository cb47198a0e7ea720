import http from 'node:http';
import autocannon from 'autocannon';

/**
 * Makes an autocannon client open a new connection for every request. Sent with `connection: close`, each
 * response ends its connection and autocannon reconnects, but it first writes the next request on the closing
 * connection and leaves it queued, so every later latency is measured from a stale start time (p99 in seconds
 * for a hello-world). Here a client sends nothing more on a connection that has had its answer; the request goes
 * out on the next one. (`reconnectRate: 1` is no way out: it resets before the response is counted.)
 */
function oneRequestPerConnection(client) {
  const answered = new WeakSet();
  client.on('response', () => answered.add(client.conn));
  const doRequest = client._doRequest;
  client._doRequest = function (...args) {
    if (answered.has(this.conn)) return undefined;
    return Reflect.apply(doRequest, this, args);
  };
}

/**
 * Runs autocannon and returns what the report needs.
 * `urls`: one URL, or several that the connections take in turn (connection i uses urls[i % n]).
 * `paths`: request targets every connection cycles through, in order.
 * `steadyState`: also keep every latency but each connection's first, and report their p99: the figure without
 * the burst of all connections being opened at once at the start.
 */
export async function runLoad({ urls, paths, connections, durationSeconds, timeoutSeconds = 10, newConnectionPerRequest = false, steadyState = false }) {
  const options = {
    url: urls.length === 1 ? urls[0] : urls,
    connections,
    duration: durationSeconds,
    timeout: timeoutSeconds,
    ...(paths ? { requests: paths.map((path) => ({ method: 'GET', path })) } : {}),
    ...(newConnectionPerRequest ? { headers: { connection: 'close' }, setupClient: oneRequestPerConnection } : {}),
  };
  const started = performance.now();
  const instance = autocannon(options);
  const steady = [];
  if (steadyState) {
    const answered = new WeakSet();
    instance.on('response', (client, _status, _bytes, latencyMs) => {
      if (answered.has(client)) steady.push(latencyMs);
      else answered.add(client);
    });
  }
  const result = await instance;
  const seconds = (performance.now() - started) / 1000;
  const statuses = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, { count }]) => [code, Number(count)]));
  const completed = Object.values(statuses).reduce((sum, count) => sum + count, 0);
  return {
    seconds,
    completed,
    ok: statuses['200'] ?? 0,
    statuses,
    timeouts: result.timeouts,
    // autocannon counts a timeout as an error too; these are the rest (refused, reset connections).
    connectionErrors: result.errors - result.timeouts,
    requestsPerSecond: completed / result.duration,
    latency: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max, mean: result.latency.average },
    ...(steadyState ? { steadyP99: percentile(steady, 0.99) } : {}),
  };
}

function percentile(values, fraction) {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)];
}

/** One GET on a connection of its own. Resolves with the status (0 on a connection error), never rejects. */
export function fetchOnce(url, timeoutMs) {
  return new Promise((resolve) => {
    const request = http.get(url, { agent: false }, (response) => {
      response.resume();
      response.once('end', () => resolve({ status: response.statusCode }));
      response.once('error', () => resolve({ status: 0 }));
    });
    request.setTimeout(timeoutMs, () => request.destroy(new Error('timeout')));
    request.once('error', (error) => resolve({ status: 0, error: error.message }));
  });
}

/**
 * How long until a fresh request to `url` is answered 200: one probe at once, another after any refusal or
 * error, and one more every `everyMs` while the earlier ones are still waiting. Gives up after `capMs` (and
 * destroys every probe still open). Resolves with milliseconds, or null when nothing was answered in time.
 */
export function timeToAnswer(url, { capMs, everyMs = 5000, retryMs = 250 }) {
  return new Promise((resolve) => {
    const started = performance.now();
    const open = new Set();
    let done = false;
    let lastSent = 0;
    const finish = (elapsed) => {
      if (done) return;
      done = true;
      clearInterval(ticker);
      clearTimeout(cap);
      for (const request of open) request.destroy();
      resolve(elapsed);
    };
    const send = () => {
      if (done) return;
      lastSent = performance.now();
      const request = http.get(url, { agent: false }, (response) => {
        response.resume();
        response.once('end', () => {
          open.delete(request);
          if (response.statusCode === 200) finish(performance.now() - started);
          else setTimeout(send, retryMs);
        });
      });
      request.once('error', () => {
        open.delete(request);
        if (!done) setTimeout(send, retryMs);
      });
      open.add(request);
    };
    const ticker = setInterval(() => {
      if (performance.now() - lastSent >= everyMs) send();
    }, 250);
    const cap = setTimeout(() => finish(null), capMs);
    send();
  });
}
