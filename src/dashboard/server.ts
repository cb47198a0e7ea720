import http, { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { dashboardDefaults, type DashboardConfig } from '../config/types.js';
import type { Controls } from '../control/types.js';
import type { EventLog, LifecycleEvent } from '../primary/events.js';
import type { WorkerLogs } from '../primary/logs/types.js';
import type { Status } from '../primary/status.js';
import { isControlEndpoint, maxBodyBytes, parseControl } from './api.js';
import { hasToken, isForeignOrigin, upgradeHasToken } from './auth.js';
import { Feed } from './feed.js';
import { chartPoint, History, sampleOf, type Sample } from './history.js';
import { LogFollowers, parseLogQuery } from './logs.js';
import type { FeedMessage, LiveStatus, LogsAnswer } from './messages.js';
import { metricsContentType, renderMetrics } from './metrics.js';
import { clientModule, clientPrefix, css, html, icon } from './page.js';
import { ownMemoryUsage } from '../shared/procfs.js';

type Limits = Omit<DashboardConfig, 'host' | 'port' | 'token'>;

export interface DashboardOptions extends Partial<Limits> {
  host: string;
  port: number;
  token: string;
  /** A fresh snapshot of every version and worker. */
  status: () => Status;
  /** Lifecycle events as they happen (and the recent ones). */
  events: EventLog;
  /** The operator's moves: the same code path as the CLI. */
  controls: Controls;
  /** The workers' output, for GET /api/logs. */
  logs: WorkerLogs;
}

/** How often a point is added to the charts' history. */
const sampleIntervalMs = 1000;
/** Requests/s and latency percentiles are over this window. */
const rateWindowMs = 10_000;

const securityHeaders = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};
const pageHeaders = {
  ...securityHeaders,
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...securityHeaders, ...headers });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, JSON.stringify(body), { 'content-type': 'application/json; charset=utf-8' });
}

/** Answers a WebSocket handshake we refuse with plain HTTP, then closes the socket (as ws's abortHandshake). */
function refuseUpgrade(socket: Duplex, status: number, message: string, headers: Record<string, string> = {}): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
    'Connection: close',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(message)}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.once('finish', () => socket.destroy());
  socket.end(`${lines.join('\r\n')}\r\n\r\n${message}`);
}

/** Reads a JSON body of at most maxBodyBytes; an empty body is `{}`. */
function readJson(req: IncomingMessage): Promise<{ body: unknown } | { status: number; error: string }> {
  // A body announced as too long is refused before it comes, not after the client sent it (or stopped sending).
  if (Number(req.headers['content-length'] ?? 0) > maxBodyBytes) return Promise.resolve({ status: 413, error: `the body is over ${maxBodyBytes} bytes` });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let length = 0;
    req.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length > maxBodyBytes) {
        chunks.length = 0;  // The rest is read and dropped; the answer closes the connection.
        resolve({ status: 413, error: `the body is over ${maxBodyBytes} bytes` });
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString().trim();
      try {
        resolve({ body: text === '' ? {} : JSON.parse(text) });
      } catch (error) {
        resolve({ status: 400, error: `the body is not valid JSON: ${(error as Error).message}` });
      }
    });
    req.on('error', () => resolve({ status: 400, error: 'the request was cut off' }));
  });
}

/**
 * The dashboard: the page, its live feed at /ws, the status and control API under /api, and /metrics. Everything
 * but the page itself needs the token; the server binds loopback unless configured otherwise.
 */
export class DashboardServer {
  readonly #server = http.createServer((req, res) => void this.#handle(req, res));
  readonly #options: DashboardOptions & Limits;
  readonly #history: History;
  readonly #feed: Feed;
  readonly #logFollowers: LogFollowers;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #onEvent = (event: LifecycleEvent) => this.#feed.broadcast(JSON.stringify({ type: 'event', event } satisfies FeedMessage));

  constructor(options: DashboardOptions) {
    const { host: _host, port: _port, token: _token, ...limits } = dashboardDefaults;
    this.#options = { ...limits, ...options };
    this.#history = new History(this.#options.historyMs, sampleIntervalMs);
    this.#feed = new Feed(this.#options, () => JSON.stringify(this.#snapshotMessage()));
    this.#logFollowers = new LogFollowers(this.#options.logs, this.#options);
    this.#server.headersTimeout = 10_000;
    this.#server.requestTimeout = 30_000;
    this.#server.on('upgrade', (req, socket, head) => this.#upgrade(req, socket, head));
  }

  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host: this.#options.host, port: this.#options.port }, () => {
        this.#server.off('error', reject);
        this.#options.events.on('event', this.#onEvent);
        this.#timers.push(
          setInterval(() => this.#sample(), sampleIntervalMs).unref(),
          setInterval(() => this.#tick(), this.#options.feedIntervalMs).unref(),
        );
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  /** Ends the live feed and every log follower (each told graycluster is stopping), then closes the server. */
  async close(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    this.#options.events.off('event', this.#onEvent);
    this.#feed.close();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await this.#logFollowers.close();
    this.#server.closeAllConnections();
    return closed;
  }

  #now(): { status: Status; sample: Sample } {
    const status = this.#options.status();
    return { status, sample: sampleOf(status, Date.now()) };
  }

  #sample(): void {
    const { sample } = this.#now();
    if (this.#history.add(sample)) this.#feed.broadcast(JSON.stringify({ type: 'sample', point: chartPoint(sample) } satisfies FeedMessage));
  }

  #tick(): void {
    if (this.#feed.size === 0) return;
    const { status, sample } = this.#now();
    const { events: _events, ...live } = status;
    const message: FeedMessage = { type: 'update', time: sample.time, status: live as LiveStatus, rates: this.#history.rates(sample, rateWindowMs) };
    this.#feed.broadcast(JSON.stringify(message));
  }

  #snapshotMessage(): FeedMessage {
    const { status, sample } = this.#now();
    const { events, ...live } = status;
    return {
      type: 'snapshot',
      time: sample.time,
      status: live as LiveStatus,
      events,
      rates: this.#history.rates(sample, rateWindowMs),
      history: this.#history.chart(),
      historyMs: this.#options.historyMs,
    };
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://dashboard');
    if (url.pathname !== '/ws') return refuseUpgrade(socket, 404, `no WebSocket at ${url.pathname}; the feed is at /ws\n`);
    if (isForeignOrigin(req)) return refuseUpgrade(socket, 403, `origin ${req.headers.origin} is not this dashboard's\n`);
    if (!upgradeHasToken(req, this.#options.token)) {
      return refuseUpgrade(socket, 401, 'missing or wrong token: send Authorization: Bearer <token>, or the subprotocol graycluster.token.<base64url token>\n', { 'WWW-Authenticate': 'Bearer' });
    }
    if (this.#feed.full) {
      this.#feed.counters.clientsRefused++;
      return refuseUpgrade(socket, 503, `the dashboard has its maximum of ${this.#options.maxClients} live clients\n`, { 'Retry-After': '10' });
    }
    this.#feed.accept(req, socket, head);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const readOnly = req.method === 'GET' || req.method === 'HEAD';
    const script = url.pathname.startsWith(clientPrefix) ? clientModule(url.pathname.slice(clientPrefix.length)) : undefined;
    const page: { body: string; type: string } | undefined = url.pathname === '/' ? { body: html, type: 'text/html; charset=utf-8' }
      : script !== undefined ? { body: script, type: 'text/javascript; charset=utf-8' }
        : url.pathname === '/app.css' ? { body: css, type: 'text/css; charset=utf-8' }
          : url.pathname === '/favicon.svg' ? { body: icon, type: 'image/svg+xml' }
            : undefined;
    if (page) {
      if (!readOnly) return send(res, 405, `${req.method} not allowed on ${url.pathname}\n`, { allow: 'GET, HEAD' });
      return send(res, 200, page.body, { ...pageHeaders, 'content-type': page.type });
    }
    if (url.pathname === '/metrics') {
      if (!readOnly) return send(res, 405, `${req.method} not allowed on /metrics\n`, { allow: 'GET, HEAD' });
      if (!this.#options.metricsPublic && !hasToken(req, this.#options.token)) return this.#unauthorized(res);
      const metrics = renderMetrics({
        status: this.#options.status(),
        feed: { ...this.#feed.counters, clients: this.#feed.size },
        logFollowers: { ...this.#logFollowers.counters, followers: this.#logFollowers.size },
        primary: ownMemoryUsage(),
      });
      return send(res, 200, metrics, { 'content-type': metricsContentType });
    }
    if (!url.pathname.startsWith('/api/')) return send(res, 404, `not found: ${url.pathname}\n`);
    if (isForeignOrigin(req)) return send(res, 403, `origin ${req.headers.origin} is not this dashboard's\n`);
    if (!hasToken(req, this.#options.token)) return this.#unauthorized(res);

    if (url.pathname === '/api/status') {
      if (!readOnly) return send(res, 405, `${req.method} not allowed on ${url.pathname}\n`, { allow: 'GET, HEAD' });
      return sendJson(res, 200, this.#options.status());
    }
    if (url.pathname === '/api/logs') {
      if (!readOnly) return send(res, 405, `${req.method} not allowed on ${url.pathname}\n`, { allow: 'GET, HEAD' });
      return this.#logs(res, url.searchParams, req.method === 'GET');
    }
    if (!isControlEndpoint(url.pathname)) return send(res, 404, `no such endpoint: ${url.pathname}\n`);
    if (req.method !== 'POST') return send(res, 405, `${req.method} not allowed on ${url.pathname}\n`, { allow: 'POST' });
    const read = await readJson(req);
    if ('error' in read) {
      res.setHeader('connection', 'close');
      return sendJson(res, read.status, { ok: false, status: read.status, error: read.error });
    }
    const call = parseControl(url.pathname, read.body);
    if (typeof call !== 'function') return sendJson(res, call.status, { ok: false, ...call });
    try {
      const result = await call(this.#options.controls);
      sendJson(res, result.ok ? 200 : result.status, result);
    } catch (error) {
      sendJson(res, 500, { ok: false, status: 500, error: (error as Error).message });
    }
  }

  /** GET /api/logs: the recent lines as JSON, or with follow=1 a stream of them (see LogFollowers). */
  #logs(res: ServerResponse, query: URLSearchParams, mayFollow: boolean): void {
    const logs = this.#options.logs;
    const parsed = parseLogQuery(query, (target) => logs.knows(target));
    if ('error' in parsed) return sendJson(res, parsed.status, { ok: false, ...parsed });
    if (!parsed.follow || !mayFollow) return sendJson(res, 200, { lines: logs.recent(parsed.target, parsed.lines) } satisfies LogsAnswer);
    if (this.#logFollowers.full) {
      this.#logFollowers.refused();
      return send(res, 503, JSON.stringify({ ok: false, status: 503, error: `the dashboard has its maximum of ${this.#options.maxLogFollowers} log followers (dashboard.maxLogFollowers)` }), {
        'content-type': 'application/json; charset=utf-8', 'retry-after': '10',
      });
    }
    this.#logFollowers.follow(res, parsed, securityHeaders);
  }

  #unauthorized(res: ServerResponse): void {
    send(res, 401, 'missing or wrong token: send Authorization: Bearer <token>\n', { 'www-authenticate': 'Bearer' });
  }
}
