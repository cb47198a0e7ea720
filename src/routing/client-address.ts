import type { AddressMatcher } from '../shared/address-range.js';

/**
 * Who the client is, for the `ip` sticky key: the connection's peer; or, when the peer is a trusted proxy
 * (`server.trustProxy`), the address that proxy names in `X-Forwarded-For`, walking the list from the right past
 * every hop that is itself a trusted proxy. Entries left of the first untrusted hop were written by whoever
 * the proxies did not trust, so they never count. With no trusted proxy the peer is the answer, whatever the
 * header says.
 */
export function clientAddress(peer: string, forwardedFor: string | undefined, trusted: AddressMatcher | undefined): string {
  if (trusted === undefined || forwardedFor === undefined || !trusted(peer)) return peer;
  let client = peer;
  for (const hop of forwardedFor.split(',').map((entry) => entry.trim()).reverse()) {
    if (hop === '') continue;
    client = hop;
    if (!trusted(hop)) break;
  }
  return client;
}
