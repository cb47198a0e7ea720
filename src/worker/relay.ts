/**
 * The lean relay: a request that arrived on this worker's client connection but belongs to another version goes
 * to a worker of that version as raw HTTP/1.1 bytes over a pooled Unix-socket connection to its forward socket,
 * and the answer comes back through the client's own ServerResponse with its head taken over verbatim (see
 * adoptResponseHead), so Node keeps pipelined answers in order and moves on to the next request. This side
 * parses nothing but what framing needs (response-framing.ts): no http.request, no IncomingMessage, no piping.
 * The request's head is built in relay-request.ts. A request without a body whose method is idempotent, sent on a
 * pooled connection that closes before a byte of its answer came (the target's keep-alive timer closed it as the
 * request went out), goes once more on a new connection, as a proxy retries its upstream (RFC 9110 §9.2.2).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import { respondBadGateway, respondUnavailable } from '../shared/answers.js';
import { adoptResponseHead, responseMayKeepAlive } from '../shared/node-internals.js';
import type { ForwardBudget } from './forward.js';
import { rawHeaderPairs } from './raw-headers.js';
import { requestHead } from './relay-request.js';
import { ResponseFramer, type FramingSink, type ResponseHead } from './response-framing.js';

/** The relay's limits (`server.relayMaxIdlePerTarget`, `server.relayIdleTimeoutMs`); they change with settings. */
export interface RelayLimits {
  /** Idle relay connections kept per target worker; one more is closed as soon as its answer is in. */
  maxIdlePerTarget: number;
  /** A relay connection idle this long is closed (checked every half of it, so it lives at most 1.5 times this). */
  idleTimeoutMs: number;
}

export interface RelayOptions extends RelayLimits {
  /** The keep-alive timeout (ms) the client's connection is promised: the app server's own. */
  keepAliveTimeoutMs(): number;
  /** True when the client connection of `res` closes after this answer, as it would after one served here. */
  closesAfter(res: ServerResponse): boolean;
}

/** Relays requests to other versions' workers over pooled connections; see the file's comment. */
export class Relay {
  readonly #idle = new Map<string, RelayConnection[]>();
  #idleCount = 0;
  #sweep: NodeJS.Timeout | undefined;
  #keepAliveTimeoutMs = -1;
  #keepAliveLines = '';

  constructor(private readonly budget: ForwardBudget, readonly options: RelayOptions) {}

  /**
   * Relays one request to a worker among `paths`, or answers 503 past `maxPending` relays and tunnels at once.
   * With `relayContinue` (it came through 'checkContinue', so Node sent no `100 Continue`), the target's
   * `100 Continue` is passed on; otherwise it was already sent here and the target's is dropped. `extraHead`: header
   * lines (each ending in CRLF) the answer gets besides its own: graycluster's cookies.
   */
  forward(req: IncomingMessage, res: ServerResponse, paths: readonly string[], maxPending: number, relayContinue: boolean, extraHead = ''): void {
    const refusal = this.budget.refusal(paths, maxPending);
    if (refusal) {
      respondUnavailable(res, refusal);
      return;
    }
    const path = this.budget.take(paths);
    const exchange: Exchange = { req, res, relayContinue, extraHead, paths, connection: this.#takeIdle(path) ?? new RelayConnection(path, this) };
    res.once('close', () => {
      this.budget.release();
      exchange.connection.responseClosed(res);
    });
    exchange.connection.start(exchange);
  }

  /**
   * Sends an exchange whose pooled connection to `failed` closed before its answer began again, on a new connection:
   * to another worker of the version when there is one (`failed` may be draining), else to the same.
   */
  retry(exchange: Exchange, failed: string): void {
    const path = this.budget.next(exchange.paths.filter((each) => each !== failed)) ?? failed;
    exchange.connection = new RelayConnection(path, this);
    exchange.connection.start(exchange);
  }

  /** Applies new limits; idle connections already kept past a lower count close with the idle timeout. */
  setLimits(limits: RelayLimits): void {
    if (limits.idleTimeoutMs !== this.options.idleTimeoutMs) {
      clearInterval(this.#sweep);
      this.#sweep = undefined;
    }
    this.options.maxIdlePerTarget = limits.maxIdlePerTarget;
    this.options.idleTimeoutMs = limits.idleTimeoutMs;
    if (this.#idleCount > 0) this.#sweep ??= setInterval(() => this.#closeIdle(), this.options.idleTimeoutMs / 2).unref();
  }

  /** Idle connections kept now, to one target or to all. */
  idleConnections(path?: string): number {
    return path === undefined ? this.#idleCount : (this.#idle.get(path)?.length ?? 0);
  }

  /** Closes the idle connections to workers not among `paths` (they stopped or drain). */
  retain(paths: ReadonlySet<string>): void {
    for (const [path, idle] of this.#idle) {
      if (paths.has(path)) continue;
      this.#idleCount -= idle.length;
      this.#idle.delete(path);
      for (const connection of idle) connection.socket.destroy();
    }
  }

  /** Takes back a connection whose answer is complete: kept idle if its target's pool has room, else closed. */
  release(connection: RelayConnection): void {
    let idle = this.#idle.get(connection.path);
    if (!idle) this.#idle.set(connection.path, (idle = []));
    if (idle.length >= this.options.maxIdlePerTarget) {
      connection.socket.destroy();
      return;
    }
    connection.idleSince = Date.now();
    idle.push(connection);
    this.#idleCount++;
    this.#sweep ??= setInterval(() => this.#closeIdle(), this.options.idleTimeoutMs / 2).unref();
  }

  /** A connection closed: it leaves the pool if it was there. */
  forget(connection: RelayConnection): void {
    const idle = this.#idle.get(connection.path);
    const index = idle?.indexOf(connection) ?? -1;
    if (idle === undefined || index === -1) return;
    idle.splice(index, 1);
    this.#idleCount--;
    if (idle.length === 0) this.#idle.delete(connection.path);
  }

  /** The Connection header (and Keep-Alive) of a relayed answer to the client, as Node would write them. */
  connectionLines(closeAfter: boolean): string {
    if (closeAfter) return 'Connection: close\r\n';
    const timeoutMs = this.options.keepAliveTimeoutMs();
    if (timeoutMs !== this.#keepAliveTimeoutMs) {
      this.#keepAliveTimeoutMs = timeoutMs;
      this.#keepAliveLines = `Connection: keep-alive\r\n${timeoutMs > 0 ? `Keep-Alive: timeout=${Math.floor(timeoutMs / 1000)}\r\n` : ''}`;
    }
    return this.#keepAliveLines;
  }

  #takeIdle(path: string): RelayConnection | undefined {
    const idle = this.#idle.get(path) ?? [];
    for (let connection = idle.pop(); connection !== undefined; connection = idle.pop()) {
      this.#idleCount--;
      if (connection.socket.writable) return connection;  // Else it is closing: its peer ended it.
    }
    return undefined;
  }

  #closeIdle(): void {
    const cutoff = Date.now() - this.options.idleTimeoutMs;
    for (const [path, idle] of this.#idle) {
      // Oldest first: connections are taken from the end.
      const firstFresh = idle.findIndex((connection) => connection.idleSince > cutoff);
      for (const connection of idle.splice(0, firstFresh === -1 ? idle.length : firstFresh)) {
        this.#idleCount--;
        connection.socket.destroy();
      }
      if (idle.length === 0) this.#idle.delete(path);
    }
    if (this.#idleCount === 0) {
      clearInterval(this.#sweep);
      this.#sweep = undefined;
    }
  }
}

/** One relayed request: the client's side, and the relay connection carrying it. */
interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  /** Pass the target's `100 Continue` on (see Relay.forward). */
  relayContinue: boolean;
  /** Header lines the answer gets besides its own. */
  extraHead: string;
  /** The workers of its version it could go to, when it was forwarded. */
  paths: readonly string[];
  connection: RelayConnection;
}

/** Methods whose request may be sent twice with the effect of once (RFC 9110 §9.2.2). */
const idempotent = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** One persistent connection to a target worker's forward socket, carrying one request at a time. */
class RelayConnection implements FramingSink {
  readonly socket: net.Socket;
  idleSince = 0;
  readonly #framer = new ResponseFramer();
  #exchange: Exchange | undefined;
  #chunkedRequest = false;
  #requestWritten = false;
  #upstreamKeepAlive = false;
  /** Answers this connection carried whole: past the first, it came from the pool. */
  #answered = 0;
  /** Whether the current request may go again on a new connection, until a byte of its answer comes. */
  #retryable = false;

  constructor(readonly path: string, private readonly relay: Relay) {
    this.socket = net.connect(path);
    this.socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    this.socket.on('close', () => this.#onClose());
    this.socket.on('error', () => {});  // 'close' follows and settles the exchange.
  }

  start(exchange: Exchange): void {
    const { req } = exchange;
    this.#exchange = exchange;
    const method = req.method ?? 'GET';
    this.#framer.begin(method);
    const { head, body } = requestHead(req);
    this.socket.write(head, 'latin1');
    this.#requestWritten = body === 'none';
    this.#retryable = this.#answered > 0 && body === 'none' && idempotent.has(method);
    this.#chunkedRequest = body === 'chunked';
    if (body === 'none') return;
    req.on('data', this.#onRequestData);
    req.on('end', this.#onRequestEnd);
  }

  /** The client's response closed: if its answer was still on its way, this connection is mid-message. */
  responseClosed(res: ServerResponse): void {
    if (res !== this.#exchange?.res) return;
    this.#detach();
    this.socket.destroy();
  }

  onInterim(status: number): void {
    const exchange = this.#current();
    if (status !== 100 || !exchange.relayContinue) return;
    exchange.relayContinue = false;
    exchange.res.writeContinue();
  }

  onHead(head: ResponseHead): void {
    const { res, extraHead } = this.#current();
    this.#upstreamKeepAlive = head.keepAlive;
    const closeAfter = !head.keepAlive || !responseMayKeepAlive(res) || this.relay.options.closesAfter(res);
    adoptResponseHead(res, head.status, `${head.endToEnd}${extraHead}${this.relay.connectionLines(closeAfter)}\r\n`, closeAfter);
  }

  onBody(bytes: Buffer): void {
    const { res } = this.#current();
    if (!res.write(bytes)) {
      this.socket.pause();
      res.once('drain', this.#resume);
    }
  }

  onEnd(lastBytes: Buffer | undefined): void {
    const { res } = this.#current();
    const reusable = this.#upstreamKeepAlive && this.#requestWritten && !this.socket.destroyed;
    this.#answered++;
    this.#detach();
    res.end(lastBytes);
    if (reusable) this.relay.release(this);
    else this.socket.destroy();
  }

  #resume = (): void => {
    this.socket.resume();
  };

  #onData(chunk: Buffer): void {
    if (!this.#exchange) {
      this.socket.destroy();  // Bytes with no request out: the target broke the framing.
      return;
    }
    this.#retryable = false;
    const used = this.#framer.feed(chunk, this);
    if (this.#framer.error !== undefined) this.#abandon(`the worker this request belongs to answered with ${this.#framer.error}`);
    else if (used < chunk.length) this.socket.destroy();
  }

  #onClose(): void {
    this.relay.forget(this);
    const exchange = this.#exchange;
    if (exchange === undefined) return;
    if (this.#retryable) {
      this.#detach();
      this.relay.retry(exchange, this.path);
    } else if (!this.#framer.close(this)) this.#abandon('the worker this request belongs to closed the connection before its answer ended');
  }

  /** The exchange failed: 502 if the answer had not begun, else the client's connection goes too, as a truncated
   * answer must not look complete. */
  #abandon(reason: string): void {
    const { res } = this.#current();
    const answered = this.#framer.headSeen;
    this.#detach();
    this.socket.destroy();
    if (answered) res.destroy();
    else if (!res.headersSent) respondBadGateway(res, reason);
  }

  // The framer calls back, and the request body's listeners run, only while an exchange is under way.
  #current(): Exchange {
    if (!this.#exchange) throw new Error('relay: an answer or a request body arrived with no exchange under way');
    return this.#exchange;
  }

  /** Ends this connection's part in the current exchange; a request body still coming is drained unread. */
  #detach(): void {
    const req = this.#exchange?.req;
    this.#exchange = undefined;
    this.#retryable = false;
    if (req && !this.#requestWritten) {
      req.off('data', this.#onRequestData);
      req.off('end', this.#onRequestEnd);
      req.resume();
    }
  }

  #onRequestData = (chunk: Buffer): void => {
    let flowing: boolean;
    if (this.#chunkedRequest) {
      this.socket.cork();
      this.socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      this.socket.write(chunk);
      flowing = this.socket.write('\r\n', 'latin1');
      this.socket.uncork();
    } else {
      flowing = this.socket.write(chunk);
    }
    if (!flowing) {
      const { req } = this.#current();
      req.pause();
      this.socket.once('drain', () => req.resume());
    }
  };

  #onRequestEnd = (): void => {
    const { req } = this.#current();
    this.#requestWritten = true;
    if (!this.#chunkedRequest) return;
    let trailers = '';
    for (const [name, value] of rawHeaderPairs(req.rawTrailers)) trailers += `${name}: ${value}\r\n`;
    this.socket.write(`0\r\n${trailers}\r\n`, 'latin1');
  };
}
