/**
 * What the app sees of the client: its real address on every request, however the request reached the app,
 * and no forwarding header a client chose itself unless it came through a trusted proxy.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { reportPeer } from '../shared/node-internals.js';
import { headerNameIn, rawHeaderPairs } from './raw-headers.js';

/**
 * The private header a forwarding worker uses to tell the receiving worker who the client is. It is only read
 * on connections from another worker's forwarder (which drops any copy a client sent and adds its own last),
 * and it is removed before the app sees the request, so no outside client can set it.
 */
export const clientHeader = 'x-graycluster-client';

/** The most bytes the private header's line can take in a head: its name, an IPv6 address, a port. */
export const clientHeaderRoom = `${clientHeader}: ${'f'.repeat(45)} 65535\r\n`.length;

/** Headers by which proxies tell the next hop who the client was: a client can write any of them itself. */
export const forwardingHeaders = ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-real-ip'] as const;

const forwardingHeaderName = headerNameIn(forwardingHeaders);
const isForwardingHeader = (name: string) => forwardingHeaderName(name) !== undefined;

/**
 * True when a request carries a forwarding header. It reads `rawHeaders`, not `headers`: Node builds a request's
 * `headers` object only when something reads it, and this runs on every request, for apps that never do.
 */
export function hasForwardingHeaders(rawHeaders: readonly string[]): boolean {
  for (let index = 0; index < rawHeaders.length; index += 2) if (isForwardingHeader(rawHeaders[index]!)) return true;
  return false;
}

/** Removes every forwarding header from a request, from both `headers` and `rawHeaders`, before the app sees it. */
export function stripForwardingHeaders(req: IncomingMessage): void {
  const headers = materializedHeaders(req);
  for (const name of forwardingHeaders) delete headers[name];
  removeRawHeaders(req.rawHeaders, isForwardingHeader);
}

/**
 * `req.headers`, built now if it was not yet: Node builds it from `rawHeaders` on first access (as many entries
 * as it parsed), so it must exist before an entry leaves `rawHeaders`. Requests already have it; upgrades not.
 */
function materializedHeaders(req: IncomingMessage): IncomingHttpHeaders {
  return req.headers;
}

function removeRawHeaders(rawHeaders: string[], matches: (name: string) => boolean): void {
  const kept = [...rawHeaderPairs(rawHeaders)].filter(([name]) => !matches(name)).flatMap(([name, value]) => [name, value]);
  rawHeaders.splice(0, rawHeaders.length, ...kept);
}

/** The value of the private header for a client socket: "address port". */
export function clientHeaderValue(socket: Socket): string {
  return `${socket.remoteAddress ?? ''} ${socket.remotePort ?? ''}`;
}

/**
 * On a request that came from another worker's forwarder: takes the private header off and makes the request's
 * socket report the client's address and port, as it would had the client connected here. Such a connection
 * carries one request at a time, so this holds while the app runs it.
 */
export function applyForwardedClient(req: IncomingMessage): void {
  const raw = req.rawHeaders;
  // The forwarder writes ours last: look there first, then from the end.
  let index = raw.length - 2;
  while (index >= 0 && raw[index] !== clientHeader) index -= 2;
  let value = '';
  if (index >= 0) {
    value = raw[index + 1]!;
    delete materializedHeaders(req)[clientHeader];  // Built from rawHeaders first: see materializedHeaders.
    raw.splice(index, 2);
  }
  const space = value.lastIndexOf(' ');
  const address = space > 0 ? value.slice(0, space) : undefined;
  const family = address === undefined ? undefined : address.includes(':') ? 'IPv6' : 'IPv4';
  reportPeer(req.socket, { address, family, port: space > 0 ? Number(value.slice(space + 1)) || undefined : undefined });
}
