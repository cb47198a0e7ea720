import { hash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { tokenProtocolPrefix } from './messages.js';

function matches(given: string, token: string): boolean {
  return timingSafeEqual(hash('sha256', given, 'buffer'), hash('sha256', token, 'buffer'));
}

/** True when the request carries `Authorization: Bearer <token>`. Compared in constant time. */
export function hasToken(req: IncomingMessage, token: string): boolean {
  const header = req.headers.authorization ?? '';
  const [, given] = /^Bearer\s+(\S+)\s*$/i.exec(header) ?? [];
  if (given === undefined) return false;
  return matches(given, token);
}

/**
 * True when a WebSocket upgrade carries the token: as a bearer header (scripts), or, since a browser cannot set
 * headers on a WebSocket, as the subprotocol `graycluster.token.<base64url of the token>`.
 */
export function upgradeHasToken(req: IncomingMessage, token: string): boolean {
  if (hasToken(req, token)) return true;
  const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((protocol) => protocol.trim());
  const carrier = offered.find((protocol) => protocol.startsWith(tokenProtocolPrefix));
  if (!carrier) return false;
  return matches(Buffer.from(carrier.slice(tokenProtocolPrefix.length), 'base64url').toString(), token);
}

/**
 * True when a browser sent the request from a page of another origin: its `Origin` names a host other than the
 * one the request is addressed to. Requests without `Origin` (curl, Prometheus, the CLI) are not cross-origin.
 */
export function isForeignOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  let from: URL;
  let to: URL;
  try {
    from = new URL(origin);
    to = new URL(`${from.protocol}//${req.headers.host ?? ''}`);  // Normalized the same way: case, default port.
  } catch {
    return true;  // "null" (a sandboxed frame, a file: page) or garbage.
  }
  return (from.protocol !== 'http:' && from.protocol !== 'https:') || from.host !== to.host;
}
