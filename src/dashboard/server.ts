import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Controls } from '../control/types.js';
import type { EventLog } from '../primary/events.js';
import type { Status } from '../primary/status.js';
import { hasToken } from './auth.js';

export interface DashboardOptions {
  host: string;
  port: number;
  token: string;
  /** A fresh snapshot of every version and worker. */
  status: () => Status;
  /** Lifecycle events as they happen (and the recent ones). */
  events: EventLog;
  /** The operator's moves: the same code path as the CLI. */
  controls: Controls;
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(body);
}

/** The control surface: the status API, behind a bearer token, bound to loopback unless configured otherwise. */
export class DashboardServer {
  readonly #server = http.createServer((req, res) => this.#handle(req, res));

  constructor(private readonly options: DashboardOptions) {
    this.#server.headersTimeout = 10_000;
    this.#server.requestTimeout = 30_000;
  }

  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host: this.options.host, port: this.options.port }, () => {
        this.#server.off('error', reject);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    if (!url.pathname.startsWith('/api/')) {
      send(res, 404, `not found: ${url.pathname}\n`);
      return;
    }
    if (!hasToken(req, this.options.token)) {
      send(res, 401, 'missing or wrong token: send Authorization: Bearer <token>\n', { 'www-authenticate': 'Bearer' });
      return;
    }
    if (url.pathname === '/api/status') {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        send(res, 405, `${req.method} not allowed on ${url.pathname}\n`, { allow: 'GET, HEAD' });
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
      res.end(JSON.stringify(this.options.status()));
      return;
    }
    send(res, 404, `not found: ${url.pathname}\n`);
  }
}
