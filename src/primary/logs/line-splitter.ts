/** One line out of a worker's stream, as text that is safe on a terminal and in JSON. */
export interface SplitLine {
  message: string;
  /** The line was longer than the cap: this is a piece of it (its message ends with `cutMark`), and the next piece follows as the next line. */
  cut: boolean;
}

/** What a piece of a line longer than the cap ends with (text and JSON alike). */
export const cutMark = ' [cut]';

const newline = 0x0a;
const decoder = new TextDecoder('utf-8', { fatal: false });
// C0 controls but tab, DEL and C1 controls: an escape sequence or a NUL must not reach a terminal or a log shipper.
const controlCharacters = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g;

/**
 * Bytes as text that is valid and printable: invalid UTF-8 becomes U+FFFD, a control character (ESC, NUL, a lone
 * CR...) its `\xNN` escape. Tabs stay.
 */
export function toSafeText(bytes: Uint8Array): string {
  return decoder.decode(bytes).replace(controlCharacters, (character) => `\\x${character.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** How many of `bytes`'s first `limit` bytes end on a UTF-8 character boundary (never 0 when `limit` > 0). */
function characterBoundary(bytes: Uint8Array, limit: number): number {
  let end = limit;
  // Back off continuation bytes (10xxxxxx), then the lead byte of the character they belong to.
  while (end > 0 && end > limit - 4 && (bytes[end]! & 0xc0) === 0x80) end--;
  return end === 0 ? limit : end;
}

/** A line's bytes without the CR of a CRLF line end. */
function withoutCarriageReturn(bytes: Buffer): Buffer {
  return bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.subarray(0, -1) : bytes;
}

/**
 * Splits one stream of bytes into lines. A line without its newline yet is held (at most `maxLineBytes`) until
 * its newline or `end()`; a longer line is cut into pieces of `maxLineBytes`, each but the last marked `cut`.
 * Pure: no I/O, no timers.
 */
export class LineSplitter {
  #held: Buffer[] = [];
  #heldBytes = 0;

  constructor(private readonly maxLineBytes: number) {
    if (!(Number.isInteger(maxLineBytes) && maxLineBytes >= 4)) throw new RangeError(`maxLineBytes must be a whole number of at least 4, not ${maxLineBytes}`);
  }

  /** The lines `chunk` completes, in order. */
  push(chunk: Buffer): SplitLine[] {
    const lines: SplitLine[] = [];
    let start = 0;
    while (start <= chunk.length) {
      const end = chunk.indexOf(newline, start);
      if (end !== -1 && this.#heldBytes === 0 && end - start <= this.maxLineBytes) {
        // A whole line within the chunk (the usual case): read where it is, with no copy to hold it.
        lines.push({ message: toSafeText(withoutCarriageReturn(chunk.subarray(start, end))), cut: false });
        start = end + 1;
        continue;
      }
      this.#hold(chunk.subarray(start, end === -1 ? chunk.length : end), lines);
      if (end === -1) break;
      lines.push(this.#take(false, true));
      start = end + 1;
    }
    return lines;
  }

  /** The held partial line, if any: the stream ended without its newline. */
  end(): SplitLine[] {
    return this.#heldBytes === 0 ? [] : [this.#take(false, false)];
  }

  #hold(segment: Buffer, lines: SplitLine[]): void {
    let rest = segment;
    while (this.#heldBytes + rest.length > this.maxLineBytes) {
      const room = this.maxLineBytes - this.#heldBytes;
      const cutAt = room === 0 ? 0 : characterBoundary(rest, room);
      this.#held.push(rest.subarray(0, cutAt));
      this.#heldBytes += cutAt;
      lines.push(this.#take(true, false));
      rest = rest.subarray(cutAt);
    }
    if (rest.length === 0) return;
    // A copy: the chunk's memory belongs to the stream, and a held slice would keep a whole 64 KiB read alive.
    this.#held.push(Buffer.from(rest));
    this.#heldBytes += rest.length;
  }

  #take(cut: boolean, atNewline: boolean): SplitLine {
    let bytes = this.#held.length === 1 ? this.#held[0]! : Buffer.concat(this.#held, this.#heldBytes);
    if (atNewline) bytes = withoutCarriageReturn(bytes);
    this.#held = [];
    this.#heldBytes = 0;
    return { message: cut ? `${toSafeText(bytes)}${cutMark}` : toSafeText(bytes), cut };
  }
}
