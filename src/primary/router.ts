import net, { type AddressInfo } from 'node:net';
import type { ResolvedConfig } from '../config/types.js';
import { ClientHead } from '../routing/client-address.js';
import { decide } from '../routing/decide.js';
import { addressMatcher, type AddressMatcher } from '../shared/address-range.js';
import { collectionAfterBursts } from '../shared/heap-policy.js';
import { acceptBareHandles } from '../shared/node-internals.js';
import { AfterBurst } from './after-burst.js';
import { ClientConnection } from './client-connection.js';
import type { Handoff } from './handoff.js';
import { PendingHeads, type PendingCounters } from './pending-heads.js';
import { refuse } from './respond.js';
import { SharedPeers } from './shared-peers.js';

export interface RouterCounters extends PendingCounters {
  /** Connections handed to a worker. */
  handedOff: number;
  /** Connections sent to routing.default because their version had no worker able to take them. */
  fallbacks: number;
  /** Peers known to pool their connections (shared-peers.ts). */
  sharedPeers: number;
  /** Connections from those peers placed with the version that leads, not their first request's. */
  sharedPlacements: number;
  /** The version that leads among those peers' connections now, if one does. */
  sharedLeading: string | null;
  /** Connections answered by the primary itself, by status (0: closed without an answer). */
  refused: Record<string, number>;
}

/**
 * Accepts client connections, waits for the head of each one's first request (pending-heads.ts: bounded per
 * address and in all), picks the version and gives the connection with the bytes read so far to the handoff,
 * which places it with a worker. It never proxies. Connections are taken as bare TCP handles
 * (client-connection.ts), as node:cluster's round-robin primary takes them, not as net.Sockets.
 */
export class Router {
  readonly #server = net.createServer();
  readonly #refused: Record<string, number> = {};
  readonly #pendingCounters: PendingCounters = { pendingShed: 0, pendingSourceRefused: 0 };
  readonly #heads: PendingHeads;
  /** A compacting collection once connections stop coming after a burst, when this process opted in (heap-policy.ts). */
  readonly #afterBurst: AfterBurst | undefined;
  /** What `decide` needs of the config last seen: its version names as a set, its trusted proxies. */
  #derived: { of: ResolvedConfig; names: ReadonlySet<string>; trusted: AddressMatcher | undefined } | undefined;

  constructor(
    private readonly config: () => ResolvedConfig,
    private readonly handoff: Handoff,
    private readonly sharedPeers = new SharedPeers(),
    collectAfterBurst = collectionAfterBursts(),
  ) {
    this.#afterBurst = collectAfterBurst && new AfterBurst(() => {
      if (this.config().server.compactAfterBursts) collectAfterBurst();
    });
    this.#heads = new PendingHeads(() => this.config().server, this.#pendingCounters, {
      onHead: (connection, bytes, head) => {
        const { config, names, trusted } = this.#derivedConfig();
        const decision = decide(new ClientHead(head.method, head.target, head.headers, connection, trusted), config.routing, names);
        // A cookie to assign belongs to the first request's answer: that connection goes by its first request.
        const owner = decision.assignCookie === undefined ? this.sharedPeers.ownerFor(connection, decision.version) : undefined;
        this.handoff.place(connection, bytes, decision.version, decision.assignCookie, { owner });
      },
      turnAway: (connection, status, reason, headers) => {
        if (status !== 0) return this.#refuse(connection, status, reason, headers);
        this.#count(0);
        connection.close();
      },
    });
  }

  #derivedConfig(): { config: ResolvedConfig; names: ReadonlySet<string>; trusted: AddressMatcher | undefined } {
    const config = this.config();
    if (this.#derived?.of !== config) {
      const { trustProxy } = config.server;
      this.#derived = { of: config, names: new Set(config.versions.keys()), trusted: trustProxy === false ? undefined : addressMatcher(trustProxy) };
    }
    return { config, ...this.#derived };
  }

  get counters(): RouterCounters {
    const { handedOff, fallbacks, unavailable } = this.handoff.counters;
    const refused = { ...this.#refused };
    if (unavailable > 0) refused[503] = (refused[503] ?? 0) + unavailable;
    return { handedOff, fallbacks, sharedPeers: this.sharedPeers.size, sharedPlacements: this.sharedPeers.placements, sharedLeading: this.sharedPeers.leading ?? null, refused, ...this.#pendingCounters };
  }

  /** Connections waiting for their head or for a handoff to finish, now. */
  get pending(): number {
    return this.#heads.size + this.handoff.waiting;
  }

  listen(): Promise<AddressInfo> {
    const { host, port } = this.config().server;
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host, port }, () => {
        this.#server.off('error', reject);
        try {
          acceptBareHandles(this.#server, (handle) => {
            this.#afterBurst?.connection();
            this.#heads.admit(new ClientConnection(handle));
          });
        } catch (error) {
          this.#server.close();
          reject(error as Error);
          return;
        }
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  /** Stops accepting; connections still sending their head are closed. Resolves once the port is released. */
  close(): Promise<void> {
    this.#afterBurst?.close();
    this.#heads.close();
    if (this.#server.listening) this.#server.close();
    return Promise.resolve();
  }

  #refuse(connection: ClientConnection, status: number, reason: string, headers?: Record<string, string>): void {
    this.#count(status);
    refuse(connection, status, reason, headers);
  }

  #count(status: number): void {
    this.#refused[status] = (this.#refused[status] ?? 0) + 1;
  }
}
