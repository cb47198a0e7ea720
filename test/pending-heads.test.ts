import test from 'ava';
import { PendingBook, sourceOf } from '../src/shared/pending-book.js';

test('under pressure a source at maxPendingPerSource is refused while others are still taken', (t) => {
  const book = new PendingBook<string>({ maxPending: 6, maxPerSource: 3 });
  for (const name of ['a1', 'a2', 'a3', 'b1', 'b2', 'c1']) t.deepEqual(book.admit(name, () => name[0]!.toUpperCase()), { admit: true, shed: [] });
  t.deepEqual(book.admit('a4', () => 'A'), { admit: false, why: 'source-limit' });
  t.deepEqual(book.admit('b3', () => 'B'), { admit: true, shed: ['a1'] }, 'under its limit B is taken; the full book sheds A\'s oldest');
  book.remove('a2');
  t.deepEqual(book.admit('a5', () => 'A'), { admit: true, shed: [] }, 'a slot freed is a slot to take');
  t.is(book.countOf('A'), 2);
  t.is(book.size, 6);
});

test('below half of maxPendingConnections no source is limited: a load balancer\'s burst is taken whole', (t) => {
  const book = new PendingBook<string>({ maxPending: 10, maxPerSource: 2 });
  for (const name of ['a1', 'a2', 'a3', 'a4', 'a5']) t.deepEqual(book.admit(name, () => 'A'), { admit: true, shed: [] });
  t.deepEqual(book.admit('a6', () => 'A'), { admit: false, why: 'source-limit' }, 'half full: the limit applies');
  t.deepEqual(book.admit('b1', () => 'B'), { admit: true, shed: [] });
});

test('a full book takes the newcomer and sheds the oldest entry of the source holding the most', (t) => {
  const book = new PendingBook<string>({ maxPending: 6, maxPerSource: 4 });
  for (const name of ['b1', 'a1', 'a2', 'c1', 'a3', 'b2']) book.admit(name, () => name[0]!);
  t.deepEqual(book.admit('d1', () => 'D'), { admit: true, shed: ['a1'] });
  // A and B hold two each now: the tie goes to the entry waiting longest (b1).
  t.deepEqual(book.admit('d2', () => 'D'), { admit: true, shed: ['b1'] });
  // A and D hold two each: a2 has waited longer than d1.
  t.deepEqual(book.admit('e1', () => 'E'), { admit: true, shed: ['a2'] });
  t.is(book.size, 6);
  t.is(book.countOf('a'), 1);
});

test('the source holding the most loses its own oldest entry when it is the one arriving', (t) => {
  const book = new PendingBook<string>({ maxPending: 3, maxPerSource: 10 });
  for (const name of ['a1', 'a2', 'b1']) book.admit(name, () => name[0]!);
  t.deepEqual(book.admit('a3', () => 'a'), { admit: true, shed: ['a1'] });
  t.is(book.countOf('a'), 2);
});

test('lowering maxPending sheds down to the new cap at the next arrival', (t) => {
  const book = new PendingBook<number>({ maxPending: 10, maxPerSource: 10 });
  for (let index = 0; index < 10; index++) book.admit(index, () => index < 6 ? 'A' : 'B');
  book.setLimits({ maxPending: 4, maxPerSource: 10 });
  const admission = book.admit(99, () => 'C');
  t.deepEqual(admission, { admit: true, shed: [0, 1, 2, 6, 3, 7, 4] });
  t.is(book.size, 4);
});

test('one source flooding a full book never keeps out a newcomer from another source', (t) => {
  const book = new PendingBook<string>({ maxPending: 50, maxPerSource: 50 });
  let refused = 0;
  for (let round = 0; round < 1000; round++) {
    if (!book.admit(`attacker-${round}`, () => 'A').admit) refused++;
    const legitimate = book.admit(`user-${round}`, () => `U${round % 7}`);
    t.true(legitimate.admit);
    book.remove(`user-${round}`);  // Its head arrives at once and it leaves the book.
  }
  t.is(refused, 0);
  t.is(book.countOf('A'), 49, 'each newcomer cost the flooding source its oldest connection');
});

test('removing an entry twice, or one never admitted, changes nothing', (t) => {
  const book = new PendingBook<string>({ maxPending: 5, maxPerSource: 5 });
  book.admit('a', () => 'A');
  book.remove('a');
  book.remove('a');
  book.remove('never');
  t.is(book.size, 0);
  t.is(book.countOf('A'), 0);
});

test('a source is asked for only once the book is under pressure, then once per entry, oldest first', (t) => {
  const book = new PendingBook<string>({ maxPending: 8, maxPerSource: 2 });
  const asked: string[] = [];
  const source = (name: string) => () => {
    asked.push(name);
    return name[0]!;
  };
  for (const name of ['a1', 'b1', 'a2', 'b2']) book.admit(name, source(name));
  t.deepEqual(asked, [], 'below half of maxPending no source is needed');
  book.remove('b1');
  book.admit('b3', source('b3'));
  t.deepEqual(asked, [], 'still below half');
  t.deepEqual(book.admit('a3', source('a3')), { admit: false, why: 'source-limit' }, 'a1 and a2 already count against a');
  t.deepEqual(asked, ['a3', 'a1', 'a2', 'b2', 'b3']);
  t.deepEqual(book.admit('c1', source('c1')), { admit: true, shed: [] });
  t.deepEqual(asked.slice(5), ['c1'], 'the others are not asked again');
  t.is(book.countOf('b'), 2);
});

test('a source is an IPv4 address, or the /64 of an IPv6 one', (t) => {
  t.is(sourceOf('127.0.0.2'), '127.0.0.2');
  t.is(sourceOf('::ffff:10.1.2.3'), '10.1.2.3');
  t.is(sourceOf('2001:db8:0:1:aaaa::1'), '2001:db8:0:1::/64');
  t.is(sourceOf('2001:DB8:0:1:bbbb:cccc:dddd:eeee'), '2001:db8:0:1::/64');
  t.is(sourceOf('2001:db8::1'), '2001:db8:0:0::/64');
  t.is(sourceOf('::1'), '0:0:0:0::/64');
  t.is(sourceOf('fe80::1%eth0'), 'fe80:0:0:0::/64');
  t.is(sourceOf(undefined), '');
});
