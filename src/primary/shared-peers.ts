import type { Peer } from '../routing/client-address.js';
import { ExpiringSet } from '../shared/expiring-set.js';

export const sharedPeerLimits = {
  /** Peers remembered at once; one more drops the one reported longest ago. */
  capacity: 256,
  /** A peer is forgotten this long after a worker last reported it. */
  ttlMs: 60_000,
  /**
   * First requests counted to tell which version leads. At an even split a count this long reaches two thirds for
   * one version by chance far less than once in a million connections; 64 did now and then.
   */
  window: 256,
  /** Fewer counted than this, and no version leads yet (at an even split, 43 of 64 come by chance 0.4% of the time). */
  minSamples: 64,
} as const;

/**
 * Peers that share their connections among users (a load balancer or proxy pooling its upstream connections), and
 * where their new connections go. On such a connection each request may belong to another version, and one that
 * is not the owning worker's is relayed (worker/relay.ts). Placed by its first request, as every connection is,
 * a pooled connection lands with a canary one time in ten at 90/10, and then relays nine of its ten requests.
 *
 * - A worker reports the peer of a connection that carried requests of two versions (`shared-peer`). For a minute
 *   after the last report, a new connection from that peer goes to the version that leads: the one at least two
 *   thirds of the first requests of the recent connections from such peers belonged to (it keeps the lead while it
 *   has three fifths, so a share near the mark does not flap). The worker routes that first request as it routes every
 *   later one (`routeFirst`), so nothing is answered by another version than before. With no lead (50/50, say),
 *   new connections go by their first request, which spreads them over the versions.
 * - Every worker is told which version leads (`sharedLeading` in its settings) and closes a pooled connection it
 *   holds without leading after its next answer (`Connection: close`); the proxy's next one is placed here. So
 *   connections placed before the lead was known, or before the weights moved, move too.
 * - A connection so placed whose first four requests all belong to one other version is one user's, not the
 *   proxy's: its worker closes it after that answer and tells the primary (`unpooled-peer`), which forgets the peer.
 *
 * At 90/10 this relays one request in ten instead of about one in five, and the stable version owns the pooled
 * connections, so a canary's crash breaks only the requests relayed to it. Bounded: `sharedPeerLimits.capacity`
 * peers, a window of `sharedPeerLimits.window` versions.
 */
export class SharedPeers {
  readonly #peers = new ExpiringSet(sharedPeerLimits.capacity, sharedPeerLimits.ttlMs);
  /** The versions of the latest first requests from shared peers, a ring of `window`, and their counts. */
  readonly #recent: string[] = [];
  #next = 0;
  readonly #counts = new Map<string, number>();
  #leading: string | undefined;
  /** Connections placed with the leading version instead of their first request's. */
  placements = 0;

  /** `onLeadingChange` hears each change of the version that leads. */
  constructor(private readonly onLeadingChange: () => void = () => {}) {}

  /** The version that leads now, if one does. */
  get leading(): string | undefined {
    return this.#leading;
  }

  /** A worker saw a connection from `address` carry requests of two versions. */
  note(address: string): void {
    this.#peers.add(address);
  }

  /**
   * A worker saw a connection from `address` that was placed here for its sake carry one other version's requests
   * only, as one user's connection does (a NAT, or a host whose clients also connect directly): its new connections
   * go by their first request again, until a connection of it carries two versions again. The count starts over,
   * since its connections were in it: no version leads until it has `minSamples` again.
   */
  forget(address: string): void {
    this.#peers.delete(address);
    this.#recent.length = 0;
    this.#next = 0;
    this.#counts.clear();
    if (this.#leading === undefined) return;
    this.#leading = undefined;
    this.onLeadingChange();
  }

  /** Peers known to share connections now (some may have just expired). */
  get size(): number {
    return this.#peers.size;
  }

  /**
   * The version to place a new connection from `peer` with, when it is not `version` (its first request's): the
   * leading version, if the peer shares its connections and a version leads. Reads the peer's address (a system
   * call) only once some peer is known to share.
   */
  ownerFor(peer: Peer, version: string): string | undefined {
    if (this.#peers.size === 0) return undefined;
    const address = peer.remoteAddress;
    if (address === undefined || !this.#peers.has(address)) return undefined;
    this.#count(version);
    const leading = this.#lead();
    if (leading !== this.#leading) {
      this.#leading = leading;
      this.onLeadingChange();
    }
    if (leading === undefined || leading === version) return undefined;
    this.placements++;
    return leading;
  }

  #count(version: string): void {
    const dropped = this.#recent.length < sharedPeerLimits.window ? undefined : this.#recent[this.#next];
    this.#recent[this.#next] = version;
    this.#next = (this.#next + 1) % sharedPeerLimits.window;
    this.#counts.set(version, (this.#counts.get(version) ?? 0) + 1);
    if (dropped === undefined) return;
    const left = (this.#counts.get(dropped) ?? 1) - 1;
    if (left === 0) this.#counts.delete(dropped);
    else this.#counts.set(dropped, left);
  }

  #lead(): string | undefined {
    const counted = this.#recent.length;
    if (counted < sharedPeerLimits.minSamples) return undefined;
    if (this.#leading !== undefined && (this.#counts.get(this.#leading) ?? 0) * 5 >= counted * 3) return this.#leading;
    for (const [version, count] of this.#counts) if (count * 3 >= counted * 2) return version;
    return undefined;
  }
}
