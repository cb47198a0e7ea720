/**
 * What the app sees of the client: its real address on every request, however the request reached the app,
 * and no forwarding header a client chose itself unless it came through a trusted proxy.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/**
 * The private header a forwarding worker uses to tell the receiving worker who the client is. It is only read
 * on connections from another worker's forwarder (which drops any copy a client sent and adds its own last),
 * and it is removed before the app sees the request, so no outside client can set it.
 */
export const clientHeader = 'x-graycluster-client';

/** Headers by which proxies tell the next hop who the client was: a client can write any of them itself. */
export const forwardingHeaders = ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-real-ip'] as const;

/** True when a request carries a forwarding header (property lookups only: this runs on every request). */
export function hasForwardingHeaders(headers: IncomingHttpHeaders): boolean {
  return headers.forwarded !== undefined || headers['x-forwarded-for'] !== undefined || headers['x-forwarded-host'] !== undefined
    || headers['x-forwarded-proto'] !== undefined || headers['x-forwarded-port'] !== undefined || headers['x-real-ip'] !== undefined;
}

/** Removes every forwarding header from a request, from both `headers` and `rawHeaders`, before the app sees it. */
export function stripForwardingHeaders(req: IncomingMessage): void {
  const headers = materializedHeaders(req);
  for (const name of forwardingHeaders) delete headers[name];
  removeRawHeaders(req.rawHeaders, (name) => (forwardingHeaders as readonly string[]).includes(name.toLowerCase()));
}

/**
 * `req.headers`, built now if it was not yet: Node builds it from `rawHeaders` on first access (as many entries
 * as it parsed), so it must exist before an entry leaves `rawHeaders`. Requests already have it; upgrades not.
 */
function materializedHeaders(req: IncomingMessage): IncomingHttpHeaders {
  return req.headers;
}

function removeRawHeaders(rawHeaders: string[], matches: (name: string) => boolean): void {
  let kept = 0;
  for (let index = 0; index < rawHeaders.length; index += 2) {
    if (matches(rawHeaders[index]!)) continue;
    rawHeaders[kept++] = rawHeaders[index]!;
    rawHeaders[kept++] = rawHeaders[index + 1]!;
  }
  rawHeaders.length = kept;
}

/** The value of the private header for a client socket: "address port". */
export function clientHeaderValue(socket: Socket): string {
  return `${socket.remoteAddress ?? ''} ${socket.remotePort ?? ''}`;
}

/**
 * On a request that came from another worker's forwarder: takes the private header off and makes the request's socket report the client's address and port, as it would had the client
 * connected here. The forwarder's connection carries one request at a time, so this holds while the app runs it.
 */
export function applyForwardedClient(req: IncomingMessage): void {
  const headers = materializedHeaders(req);
  const raw = req.rawHeaders;
  let value = '';
  // Node's client adds its own headers (Connection, Content-Length) after ours: look from the end.
  for (let index = raw.length - 2; index >= 0; index -= 2) {
    if (raw[index] !== clientHeader) continue;
    value = raw[index + 1]!;
    raw.splice(index, 2);
    delete headers[clientHeader];
    break;
  }
  const space = value.lastIndexOf(' ');
  const address = space > 0 ? value.slice(0, space) : undefined;
  const port = space > 0 ? Number(value.slice(space + 1)) || undefined : undefined;
  const family = address === undefined ? undefined : address.includes(':') ? 'IPv6' : 'IPv4';
  // net.Socket's remoteAddress & co. are getters on its prototype; an own property shadows them.
  Object.defineProperties(req.socket, {
    remoteAddress: { value: address, configurable: true, enumerable: true },
    remotePort: { value: port, configurable: true, enumerable: true },
    remoteFamily: { value: family, configurable: true, enumerable: true },
  });
}
