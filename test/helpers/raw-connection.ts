import net from 'node:net';
import { Deadline } from '../../src/shared/stalls.js';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * One client TCP connection driven byte by byte, for what an HTTP client library hides: several requests of
 * different kinds on one keep-alive connection, `100 Continue`, an upgrade or CONNECT after a plain request.
 * Every read waits for its bytes (or the connection's end) and fails after `timeoutMs`.
 */
export class RawConnection {
  #buffer = Buffer.alloc(0);
  #ended = false;
  readonly #waiters = new Set<() => void>();

  private constructor(readonly socket: net.Socket, private readonly timeoutMs: number) {
    const wake = () => {
      for (const waiter of this.#waiters) waiter();
    };
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      wake();
    });
    socket.on('close', () => {
      this.#ended = true;
      wake();
    });
    socket.on('error', () => {});
  }

  static connect(port: number, timeoutMs = 15_000): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(new RawConnection(socket, timeoutMs)));
      socket.once('error', reject);
    });
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  close(): void {
    this.socket.destroy();
  }

  /** Resolves with what `take` returns once it returns something; `take` may consume from the buffer. */
  #waitFor<T>(what: string, take: () => T | undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const value = take();
        if (value !== undefined) finish(() => resolve(value));
        else if (this.#ended) finish(() => reject(new Error(`connection closed while waiting for ${what}; unread: ${JSON.stringify(this.#buffer.toString())}`)));
      };
      const finish = (settle: () => void) => {
        deadline.clear();
        this.#waiters.delete(check);
        settle();
      };
      const deadline = new Deadline(this.timeoutMs, () => finish(() => reject(new Error(`no ${what} within ${this.timeoutMs} ms; unread: ${JSON.stringify(this.#buffer.toString())}`))));
      this.#waiters.add(check);
      check();
    });
  }

  /** The next `length` bytes. */
  readBytes(length: number): Promise<Buffer> {
    return this.#waitFor(`${length} bytes`, () => {
      if (this.#buffer.length < length) return undefined;
      const bytes = this.#buffer.subarray(0, length);
      this.#buffer = this.#buffer.subarray(length);
      return bytes;
    });
  }

  /** A status line and headers (lower-cased names), without the body. */
  readHead(): Promise<{ status: number; headers: Record<string, string> }> {
    return this.#waitFor('response head', () => {
      const end = this.#buffer.indexOf('\r\n\r\n');
      if (end === -1) return undefined;
      const [statusLine = '', ...lines] = this.#buffer.subarray(0, end).toString('latin1').split('\r\n');
      this.#buffer = this.#buffer.subarray(end + 4);
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      return { status: Number(statusLine.split(' ')[1]), headers };
    });
  }

  /** A whole response whose body has a Content-Length (or none). */
  async readResponse(): Promise<RawResponse> {
    const head = await this.readHead();
    const body = await this.readBytes(Number(head.headers['content-length'] ?? 0));
    return { ...head, body };
  }

  /** Everything until the server closes the connection. */
  readToEnd(): Promise<Buffer> {
    return this.#waitFor('the end of the connection', () => (this.#ended ? this.#buffer : undefined));
  }

  /** One unmasked, unfragmented WebSocket text frame shorter than 64 KiB, as a server sends it. */
  async readTextFrame(): Promise<string> {
    const [first = 0, second = 0] = await this.readBytes(2);
    if ((first & 0x0f) !== 1) throw new Error(`expected a text frame, got opcode ${first & 0x0f}`);
    let length = second & 0x7f;
    if (length === 126) length = (await this.readBytes(2)).readUInt16BE(0);
    return (await this.readBytes(length)).toString();
  }
}
