import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { ranSince, runningNow } from '../shared/stalls.js';
import { feedProtocol } from './messages.js';

export interface FeedLimits {
  maxClients: number;
  maxBufferedBytes: number;
  pingIntervalMs: number;
}

export interface FeedCounters {
  /** Frames not sent to a client because it had more than maxBufferedBytes unsent. */
  framesSkipped: number;
  /** Clients cut off for not answering a ping. */
  clientsTerminated: number;
  /** Handshakes answered 503 because maxClients were connected. */
  clientsRefused: number;
}

interface Client {
  /** Answered the last ping. */
  alive: boolean;
  /** Missed a frame: gets a full snapshot once it has caught up. */
  behind: boolean;
}

/** Largest message a client may send. The page sends none: this only bounds what a hostile one makes us read. */
export const maxPayload = 1024;

/**
 * The live feed's clients. Whatever a client does, the primary holds at most about maxBufferedBytes (plus one
 * frame) for it: a client that does not read misses frames instead of queueing them, and one that stops answering
 * pings is cut off.
 */
export class Feed {
  readonly counters: FeedCounters = { framesSkipped: 0, clientsTerminated: 0, clientsRefused: 0 };
  readonly #clients = new Map<WebSocket, Client>();
  /** Loaded with the first handshake: a supervisor nobody watches never holds `ws` (about 2 MB of heap). */
  #server: Promise<WebSocketServer> | undefined;
  /** Handshakes accepted but not completed yet (waiting for `ws` to load): they count against maxClients. */
  #handshaking = 0;
  #closed = false;
  readonly #pinger: NodeJS.Timeout;
  #pingedAt = runningNow();

  /** `snapshot` makes the full frame a new (or caught-up) client gets first. */
  constructor(private readonly limits: FeedLimits, private readonly snapshot: () => string) {
    this.#pinger = setInterval(() => this.#ping(), limits.pingIntervalMs).unref();
  }

  get size(): number {
    return this.#clients.size;
  }

  get full(): boolean {
    return this.#clients.size + this.#handshaking >= this.limits.maxClients;
  }

  /** Completes a handshake the caller has already checked (token, origin, room), then sends the snapshot. */
  accept(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#handshaking++;
    this.#server ??= import('ws').then(({ WebSocketServer }) => new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload,
      handleProtocols: (offered) => (offered.has(feedProtocol) ? feedProtocol : false),
    }));
    this.#server.then((server) => {
      this.#handshaking--;
      if (this.#closed) {
        socket.destroy();
        return;
      }
      server.handleUpgrade(req, socket, head, (ws) => {
        const client: Client = { alive: true, behind: false };
        this.#clients.set(ws, client);
        ws.on('pong', () => { client.alive = true; });
        ws.on('error', () => {});  // A protocol error (say, a message over maxPayload): 'close' follows.
        ws.on('close', () => this.#clients.delete(ws));
        ws.send(this.snapshot());
      });
    }, () => {
      this.#handshaking--;
      socket.destroy();
    });
  }

  /** Sends `frame` to every client that is keeping up; the others miss it. Encoded once for all of them. */
  broadcast(frame: string): void {
    if (this.#clients.size === 0) return;
    const bytes = Buffer.from(frame);
    let snapshot: Buffer | undefined;
    for (const [ws, client] of this.#clients) {
      if (ws.readyState !== ws.OPEN) continue;
      if (ws.bufferedAmount > this.limits.maxBufferedBytes) {
        client.behind = true;
        this.counters.framesSkipped++;
        continue;
      }
      if (client.behind) {
        client.behind = false;
        ws.send(snapshot ??= Buffer.from(this.snapshot()), { binary: false });
        continue;
      }
      ws.send(bytes, { binary: false });
    }
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#pinger);
    for (const ws of this.#clients.keys()) ws.terminate();
    this.#clients.clear();
  }

  #ping(): void {
    // Right after a stall of this process, a pong that came in time may not have been read yet: no one is judged.
    const now = runningNow();
    const judge = ranSince(this.#pingedAt, now) >= this.limits.pingIntervalMs / 2;
    this.#pingedAt = now;
    for (const [ws, client] of this.#clients) {
      if (!client.alive && judge) {
        this.counters.clientsTerminated++;
        this.#clients.delete(ws);
        ws.terminate();
        continue;
      }
      client.alive = false;
      ws.ping();
    }
  }
}
