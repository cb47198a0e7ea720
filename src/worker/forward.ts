import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { answerBody, respondUnavailable } from '../shared/answers.js';

// Hop-by-hop headers belong to one connection and are not passed on (RFC 9110 §7.6.1).
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

function endToEnd(rawHeaders: string[]): string[] {
  const kept: string[] = [];
  for (let index = 0; index < rawHeaders.length; index += 2) {
    if (!hopByHop.has(rawHeaders[index]!.toLowerCase())) kept.push(rawHeaders[index]!, rawHeaders[index + 1]!);
  }
  return kept;
}

export interface ForwardCounters {
  forwarded: number;
  forwardShed: number;
}

/**
 * Carries a request that arrived on this worker's connection but belongs to another version to a worker of that
 * version, over its private socket, and pipes the answer back. Bounded: at most `maxPending` at once; past that the
 * request gets 503, so nothing queues without limit (the agent's own queue never holds more than that).
 */
export class Forwarder {
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 32, maxFreeSockets: 8 });
  #pending = 0;
  #cursor = 0;

  constructor(private readonly counters: ForwardCounters) {}

  get pending(): number {
    return this.#pending;
  }

  forward(req: IncomingMessage, res: ServerResponse, paths: string[], maxPending: number): void {
    if (this.#pending >= maxPending || paths.length === 0) {
      this.counters.forwardShed++;
      respondUnavailable(res, paths.length === 0 ? 'no worker of this version can take forwarded requests' : `more than ${maxPending} forwarded requests under way`);
      return;
    }
    const socketPath = paths[this.#cursor++ % paths.length]!;
    this.#pending++;
    this.counters.forwarded++;
    res.once('close', () => {
      this.#pending--;
      if (!res.writableFinished) upstream.destroy();
    });
    const headers = endToEnd(req.rawHeaders);
    headers.push('x-forwarded-for', req.socket.remoteAddress ?? '');
    const upstream = http.request({ socketPath, method: req.method, path: req.url, headers, agent: this.#agent, setHost: false }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, endToEnd(answer.rawHeaders));
      answer.pipe(res);
    });
    upstream.on('error', () => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(answerBody(502, 'the worker this request belongs to did not answer'));
    });
    req.pipe(upstream);
  }
}
