import http, { type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { answerText, unavailableText } from '../shared/answers.js';
import { clientHeader, clientHeaderValue } from './client-address.js';
import { rawHeaderPairs } from './raw-headers.js';

// Hop-by-hop headers belong to one connection and are not passed on (RFC 9110 §7.6.1), nor is our private
// header as a client sent it: the forwarder adds its own.
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', clientHeader]);

/**
 * The end-to-end headers of a message: without the hop-by-hop ones and those its `Connection` header names.
 * With `upgrade`, the `Upgrade` header and `Connection: upgrade` stay, for a handshake to go on to the next hop.
 */
export function endToEnd(rawHeaders: readonly string[], upgrade = false): string[] {
  let named: Set<string> | undefined;
  for (const [name, value] of rawHeaderPairs(rawHeaders)) {
    if (name.toLowerCase() !== 'connection') continue;
    named ??= new Set();
    for (const token of value.split(',')) named.add(token.trim().toLowerCase());
  }
  const kept: string[] = [];
  for (const [name, value] of rawHeaderPairs(rawHeaders)) {
    const lower = name.toLowerCase();
    const passes = upgrade && lower === 'upgrade' ? true : !hopByHop.has(lower) && !named?.has(lower);
    if (passes) kept.push(name, value);
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
 * The one bound on what a worker carries to other versions: requests being relayed and upgrade tunnels open,
 * together at most `maxPending` (`server.forwardMaxPending`); past that each gets 503 and counts in `forwardShed`.
 * Also picks the target worker, in turn.
 */
export class ForwardBudget {
  #pending = 0;
  #cursor = 0;

  constructor(readonly counters: ForwardCounters) {}

  /** Relayed requests and tunnels under way now. */
  get pending(): number {
    return this.#pending;
  }

  /** Why nothing more can be forwarded now, or undefined when it can. Counts the refusal. */
  refusal(paths: readonly string[], maxPending: number): string | undefined {
    if (this.#pending < maxPending && paths.length > 0) return undefined;
    this.counters.forwardShed++;
    return paths.length === 0 ? 'no worker of this version can take forwarded requests' : `more than ${maxPending} forwarded requests under way`;
  }

  /** The next worker among `paths`, in turn; undefined when there is none. */
  next(paths: readonly string[]): string | undefined {
    return paths[this.#cursor++ % paths.length];
  }

  /** Takes a place in the budget (give it back with `release`) and picks the worker to go to. */
  take(paths: readonly string[]): string {
    const path = this.next(paths);
    if (path === undefined) throw new Error('ForwardBudget.take with no worker path: ask refusal() first');
    this.#pending++;
    this.counters.forwarded++;
    return path;
  }

  release(): void {
    this.#pending--;
  }
}

/**
 * Relays upgrades and CONNECT that arrived on this worker's connection but belong to another version to a worker
 * of that version, over its private socket, and tunnels them both ways. Each tunnel holds a place in the
 * `ForwardBudget` while it is open. The worker it reaches learns the client's address from the private
 * `clientHeader`. (Plain requests take the lean relay, relay.ts.)
 */
export class Forwarder {
  constructor(private readonly budget: ForwardBudget) {}

  /**
   * Relays an upgrade (or CONNECT) that arrived as 'upgrade' ('connect') on this worker's connection to a worker
   * of its version: the handshake goes over a connection of its own, and once the other worker switches protocols
   * the two sockets are piped both ways until either closes. An answer other than a switch is passed back, then
   * the connection closes.
   */
  relay(req: IncomingMessage, socket: Socket, head: Buffer, paths: readonly string[], maxPending: number): void {
    socket.on('error', () => socket.destroy());
    const refusal = this.budget.refusal(paths, maxPending);
    if (refusal) {
      socket.end(unavailableText(refusal));
      return;
    }
    const socketPath = this.budget.take(paths);
    const isConnect = req.method === 'CONNECT';
    const headers = endToEnd(req.rawHeaders, !isConnect);
    headers.push(clientHeader, clientHeaderValue(socket));
    const upstream = http.request({ socketPath, method: req.method, path: req.url, headers, agent: false, setHost: false });
    socket.once('close', () => {
      this.budget.release();
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
