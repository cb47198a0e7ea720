import test from 'ava';
import murmurhash from 'murmurhash';
import { clientAddress } from '../src/routing/client-address.js';
import { addressMatcher } from '../src/shared/address-range.js';
import { decide, splitClientsParts, stickyHash, versionForHash } from '../src/routing/decide.js';
import { parseHead } from '../src/primary/head.js';
import { restartDelay } from '../src/primary/backoff.js';
import type { RoutingConfig } from '../src/config/types.js';

const versions = new Set(['v1', 'v2', 'v3']);
const head = (target: string, headers: Record<string, string> = {}, remoteAddress = '127.0.0.1') => ({ method: 'GET', target, headers, remoteAddress });
const routing = (extra: Partial<RoutingConfig> = {}): RoutingConfig => ({
  default: 'v1', rules: [], weights: [], sticky: { key: { source: 'ip' }, cookie: null }, versionCookie: null, ...extra,
});

test('a name-only rule routes to the version its value names, when that version exists', (t) => {
  const config = routing({ rules: [{ source: 'query', name: 'version' }] });
  t.is(decide(head('/?version=v2'), config, versions).version, 'v2');
  t.is(decide(head('/?version=nope'), config, versions).version, 'v1');
  t.is(decide(head('/?version=v2'), config, versions).reason, 'rule');
});

test('header and cookie rules; equals + to routes on an exact match only', (t) => {
  const config = routing({
    rules: [
      { source: 'header', name: 'x-canary', equals: '1', to: 'v3' },
      { source: 'cookie', name: 'version' },
      { source: 'header', name: 'x-version' },
    ],
  });
  t.is(decide(head('/', { 'x-canary': '1' }), config, versions).version, 'v3');
  t.is(decide(head('/', { 'x-canary': '11' }), config, versions).version, 'v1');
  t.is(decide(head('/', { cookie: 'a=b; version=v2' }), config, versions).version, 'v2');
  t.is(decide(head('/', { 'x-version': 'v3' }), config, versions).version, 'v3');
});

test('rules are tried in order and the first match wins', (t) => {
  const config = routing({ rules: [{ source: 'query', name: 'version' }, { source: 'header', name: 'x-version' }] });
  t.is(decide(head('/?version=v2', { 'x-version': 'v3' }), config, versions).version, 'v2');
});

test('with no rule match and no weights, the default answers', (t) => {
  const decision = decide(head('/'), routing(), versions);
  t.deepEqual([decision.version, decision.determined], ['v1', false]);
});

/** `count` hash values spread evenly over the whole range. */
const evenHashes = (count: number) => Array.from({ length: count }, (_, index) => Math.floor((index * 2 ** 32) / count));

test('hash ranges follow the weights in listed order, so raising a canary never moves its users back', (t) => {
  const ninetyTen: RoutingConfig['weights'] = [['v1', 90], ['v2', 10]];
  const eightyTwenty: RoutingConfig['weights'] = [['v1', 80], ['v2', 20]];
  // nginx's edge for 90%: ⌊9000 × (2³² − 1) / 10000⌋.
  t.is(versionForHash(3_865_470_564, ninetyTen), 'v1');
  t.is(versionForHash(3_865_470_565, ninetyTen), 'v2');
  t.is(versionForHash(0, ninetyTen), 'v1');
  t.is(versionForHash(2 ** 32 - 1, ninetyTen), 'v2');
  for (const hash of evenHashes(10_000)) {
    if (versionForHash(hash, ninetyTen) === 'v2') t.is(versionForHash(hash, eightyTwenty), 'v2');
  }
  t.is(versionForHash(2 ** 31 - 2, [['v1', 1], ['v2', 1]]), 'v1');
  t.is(versionForHash(2 ** 31, [['v1', 1], ['v2', 1]]), 'v2');
  t.is(versionForHash(2 ** 32 - 1, [['v1', 100], ['v2', 0]]), 'v1', 'a version without weight takes no range');
});

test('the weights as nginx split_clients lines: edges at the cumulative shares in hundredths of a percent, the last version taking the rest', (t) => {
  t.deepEqual(splitClientsParts([['v1', 90], ['v2', 10]]), [{ version: 'v1', hundredths: 9000 }, { version: 'v2', hundredths: undefined }]);
  t.deepEqual(splitClientsParts([['v1', 1], ['v2', 1], ['v3', 1]]).map((part) => part.hundredths), [3333, 3334, undefined]);
  t.deepEqual(splitClientsParts([['v1', 0], ['v2', 5], ['v3', 95], ['v4', 0]]), [{ version: 'v2', hundredths: 500 }, { version: 'v3', hundredths: undefined }]);
  t.deepEqual(splitClientsParts([['v1', 100]]), [{ version: 'v1', hundredths: undefined }]);
  // Edges at the rounded cumulative shares: four near-thirds never add up to more than 100% (nginx refuses that).
  t.deepEqual(splitClientsParts([['a', 33_335], ['b', 33_335], ['c', 33_324], ['d', 6]]).map((part) => part.hundredths), [3334, 3333, 3332, undefined]);
  // A share that rounds to nothing gets no line: nginx refuses `0%`.
  t.deepEqual(splitClientsParts([['v1', 1], ['v2', 999_999]]), [{ version: 'v2', hundredths: undefined }]);
});

test('the sticky hash of a key is fixed: MurmurHash2 of its bytes, as nginx split_clients hashes', (t) => {
  t.is(stickyHash('user-42'), stickyHash('user-42'));
  // Pinned values: a change here would move users between versions across a fleet (and away from nginx's split;
  // test/topology.test.ts checks that agreement against a real nginx).
  t.deepEqual(['', 'a', 'user-42', 'ff'].map((key) => stickyHash(key)), [0, 2_456_313_694, 3_766_944_517, 3_489_605_005]);
  // A header value reaches Node one character per byte: those bytes are hashed, not the characters' UTF-8.
  t.is(stickyHash('\u00e9t\u00e9'), murmurhash.v2(Buffer.from([0xe9, 0x74, 0xe9]), 0));
  t.true(['a', 'b', 'c', 'd'].map(stickyHash).every((hash) => Number.isInteger(hash) && hash >= 0 && hash < 2 ** 32));
});

test('sticky weights spread 10k keys within 3 points of a 90/10 split', (t) => {
  const config = routing({ weights: [['v1', 90], ['v2', 10]], sticky: { key: { source: 'cookie', name: 'uid' }, cookie: null } });
  let canary = 0;
  for (let user = 0; user < 10_000; user++) {
    const decision = decide(head('/', { cookie: `uid=user-${user}` }), config, versions);
    if (decision.version === 'v2') canary++;
    if (user === 0) t.deepEqual([decision.reason, decision.determined], ['sticky', true]);
  }
  t.true(Math.abs(canary / 100 - 10) <= 3, `v2 got ${canary / 100}%`);
});

test('a client with no key gets a weighted pick and a sticky cookie that keeps it on that pick', (t) => {
  const config = routing({ weights: [['v1', 50], ['v2', 50]], sticky: { key: { source: 'cookie', name: 'uid' }, cookie: 'gc_uid' } });
  for (let index = 0; index < 50; index++) {
    const first = decide(head('/'), config, versions);
    t.is(first.determined, false);
    t.truthy(first.assignCookie);
    const again = decide(head('/', { cookie: `gc_uid=${first.assignCookie}` }), config, versions);
    t.is(again.version, first.version);
    t.is(again.determined, true);
  }
});

test('the head parser finds a head split across chunks and leaves what follows alone', (t) => {
  const bytes = Buffer.from('POST /x?version=v2 HTTP/1.1\r\nHost: a\r\nCookie: a=1\r\nCookie: b=2\r\n\r\nBODY');
  const partial = parseHead(bytes.subarray(0, 20), 16384);
  t.false(partial.done);
  const result = parseHead(bytes, 16384, partial.scanned);
  t.true(result.done && 'head' in result);
  if (result.done && 'head' in result) {
    t.is(result.head.target, '/x?version=v2');
    t.is(result.head.headers.cookie, 'a=1; b=2');
    t.is(result.scanned, bytes.length - 4);
  }
});

test('the head parser refuses oversized, malformed and non-HTTP input', (t) => {
  const big = Buffer.from(`GET / HTTP/1.1\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`);
  t.like(parseHead(big, 16384), { done: true, failure: { status: 431 } });
  t.like(parseHead(Buffer.from(`GET / HTTP/1.1\r\nX: ${'a'.repeat(20_000)}`), 16384), { done: true, failure: { status: 431 } });
  t.like(parseHead(Buffer.from('GET /\r\n\r\n'), 16384), { done: true, failure: { status: 400 } });
  t.like(parseHead(Buffer.from('GET / HTTP/1.1\r\nbad header\r\n\r\n'), 16384), { done: true, failure: { status: 400 } });
  t.like(parseHead(Buffer.from('GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n'), 16384), { done: true, failure: { status: 400 } });
  t.like(parseHead(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]), 16384), { done: true, failure: { status: 0 } });
});

test('the head parser skips empty lines before the request line, as Node does (RFC 9112 §2.2)', (t) => {
  for (const leading of ['\r\n', '\n', '\r\n\r\n\r\n']) {
    const result = parseHead(Buffer.from(`${leading}GET /a?version=v2 HTTP/1.1\r\nHost: a\r\n\r\n`), 16384);
    t.true(result.done && 'head' in result && result.head.target === '/a?version=v2', JSON.stringify(leading));
  }
  t.like(parseHead(Buffer.from('\r\n'), 16384), { done: false });
  const split = Buffer.from('\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n');
  const partial = parseHead(split.subarray(0, 4), 16384);
  t.like(parseHead(split, 16384, partial.scanned), { done: true, head: { target: '/' } });
  t.like(parseHead(Buffer.from('\r\n\x16\x03\x01'), 16384), { done: true, failure: { status: 0 } });
});

test('the head parser answers 400 at the first line ended by a bare LF, without waiting for the rest', (t) => {
  t.like(parseHead(Buffer.from('GET / HTTP/1.1\n'), 16384), { done: true, failure: { status: 400 } });
  t.like(parseHead(Buffer.from('GET / HTTP/1.1\r\nHost: a\n'), 16384), { done: true, failure: { status: 400 } });
  t.like(parseHead(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\n'), 16384), { done: true, failure: { status: 400 } });
  t.like(parseHead(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n'), 16384), { done: false });
});

test('the first restart is at once; backoff then doubles from 100 ms and stops at 30 s', (t) => {
  t.deepEqual([1, 2, 3, 4, 5].map((failures) => restartDelay(failures)), [0, 100, 200, 400, 800]);
  t.is(restartDelay(20), 30_000);
  t.is(restartDelay(1000), 30_000);
});

test('the ip sticky key behind trusted proxies is the address they were sent by; a client cannot choose it', (t) => {
  const trusted = addressMatcher(['10.0.0.0/8', '::1']);
  t.is(clientAddress('10.0.0.5', '198.51.100.7', trusted), '198.51.100.7', 'a trusted proxy names the client');
  t.is(clientAddress('10.0.0.5', '203.0.113.1, 198.51.100.7, 10.0.0.9', trusted), '198.51.100.7', 'past trusted hops, up to the first untrusted one; what it claimed does not count');
  t.is(clientAddress('198.51.100.7', '203.0.113.1', trusted), '198.51.100.7', 'an untrusted peer is the client, whatever it writes');
  t.is(clientAddress('10.0.0.5', '198.51.100.7', undefined), '10.0.0.5', 'without trustProxy the header never counts');
  t.is(clientAddress('10.0.0.5', undefined, trusted), '10.0.0.5', 'a trusted proxy that names no one');
  t.is(clientAddress('::1', '10.0.0.7, 10.0.0.8', trusted), '10.0.0.7', 'every hop trusted: the leftmost');
  t.is(clientAddress('::1', ' , ', trusted), '::1', 'an empty header');
});
