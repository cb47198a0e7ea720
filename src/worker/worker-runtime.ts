import diagnosticsChannel from 'node:diagnostics_channel';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import net, { type Socket } from 'node:net';
import path from 'node:path';
import { parse as parseCookies, serialize as serializeCookie } from 'cookie';
import { serverDefaults } from '../config/types.js';
import type { ToPrimary, ToWorker, WorkerSettings, WorkerStats } from '../ipc/messages.js';
import type { WorkerEnv } from '../ipc/worker-env.js';
import { addressMatcher, type AddressMatcher } from '../shared/address-range.js';
import { answerText, respondUnavailable, unavailableText } from '../shared/answers.js';
import { ExpiringSet } from '../shared/expiring-set.js';
import { HeadWait } from '../shared/pending-book.js';
import { adoptConnection, closeBareHandle, emitConnectionWithHeaderRoom, reservePeerSlot, socketOverBareHandle, type TcpHandle } from '../shared/node-internals.js';
import { ranSince, runningNow } from '../shared/stalls.js';
import { applyForwardedClient, clientHeaderRoom, hasForwardingHeaders, stripForwardingHeaders } from './client-address.js';
import { diagnose } from './diagnostics.js';
import { ForwardBudget, Forwarder } from './forward.js';
import { originalListen } from './intercept.js';
import { Relay } from './relay.js';
import { emptyRouteMemo, RouteCheck, type RouteMemo } from './route-check.js';
import { RequestStats } from './stats.js';

/** What the runtime knows of each connection it gave the app. */
export interface ConnectionInfo {
  /** Came from another worker's forwarder: already on the right version, and its requests name their client. */
  forwarded: boolean;
  /** The client is a trusted proxy (`server.trustProxy`): its forwarding headers reach the app. */
  trustedPeer: boolean;
  /** Requests seen; the first was routed by the primary, unless `routeFirst`. */
  requests: number;
  /**
   * Its first request is routed here like later ones: placed here for its peer's sake (primary/shared-peers.ts),
   * or accepted on the version's own port.
   */
  routeFirst: boolean;
  /** Accepted on the version's own port (`versions.<name>.port`): a proxy's pool for this version, not a peer to learn. */
  byPort: boolean;
  /** The version its first request went to. */
  firstVersion: string | null;
  /** It carried requests of two versions, and its peer was reported as one that pools its connections. */
  mixed: boolean;
  /** Placed here for its peer's sake, it carried one other version's requests only: it closes after this answer. */
  oneUser: boolean;
  /** The sticky cookie the primary picked for its first request (a client without a key), to set on its answer. */
  assignCookie: string | undefined;
  /** Requests of this connection the app is running now. */
  active: number;
  /** When its last response ended (or it arrived), as performance.now(). */
  idleSince: number;
  /** The last routing check of a later request on it, made once it has one. */
  route: RouteMemo | undefined;
}

/** How the runtime reaches the world outside its process; a unit test passes fakes. */
export interface RuntimeHooks {
  /** Sends to the primary; false when the channel is gone. `done` hears when a handle sent along has left. */
  send(message: ToPrimary, handle?: TcpHandle, done?: (error: Error | null) => void): boolean;
  /** Ends the process (once drained). */
  exit(code: number): void;
}

export interface RuntimeOptions {
  env: WorkerEnv;
  hooks: RuntimeHooks;
  /**
   * While draining, a keep-alive connection is closed only after it has been idle this long. Closing one the
   * instant its response ends races the client's next request on it, which then fails (the ECONNRESET of
   * "graceful" reloads); a connection in use gets `Connection: close` on its next response instead.
   */
  drainIdleGraceMs?: number;
}

const cookieMaxAgeSeconds = 365 * 24 * 3600;
/** How often a worker tries again for its version's port while another program holds it. */
const versionPortRetryMs = 5_000;

/**
 * Requests of one other version in a row, from the first, that tell one user's connection from a proxy's pooled one
 * (see #reportOneUser). A pooled connection does that by chance with a minority version's share to the power of
 * three: at most 1 in 27 of those placed for their peer's sake, since a leading version has two thirds.
 */
const oneUserRequests = 4;
const serverSocketChannel = diagnosticsChannel.channel('net.server.socket');

/**
 * One worker's runtime: takes the app's server, feeds it the sockets the primary hands over (and those other
 * workers forward), checks each later request on a connection against the routing, counts what is in flight,
 * and drains. Everything it knows lives here, so a test can create one around a real http.Server.
 */
export class WorkerRuntime {
  readonly env: WorkerEnv;
  readonly stats = new RequestStats();
  /** Requests relayed and tunnels open to other versions, bounded together by `forwardMaxPending`. */
  readonly forwards = new ForwardBudget(this.stats.counters);
  readonly forwarder = new Forwarder(this.forwards);
  readonly relay: Relay;
  /** Where other workers forward requests of this version that reached them. */
  readonly forwardPath: string;
  readonly forwardServer: net.Server;
  /** Accepts the connections to the version's own port itself, once the app listens; undefined without one. */
  readonly versionServer: net.Server | undefined;
  readonly #hooks: RuntimeHooks;
  readonly #drainIdleGraceMs: number;
  readonly #connections = new Map<Socket, ConnectionInfo>();
  readonly #inFlight = new Set<ServerResponse>();
  #route: RouteCheck | undefined;
  #trustedPeer: AddressMatcher | undefined;
  /** Peers reported to the primary as pooling their connections, each again at most every 10 s. */
  readonly #reportedPeers = new ExpiringSet(256, 10_000);
  #appServer: Server | undefined;
  #draining = false;
  #drainTimer: NodeJS.Timeout | undefined;
  /** Why the version's port could not be had at the last try (its code), while it is tried again; else undefined. */
  #versionPortError: string | undefined;
  #versionPortRetry: NodeJS.Timeout | undefined;
  /**
   * Connections on the version's own port waiting for their first head, held to the limits the primary holds its
   * port's to (shared/pending-book.ts); Node's parser reads the head, this only keeps the books until it came.
   */
  readonly #firstHeads = new HeadWait<Socket>(() => this.#route?.settings ?? serverDefaults, ({ item, status, reason, headers }) => {
    this.stats.counters.pendingTurnedAway++;
    item.on('error', () => item.destroy());
    item.end(answerText(status, reason, headers), () => item.destroy());
  });
  /** Connections on their way back to the primary: the process must not exit before they have left. */
  #handingBack = 0;

  constructor(options: RuntimeOptions) {
    this.env = options.env;
    this.#hooks = options.hooks;
    this.#drainIdleGraceMs = options.drainIdleGraceMs ?? 1000;
    this.relay = new Relay(this.forwards, {
      maxIdlePerTarget: serverDefaults.relayMaxIdlePerTarget,
      idleTimeoutMs: serverDefaults.relayIdleTimeoutMs,
      keepAliveTimeoutMs: () => this.#appServer?.keepAliveTimeout ?? 0,
      closesAfter: (res) => this.#draining || this.#misplaced(this.#connections.get(res.socket as Socket)),
    });
    this.forwardPath = path.join(this.env.runDir, `${this.env.workerId}-${process.pid}.sock`);
    this.forwardServer = net.createServer((socket) => {
      if (!this.#appServer || this.#draining) socket.destroy();
      else this.admit(socket, { forwarded: true });
    });
    if (this.env.versionPort !== null) {
      this.versionServer = net.createServer((socket) => {
        if (this.#draining) socket.destroy();
        else if (this.#firstHeads.admit(socket, () => socket.remoteAddress)) this.admit(socket, { forwarded: false, byPort: true });
      });
    }
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  get connections(): number {
    return this.#connections.size;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Takes the app's server: every request, expectation, upgrade and CONNECT it parses passes the runtime first. */
  adopt(server: Server): void {
    this.#appServer = server;
    const emit = server.emit;
    const runtime = this;
    // Fixed parameters and `arguments`, so that events other than these pass through without a copy.
    server.emit = function (this: Server, event: string | symbol, first?: unknown, second?: unknown, third?: unknown): boolean {
      switch (event) {
        case 'request':
        case 'checkExpectation':
          if (runtime.#answeredRequest(first as IncomingMessage, second as ServerResponse, false)) return true;
          break;
        case 'checkContinue':
          if (runtime.#answeredRequest(first as IncomingMessage, second as ServerResponse, true)) return true;
          break;
        case 'upgrade':
        case 'connect':
          if (runtime.#relayedUpgrade(first as IncomingMessage, second as Socket, third as Buffer)) return true;
          break;
      }
      return Reflect.apply(emit, this, arguments) as boolean;
    } as Server['emit'];
  }

  /** Gives the app a connection, keeping net's own bookkeeping so the app's server.close() behaves. */
  admit(socket: Socket, options: { forwarded: boolean; assignCookie?: string | undefined; routeFirst?: boolean; byPort?: boolean }): void {
    const server = this.#appServer;
    if (!server) {
      socket.destroy();  // The app has not listened yet: there is nothing to give it to.
      return;
    }
    reservePeerSlot(socket);
    const forwarded = options.forwarded;
    const trustedPeer = !forwarded && this.#trustedPeer !== undefined && this.#trustedPeer(socket.remoteAddress);
    this.#connections.set(socket, {
      forwarded, trustedPeer, requests: 0, routeFirst: options.routeFirst === true || options.byPort === true, byPort: options.byPort === true, firstVersion: this.env.version, mixed: false, oneUser: false,
      assignCookie: options.assignCookie, active: 0, idleSince: performance.now(), route: undefined,
    });
    adoptConnection(server, socket);
    socket.once('close', () => {
      if (options.byPort === true) this.#firstHeads.done(socket);
      this.#connections.delete(socket);
      this.#finishDrainIfIdle();
    });
    // A relayed head carries the private client header on top of what the client sent, which the worker that
    // relayed it held to the same limit: room for it, so a head near the limit is answered as it is in place.
    if (forwarded) emitConnectionWithHeaderRoom(server, socket, clientHeaderRoom);
    else server.emit('connection', socket);
  }

  /** Handles one message from the primary (a connection's handle, new settings, drain, a diagnostic request). */
  receive(message: ToWorker, handle?: TcpHandle): void {
    switch (message.kind) {
      case 'connection':
        this.#takeConnection(message, handle);
        return;
      case 'settings':
        this.applySettings(message.settings);
        return;
      case 'drain':
        this.startDrain();
        return;
      case 'diagnose':
        this.#hooks.send({ kind: 'diagnosed', requestId: message.requestId, answer: diagnose(message.request) });
        return;
    }
  }

  applySettings(settings: WorkerSettings): void {
    this.#route = new RouteCheck(settings, this.env.version);
    this.#trustedPeer = settings.trustProxy === false ? undefined : addressMatcher(settings.trustProxy);
    this.relay.retain(new Set(Object.values(settings.forwardPaths).flat()));
    this.relay.setLimits({ maxIdlePerTarget: settings.relayMaxIdlePerTarget, idleTimeoutMs: settings.relayIdleTimeoutMs });
  }

  /** Tells the primary the app listens, once the forward socket does too. */
  announce(): void {
    if (!this.forwardServer.listening) {
      this.forwardServer.once('listening', () => this.announce());
      return;
    }
    this.#listenOnVersionPort(() => this.#hooks.send({ kind: 'listening', forwardPath: this.forwardPath }));
  }

  /**
   * Starts accepting on the version's own port, then calls `then`. Every worker of the version listens on one
   * socket the cluster primary binds for them all (node:cluster's shared handle: `cluster.schedulingPolicy` is
   * SCHED_NONE, see primary/worker-process.ts), so connections to it reach the workers without the primary and the
   * port stays open while any of them listens. A port that cannot be had (another program holds it) is reported,
   * to the terminal once and to the primary each time, and tried again every versionPortRetryMs; meanwhile the
   * worker serves through server.port.
   */
  #listenOnVersionPort(then?: () => void): void {
    const server = this.versionServer;
    if (server === undefined || server.listening || this.#draining) {
      then?.();
      return;
    }
    const done = (error?: NodeJS.ErrnoException) => {
      server.off('listening', done);
      server.off('error', done);
      const where = `graycluster: versions.${this.env.version}.port: ${this.env.host}:${this.env.versionPort}`;
      if (error) {
        const code = error.code ?? error.message;
        if (this.#versionPortError !== code) console.error(`${where}: cannot listen (${code}); this worker takes connections from server.port only, and tries again every ${versionPortRetryMs / 1000} s`);
        this.#versionPortError = code;
        this.#hooks.send({ kind: 'version-port', listening: false, error: code });
        if (!this.#draining) this.#versionPortRetry = setTimeout(() => this.#listenOnVersionPort(), versionPortRetryMs).unref();
      } else if (this.#draining) {
        server.close();  // The drain began while the port was being had.
      } else {
        if (this.#versionPortError !== undefined) console.error(`${where}: listening now`);
        this.#versionPortError = undefined;
        this.#hooks.send({ kind: 'version-port', listening: true });
        // An accept that fails (out of file descriptors) is reported and the server goes on, as the primary's does.
        server.on('error', (failure: NodeJS.ErrnoException) => console.error(`${where}: ${failure.code ?? failure.message}`));
      }
      then?.();
    };
    server.once('listening', done);
    server.once('error', done);
    Reflect.apply(originalListen, server, [{ port: this.env.versionPort, host: this.env.host }]);
  }

  snapshot(): WorkerStats {
    return this.stats.snapshot({ inFlight: this.#inFlight.size, connections: this.#connections.size });
  }

  /** Stops taking connections, lets in-flight requests finish, closes idle connections, then exits. */
  startDrain(): void {
    if (this.#draining) return;
    this.#draining = true;
    if (this.forwardServer.listening) this.forwardServer.close();
    clearTimeout(this.#versionPortRetry);
    if (this.versionServer?.listening) this.versionServer.close();
    for (const res of this.#inFlight) if (!res.headersSent) res.setHeader('connection', 'close');
    this.#drainTimer = setInterval(() => this.closeIdleConnections(), this.#drainIdleGraceMs / 4).unref();
    this.#finishDrainIfIdle();
  }

  /**
   * While draining: closes the connections idle for the grace period, as of `now` (a runningNow() reading). Time this
   * process stalled does not count (shared/stalls.ts): a request that came meanwhile may not have been read yet.
   */
  closeIdleConnections(now = runningNow()): void {
    for (const [socket, info] of this.#connections) {
      if (info.active === 0 && ranSince(info.idleSince, now) >= this.#drainIdleGraceMs) socket.destroySoon();
    }
  }

  #finishDrainIfIdle(): void {
    if (!this.#draining || this.#connections.size > 0 || this.#inFlight.size > 0 || this.#handingBack > 0) return;
    clearInterval(this.#drainTimer);
    this.#hooks.exit(0);
  }

  /**
   * A connection from the primary, as its bare handle: the net.Socket is built here, as net.Server's
   * onconnection would. One this worker cannot take goes back still bare; once it has left (or failed to), this
   * process's copy is closed, which leaves the primary's open.
   */
  #takeConnection(message: Extract<ToWorker, { kind: 'connection' }>, handle: TcpHandle | undefined): void {
    if (!handle) return;  // The handle did not come through.
    if (!this.#appServer || this.#draining) {
      this.#handingBack++;
      const refused: ToPrimary = { kind: 'refused', bytes: message.bytes };
      if (message.assignCookie !== undefined) refused.assignCookie = message.assignCookie;
      if (message.routeFirst) refused.routeFirst = true;
      const sent = this.#hooks.send(refused, handle, () => {
        closeBareHandle(handle);
        this.#handingBack--;
        this.#finishDrainIfIdle();
      });
      if (!sent) {
        this.#handingBack--;
        closeBareHandle(handle);
      }
      return;
    }
    const socket = socketOverBareHandle(handle, this.#appServer);
    this.admit(socket, { forwarded: false, assignCookie: message.assignCookie, routeFirst: message.routeFirst === true });
    // As net.Server publishes each connection it accepts (APM agents listen there); a forwarded one was already.
    if (serverSocketChannel.hasSubscribers) serverSocketChannel.publish({ socket });
    // The head the primary read goes back in front of whatever the socket reads next, once the app's server has the
    // socket: by then its 'data' listener (Node's HTTP parser) has made the stream flow, so the stream hands the head
    // to it at once. Put back before, the head waited in the stream's buffer for a later tick, a stream read and a
    // 'data' event of their own (about 2% of the worker's CPU per connection in a profile).
    socket.unshift(Buffer.from(message.bytes, 'base64'));
  }

  /**
   * Sees each request on a connection before the app: applies the client's address (forwarded) or drops the
   * forwarding headers an untrusted client sent, then the routing check for a later request on a connection.
   * Returns the version that must answer, or undefined for this worker.
   */
  #otherVersion(req: IncomingMessage, info: ConnectionInfo | undefined): { version: null } | { version: string; route: RouteCheck } | undefined {
    if (info === undefined) return undefined;
    if (info.forwarded) {
      applyForwardedClient(req);
      return undefined;
    }
    if (!info.trustedPeer && hasForwardingHeaders(req.rawHeaders)) stripForwardingHeaders(req);
    const first = info.requests++ === 0;
    if (first && info.byPort) this.#firstHeads.done(req.socket);
    if (first && !info.routeFirst) return undefined;  // The primary routed it here.
    const route = this.#route;
    // Settings come before any connection; without them, a first request placed for its peer's sake cannot be routed.
    if (route === undefined) return first ? { version: null } : undefined;
    const memo = info.route ??= emptyRouteMemo();
    const version = route.versionForLater(req, memo);
    // A client without a key, given a pick of its own, says nothing of the connection's peer; nor does a proxy's
    // connection to the version's own port, which is its pool for this version whatever it carries.
    if (memo.assignCookie === undefined && !info.byPort) this.#notePeer(req.socket, info, first, version);
    if (version === this.env.version) return undefined;
    return version === null ? { version } : { version, route };
  }

  /**
   * What a routed request says of its connection's peer: a second version on the connection makes it a peer that
   * pools its connections (#reportMixed); one other version throughout, on a connection placed for its peer's
   * sake, makes it one user's (#reportOneUser).
   */
  #notePeer(socket: Socket, info: ConnectionInfo, first: boolean, version: string | null): void {
    if (first) info.firstVersion = version;
    else if (version !== info.firstVersion) {
      if (!info.mixed) this.#reportMixed(socket, info);
    } else if (info.routeFirst && !info.mixed && info.requests === oneUserRequests && version !== this.env.version) {
      this.#reportOneUser(socket, info);
    }
  }

  /**
   * A connection that closes after its answer, to be placed again: a pooled one (it carried two versions) held here
   * while another version leads among pooled connections (primary/shared-peers.ts), for the proxy's next connection
   * to go to that version; or one user's connection placed here for its peer's sake (see #reportOneUser).
   */
  #misplaced(info: ConnectionInfo | undefined): boolean {
    if (info === undefined) return false;
    if (info.oneUser) return true;
    if (!info.mixed) return false;
    const leading = this.#route?.settings.sharedLeading;
    return leading !== undefined && leading !== null && leading !== this.env.version;
  }

  /**
   * A connection placed here for its peer's sake whose first `oneUserRequests` requests all belonged to one other
   * version: one user's connection, so its peer's connections are not all pooled. The primary hears of it and
   * places that peer's connections by their first request again; this one closes after its answer, and its
   * client's next connection goes to its own version.
   */
  #reportOneUser(socket: Socket, info: ConnectionInfo): void {
    info.oneUser = true;
    const address = socket.remoteAddress;
    if (address === undefined) return;
    this.#reportedPeers.delete(address);  // Its next connection that mixes is news again.
    this.#hooks.send({ kind: 'unpooled-peer', address });
  }

  /**
   * A connection carried requests of two versions: its peer pools its connections (a load balancer). The primary
   * hears of each such peer at most every 10 s from this worker, and places its new connections by it.
   */
  #reportMixed(socket: Socket, info: ConnectionInfo): void {
    info.mixed = true;
    const address = socket.remoteAddress;
    if (address === undefined || this.#reportedPeers.has(address)) return;
    this.#reportedPeers.add(address);
    this.#hooks.send({ kind: 'shared-peer', address });
  }

  /** Counts a request on its connection until its answer is done, so that a drain does not close the connection under it. */
  #activeUntilClosed(info: ConnectionInfo, res: ServerResponse): void {
    info.active++;
    res.once('close', () => {
      info.active--;
      info.idleSince = performance.now();
      this.#finishDrainIfIdle();
    });
  }

  /**
   * A request, whichever event it reaches the app through. Answers it (forwarded to its version, or 503 past a
   * limit) and returns true; or sets up its accounting and headers and returns false, for the app to answer.
   */
  #answeredRequest(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): boolean {
    const info = this.#connections.get(req.socket);
    const other = this.#otherVersion(req, info);
    if (other !== undefined) {
      if (other.version === null) {
        respondUnavailable(res, 'no worker of the version this request belongs to is ready');
        return true;
      }
      // The worker it goes to sets the version cookie: only this connection's sticky cookie is ours to add.
      const cookies = this.#cookiesFor(req, info, undefined);
      const extraHead = cookies === undefined ? '' : cookies.map((cookie) => `Set-Cookie: ${cookie}\r\n`).join('');
      if (info) this.#activeUntilClosed(info, res);  // A drain waits for its answer as for one served here.
      this.relay.forward(req, res, other.route.forwardPaths(other.version), other.route.settings.forwardMaxPending, expectsContinue, extraHead);
      return true;
    }
    const maxInFlight = this.env.maxInFlight;
    if (this.#inFlight.size >= maxInFlight) {
      this.stats.counters.shed++;
      respondUnavailable(res, `worker at its limit of ${maxInFlight} requests in flight`);
      return true;
    }
    const started = performance.now();
    this.#inFlight.add(res);
    if (this.#inFlight.size === maxInFlight) this.#hooks.send({ kind: 'load', inFlight: this.#inFlight.size });
    if (info) info.active++;
    res.once('close', () => {
      this.#inFlight.delete(res);
      if (this.#inFlight.size === maxInFlight - 1) this.#hooks.send({ kind: 'load', inFlight: this.#inFlight.size });
      const ended = performance.now();
      if (info) {
        info.active--;
        info.idleSince = ended;
      }
      this.stats.record(res.statusCode, ended - started);
      this.#finishDrainIfIdle();
    });
    if (this.#draining || this.#misplaced(info)) res.setHeader('connection', 'close');
    const settings = this.#route?.settings;
    if (settings?.versionHeader) res.setHeader(settings.versionHeader, this.env.version);
    const cookies = this.#cookiesFor(req, info, this.env.version);
    if (cookies !== undefined) res.appendHeader('set-cookie', cookies);
    return false;
  }

  /**
   * The Set-Cookie values of an answer from `version`: the sticky cookie of a client without a key (the primary's
   * pick for a connection's first request, else this request's own: RouteCheck.versionForLater), unless it sent
   * one; and the cookie naming `version` (`routing.versionCookie`), for a proxy that keeps a pool of connections
   * per version, unless the request named that version already (undefined `version`: an answer relayed from
   * another version's worker, which names its version itself). Undefined when there is neither; the request's
   * cookies are parsed at most once.
   */
  #cookiesFor(req: IncomingMessage, info: ConnectionInfo | undefined, version: string | undefined): string[] | undefined {
    const routing = this.#route?.settings.routing;
    if (routing === undefined) return undefined;
    const assignCookie = info?.route?.assignCookie ?? (info?.requests === 1 ? info.assignCookie : undefined);
    const sticky = assignCookie === undefined ? null : routing.sticky.cookie;
    const named = version === undefined ? null : routing.versionCookie;
    if (!sticky && !named) return undefined;
    const sent = parseCookies(req.headers.cookie ?? '');
    const cookies: string[] = [];
    if (sticky && assignCookie !== undefined && sent[sticky] === undefined) {
      cookies.push(serializeCookie(sticky, assignCookie, { path: '/', maxAge: cookieMaxAgeSeconds, sameSite: 'lax', httpOnly: true }));
    }
    if (named && version !== undefined && sent[named] !== version) cookies.push(serializeCookie(named, version, { path: '/', sameSite: 'lax', httpOnly: true }));
    return cookies.length === 0 ? undefined : cookies;
  }

  /** An upgrade or CONNECT: relayed to a worker of its version when it is not this one's (true), else the app's. */
  #relayedUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): boolean {
    const other = this.#otherVersion(req, this.#connections.get(socket));
    if (other === undefined) return false;
    if (other.version === null) {
      socket.on('error', () => socket.destroy());
      socket.end(unavailableText('no worker of the version this request belongs to is ready'));
      return true;
    }
    this.forwarder.relay(req, socket, head, other.route.forwardPaths(other.version), other.route.settings.forwardMaxPending);
    return true;
  }
}
