/**
 * The least parsing that finds where an HTTP/1.1 response ends in a byte stream: its head (status line and
 * headers, read whole), then a body framed by Content-Length, chunked encoding (scanned, never decoded: its
 * bytes pass on as they came) or the connection's close; none after HEAD, 1xx, 204 and 304. Pure: no I/O, so a
 * test can feed it byte by byte. Kept whole past 300 lines: it is one state machine over the bytes, and its
 * states read best side by side.
 */

/** How a response's body ends. */
export type BodyFraming = 'none' | 'length' | 'chunked' | 'close';

export interface ResponseHead {
  status: number;
  framing: BodyFraming;
  /** Body bytes when `framing` is 'length'. */
  contentLength: number;
  /** The sender keeps its connection open after this response. */
  keepAlive: boolean;
  /**
   * The status line and headers, each ending in CRLF, without the blank line and without the headers that
   * belong to one connection (`Connection`, `Keep-Alive`, `Proxy-Connection`, `Upgrade` and those `Connection`
   * names), for the next hop to add its own.
   */
  endToEnd: string;
}

/** What a framer reports, in order: interim (1xx) heads, one final head, body bytes, the end. */
export interface FramingSink {
  onInterim(status: number): void;
  onHead(head: ResponseHead): void;
  /** Body bytes as they came (chunk framing included); more follow. */
  onBody(bytes: Buffer): void;
  /** The response is complete; `lastBytes` are its final body bytes, if this feed carried some. */
  onEnd(lastBytes: Buffer | undefined): void;
}

/**
 * Longest response head accepted, its blank line included: Node's own limit for what it parses is 16 KiB by
 * default.
 */
export const maxResponseHeadBytes = 64 * 1024;
/** Longest chunk-size line (with extensions) or trailer line accepted, its CRLF included. */
export const maxChunkLineBytes = 4096;
/** Most hex digits a chunk size may have (12: sizes up to 256 TiB stay exact in a double). */
export const maxChunkSizeDigits = 12;

const statusLine = /^HTTP\/1\.[01] [1-9]\d\d(?:[ \r]|$)/;
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'upgrade']);
const carriage = 13;
const lineFeed = 10;

/**
 * Reads a response head (the text up to, not including, the blank line). Returns an error message for a head
 * no HTTP/1.x sender could have meant.
 */
export function parseResponseHead(text: string, requestMethod: string): ResponseHead | string {
  if (!statusLine.test(text)) return 'not an HTTP/1.x status line';
  const minor = text.charCodeAt(7) - 48;
  const status = Number(text.slice(9, 12));
  let contentLength = -1;
  let chunked = false;
  let transferEncoded = false;
  let closes = minor === 0;
  let named: string[] | undefined;
  let endToEnd = '';
  let kept = 0;
  let lineStart = text.indexOf('\r\n') + 2;
  if (lineStart === 1) lineStart = text.length;
  while (lineStart < text.length) {
    let lineEnd = text.indexOf('\r\n', lineStart);
    if (lineEnd === -1) lineEnd = text.length;
    const first = text.charCodeAt(lineStart) | 0x20;
    // Only names starting c, k, p, t or u matter here: the rest pass untouched.
    if (first === 0x63 || first === 0x6b || first === 0x70 || first === 0x74 || first === 0x75) {
      const colon = text.indexOf(':', lineStart);
      if (colon === -1 || colon > lineEnd) return 'a header line without a colon';
      const name = text.slice(lineStart, colon).toLowerCase();
      const value = text.slice(colon + 1, lineEnd).trim();
      if (name === 'content-length') {
        const length = /^\d{1,15}$/.test(value) ? Number(value) : -1;
        if (length === -1 || (contentLength !== -1 && contentLength !== length)) return `a bad Content-Length "${value}"`;
        contentLength = length;
      } else if (name === 'transfer-encoding') {
        transferEncoded = true;
        chunked = /(?:^|,)\s*chunked\s*$/i.test(value);
      } else if (name === 'connection') {
        for (const token of value.toLowerCase().split(',')) {
          const option = token.trim();
          if (option === 'close') closes = true;
          else if (option === 'keep-alive') closes &&= minor !== 0;
          else if (option !== '' && option !== 'upgrade') (named ??= []).push(option);
        }
      }
      if (hopByHop.has(name)) {
        endToEnd += text.slice(kept, lineStart);
        kept = lineEnd + 2;
      }
    }
    lineStart = lineEnd + 2;
  }
  endToEnd += text.slice(kept) + (kept <= text.length ? '\r\n' : '');
  if (named) endToEnd = withoutHeaders(endToEnd, named);
  let framing: BodyFraming;
  if (requestMethod === 'HEAD' || status < 200 || status === 204 || status === 304) framing = 'none';
  else if (transferEncoded) framing = chunked ? 'chunked' : 'close';
  else framing = contentLength === -1 ? 'close' : 'length';
  return { status, framing, contentLength: framing === 'length' ? contentLength : 0, keepAlive: !closes && framing !== 'close', endToEnd };
}

/** A head's lines without those whose (lower-case) names are listed; the status line stays. */
function withoutHeaders(head: string, names: readonly string[]): string {
  const lines = head.split('\r\n');
  return lines.filter((line, index) => index === 0 || !names.includes(line.slice(0, line.indexOf(':')).trim().toLowerCase())).join('\r\n');
}

const enum Chunk { Size, Extension, SizeLineFeed, Data, DataCarriage, DataLineFeed, TrailerStart, Trailer, TrailerLineFeed, FinalLineFeed }
type State = 'head' | 'body' | 'done' | 'failed';

/**
 * Finds the end of one response after another on a connection that carries one request at a time.
 * `begin` before each request; `feed` what the connection reads; `close` when it ends.
 */
export class ResponseFramer {
  #state: State = 'done';
  #method = 'GET';
  #head: Buffer | undefined;
  #framing: BodyFraming = 'none';
  #remaining = 0;
  #chunk = Chunk.Size;
  #chunkDigits = 0;
  #lineBytes = 0;
  /** Why the framing failed, once it has. */
  error: string | undefined;
  /** A final (not 1xx) head has been reported for the current response. */
  headSeen = false;

  /** Expects the response to a request of this method. */
  begin(method: string): void {
    this.#state = 'head';
    this.#method = method;
    this.#head = undefined;
    this.headSeen = false;
    this.error = undefined;
  }

  /** True while a close-delimited body is being read: the connection's end completes it. */
  get endsByClose(): boolean {
    return this.#state === 'body' && this.#framing === 'close';
  }

  /**
   * Takes bytes read from the connection; reports what they complete to `sink`. Returns how many bytes belonged
   * to the response: fewer than given when it ended before them or the framing failed (`error` says why).
   */
  feed(chunk: Buffer, sink: FramingSink): number {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#state === 'head') {
        offset = this.#readHead(chunk, offset, sink);
      } else if (this.#state === 'body') {
        const start = offset;
        offset = this.#framing === 'length' ? this.#skipLength(chunk, offset)
          : this.#framing === 'chunked' ? this.#scanChunked(chunk, offset) : chunk.length;
        const state = this.#state as State;  // The scan moved it on.
        if (state === 'failed') return offset;
        const bytes = start < offset ? chunk.subarray(start, offset) : undefined;
        if (state === 'done') sink.onEnd(bytes);
        else if (bytes) sink.onBody(bytes);
      } else {
        return offset;
      }
    }
    return offset;
  }

  /** The connection ended. True when that completed the response (a close-delimited body); reported to `sink`. */
  close(sink: FramingSink): boolean {
    if (!this.endsByClose) return false;
    this.#state = 'done';
    sink.onEnd(undefined);
    return true;
  }

  #fail(reason: string): number {
    this.#state = 'failed';
    this.error = reason;
    return 0;
  }

  #readHead(chunk: Buffer, offset: number, sink: FramingSink): number {
    const previous = this.#head?.length ?? 0;
    const bytes = this.#head ? Buffer.concat([this.#head, chunk.subarray(offset)]) : offset === 0 ? chunk : chunk.subarray(offset);
    const end = bytes.indexOf('\r\n\r\n', Math.max(0, previous - 3), 'latin1');
    if (end === -1) {
      if (bytes.length > maxResponseHeadBytes) return this.#fail(`a response head over ${maxResponseHeadBytes} bytes`) + chunk.length;
      this.#head = bytes === chunk ? Buffer.from(chunk) : bytes;
      return chunk.length;
    }
    this.#head = undefined;
    const consumed = offset + end + 4 - previous;
    if (end + 4 > maxResponseHeadBytes) return this.#fail(`a response head over ${maxResponseHeadBytes} bytes`) + consumed;
    const head = parseResponseHead(bytes.toString('latin1', 0, end), this.#method);
    if (typeof head === 'string') return this.#fail(head) + consumed;
    if (head.status === 101) return this.#fail('101 Switching Protocols to a request that asked for no upgrade') + consumed;
    if (head.status < 200) {
      sink.onInterim(head.status);
      return consumed;
    }
    this.headSeen = true;
    sink.onHead(head);
    this.#framing = head.framing;
    this.#remaining = head.contentLength;
    this.#chunk = Chunk.Size;
    this.#chunkDigits = 0;
    this.#lineBytes = 0;
    if (head.framing === 'none' || (head.framing === 'length' && head.contentLength === 0)) {
      this.#state = 'done';
      sink.onEnd(undefined);
    } else {
      this.#state = 'body';
    }
    return consumed;
  }

  #skipLength(chunk: Buffer, offset: number): number {
    const taken = Math.min(this.#remaining, chunk.length - offset);
    this.#remaining -= taken;
    if (this.#remaining === 0) this.#state = 'done';
    return offset + taken;
  }

  /** Walks chunk framing, skipping chunk data in one step; stops after the last CRLF of the message. */
  #scanChunked(chunk: Buffer, offset: number): number {
    let index = offset;
    while (index < chunk.length) {
      if (this.#chunk === Chunk.Data) {
        const taken = Math.min(this.#remaining, chunk.length - index);
        this.#remaining -= taken;
        index += taken;
        if (this.#remaining === 0) this.#chunk = Chunk.DataCarriage;
        continue;
      }
      const byte = chunk[index++]!;  // index < chunk.length: the loop's condition.
      if (++this.#lineBytes > maxChunkLineBytes) return this.#fail('a chunk-size or trailer line too long');
      switch (this.#chunk) {
        case Chunk.Size: {
          const digit = hexValue(byte);
          if (digit !== -1) {
            if (++this.#chunkDigits > maxChunkSizeDigits) return this.#fail('a chunk size too large');
            this.#remaining = this.#remaining * 16 + digit;
          } else if (this.#chunkDigits === 0) {
            return this.#fail('a chunk without a size');
          } else if (byte === carriage) {
            this.#chunk = Chunk.SizeLineFeed;
          } else if (byte === 0x3b || byte === 0x20 || byte === 0x09) {
            this.#chunk = Chunk.Extension;
          } else {
            return this.#fail('a bad chunk size');
          }
          break;
        }
        case Chunk.Extension:
          if (byte === carriage) this.#chunk = Chunk.SizeLineFeed;
          break;
        case Chunk.SizeLineFeed:
          if (byte !== lineFeed) return this.#fail('a chunk-size line without its line feed');
          this.#lineBytes = 0;
          this.#chunkDigits = 0;
          this.#chunk = this.#remaining === 0 ? Chunk.TrailerStart : Chunk.Data;
          break;
        case Chunk.DataCarriage:
          if (byte !== carriage) return this.#fail('chunk data longer than its size');
          this.#chunk = Chunk.DataLineFeed;
          break;
        case Chunk.DataLineFeed:
          if (byte !== lineFeed) return this.#fail('chunk data longer than its size');
          this.#lineBytes = 0;
          this.#chunk = Chunk.Size;
          break;
        case Chunk.TrailerStart:
          this.#chunk = byte === carriage ? Chunk.FinalLineFeed : Chunk.Trailer;
          break;
        case Chunk.Trailer:
          if (byte === carriage) this.#chunk = Chunk.TrailerLineFeed;
          break;
        case Chunk.TrailerLineFeed:
          if (byte !== lineFeed) return this.#fail('a trailer line without its line feed');
          this.#lineBytes = 0;
          this.#chunk = Chunk.TrailerStart;
          break;
        case Chunk.FinalLineFeed:
          if (byte !== lineFeed) return this.#fail('a chunked body without its final line feed');
          this.#lineBytes = 0;
          this.#state = 'done';
          return index;
      }
    }
    return index;
  }
}

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}
