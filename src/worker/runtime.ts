/**
 * The entry of every worker process. It loads the team's unmodified app, takes over the app's listen, and
 * feeds the app's server the client sockets the primary hands over, with the bytes the primary already read.
 */
import type { Server, IncomingMessage, ServerResponse } from 'node:http';
import net, { type Socket } from 'node:net';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parse as parseCookies, serialize as serializeCookie } from 'cookie';
import { displayPath } from '../shared/display-path.js';
import { decide } from '../routing/decide.js';
import { onPrimaryMessage, sendToPrimary } from '../ipc/channel.js';
import { latencyBoundsMs, type ToWorker, type WorkerSettings, type WorkerStats } from '../ipc/messages.js';
import { decodeWorkerEnv } from '../ipc/worker-env.js';
import { respondUnavailable } from '../shared/answers.js';
import { adoptConnection } from '../shared/node-internals.js';
import { runEntry } from './entry.js';
import { Forwarder } from './forward.js';
import { interceptListen, originalListen } from './intercept.js';

const env = decodeWorkerEnv();

/** What the runtime knows of each connection it gave the app. */
interface ConnectionInfo {
  /** Came from another worker's forwarder: already on the right version. */
  forwarded: boolean;
  /** Requests seen; the first was routed by the primary. */
  requests: number;
  assignCookie: string | undefined;
  /** Requests of this connection the app is running now. */
  active: number;
  /** When its last response ended (or it arrived). */
  idleSince: number;
}

/**
 * While draining, a keep-alive connection is closed only after it has been idle this long. Closing one the
 * instant its response ends races the client's next request on it, which then fails (the ECONNRESET of
 * "graceful" reloads); a connection in use gets `Connection: close` on its next response instead.
 */
const drainIdleGraceMs = 1000;

const connections = new Map<Socket, ConnectionInfo>();
const inFlight = new Set<ServerResponse>();
const counters = { requests: 0, shed: 0, forwarded: 0, forwardShed: 0 };
const statusClasses: WorkerStats['statusClasses'] = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
const latencyBuckets = new Array<number>(latencyBoundsMs.length + 1).fill(0);
let latencySumMs = 0;
const forwarder = new Forwarder(counters);
/** The event-loop delay histogram samples every this many ms; what it records includes this interval. */
const loopDelayResolutionMs = 20;
const loopDelay = monitorEventLoopDelay({ resolution: loopDelayResolutionMs });
let settings: WorkerSettings | undefined;
let versions: ReadonlySet<string> = new Set();
let appServer: Server | undefined;
let draining = false;
/** Connections on their way back to the primary: the process must not exit before they have left. */
let handingBack = 0;

const forwardPath = path.join(env.runDir, `${env.workerId}-${process.pid}.sock`);
const forwardServer = net.createServer((socket) => {
  if (!appServer || draining) socket.destroy();
  else admit(socket, { forwarded: true, requests: 0, assignCookie: undefined, active: 0, idleSince: Date.now() });
});

interceptListen({
  address: { address: env.host, family: net.isIPv6(env.host) ? 'IPv6' : 'IPv4', port: env.port },
  port: String(env.port),
  adopt(server) {
    appServer = server as Server;
    const emit = appServer.emit;
    appServer.emit = function (this: Server, event: string | symbol, ...args: unknown[]): boolean {
      if (event === 'request' && answeredByRuntime(args[0] as IncomingMessage, args[1] as ServerResponse)) return true;
      return Reflect.apply(emit, this, [event, ...args]) as boolean;
    } as Server['emit'];
    // Tell the primary once the app's listen callback has run, as a real listen would have.
    appServer.once('listening', () => setImmediate(announce));
  },
});

function announce(): void {
  if (forwardServer.listening) sendToPrimary({ kind: 'listening', forwardPath });
  else forwardServer.once('listening', announce);
}

/** Gives the app a connection, keeping net's own bookkeeping so the app's server.close() behaves. */
function admit(socket: Socket, info: ConnectionInfo): void {
  const server = appServer!;
  connections.set(socket, info);
  adoptConnection(server, socket);
  socket.once('close', () => {
    connections.delete(socket);
    finishDrainIfIdle();
  });
  server.emit('connection', socket);
}

/** The version that must answer a later request on a connection: this one unless a rule or key says otherwise. */
function versionFor(req: IncomingMessage): string | null {
  if (!settings) return env.version;
  const head = { method: req.method ?? 'GET', target: req.url ?? '/', headers: req.headers as Record<string, string>, remoteAddress: req.socket.remoteAddress ?? '' };
  const decision = decide(head, settings.routing, versions);
  if (!decision.determined || decision.version === env.version) return env.version;
  if (settings.serving.includes(decision.version)) return decision.version;
  const fallback = settings.routing.default;
  if (fallback === env.version) return env.version;
  return settings.serving.includes(fallback) ? fallback : null;
}

/**
 * Every request passes here before the app sees it. Answers it (forwarded to its version, or 503 past a limit)
 * and returns true; or sets up its accounting and headers and returns false, for the app to answer.
 */
function answeredByRuntime(req: IncomingMessage, res: ServerResponse): boolean {
  const info = connections.get(req.socket);
  if (info && !info.forwarded && info.requests++ > 0 && settings) {
    const target = versionFor(req);
    if (target !== env.version) {
      if (target === null) respondUnavailable(res, 'no worker of the version this request belongs to is ready');
      else forwarder.forward(req, res, settings.forwardPaths[target] ?? [], settings.forwardMaxPending);
      return true;
    }
  }
  if (inFlight.size >= env.maxInFlight) {
    counters.shed++;
    respondUnavailable(res, `worker at its limit of ${env.maxInFlight} requests in flight`);
    return true;
  }
  const started = performance.now();
  inFlight.add(res);
  if (inFlight.size === env.maxInFlight) sendToPrimary({ kind: 'load', inFlight: inFlight.size });
  if (info) info.active++;
  res.once('close', () => {
    inFlight.delete(res);
    if (inFlight.size === env.maxInFlight - 1) sendToPrimary({ kind: 'load', inFlight: inFlight.size });
    if (info) {
      info.active--;
      info.idleSince = Date.now();
    }
    record(res.statusCode, performance.now() - started);
    finishDrainIfIdle();
  });
  if (draining) res.setHeader('connection', 'close');
  if (settings?.versionHeader) res.setHeader(settings.versionHeader, env.version);
  const cookieName = settings?.routing.sticky.cookie;
  if (info?.assignCookie && cookieName && !(cookieName in parseCookies(req.headers.cookie ?? ''))) {
    res.appendHeader('set-cookie', serializeCookie(cookieName, info.assignCookie, { path: '/', maxAge: 365 * 24 * 3600, sameSite: 'lax', httpOnly: true }));
  }
  return false;
}

function record(status: number, latencyMs: number): void {
  counters.requests++;
  const statusClass = `${Math.min(5, Math.max(1, Math.floor(status / 100)))}xx` as keyof typeof statusClasses;
  statusClasses[statusClass]++;
  let bucket = latencyBoundsMs.findIndex((bound) => latencyMs <= bound);
  if (bucket === -1) bucket = latencyBoundsMs.length;
  latencyBuckets[bucket]!++;
  latencySumMs += latencyMs;
}

function stats(): WorkerStats {
  const memory = process.memoryUsage();
  const delay = loopDelay.count > 0 ? Math.max(0, loopDelay.percentile(99) / 1e6 - loopDelayResolutionMs) : 0;
  loopDelay.reset();
  return {
    rss: memory.rss, heapUsed: memory.heapUsed, heapTotal: memory.heapTotal,
    inFlight: inFlight.size, connections: connections.size, ...counters,
    statusClasses: { ...statusClasses }, latencyBuckets: [...latencyBuckets], latencySumMs, eventLoopDelayMs: Math.round(delay * 10) / 10,
  };
}

function startDrain(): void {
  if (draining) return;
  draining = true;
  forwardServer.close();
  for (const res of inFlight) if (!res.headersSent) res.setHeader('connection', 'close');
  setInterval(closeIdleConnections, drainIdleGraceMs / 4);
  finishDrainIfIdle();
}

function closeIdleConnections(): void {
  const now = Date.now();
  for (const [socket, info] of connections) {
    if (info.active === 0 && now - info.idleSince >= drainIdleGraceMs) socket.destroySoon();
  }
}

function finishDrainIfIdle(): void {
  if (draining && connections.size === 0 && inFlight.size === 0 && handingBack === 0) process.exit(0);
}

const handlers: { [K in ToWorker['kind']]: (message: Extract<ToWorker, { kind: K }>, socket?: Socket) => void } = {
  connection(message, socket) {
    if (!socket) return;  // The client went away while its socket was on the way.
    if (!appServer || draining) {
      handingBack++;
      const sent = sendToPrimary({ kind: 'refused', bytes: message.bytes, ...(message.assignCookie ? { assignCookie: message.assignCookie } : {}) }, socket, () => {
        handingBack--;
        finishDrainIfIdle();
      });
      if (!sent) {
        handingBack--;
        socket.destroy();
      }
      return;
    }
    socket.unshift(Buffer.from(message.bytes, 'base64'));
    admit(socket, { forwarded: false, requests: 0, assignCookie: message.assignCookie, active: 0, idleSince: Date.now() });
  },
  settings(message) {
    settings = message.settings;
    versions = new Set(settings.versions);
  },
  drain() {
    startDrain();
  },
};

onPrimaryMessage((message, socket) => handlers[message.kind](message as never, socket));

// Ctrl-C reaches every process in the group; the primary decides when workers stop. SIGTERM sent to this
// worker alone drains it like the primary would.
process.on('SIGINT', () => {});
process.on('SIGTERM', startDrain);

loopDelay.enable();
setInterval(() => sendToPrimary({ kind: 'stats', stats: stats() }), env.statsIntervalMs).unref();
Reflect.apply(originalListen, forwardServer, [{ path: forwardPath, exclusive: true }]);

try {
  await runEntry(env.entry);
} catch (error) {
  const reason = error instanceof Error ? (error.stack ?? error.message) : String(error);
  console.error(`graycluster: version ${env.version} failed to load ${env.entry}:\n${reason}`);
  const sent = sendToPrimary({ kind: 'fatal', message: `failed to load ${displayPath(env.entry)}: ${reason.split('\n')[0]}` }, undefined, () => process.exit(1));
  if (!sent) process.exit(1);
}
