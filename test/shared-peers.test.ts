import test from 'ava';
import { SharedPeers, sharedPeerLimits } from '../src/primary/shared-peers.js';
import { ExpiringSet } from '../src/shared/expiring-set.js';

/** A connection's peer that counts how often its address (a system call, for a real one) is read. */
function peer(address: string) {
  return { reads: 0, get remoteAddress() { this.reads++; return address; } };
}

test('no peer is read, counted or placed until a worker reports one that pools its connections', (t) => {
  const peers = new SharedPeers();
  const lb = peer('10.0.0.5');
  for (let count = 0; count < 100; count++) t.is(peers.ownerFor(lb, 'v2'), undefined);
  t.is(lb.reads, 0);
  peers.note('10.0.0.5');
  t.is(peers.size, 1);
  const other = peer('10.0.0.6');
  for (let count = 0; count < 100; count++) t.is(peers.ownerFor(other, 'v1'), undefined, 'another peer goes by its first requests');
  t.is(peers.placements, 0);

  // A peer that turns out to have one user's connections too is forgotten until it is reported again.
  for (let count = 0; count < sharedPeerLimits.minSamples; count++) peers.ownerFor(lb, 'v1');
  t.is(peers.ownerFor(lb, 'v2'), 'v1');
  const reads = lb.reads;
  peers.forget('10.0.0.5');
  t.is(peers.leading, undefined, 'the count starts over');
  t.is(peers.ownerFor(lb, 'v2'), undefined);
  t.is(lb.reads, reads, 'with no peer known again, no address is read');
  peers.note('10.0.0.5');
  for (let count = 1; count < sharedPeerLimits.minSamples; count++) t.is(peers.ownerFor(lb, 'v1'), undefined);
  t.is(peers.ownerFor(lb, 'v2'), 'v1');
});

test('a version leads once at least two thirds of the shared peer\'s last first requests were its, over at least minSamples', (t) => {
  const peers = new SharedPeers();
  peers.note('10.0.0.5');
  const lb = peer('10.0.0.5');
  for (let count = 0; count < sharedPeerLimits.minSamples - 2; count++) t.is(peers.ownerFor(lb, 'v1'), undefined);
  t.is(peers.ownerFor(lb, 'v2'), undefined, 'one sample short of minSamples: no version leads yet');
  t.is(peers.ownerFor(lb, 'v2'), 'v1', `${sharedPeerLimits.minSamples - 2} of ${sharedPeerLimits.minSamples} were v1's`);
  t.is(peers.ownerFor(lb, 'v1'), undefined, 'a first request of the leading version goes by it anyway');
  t.is(peers.placements, 1);

  // 50/50: no version leads, so connections spread by their first request.
  const even = new SharedPeers();
  even.note('10.0.0.5');
  for (let count = 0; count < 4 * sharedPeerLimits.window; count++) t.is(even.ownerFor(lb, count % 2 === 0 ? 'v1' : 'v2'), undefined);
  t.is(even.placements, 0);
});

test('the count covers the last `window` first requests only: a lead taken at two thirds is kept down to three fifths, and each change is told', (t) => {
  let changes = 0;
  const peers = new SharedPeers(() => changes++);
  peers.note('10.0.0.5');
  const lb = peer('10.0.0.5');
  for (let count = 0; count < sharedPeerLimits.window; count++) peers.ownerFor(lb, 'v1');
  t.is(peers.leading, 'v1');
  t.is(changes, 1);
  t.is(peers.ownerFor(lb, 'v2'), 'v1');
  const owners = Array.from({ length: sharedPeerLimits.window }, () => peers.ownerFor(lb, 'v2'));
  const keep = Math.ceil((sharedPeerLimits.window * 3) / 5);
  t.is(owners.lastIndexOf('v1'), sharedPeerLimits.window - 2 - keep, 'v1 leads while it has three fifths of the window (the v2 before these counted too)');
  t.is(owners.indexOf(undefined), sharedPeerLimits.window - 1 - keep);
  t.is(peers.leading, 'v2', 'v2 leads once it has two thirds');
  t.is(peers.ownerFor(lb, 'v1'), 'v2');
  t.is(changes, 3, 'v1, then none, then v2');
});

test('the peers are bounded: past the capacity the one reported longest ago goes; each goes ttlMs after its last report', (t) => {
  const set = new ExpiringSet(3, 1000);
  set.add('a', 0);
  set.add('b', 10);
  set.add('a', 20);  // Renewed: now the newest.
  set.add('c', 30);
  set.add('d', 40);
  t.is(set.size, 3);
  t.false(set.has('b', 41), 'b was reported longest ago');
  t.true(set.has('a', 41));
  t.true(set.has('a', 1019));
  t.false(set.has('a', 1020), 'a expires ttlMs after its last report');
  set.add('a', 1020);
  set.add('e', 1040);
  t.is(set.size, 2, 'c and d expired: both dropped, nothing live is');
  t.deepEqual(['a', 'c', 'd', 'e'].map((member) => set.has(member, 1041)), [true, false, false, true]);

  const peers = new SharedPeers();
  for (let index = 0; index <= sharedPeerLimits.capacity; index++) peers.note(`10.0.${index >> 8}.${index & 255}`);
  t.is(peers.size, sharedPeerLimits.capacity);
  const first = peer('10.0.0.0');
  const last = peer(`10.0.${sharedPeerLimits.capacity >> 8}.${sharedPeerLimits.capacity & 255}`);
  for (let count = 0; count <= sharedPeerLimits.minSamples; count++) {
    t.is(peers.ownerFor(first, 'v2'), undefined, 'the first peer reported was forgotten: it goes by its first requests');
    peers.ownerFor(last, 'v1');
  }
  t.is(peers.ownerFor(last, 'v2'), 'v1');
});

test('at an even random split a lead almost never comes by chance; at 90/10 every first request of v2 is placed with v1', (t) => {
  let seed = 0x2545f491;
  /** xorshift32: the same sequence every run, so the counts below do not depend on luck. */
  const random = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const placements = (share: number) => {
    const peers = new SharedPeers();
    peers.note('10.0.0.5');
    const lb = { remoteAddress: '10.0.0.5' };
    for (let count = 0; count < 100_000; count++) peers.ownerFor(lb, random() < share ? 'v1' : 'v2');
    return peers.placements;
  };
  t.true(placements(0.5) < 100, 'at 50/50 under 0.1% of connections go anywhere but by their first request');
  const skewed = placements(0.9);
  t.true(skewed > 9_000 && skewed < 11_000, `at 90/10 about 10% are placed with v1 (${skewed})`);
});
