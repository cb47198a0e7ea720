import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HealthConfig } from '../config/types.js';
import type { ProbeVerdict } from './probes.js';

export interface Probes {
  live(): ProbeVerdict;
  ready(): ProbeVerdict;
}

const paths: Record<string, keyof Probes> = { '/livez': 'live', '/readyz': 'ready' };

/**
 * The probe listener: GET or HEAD /livez and /readyz, answered 200 "ok" or 503 with a short reason, in plain text,
 * without a token; any other path 404, any other method 405. It holds at most `maxConnections` connections (more are
 * closed unanswered), each for one request sent within `timeoutMs`: a probe never grows the primary's memory.
 */
export class ProbeServer {
  readonly #server: http.Server;

  constructor(private readonly options: Pick<HealthConfig, 'host' | 'port' | 'maxConnections' | 'timeoutMs'>, probes: Probes) {
    const { timeoutMs } = options;
    this.#server = http.createServer({
      headersTimeout: timeoutMs,
      requestTimeout: timeoutMs,
      connectionsCheckingInterval: Math.min(timeoutMs, 1000),
      maxHeaderSize: 8192,
    }, (request, response) => {
      const probe = paths[(request.url ?? '').split('?')[0] ?? ''];
      const method = request.method ?? '';
      const answer = (status: number, text: string, headers: Record<string, string> = {}) => {
        response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', connection: 'close', ...headers });
        response.end(method === 'HEAD' ? undefined : `${text}\n`);
      };
      if (probe === undefined) return answer(404, 'not found');
      if (method !== 'GET' && method !== 'HEAD') return answer(405, 'method not allowed', { allow: 'GET, HEAD' });
      const verdict = probes[probe]();
      answer(verdict.ok ? 200 : 503, verdict.reason);
    });
    this.#server.maxConnections = options.maxConnections;
    this.#server.maxRequestsPerSocket = 1;
    this.#server.setTimeout(timeoutMs, (socket) => socket.destroy());
  }

  async listen(): Promise<AddressInfo> {
    const { host, port } = this.options;
    await new Promise<void>((resolve, reject) => {
      const fail = (error: Error) => reject(new Error(`health.host/health.port ${host}:${port}: ${error.message}`));
      this.#server.once('error', fail);
      this.#server.listen(port ?? 0, host, () => {
        this.#server.off('error', fail);
        resolve();
      });
    });
    return this.#server.address() as AddressInfo;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
