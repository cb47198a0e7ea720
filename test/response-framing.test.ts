import test from 'ava';
import {
  maxChunkLineBytes, maxChunkSizeDigits, maxResponseHeadBytes, parseResponseHead, ResponseFramer, type FramingSink, type ResponseHead,
} from '../src/worker/response-framing.js';

/** Everything a framer reported, with the body bytes joined. */
interface Seen {
  interim: number[];
  head: ResponseHead | undefined;
  body: Buffer;
  ended: boolean;
  consumed: number;
  error: string | undefined;
}

function recorder(seen: Seen): FramingSink {
  return {
    onInterim: (status) => seen.interim.push(status),
    onHead: (head) => void (seen.head = head),
    onBody: (bytes) => void (seen.body = Buffer.concat([seen.body, bytes])),
    onEnd: (last) => {
      if (last) seen.body = Buffer.concat([seen.body, last]);
      seen.ended = true;
    },
  };
}

/** Feeds `wire` whole, in two pieces split at `splitAt`, or one byte at a time; reports what the framer saw. */
function frame(wire: string | Buffer, options: { method?: string; byteByByte?: boolean; splitAt?: number; close?: boolean } = {}): Seen {
  const bytes = typeof wire === 'string' ? Buffer.from(wire, 'latin1') : wire;
  const seen: Seen = { interim: [], head: undefined, body: Buffer.alloc(0), ended: false, consumed: 0, error: undefined };
  const sink = recorder(seen);
  const framer = new ResponseFramer();
  framer.begin(options.method ?? 'GET');
  const pieces = options.byteByByte
    ? [...bytes].map((byte) => Buffer.from([byte]))
    : options.splitAt === undefined ? [bytes] : [bytes.subarray(0, options.splitAt), bytes.subarray(options.splitAt)];
  for (const piece of pieces) {
    const used = framer.feed(piece, sink);
    seen.consumed += used;
    if (used < piece.length) break;
  }
  if (options.close) framer.close(sink);
  seen.error = framer.error;
  return seen;
}

/** Runs `check` on the framing of `wire` fed whole and fed byte by byte: both must see the same. */
function bothWays(t: { deepEqual(a: unknown, b: unknown, message?: string): void }, wire: string | Buffer, options: { method?: string; close?: boolean } = {}): Seen {
  const whole = frame(wire, options);
  const single = frame(wire, { ...options, byteByByte: true });
  t.deepEqual({ ...single, body: single.body.toString('latin1') }, { ...whole, body: whole.body.toString('latin1') }, 'byte by byte frames the same as whole');
  return whole;
}

test('a Content-Length body ends after its length; bytes after it are not the response\'s', (t) => {
  const wire = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nhelloEXTRA';
  const seen = bothWays(t, wire);
  t.is(seen.head?.status, 200);
  t.is(seen.head?.framing, 'length');
  t.true(seen.head?.keepAlive);
  t.is(seen.head?.endToEnd, 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n', 'Connection and Keep-Alive are the next hop\'s');
  t.is(seen.body.toString(), 'hello');
  t.true(seen.ended);
  t.is(seen.consumed, wire.length - 'EXTRA'.length);
});

test('a chunked body passes with its framing and trailers, and ends after the last CRLF', (t) => {
  const body = '5\r\nhello\r\n1a;name=value\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Checksum: 42\r\nX-More: 1\r\n\r\n';
  const wire = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n${body}`;
  const seen = bothWays(t, `${wire}NEXT`);
  t.is(seen.head?.framing, 'chunked');
  t.is(seen.body.toString(), body);
  t.true(seen.ended);
  t.is(seen.consumed, wire.length);
  const bare = bothWays(t, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
  t.true(bare.ended);
  t.is(bare.body.toString(), '0\r\n\r\n');
});

test('a binary chunked body whose data holds CRLFs and hex-like bytes is skipped by size, not scanned', (t) => {
  const data = Buffer.from('\r\n0\r\n\r\nffff\r\n', 'latin1');
  const wire = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n0\r\n\r\n')]);
  const seen = bothWays(t, wire);
  t.true(seen.ended);
  t.is(seen.consumed, wire.length);
});

test('no body after HEAD, 1xx, 204 and 304, whatever the headers say', (t) => {
  const head = bothWays(t, 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n', { method: 'HEAD' });
  t.is(head.head?.framing, 'none');
  t.true(head.ended);
  for (const status of [204, 304]) {
    const head = `HTTP/1.1 ${status} X\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const seen = bothWays(t, `${head}LEFT`);
    t.is(seen.head?.framing, 'none', String(status));
    t.true(seen.ended);
    t.is(seen.consumed, head.length, 'the bytes after the head are not its body');
  }
});

test('interim 100 and 103 heads are reported before the final one', (t) => {
  const seen = bothWays(t, 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok');
  t.deepEqual(seen.interim, [100, 103]);
  t.is(seen.head?.status, 201);
  t.is(seen.body.toString(), 'ok');
  t.true(seen.ended);
});

test('a body without length ends with the connection, and such a response never keeps it alive', (t) => {
  const open = bothWays(t, 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nstreaming until the end');
  t.is(open.head?.framing, 'close');
  t.false(open.head?.keepAlive);
  t.false(open.ended, 'not complete before the close');
  const closed = bothWays(t, 'HTTP/1.1 200 OK\r\n\r\nall of it', { close: true });
  t.true(closed.ended);
  t.is(closed.body.toString(), 'all of it');
  const unknownCoding = bothWays(t, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz');
  t.is(unknownCoding.head?.framing, 'close', 'a transfer coding that is not chunked last is read to the close');
});

test('Connection: close, HTTP/1.0 and the headers Connection names are taken into account', (t) => {
  const closing = parseResponseHead('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0', 'GET') as ResponseHead;
  t.false(closing.keepAlive);
  t.is(closing.endToEnd, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n');
  t.false((parseResponseHead('HTTP/1.0 200 OK\r\nContent-Length: 0', 'GET') as ResponseHead).keepAlive);
  t.true((parseResponseHead('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0', 'GET') as ResponseHead).keepAlive);
  const named = parseResponseHead('HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\nX-Kept: 1\r\nContent-Length: 0', 'GET') as ResponseHead;
  t.is(named.endToEnd, 'HTTP/1.1 200 OK\r\nX-Kept: 1\r\nContent-Length: 0\r\n');
  t.is((parseResponseHead('HTTP/1.1 200 OK', 'GET') as ResponseHead).endToEnd, 'HTTP/1.1 200 OK\r\n');
});

test('malformed responses fail the framing with a reason', (t) => {
  t.regex(frame('HTTX/1.1 200 OK\r\n\r\n').error ?? '', /status line/);
  t.regex(frame('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n').error ?? '', /Content-Length/);
  t.regex(frame('HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n').error ?? '', /Content-Length/);
  t.regex(frame('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n').error ?? '', /chunk/);
  t.regex(frame('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n').error ?? '', /longer than its size/);
  t.regex(frame('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000\r\n').error ?? '', /too large/);
  t.regex(frame('HTTP/1.1 101 Switching Protocols\r\n\r\n').error ?? '', /101/);
  t.regex(frame(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70 * 1024)}`).error ?? '', /over 65536 bytes/);
  t.is(frame('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n').error, undefined);
});

test('one framer frames response after response once begun again', (t) => {
  const seen: Seen = { interim: [], head: undefined, body: Buffer.alloc(0), ended: false, consumed: 0, error: undefined };
  const framer = new ResponseFramer();
  for (const [method, wire, body] of [['GET', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc', 'abc'], ['HEAD', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n', ''], ['GET', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n', '1\r\nz\r\n0\r\n\r\n']] as const) {
    seen.body = Buffer.alloc(0);
    seen.ended = false;
    framer.begin(method);
    t.is(framer.feed(Buffer.from(wire), recorder(seen)), wire.length);
    t.true(seen.ended);
    t.is(seen.body.toString(), body);
  }
});

test('each framing cap holds to the byte: at the cap the response frames, one byte past it fails with the reason', (t) => {
  const headOf = (length: number) => {
    const start = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Fill: ';
    return `${start}${'f'.repeat(length - start.length - 4)}\r\n\r\n`;
  };
  for (const splitAt of [undefined, maxResponseHeadBytes - 2]) {
    const atCap = frame(headOf(maxResponseHeadBytes), { splitAt });
    t.deepEqual([atCap.error, atCap.ended], [undefined, true], `a head of ${maxResponseHeadBytes} bytes, split at ${splitAt}`);
    t.is(frame(headOf(maxResponseHeadBytes + 1), { splitAt }).error, `a response head over ${maxResponseHeadBytes} bytes`);
  }

  const chunked = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
  // A chunk-size line with an extension, `length` bytes with its CRLF.
  const sizeLine = (length: number) => `1;${'x'.repeat(length - 4)}\r\n`;
  const atLineCap = bothWays(t, `${chunked}${sizeLine(maxChunkLineBytes)}a\r\n0\r\n\r\n`);
  t.deepEqual([atLineCap.error, atLineCap.ended], [undefined, true]);
  t.is(frame(`${chunked}${sizeLine(maxChunkLineBytes + 1)}a\r\n0\r\n\r\n`).error, 'a chunk-size or trailer line too long');
  const trailerLine = (length: number) => `X-T: ${'t'.repeat(length - 7)}\r\n`;
  const atTrailerCap = bothWays(t, `${chunked}0\r\n${trailerLine(maxChunkLineBytes)}\r\n`);
  t.deepEqual([atTrailerCap.error, atTrailerCap.ended], [undefined, true]);
  t.is(frame(`${chunked}0\r\n${trailerLine(maxChunkLineBytes + 1)}\r\n`).error, 'a chunk-size or trailer line too long');

  const sized = bothWays(t, `${chunked}${'1'.padStart(maxChunkSizeDigits, '0')}\r\na\r\n0\r\n\r\n`);
  t.deepEqual([sized.error, sized.ended, sized.body.toString()], [undefined, true, `${'1'.padStart(maxChunkSizeDigits, '0')}\r\na\r\n0\r\n\r\n`]);
  t.is(frame(`${chunked}${'1'.padStart(maxChunkSizeDigits + 1, '0')}\r\na\r\n0\r\n\r\n`).error, 'a chunk size too large');
});
