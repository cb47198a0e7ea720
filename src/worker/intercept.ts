import net, { type AddressInfo } from 'node:net';

type Listen = typeof net.Server.prototype.listen;
type Callback = (...args: unknown[]) => void;

/** The real `listen`, for the runtime's own private server. */
export const originalListen: Listen = net.Server.prototype.listen;

/** The TCP port a listen() call asks for (as written: "8000" or 8000), or undefined for a pipe path or a handle. */
export function listenPort(args: unknown[]): string | undefined {
  const [first] = args;
  if (first === undefined || first === null || typeof first === 'function') return '0';
  if (typeof first === 'number') return String(first);
  if (typeof first === 'string') return /^\d+$/.test(first) ? first : undefined;
  if (typeof first === 'object') {
    const options = first as { port?: unknown; path?: unknown; handle?: unknown; fd?: unknown; _handle?: unknown };
    if (options.path !== undefined || options.handle !== undefined || options.fd !== undefined || options._handle !== undefined) return undefined;
    return String(options.port ?? 0);
  }
  return undefined;
}

export interface InterceptOptions {
  /** What server.address() answers: where the primary really listens. */
  address: AddressInfo;
  /** The port the app was told to use ($PORT). */
  port: string;
  /** The app's server: the one the runtime feeds the handed-over sockets to. Called again if it changes. */
  adopt: (server: net.Server) => void;
}

/**
 * Replaces net.Server.prototype.listen so that the app's server binds nothing: it is marked listening, its
 * callback runs, and the runtime feeds it the sockets handed over by the primary. The app's server is the one
 * that listens on $PORT; an app that ignores $PORT has its first TCP listen taken instead, until (if ever) a
 * listen on $PORT comes, which then takes over while the first one really listens after all. Later listens on the
 * adopted port (Fastify's extra address for "localhost", say) pretend too but are never fed; any other listen
 * (a pipe, another port) goes through untouched.
 */
export function interceptListen(options: InterceptOptions): void {
  let adopted: { server: net.Server; port: string; args: unknown[] } | undefined;
  net.Server.prototype.listen = function listen(this: net.Server, ...args: unknown[]) {
    const port = listenPort(args);
    const before = adopted;
    const takesOver = port === options.port && before !== undefined && before.port !== options.port;
    if (port === undefined || (before !== undefined && port !== before.port && !takesOver)) {
      return Reflect.apply(originalListen, this, args) as net.Server;
    }
    if (takesOver) listenForReal(before.server, before.args);
    const first = before === undefined || takesOver;
    if (first) adopted = { server: this, port, args };
    pretendListening(this, options.address, args.findLast((arg) => typeof arg === 'function') as Callback | undefined);
    if (first) options.adopt(this);
    return this;
  } as Listen;
}

/** Servers that stopped pretending before their 'listening' was due: the real listen emits it. */
const realAfterAll = new WeakSet<net.Server>();

/** Undoes pretendListening and binds as the app asked (its callback, once registered, runs on the real listen). */
function listenForReal(server: net.Server, args: unknown[]): void {
  realAfterAll.add(server);
  for (const key of ['listening', 'address', 'close'] as const) delete (server as unknown as Record<string, unknown>)[key];
  Reflect.apply(originalListen, server, args.filter((arg) => typeof arg !== 'function'));
}

function pretendListening(server: net.Server, address: AddressInfo, callback: Callback | undefined): void {
  let listening = true;
  Object.defineProperty(server, 'listening', { configurable: true, get: () => listening });
  server.address = () => ({ ...address });
  const close = server.close;
  server.close = function (this: net.Server, done?: (error?: Error) => void) {
    listening = false;
    // net's close() would report "not running" to the callback: this server never held a handle. It still
    // emits 'close' once the connections we gave it are gone, and that is what the callback waits for.
    if (done) this.once('close', () => done());
    return Reflect.apply(close, this, []) as net.Server;
  };
  if (callback) server.once('listening', callback);
  process.nextTick(() => {
    if (!realAfterAll.has(server)) server.emit('listening');
  });
}
