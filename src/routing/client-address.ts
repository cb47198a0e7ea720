import type { AddressMatcher } from '../shared/address-range.js';
import type { RequestHead } from './head.js';

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

/** A connection, as far as a head needs it: its peer's address, which may cost a system call to read. */
export interface Peer {
  readonly remoteAddress?: string | undefined;
}

/**
 * A request head for `decide` whose `remoteAddress` (the client, by clientAddress) is worked out only when read:
 * only an `ip` sticky key reads it, and a connection's peer address costs a system call. A class, so that every
 * head has one hidden class: an object literal with a getter gets a class of its own per closure (or, without a
 * spread, a dictionary), and makes every function that reads heads generic.
 */
export class ClientHead implements RequestHead {
  constructor(
    readonly method: string,
    readonly target: string,
    readonly headers: Record<string, string>,
    private readonly peer: Peer,
    private readonly trusted: AddressMatcher | undefined,
  ) {}

  get remoteAddress(): string {
    return clientAddress(this.peer.remoteAddress ?? '', this.headers['x-forwarded-for'], this.trusted);
  }
}
