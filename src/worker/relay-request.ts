/** The request side of the relay (relay.ts): what is written to the target worker before the request's body. */
import type { IncomingMessage } from 'node:http';
import { clientHeader, clientHeaderValue } from './client-address.js';
import { headerNameIn } from './raw-headers.js';

// Headers of one connection (RFC 9110 §7.6.1), and the private header as a client may have sent it.
const hopByHopName = headerNameIn(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'upgrade', clientHeader]);

/**
 * The head of a relayed request: its request line and end-to-end headers, with the client's address in the
 * private header; and how its body is framed on the way (a chunked one is re-chunked as it is written).
 */
export function requestHead(req: IncomingMessage): { head: string; body: 'none' | 'length' | 'chunked' } {
  let head = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  let chunked = false;
  let length = false;
  let named: string[] | undefined;
  const raw = req.rawHeaders;
  for (let index = 0; index < raw.length; index += 2) {
    const name = raw[index]!;
    const value = raw[index + 1]!;
    const hopByHop = hopByHopName(name);
    if (hopByHop !== undefined) {
      if (hopByHop === 'transfer-encoding') chunked = true;
      else if (hopByHop === 'connection') named = connectionOptions(value, named);
      continue;
    }
    if (name.length === 14 && value !== '0' && name.toLowerCase() === 'content-length') length = true;
    head += `${name}: ${value}\r\n`;
  }
  if (named) head = withoutNamedHeaders(head, named);
  head += `${clientHeader}: ${clientHeaderValue(req.socket)}\r\n${chunked ? 'Transfer-Encoding: chunked\r\n' : ''}\r\n`;
  return { head, body: chunked ? 'chunked' : length ? 'length' : 'none' };
}

/** The header names a Connection header lists, other than its own options. */
function connectionOptions(value: string, named: string[] | undefined): string[] | undefined {
  for (const token of value.split(',')) {
    const option = token.trim().toLowerCase();
    if (option !== '' && option !== 'close' && option !== 'keep-alive' && option !== 'upgrade') (named ??= []).push(option);
  }
  return named;
}

function withoutNamedHeaders(head: string, names: readonly string[]): string {
  const lines = head.split('\r\n');
  return lines.filter((line, index) => index === 0 || line === '' || !names.includes(line.slice(0, line.indexOf(':')).trim().toLowerCase())).join('\r\n');
}
