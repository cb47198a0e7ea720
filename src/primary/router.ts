import net, { type AddressInfo, type Socket } from 'node:net';
import type { RoutingConfig, ServerConfig } from '../config/types.js';
import { decide } from '../routing/decide.js';
import { retryAfterSeconds } from '../shared/answers.js';
import { ownsHandle } from '../shared/node-internals.js';
import { PendingHeads, type PendingCounters } from './pending-heads.js';
import { refuse } from './respond.js';
import type { Pick, WorkerSlot } from './supervisor.js';

/** What the router needs from the supervisor. */
export interface Pools {
  serving(version: string): boolean;
  pick(version: string, exclude?: WorkerSlot): Pick;
  handOff(slot: WorkerSlot, socket: Socket, bytes: Buffer, assignCookie: string | undefined, done: (error: Error | null) => void): void;
}

export interface RouterCounters extends PendingCounters {
  /** Connections handed to a worker. */
  handedOff: number;
  /** Connections sent to routing.default because their version had no ready worker. */
  fallbacks: number;
  /** Connections answered by the primary itself, by status (0: closed without an answer). */
  refused: Record<string, number>;
}

/**
 * Accepts client connections, reads the head of each one's first request (and nothing more), picks the version
 * and hands the socket with the bytes read so far to a worker of that version. It never proxies and never queues:
 * a connection it cannot place gets an answer at once.
 */
export class Router {
  readonly #server = net.createServer({ noDelay: true }, (socket) => this.#accept(socket));
  /** Connections on their way to a worker. */
  readonly #pending = new Set<Socket>();
  #pools: Pools | undefined;
  #versions: ReadonlySet<string>;
  readonly counters: RouterCounters = { handedOff: 0, fallbacks: 0, refused: {}, pendingShed: 0, pendingSourceRefused: 0 };
  readonly #heads: PendingHeads;

  constructor(private server: ServerConfig, private routing: RoutingConfig, versions: Iterable<string>) {
    this.#versions = new Set(versions);
    this.#heads = new PendingHeads(() => this.server, this.counters, {
      onHead: (socket, bytes, head) => {
        const decision = decide({ ...head, remoteAddress: socket.remoteAddress ?? '' }, this.routing, this.#versions);
        this.dispatch(socket, bytes, decision.version, decision.assignCookie);
      },
      turnAway: (socket, status, reason, headers) => {
        if (status !== 0) return this.#refuse(socket, status, reason, headers);
        this.#count(0);
        socket.destroy();
      },
    });
  }

  /** Connections waiting for their head or for a handoff to finish, now. */
  get pending(): number {
    return this.#heads.size + this.#pending.size;
  }

  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host: this.server.host, port: this.server.port }, () => {
        this.#server.off('error', reject);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  attach(pools: Pools): void {
    this.#pools = pools;
  }

  /** Swaps the rules for new decisions; connections already placed keep their worker. */
  setRouting(routing: RoutingConfig, versions: Iterable<string>): void {
    this.routing = routing;
    this.#versions = new Set(versions);
  }

  /** New limits (head size, timeouts, pending caps) for connections accepted from now on. */
  setServer(server: ServerConfig): void {
    this.server = server;
  }

  /** Stops accepting; connections still sending their head are closed. */
  close(): Promise<void> {
    this.#heads.close();
    for (const socket of this.#pending) socket.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket: Socket): void {
    socket.on('error', () => {});  // A reset before the handoff is the client's business; 'close' cleans up.
    this.#heads.admit(socket);
  }

  /**
   * Hands a connection whose version is known to the least-loaded ready worker of that version, or of
   * routing.default when that version has none. Also takes back connections a worker refused.
   */
  dispatch(socket: Socket, bytes: Buffer, version: string, assignCookie: string | undefined, exclude?: WorkerSlot): void {
    const pools = this.#pools;
    let target = version;
    if (!pools?.serving(version) && version !== this.routing.default && pools?.serving(this.routing.default)) {
      target = this.routing.default;
      this.counters.fallbacks++;
    }
    const pick: Pick = pools?.pick(target, exclude) ?? { slot: undefined, why: 'unavailable' };
    if (!pools || !pick.slot) {
      this.#pending.delete(socket);
      const reason = !pick.slot && pick.why === 'saturated' ? `every worker of "${target}" is at its in-flight limit` : `no worker of "${target}" is ready`;
      this.#refuse(socket, 503, reason, { 'retry-after': String(retryAfterSeconds) });
      return;
    }
    const slot = pick.slot;
    this.#pending.add(socket);
    this.counters.handedOff++;
    pools.handOff(slot, socket, bytes, assignCookie, (error) => {
      this.#pending.delete(socket);
      if (!error) return;
      // The worker went away before the socket left; if it is still ours, try another.
      if (ownsHandle(socket)) this.dispatch(socket, bytes, version, assignCookie, slot);
    });
  }

  #refuse(socket: Socket, status: number, reason: string, headers?: Record<string, string>): void {
    this.#count(status);
    refuse(socket, status, reason, headers);
  }

  #count(status: number): void {
    this.counters.refused[status] = (this.counters.refused[status] ?? 0) + 1;
  }
}
