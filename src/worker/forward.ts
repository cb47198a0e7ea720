import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { answerBody, answerText, respondUnavailable, unavailableText } from '../shared/answers.js';
import { clientHeader, clientHeaderValue } from './client-address.js';

// Hop-by-hop headers belong to one connection and are not passed on (RFC 9110 §7.6.1), nor is our private
// header as a client sent it: the forwarder adds its own.
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', clientHeader]);

/**
 * The end-to-end headers of a message: without the hop-by-hop ones and those its `Connection` header names.
 * With `upgrade`, the `Upgrade` header and `Connection: upgrade` stay, for a handshake to go on to the next hop.
 */
export function endToEnd(rawHeaders: readonly string[], upgrade = false): string[] {
  let named: Set<string> | undefined;
  for (let index = 0; index < rawHeaders.length; index += 2) {
    if (rawHeaders[index]!.toLowerCase() !== 'connection') continue;
    named ??= new Set();
    for (const token of rawHeaders[index + 1]!.split(',')) named.add(token.trim().toLowerCase());
  }
  const kept: string[] = [];
  for (let index = 0; index < rawHeaders.length; index += 2) {
    const name = rawHeaders[index]!.toLowerCase();
    const passes = upgrade && name === 'upgrade' ? true : !hopByHop.has(name) && !named?.has(name);
    if (passes) kept.push(rawHeaders[index]!, rawHeaders[index + 1]!);
  }
  if (upgrade) kept.push('connection', 'upgrade');
  return kept;
}

/** The status line and headers of an answer, as raw bytes for a socket no ServerResponse owns. */
function rawHead(answer: IncomingMessage, headers: readonly string[]): string {
  let text = `HTTP/1.1 ${answer.statusCode ?? 502} ${answer.statusMessage ?? ''}\r\n`;
  for (let index = 0; index < headers.length; index += 2) text += `${headers[index]}: ${headers[index + 1]}\r\n`;
  return `${text}\r\n`;
}

export interface ForwardCounters {
  forwarded: number;
  forwardShed: number;
}

/**
 * Carries a request that arrived on this worker's connection but belongs to another version to a worker of that
 * version, over its private socket, and pipes the answer back; an upgrade or CONNECT is relayed the same way and
 * then tunnelled both ways. Bounded: at most `maxPending` requests and tunnels at once; past that a request gets
 * 503, so nothing queues without limit (the agent's own queue never holds more than that). The worker it reaches
 * learns the client's address from the private `clientHeader`.
 */
export class Forwarder {
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 32, maxFreeSockets: 8 });
  #pending = 0;
  #cursor = 0;

  constructor(private readonly counters: ForwardCounters) {}

  /** Requests being forwarded and tunnels open now. */
  get pending(): number {
    return this.#pending;
  }

  /** Why nothing more can be forwarded now, or undefined when it can. Counts the refusal. */
  #refusal(paths: readonly string[], maxPending: number): string | undefined {
    if (this.#pending < maxPending && paths.length > 0) return undefined;
    this.counters.forwardShed++;
    return paths.length === 0 ? 'no worker of this version can take forwarded requests' : `more than ${maxPending} forwarded requests under way`;
  }

  #take(paths: readonly string[]): string {
    this.#pending++;
    this.counters.forwarded++;
    return paths[this.#cursor++ % paths.length]!;
  }

  /**
   * Forwards one request and pipes the answer back. With `relayContinue` (the request came through
   * 'checkContinue', so no `100 Continue` was sent), the other worker's `100 Continue` is passed on when it comes.
   */
  forward(req: IncomingMessage, res: ServerResponse, paths: readonly string[], maxPending: number, relayContinue = false): void {
    const refusal = this.#refusal(paths, maxPending);
    if (refusal) {
      respondUnavailable(res, refusal);
      return;
    }
    const socketPath = this.#take(paths);
    res.once('close', () => {
      this.#pending--;
      if (!res.writableFinished) upstream.destroy();
    });
    const headers = endToEnd(req.rawHeaders);
    headers.push(clientHeader, clientHeaderValue(req.socket));
    const upstream = http.request({ socketPath, method: req.method, path: req.url, headers, agent: this.#agent, setHost: false }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, endToEnd(answer.rawHeaders));
      answer.pipe(res);
    });
    if (relayContinue) upstream.once('continue', () => res.writeContinue());
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

  /**
   * Relays an upgrade (or CONNECT) that arrived as 'upgrade' ('connect') on this worker's connection to a worker
   * of its version: the handshake goes over a connection of its own, and once the other worker switches protocols
   * the two sockets are piped both ways until either closes. An answer other than a switch is passed back, then
   * the connection closes.
   */
  relay(req: IncomingMessage, socket: Socket, head: Buffer, paths: readonly string[], maxPending: number): void {
    socket.on('error', () => socket.destroy());
    const refusal = this.#refusal(paths, maxPending);
    if (refusal) {
      socket.end(unavailableText(refusal));
      return;
    }
    const socketPath = this.#take(paths);
    const isConnect = req.method === 'CONNECT';
    const headers = endToEnd(req.rawHeaders, !isConnect);
    headers.push(clientHeader, clientHeaderValue(socket));
    const upstream = http.request({ socketPath, method: req.method, path: req.url, headers, agent: false, setHost: false });
    socket.once('close', () => {
      this.#pending--;
      upstream.destroy();
    });
    const tunnel = (answer: IncomingMessage, upstreamSocket: Socket, upstreamHead: Buffer) => {
      upstreamSocket.on('error', () => socket.destroy());
      upstreamSocket.once('close', () => socket.destroy());
      socket.once('close', () => upstreamSocket.destroy());
      socket.write(rawHead(answer, answer.rawHeaders));
      if (upstreamHead.length > 0) socket.write(upstreamHead);
      if (head.length > 0) upstreamSocket.write(head);
      upstreamSocket.pipe(socket);
      socket.pipe(upstreamSocket);
    };
    upstream.on(isConnect ? 'connect' : 'upgrade', tunnel);
    upstream.on('response', (answer: IncomingMessage) => {
      const kept = endToEnd(answer.rawHeaders);
      kept.push('connection', 'close');
      socket.write(rawHead(answer, kept));
      answer.pipe(socket);
    });
    upstream.on('error', () => {
      if (!socket.writableEnded) socket.end(answerText(502, 'the worker this request belongs to did not answer'));
    });
    upstream.end();
  }
}
