import net, { type AddressInfo, type Socket } from 'node:net';
import type { ResolvedConfig } from '../config/types.js';
import { decide } from '../routing/decide.js';
import type { Handoff } from './handoff.js';
import { parseHead } from './head.js';
import { refuse } from './respond.js';

export interface RouterCounters {
  /** Connections handed to a worker. */
  handedOff: number;
  /** Connections sent to routing.default because their version had no worker able to take them. */
  fallbacks: number;
  /** Connections answered by the primary itself, by status (0: closed without an answer). */
  refused: Record<string, number>;
}

const empty: Buffer = Buffer.alloc(0);

/**
 * Accepts client connections, reads the head of each one's first request (and nothing more), picks the version
 * and gives the socket with the bytes read so far to the handoff, which places it with a worker. It never proxies.
 */
export class Router {
  readonly #server = net.createServer({ noDelay: true }, (socket) => this.#accept(socket));
  /** Connections still sending their head. */
  readonly #pending = new Set<Socket>();
  readonly #refused: Record<string, number> = {};
  /** The version names of the config last seen, as a set for `decide`. */
  #versions: { of: ResolvedConfig; names: ReadonlySet<string> } | undefined;

  constructor(private readonly config: () => ResolvedConfig, private readonly handoff: Handoff) {}

  private get server() {
    return this.config().server;
  }

  get counters(): RouterCounters {
    const { handedOff, fallbacks, unavailable } = this.handoff.counters;
    const refused = { ...this.#refused };
    if (unavailable > 0) refused[503] = (refused[503] ?? 0) + unavailable;
    return { handedOff, fallbacks, refused };
  }

  /** Connections waiting for their head or for a handoff to finish, now. */
  get pending(): number {
    return this.#pending.size + this.handoff.waiting;
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

  /**
   * Stops accepting; connections still sending their head are closed. Resolves once the port is released: not
   * when net.Server's 'close' comes, which also waits for every worker ever sent a socket to report its sockets
   * closed (NODE_SOCKET_ALL_CLOSED), a wait that a stopped or dying worker can leave unsettled forever.
   */
  close(): Promise<void> {
    for (const socket of this.#pending) socket.destroy();
    if (this.#server.listening) this.#server.close();
    return Promise.resolve();
  }

  #accept(socket: Socket): void {
    socket.on('error', () => {});  // A reset before the handoff is the client's business; 'close' cleans up.
    if (this.#pending.size >= this.server.maxPendingConnections) {
      this.#refuse(socket, 503, `more than ${this.server.maxPendingConnections} connections waiting`);
      return;
    }
    this.#pending.add(socket);
    let bytes: Buffer = empty;
    let scanned = 0;
    const stopReading = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
    };
    const onClose = () => {
      stopReading();
      this.#pending.delete(socket);
    };
    const onData = (chunk: Buffer) => {
      bytes = bytes.length === 0 ? chunk : Buffer.concat([bytes, chunk]);
      const result = parseHead(bytes, this.server.maxHeadBytes, scanned);
      scanned = result.scanned;
      if (!result.done) return;
      stopReading();
      if ('failure' in result) {
        this.#pending.delete(socket);
        if (result.failure.status === 0) {
          this.#count(0);
          socket.destroy();
        } else {
          this.#refuse(socket, result.failure.status, result.failure.reason);
        }
        return;
      }
      // Nothing more is read here: every byte past this point belongs to the worker (the handoff stops reading).
      this.#pending.delete(socket);
      const config = this.config();
      if (this.#versions?.of !== config) this.#versions = { of: config, names: new Set(config.versions.keys()) };
      const decision = decide({ ...result.head, remoteAddress: socket.remoteAddress ?? '' }, config.routing, this.#versions.names);
      this.handoff.place(socket, bytes, decision.version, decision.assignCookie);
    };
    const timer = setTimeout(() => {
      onClose();
      this.#refuse(socket, 408, `no complete request head within ${this.server.headTimeoutMs} ms`);
    }, this.server.headTimeoutMs);
    socket.on('data', onData);
    socket.on('close', onClose);
  }

  #refuse(socket: Socket, status: number, reason: string, headers?: Record<string, string>): void {
    this.#count(status);
    refuse(socket, status, reason, headers);
  }

  #count(status: number): void {
    this.#refused[status] = (this.#refused[status] ?? 0) + 1;
  }
}
