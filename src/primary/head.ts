import type { RequestHead } from '../routing/head.js';

/** Why a connection is refused before it reaches a worker. */
export type HeadFailure =
  | { status: 400; reason: string }
  | { status: 431; reason: string }
  /** Not HTTP at all (a TLS ClientHello, say): close without an answer. */
  | { status: 0; reason: string };

export type HeadResult =
  | { done: false }
  | { done: true; head: Omit<RequestHead, 'remoteAddress'> }
  | { done: true; failure: HeadFailure };

const token = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const requestLine = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([^\s\x00-\x1f\x7f]+) HTTP\/1\.[01]$/;
// Header values may hold any visible byte, spaces and tabs; no other control characters.
const badValue = /[\x00-\x08\x0a-\x1f\x7f]/;
const CR = 13, LF = 10;

/** Where the request line starts: past the empty lines a client may send first (RFC 9112 §2.2), as Node skips them. */
export function requestStart(bytes: Buffer): number {
  let index = 0;
  while (index < bytes.length && (bytes[index] === CR || bytes[index] === LF)) index++;
  return index;
}

/**
 * Finds the end of the request head that starts at `start` (the offset just past the blank line), -1 while it
 * is incomplete, or 'bare-lf' at a line ended by LF alone (Node refuses those; waiting would only hold a slot).
 * `from` is where to resume scanning, so a head arriving a few bytes at a time is scanned once overall.
 */
export function findHeadEnd(bytes: Buffer, from: number, start = 0): number | 'bare-lf' {
  for (let index = bytes.indexOf(LF, Math.max(start, from)); index !== -1; index = bytes.indexOf(LF, index + 1)) {
    if (bytes[index - 1] !== CR) return 'bare-lf';
    if (index - 3 >= start && bytes[index - 2] === LF && bytes[index - 3] === CR) return index + 1;
  }
  return -1;
}

/** False when the byte at `start` cannot start an HTTP/1 request line. */
export function looksLikeHttp(bytes: Buffer, start = 0): boolean {
  const first = bytes[start];
  if (first === undefined) return false;
  return (first >= 0x41 && first <= 0x5a) || (first >= 0x61 && first <= 0x7a); // a method starts with a letter
}

/**
 * Reads the head of the first request on a connection, and nothing past what it has been given.
 * Binary-safe: it parses a copy; the bytes themselves travel to the worker untouched.
 */
export function parseHead(bytes: Buffer, maxHeadBytes: number, scannedUpTo = 0): HeadResult & { scanned: number } {
  const start = requestStart(bytes);
  if (start < bytes.length && !looksLikeHttp(bytes, start)) return { done: true, failure: { status: 0, reason: 'not HTTP' }, scanned: 0 };
  const end = start === bytes.length ? -1 : findHeadEnd(bytes, scannedUpTo - 3, start);
  if (end === 'bare-lf') return { done: true, failure: { status: 400, reason: 'a head line ends in LF without CR' }, scanned: bytes.length };
  if (end === -1) {
    if (bytes.length > maxHeadBytes) return { done: true, failure: { status: 431, reason: `head over ${maxHeadBytes} bytes` }, scanned: bytes.length };
    return { done: false, scanned: bytes.length };
  }
  if (end > maxHeadBytes) return { done: true, failure: { status: 431, reason: `head over ${maxHeadBytes} bytes` }, scanned: end };

  const [firstLine = '', ...headerLines] = bytes.toString('latin1', start, end - 4).split('\r\n');
  const [, method, target] = requestLine.exec(firstLine) ?? [];
  if (method === undefined || target === undefined) return { done: true, failure: { status: 400, reason: 'malformed request line' }, scanned: end };
  const headers: Record<string, string> = {};
  for (const [index, line] of headerLines.entries()) {
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    const value = line.slice(colon + 1).trim();
    if (!token.test(name) || badValue.test(value)) {
      return { done: true, failure: { status: 400, reason: `malformed header line ${index + 1}` }, scanned: end };
    }
    const key = name.toLowerCase();
    const previous = headers[key];
    headers[key] = previous === undefined ? value : `${previous}${key === 'cookie' ? '; ' : ', '}${value}`;
  }
  return { done: true, head: { method, target, headers }, scanned: end };
}
